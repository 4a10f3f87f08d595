from cuda.bindings import nvrtc as n
src = b'extern "C" __global__ void f(float* x, int k){ float a[64]; for(int i=0;i<64;i++) a[i]=x[i*k]; x[threadIdx.x]=a[k&63]; }'
for opts in (["--ptxas-options=-v"], ["-Xptxas", "-v"], ["--ptxas-options=--verbose"], ["-Xptxas=-v"], ["--ptxas-options=-v", "--ptxas-options=--warn-on-spills"]):
    _, p = n.nvrtcCreateProgram(src, b"f.cu", 0, [], [])
    o = ["--gpu-architecture=sm_90"] + opts
    r = n.nvrtcCompileProgram(p, len(o), [x.encode() for x in o])
    _, sz = n.nvrtcGetProgramLogSize(p); b = b" " * sz; n.nvrtcGetProgramLog(p, b)
    print(opts, r[0].name, repr(b.rstrip(b"\0").decode()[:300]))
