import torch
from kernelloop.sandbox import nvrtc
from kernelloop.feedback import gpu_specs, roofline
from cuda.bindings import nvrtc as n
print("nvrtc", n.nvrtcVersion(), "includes", nvrtc._include_dirs(), "arch", nvrtc._default_arch())
p = torch.cuda.get_device_properties(0)
print(p); print([a for a in dir(p) if not a.startswith("_")])
spec = gpu_specs.current(); print(spec); print("generic estimate:", gpu_specs._generic(p))
def t(fn, reps=20):
    fn(); torch.cuda.synchronize()
    s, e = torch.cuda.Event(True), torch.cuda.Event(True); s.record()
    for _ in range(reps): fn()
    e.record(); torch.cuda.synchronize(); return s.elapsed_time(e) / reps / 1e3
N = 8192
a = torch.randn(N, N, device="cuda", dtype=torch.bfloat16); b = torch.randn_like(a)
w = roofline.estimate_work(torch.nn.Module.__call__.__self__ if False else (lambda x, y: x @ y), [a.to("meta"), b.to("meta")])
sec = t(lambda: a @ b)
print("matmul", w, sec, "frac", roofline.fraction_of_roofline(w, spec, torch.bfloat16, sec), roofline.classify(w, spec, torch.bfloat16, sec))
src = 'extern "C" __global__ void vadd(const float* x, const float* y, float* o, long long n){long long i=blockIdx.x*(long long)blockDim.x+threadIdx.x; if(i<n) o[i]=x[i]+y[i];}'
k = nvrtc.load_kernel(src, "vadd"); M = 1 << 28
x = torch.randn(M, device="cuda"); y = torch.randn_like(x); o = torch.empty_like(x)
w2 = roofline.Work(0, 3 * 4 * M, "none"); sec2 = t(lambda: k(M // 256, 256, x, y, o, M))
print("vadd GB/s", roofline.achieved(w2, sec2)[0] / 1e9, "frac", roofline.fraction_of_roofline(w2, spec, torch.float32, sec2), "launches", nvrtc.launch_count())
torch.testing.assert_close(o, x + y)
print(k.compiled.log); from cuda.bindings import driver as cu; f = k._functions[0]; A = cu.CUfunction_attribute; print({a: cu.cuFuncGetAttribute(getattr(A, a), f)[1] for a in ("CU_FUNC_ATTRIBUTE_NUM_REGS", "CU_FUNC_ATTRIBUTE_LOCAL_SIZE_BYTES", "CU_FUNC_ATTRIBUTE_SHARED_SIZE_BYTES")})
