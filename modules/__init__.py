"""Efficiency modules (attention, quantized GEMM, convolution). Not built yet: see issue 5."""
