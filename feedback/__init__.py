"""Hardware feedback: GPU specs, roofline, compiler resources, Nsight Compute, NVML, and the
token-budgeted summary the Judge reads."""
