"""ctypes binding of the native engine's C API (native/src/capi.h), for the GPU-machine tools.

The library is native/build/libsinkstream_native.so (scripts/build-native.sh). It shares the process
and the CUDA context with PyTorch, so weights can be handed over as device pointers.
"""
from __future__ import annotations

import ctypes as C
import os
from typing import List, Optional, Sequence, Tuple

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFAULT_LIB = os.path.join(ROOT, 'native', 'build', 'libsinkstream_native.so')


class SsnDims(C.Structure):
    _fields_ = [
        ('dim', C.c_int), ('layers', C.c_int), ('heads', C.c_int), ('ffn_dim', C.c_int), ('freq_dim', C.c_int),
        ('latent_channels', C.c_int), ('patch', C.c_int * 3), ('text_dim', C.c_int), ('text_len', C.c_int),
        ('eps', C.c_float), ('rope_theta', C.c_double), ('rope_max_position', C.c_int), ('rope_split', C.c_int * 3),
        ('latent_height', C.c_int), ('latent_width', C.c_int),
    ]


def _ptr(a: np.ndarray) -> C.c_void_p:
    assert a.flags['C_CONTIGUOUS']
    return C.c_void_p(a.ctypes.data)


class NativeEngine:
    """One engine; `dims` is tools/reference/model.py's Dims. precision 0 = bf16, 1 = fp32."""

    def __init__(self, dims, device: int = 0, precision: int = 0, lib_path: str = DEFAULT_LIB,
                 layers: Optional[Tuple[int, int]] = None, pipeline: Optional[Tuple[Sequence[int], Sequence[int]]] = None):
        """layers: a pipeline stage's model layers [begin, end) (all of them when None). pipeline: (devices,
        layer_counts): one engine over several GPUs, stage i on devices[i] running the next layer_counts[i] layers."""
        self.lib = lib = C.CDLL(lib_path)
        lib.ssn_last_error.restype = C.c_char_p
        vp, i32 = C.c_void_p, C.c_int
        lib.ssn_create.argtypes = [C.POINTER(SsnDims), i32, i32, C.POINTER(vp)]
        lib.ssn_destroy.argtypes = [vp]
        lib.ssn_set_weight.argtypes = [vp, C.c_char_p, vp, C.c_int64, i32]
        lib.ssn_finalize.argtypes = [vp]
        lib.ssn_set_prompt.argtypes = [vp, vp]
        lib.ssn_update_cache.argtypes = [vp, i32, i32, i32, vp, vp, vp]
        lib.ssn_score_cache.argtypes = [vp, i32, vp, vp, vp, i32, vp]
        lib.ssn_release_queries.argtypes = [vp, i32]
        lib.ssn_reset_cache.argtypes = [vp]
        lib.ssn_cache_info.argtypes = [vp, C.POINTER(i32), C.POINTER(i32)]
        lib.ssn_read_cache.argtypes = [vp, vp, vp, vp]
        lib.ssn_profile.argtypes = [vp, i32]
        lib.ssn_profile_read.argtypes = [vp, vp]
        lib.ssn_create_pipeline.argtypes = [C.POINTER(SsnDims), i32, i32, vp, vp, C.c_char_p, C.POINTER(vp), C.POINTER(i32)]
        lib.ssn_create_stage.argtypes = [C.POINTER(SsnDims), i32, i32, i32, i32, C.c_char_p, C.POINTER(vp), C.POINTER(i32)]
        lib.ssn_forward_stage.argtypes = [vp, vp, vp, i32, vp, i32, vp, vp, i32, i32, vp, C.POINTER(i32)]
        lib.ssn_attention_plans.argtypes = [vp, C.POINTER(i32), C.POINTER(C.c_double)]
        lib.ssn_forward_stats.argtypes = [vp, vp, i32, i32]
        lib.ssn_set_cuda_graphs.argtypes = [vp, i32]
        lib.ssn_set_attention_precision.argtypes = [vp, i32]
        lib.ssn_set_product_precision.argtypes = [vp, i32]
        self.dims = dims
        d = SsnDims()
        d.dim, d.layers, d.heads, d.ffn_dim, d.freq_dim = dims.dim, dims.layers, dims.heads, dims.ffn_dim, dims.freq_dim
        d.latent_channels = dims.latent_channels
        d.patch[:] = list(dims.patch)
        d.text_dim, d.text_len, d.eps, d.rope_theta = dims.text_dim, dims.text_len, dims.eps, dims.rope_theta
        d.rope_max_position = dims.rope_max_position
        d.rope_split[:] = list(dims.rope_split)
        d.latent_height, d.latent_width = dims.latent_height, dims.latent_width
        self._h = C.c_void_p()
        self.device = device
        self.layers = layers or (0, dims.layers)
        self.pipeline = pipeline
        if pipeline:
            devs = np.ascontiguousarray(pipeline[0], dtype=np.int32)
            counts = np.ascontiguousarray(pipeline[1], dtype=np.int32)
            self._check(lib.ssn_create_pipeline(C.byref(d), precision, devs.size, _ptr(devs), _ptr(counts), None,
                                                C.byref(self._h), None))
        else:
            self._check(lib.ssn_create_stage(C.byref(d), device, precision, self.layers[0], self.layers[1], None,
                                             C.byref(self._h), None))

    def _check(self, rc: int) -> None:
        if rc != 0:
            raise RuntimeError('native: ' + self.lib.ssn_last_error().decode())

    def close(self) -> None:
        if self._h:
            self.lib.ssn_destroy(self._h)
            self._h = C.c_void_p()

    def set_weights(self, state_dict) -> None:
        """state_dict: canonical key -> torch tensor (any device/dtype); handed over as fp32 on the device."""
        import torch
        for key, t in state_dict.items():
            if key == 'text_encoder.embedding.weight':
                continue
            if key.startswith('blocks.') and not self.layers[0] <= int(key.split('.')[1]) < self.layers[1]:
                continue  # another stage's layer
            if self.pipeline:  # from the host: the engine spreads it over its GPUs
                host = np.ascontiguousarray(t.detach().to(device='cpu', dtype=torch.float32).numpy())
                self._check(self.lib.ssn_set_weight(self._h, key.encode(), _ptr(host), host.size, 0))
                continue
            src = t.detach().to(device=f'cuda:{self.device}', dtype=torch.float32).contiguous()
            torch.cuda.synchronize()
            self._check(self.lib.ssn_set_weight(self._h, key.encode(), C.c_void_p(src.data_ptr()), src.numel(), 1))
        self._check(self.lib.ssn_finalize(self._h))

    def set_prompt(self, context: np.ndarray) -> None:
        c = np.ascontiguousarray(context, dtype=np.float32)
        self._check(self.lib.ssn_set_prompt(self._h, _ptr(c)))

    def forward(self, latent: np.ndarray, t: Sequence[float], fpos: Sequence[int], keep_kv: bool = False,
                keep_queries: int = 0) -> Tuple[np.ndarray, int]:
        """A whole forward (all layers, or a pipeline engine over its GPUs): the flow and the kept queries' id."""
        return self.forward_stage(latent, None, None, t, fpos, keep_kv, keep_queries)

    def forward_stage(self, latent: Optional[np.ndarray], hidden_in, hidden_out, t: Sequence[float], fpos: Sequence[int],
                      keep_kv: bool = False, keep_queries: int = 0) -> Tuple[Optional[np.ndarray], int]:
        """One stage's part of a forward. hidden_in: the previous stage's output (a torch CUDA float32 tensor
        [tokens, dim], any device) or None for the first stage (latent is its input); hidden_out: this stage's output
        tensor on its own device (None for the last stage, which returns the flow)."""
        ts = np.ascontiguousarray(t, dtype=np.float32)
        fp = np.ascontiguousarray(fpos, dtype=np.int32)
        lat = None if latent is None else np.ascontiguousarray(latent, dtype=np.float32)
        last = self.layers[1] == self.dims.layers
        C_, H_, W_ = self.dims.latent_channels, self.dims.latent_height, self.dims.latent_width
        flow = np.empty((C_, len(ts), H_, W_), np.float32) if last else None
        qid = C.c_int(-1)
        self._check(self.lib.ssn_forward_stage(
            self._h, None if lat is None else _ptr(lat),
            None if hidden_in is None else C.c_void_p(hidden_in.data_ptr()),
            0 if hidden_in is None else hidden_in.device.index,
            None if hidden_out is None else C.c_void_p(hidden_out.data_ptr()),
            len(ts), _ptr(ts), _ptr(fp), int(keep_kv), keep_queries, None if flow is None else _ptr(flow), C.byref(qid)))
        return flow, qid.value

    def update_cache(self, rows: int, terms: int, per_layer: bool, sources, weights, positions) -> None:
        s = np.ascontiguousarray(sources, dtype=np.int32)
        w = np.ascontiguousarray(weights, dtype=np.float32)
        p = np.ascontiguousarray(positions, dtype=np.float32)
        self._check(self.lib.ssn_update_cache(self._h, rows, terms, int(per_layer), _ptr(s), _ptr(w), _ptr(p)))

    def cache_info(self) -> Tuple[int, int]:
        r, p = C.c_int(), C.c_int()
        self._check(self.lib.ssn_cache_info(self._h, C.byref(r), C.byref(p)))
        return r.value, p.value

    def score_cache(self, selections: List[Tuple[int, int, int]], reduce: str) -> np.ndarray:
        rows, _ = self.cache_info()
        ids = np.array([s[0] for s in selections], np.int32)
        st = np.array([s[1] for s in selections], np.int32)
        en = np.array([s[2] for s in selections], np.int32)
        out = np.empty((self.dims.layers, rows), np.float32)
        self._check(self.lib.ssn_score_cache(self._h, len(ids), _ptr(ids), _ptr(st), _ptr(en), 1 if reduce == 'max' else 0, _ptr(out)))
        return out

    def release_queries(self, qid: int) -> None:
        self._check(self.lib.ssn_release_queries(self._h, qid))

    def reset_cache(self) -> None:
        self._check(self.lib.ssn_reset_cache(self._h))

    def read_cache(self) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        rows, _ = self.cache_info()
        L, d = self.dims.layers, self.dims.dim
        k = np.empty((L, rows, d), np.float32)
        v = np.empty((L, rows, d), np.float32)
        p = np.empty((L, rows, 3), np.float32)
        self._check(self.lib.ssn_read_cache(self._h, _ptr(k), _ptr(v), _ptr(p)))
        return k, v, p

    def attention_plans(self) -> Tuple[int, float]:
        """cuDNN attention plans built by this engine (one per new shape) and the milliseconds spent on them."""
        n, ms = C.c_int(0), C.c_double(0)
        self._check(self.lib.ssn_attention_plans(self._h, C.byref(n), C.byref(ms)))
        return n.value, ms.value

    def forward_stats(self, reset: bool = False) -> dict:
        """Sums over the forwards since the last reset (capi.h ssn_forward_stats): wall / issue / GPU / idle ms, graphs."""
        out = np.zeros(8, np.float64)
        self._check(self.lib.ssn_forward_stats(self._h, _ptr(out), 8, int(reset)))
        return dict(zip(FORWARD_STATS, out.tolist()))

    def set_cuda_graphs(self, on: bool) -> None:
        """CUDA graphs for forwards of a repeated shape (captured on the second run, replayed after)."""
        self._check(self.lib.ssn_set_cuda_graphs(self._h, int(on)))

    def set_attention_precision(self, fp8: bool) -> None:
        """Self-attention in FP8 (engine.attention fp8) or exact."""
        self._check(self.lib.ssn_set_attention_precision(self._h, int(fp8)))

    def set_product_precision(self, fp8: bool) -> None:
        """FP8 products (engine.dtype fp8) or the storage type's; before set_weights, or after (quantised then)."""
        self._check(self.lib.ssn_set_product_precision(self._h, int(fp8)))

    def profile(self, on: bool) -> None:
        self._check(self.lib.ssn_profile(self._h, int(on)))

    def profile_read(self) -> np.ndarray:
        ms = np.zeros(6, np.float64)
        self._check(self.lib.ssn_profile_read(self._h, _ptr(ms)))
        return ms


def attention_backend(lib_path: str = DEFAULT_LIB) -> str:
    """Which attention the engine's bf16 path uses (cuDNN and its version, or why the own kernel)."""
    lib = C.CDLL(lib_path)
    lib.ssn_attention_backend.restype = C.c_char_p
    return lib.ssn_attention_backend().decode()


def attention(q, k, v, o, variant: int = 0, reps: int = 0, lib_path: str = DEFAULT_LIB) -> float:
    """The native bf16 attention kernel alone on torch CUDA tensors q, o [Lq, H, D], k, v [Lk, H, D] (contiguous).
    Returns milliseconds per call over `reps` timed calls (after one untimed call that fills o)."""
    lib = C.CDLL(lib_path)
    lib.ssn_last_error.restype = C.c_char_p
    lib.ssn_attention.argtypes = [C.c_int] + [C.c_void_p] * 4 + [C.c_int] * 6 + [C.POINTER(C.c_double)]
    ms = C.c_double()
    lq, h, d = q.shape
    rc = lib.ssn_attention(q.device.index or 0, q.data_ptr(), k.data_ptr(), v.data_ptr(), o.data_ptr(), lq, k.shape[0],
                           h, d, variant, reps, C.byref(ms))
    if rc != 0:
        raise RuntimeError('native: ' + lib.ssn_last_error().decode())
    return ms.value


FORWARD_STATS = ['forwards', 'wall_ms', 'issue_ms', 'gpu_ms', 'idle_ms', 'graph_launches', 'graph_captures', 'graph_fallback']
PROFILE_PHASES = ['patch+time', 'gemm', 'self-attn', 'cross-attn', 'norm/rope/elementwise', 'head']
