"""Hardware feedback: GPU specs, roofline, and (later) Nsight Compute, NVML and ptxas summaries."""
