"""kernelloop: verified, faster GPU kernels for PyTorch code.

Importing this package is cheap: subpackages (``kernelloop.sandbox``, ``kernelloop.kernelbench``,
...) are imported only when used, and none of the core pulls in an LLM SDK, a GPU or a network.
"""

__version__ = "0.1.0"
