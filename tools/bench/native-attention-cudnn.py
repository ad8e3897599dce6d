# The attention through the C API without PyTorch in the process, so dlopen finds the system cuDNN (what Node
# gets): cuDNN (variant 9) vs the own kernel (variant 2) at the 1.3B shape. Run on the GPU machine after
# scripts/build-native.sh:  python3 tools/bench/native-attention-cudnn.py   (needs cupy)
import ctypes as C, numpy as np, cupy as cp, sys
lib = C.CDLL('native/build/libsinkstream_native.so')
lib.ssn_attention_backend.restype = C.c_char_p
lib.ssn_last_error.restype = C.c_char_p
print('[attention] backend:', lib.ssn_attention_backend().decode())
H, D, Lq = 12, 128, 4680
def bf(n, seed):
    a = np.random.default_rng(seed).standard_normal(n, dtype=np.float32)
    return cp.asarray((a.view(np.uint32) >> 16).astype(np.uint16))
lib.ssn_attention.argtypes = [C.c_int] + [C.c_void_p] * 4 + [C.c_int] * 6 + [C.POINTER(C.c_double)]
for frames in (3, 12, 21):
    Lk = frames * 1560
    q, k, v = bf(Lq * H * D, 1), bf(Lk * H * D, 2), bf(Lk * H * D, 3)
    outs = {}
    for var in (9, 2):
        o = cp.zeros(Lq * H * D, dtype=cp.uint16); ms = C.c_double()
        rc = lib.ssn_attention(0, q.data.ptr, k.data.ptr, v.data.ptr, o.data.ptr, Lq, Lk, H, D, var, 20, C.byref(ms))
        if rc: print('[attention] error', lib.ssn_last_error().decode()); sys.exit(1)
        outs[var] = (cp.asnumpy(o).astype(np.uint32) << 16).view(np.float32)
        print(f'[attention] keys {Lk}: variant {var} ({"cuDNN" if var == 9 else "own kernel"}) {ms.value:.3f} ms, {4*Lq*Lk*H*D/ms.value/1e9:.0f} TFLOP/s', flush=True)
    d = outs[9] - outs[2]
    print(f'[attention] keys {Lk}: cuDNN vs own kernel relative difference {np.linalg.norm(d)/np.linalg.norm(outs[2]):.2e}')
