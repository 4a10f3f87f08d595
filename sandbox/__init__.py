"""The trust core: isolated workers, static gate, correctness, timing and the ``Verdict``."""
