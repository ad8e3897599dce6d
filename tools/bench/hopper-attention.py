# The own Hopper attention kernel (variant 12, native/src/hopper-attention.cu) against cuDNN's fused attention
# (variant 9) and the FlashAttention-2-style own kernel (variant 2), side by side in one process, through the C API
# (no PyTorch in the process, so the system cuDNN is the one loaded, as under Node). Checks the kernel against a
# float64 reference on small shapes first (partial query and key tiles, split keys), then times the 1.3B shape
# (12 heads of 128, 4,680 queries) at 3, 12 and 21 frames of keys.
# Run on the GPU machine after scripts/build-native.sh:  python3 tools/bench/hopper-attention.py [--reps N]
import argparse, ctypes as C, os, sys
import numpy as np
import cupy as cp

ap = argparse.ArgumentParser()
ap.add_argument('--reps', type=int, default=20)
ap.add_argument('--frames', default='3,12,21')
ap.add_argument('--skip-check', action='store_true')
ap.add_argument('--fp8', action='store_true', help='also time FP8 attention: cuDNN\'s and the own kernel\'s')
ap.add_argument('--splits', default='1,2,3', help='key splits to time the hopper kernel with at the last frame count')
args = ap.parse_args()

lib = C.CDLL('native/build/libsinkstream_native.so')
lib.ssn_last_error.restype = C.c_char_p
lib.ssn_attention.argtypes = [C.c_int] + [C.c_void_p] * 4 + [C.c_int] * 6 + [C.POINTER(C.c_double)]
HOPPER, CUDNN, OWN = 12, 9, 2
CUDNN_FP8, CUDNN_FP8_ATTEND, HOPPER_FP8, HOPPER_FP8_ATTEND = 10, 11, 13, 14
NAMES = {HOPPER: 'hopper kernel', CUDNN: 'cuDNN', OWN: 'own FA2 kernel', CUDNN_FP8: 'cuDNN FP8 (with quantisation)',
         CUDNN_FP8_ATTEND: 'cuDNN FP8 (attention alone)', HOPPER_FP8: 'hopper FP8 kernel (with quantisation)',
         HOPPER_FP8_ATTEND: 'hopper FP8 kernel (attention alone)'}


def bf16(a):
    return cp.asarray((np.ascontiguousarray(a, dtype=np.float32).view(np.uint32) >> 16).astype(np.uint16))


def unbf16(a):
    return (cp.asnumpy(a).astype(np.uint32) << 16).view(np.float32)


def attend(q, k, v, lq, lk, heads, hd, variant, reps):
    o = cp.zeros(lq * heads * hd, dtype=cp.uint16)
    ms = C.c_double()
    rc = lib.ssn_attention(0, q.data.ptr, k.data.ptr, v.data.ptr, o.data.ptr, lq, lk, heads, hd, variant, reps, C.byref(ms))
    if rc:
        raise RuntimeError(lib.ssn_last_error().decode())
    cp.cuda.runtime.deviceSynchronize()
    return unbf16(o), ms.value


def reference(qf, kf, vf, lq, lk, heads, hd):
    q = qf.reshape(lq, heads, hd).astype(np.float64)
    k = kf.reshape(lk, heads, hd).astype(np.float64)
    v = vf.reshape(lk, heads, hd).astype(np.float64)
    out = np.empty((lq, heads, hd))
    for h in range(heads):
        s = q[:, h] @ k[:, h].T / np.sqrt(hd)
        s = np.exp(s - s.max(axis=1, keepdims=True))
        out[:, h] = (s / s.sum(axis=1, keepdims=True)) @ v[:, h]
    return out.reshape(-1)


def rel(a, b):
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


failed = 0
if not args.skip_check:
    rng = np.random.default_rng(0)
    for lq, lk, heads, split in ((64, 64, 1, 0), (100, 300, 2, 0), (200, 1000, 3, 0), (300, 1560 * 2, 2, 2), (128, 4680, 1, 3), (256, 3000, 2, 0)):
        hd = 128
        qf, kf, vf = (rng.standard_normal(n).astype(np.float32) for n in (lq * heads * hd, lk * heads * hd, lk * heads * hd))
        q, k, v = bf16(qf), bf16(kf), bf16(vf)
        ref = reference(unbf16(q), unbf16(k), unbf16(v), lq, lk, heads, hd)
        os.environ['SSN_ATTENTION_SPLIT'] = str(split or 'auto')
        try:
            out, _ = attend(q, k, v, lq, lk, heads, hd, HOPPER, 0)
            err = rel(out, ref)
        except RuntimeError as e:
            err = float('nan'); print('[check] error', e)
        own, _ = attend(q, k, v, lq, lk, heads, hd, OWN, 0)
        ok = err < 1e-2
        failed += 0 if ok else 1
        print(f'[check] lq {lq} lk {lk} heads {heads} splits {split or "auto"}: hopper vs float64 {err:.2e}, '
              f'own FA2 kernel vs float64 {rel(own, ref):.2e} {"ok" if ok else "WRONG"}', flush=True)
        try:
            fp8, _ = attend(q, k, v, lq, lk, heads, hd, HOPPER_FP8, 0)
            err8 = rel(fp8, ref)
        except RuntimeError as e:
            err8 = float('nan'); print('[check] error', e)
        try:
            cudnn8, _ = attend(q, k, v, lq, lk, heads, hd, CUDNN_FP8, 0)
            err8c = rel(cudnn8, ref)
        except RuntimeError:  # cuDNN has no FP8 plan for every shape
            err8c = float('nan')
        ok8 = err8 < (0.06 if np.isnan(err8c) else max(0.06, 1.5 * err8c))
        failed += 0 if ok8 else 1
        print(f'[check] lq {lq} lk {lk} heads {heads} splits {split or "auto"}: hopper FP8 vs float64 {err8:.2e}, '
              f'cuDNN FP8 vs float64 {err8c:.2e} {"ok" if ok8 else "WRONG"}', flush=True)
        os.environ.pop('SSN_ATTENTION_SPLIT')

H, D, Lq = 12, 128, 4680
for frames in (int(f) for f in args.frames.split(',')):
    Lk = frames * 1560
    rng = np.random.default_rng(frames)
    q, k, v = (bf16(rng.standard_normal(n, dtype=np.float32)) for n in (Lq * H * D, Lk * H * D, Lk * H * D))
    outs = {}
    for var in (CUDNN, HOPPER, OWN, CUDNN, HOPPER) + ((CUDNN_FP8, HOPPER_FP8, CUDNN_FP8_ATTEND, HOPPER_FP8_ATTEND,
                                                       CUDNN_FP8_ATTEND, HOPPER_FP8_ATTEND) if args.fp8 else ()):
        out, ms = attend(q, k, v, Lq, Lk, H, D, var, args.reps)
        outs[var] = out
        print(f'[time] keys {Lk}: {NAMES[var]} {ms:.3f} ms, {4 * Lq * Lk * H * D / ms / 1e9:.0f} TFLOP/s', flush=True)
    print(f'[time] keys {Lk}: hopper vs cuDNN relative difference {rel(outs[HOPPER], outs[CUDNN]):.2e}, '
          f'own FA2 vs cuDNN {rel(outs[OWN], outs[CUDNN]):.2e}', flush=True)
    if args.fp8:
        print(f'[time] keys {Lk}: against cuDNN bf16: hopper FP8 {rel(outs[HOPPER_FP8], outs[CUDNN]):.2e}, '
              f'cuDNN FP8 {rel(outs[CUDNN_FP8], outs[CUDNN]):.2e}', flush=True)
for split in (int(x) for x in args.splits.split(',') if x):
    os.environ['SSN_ATTENTION_SPLIT'] = str(split)
    _, ms = attend(q, k, v, Lq, Lk, H, D, HOPPER, args.reps)
    print(f'[time] keys {Lk}: hopper kernel, keys in {split} run(s): {ms:.3f} ms, {4 * Lq * Lk * H * D / ms / 1e9:.0f} TFLOP/s', flush=True)
os.environ.pop('SSN_ATTENTION_SPLIT', None)
print(f'[check] {"all ok" if failed == 0 else f"{failed} WRONG"}')
sys.exit(1 if failed else 0)
