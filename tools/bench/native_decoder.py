"""The native decoders' C API (ssn_taehv_* and ssn_wanvae_* of native/src/capi.h) over ctypes, and what the decoder
benchmarks (native-taehv.py, native-wan-vae.py) report alike: error in 8-bit levels, the median block time."""
from __future__ import annotations

import ctypes as C
import os
import statistics
from typing import Dict, List, Optional

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LIB = os.path.join(ROOT, 'native', 'build', 'libsinkstream_native.so')
PRECISION = {'bf16': 0, 'fp32': 1, 'fp16': 2}


class TaehvDims(C.Structure):
    _fields_ = [('latent_channels', C.c_int), ('latent_height', C.c_int), ('latent_width', C.c_int), ('channels', C.c_int * 4)]


class WanVaeDims(C.Structure):
    _fields_ = [('dim', C.c_int), ('z_dim', C.c_int), ('latent_height', C.c_int), ('latent_width', C.c_int)]


class NativeDecoder:
    """ssn_<prefix>_* of native/src/capi.h: prefix 'taehv' or 'wanvae' (whose info also reports device bytes)."""

    def __init__(self, lib: C.CDLL, prefix: str, dims: C.Structure, precision: str, device: int = 0):
        self.lib = lib
        self.prefix = prefix
        self.device_bytes = prefix == 'wanvae'
        self.h = C.c_void_p()
        self._check(self._fn('create')(C.byref(dims), device, PRECISION[precision], C.byref(self.h)))
        wi, he = C.c_int(), C.c_int()
        self._check(self._fn('info')(self.h, C.byref(wi), C.byref(he), None, None, None, *([None] if self.device_bytes else [])))
        self.width, self.height = wi.value, he.value

    def _fn(self, name: str):
        return getattr(self.lib, f'ssn_{self.prefix}_{name}')

    def _check(self, rc: int) -> None:
        if rc != 0:
            raise RuntimeError('native: ' + self.lib.ssn_last_error().decode())

    def set_weights(self, state: Dict[str, torch.Tensor], device: int = 0) -> None:
        for key, t in state.items():
            src = t.detach().to(device=f'cuda:{device}', dtype=torch.float32).contiguous()
            torch.cuda.synchronize()
            self._check(self._fn('set_weight')(self.h, key.encode(), C.c_void_p(src.data_ptr()), src.numel(), 1))

    def finalize(self, warmup_frames: int) -> None:
        self._check(self._fn('finalize')(self.h, warmup_frames))

    def decode(self, latent: np.ndarray, out: Optional[np.ndarray] = None) -> np.ndarray:
        """latent [C, F, H, W] float32 -> uint8 [n, height, width, 3] (into `out` when given: no fresh host pages)"""
        lat = np.ascontiguousarray(latent, dtype=np.float32)
        frames = lat.shape[1]
        if out is None:
            out = np.empty((4 * frames, self.height, self.width, 3), np.uint8)
        n = C.c_int()
        self._check(self._fn('decode')(self.h, C.c_void_p(lat.ctypes.data), frames, C.c_void_p(out.ctypes.data), out.nbytes, C.byref(n)))
        return out[:n.value]

    def split(self) -> List[float]:
        ms = (C.c_double * 3)()
        self._check(self._fn('split')(self.h, ms))
        return list(ms)

    def reset(self) -> None:
        self._check(self._fn('reset')(self.h))

    def info(self):
        """(plans, planning ms, last decode's device ms, [device bytes: wanvae,] provider)"""
        plans, plan_ms, last_ms, nbytes = C.c_int(), C.c_double(), C.c_double(), C.c_int64()
        extra = [C.byref(nbytes)] if self.device_bytes else []
        self._check(self._fn('info')(self.h, None, None, C.byref(plans), C.byref(plan_ms), C.byref(last_ms), *extra))
        buf = C.create_string_buffer(512)
        self._check(self._fn('describe')(self.h, buf, 512))
        return (plans.value, plan_ms.value, last_ms.value, *([nbytes.value] if self.device_bytes else []), buf.value.decode())

    def close(self) -> None:
        if self.h:
            self._fn('destroy')(self.h)
            self.h = C.c_void_p()


def NativeTaehv(lib: C.CDLL, latent_channels: int, h: int, w: int, channels, precision: str, device: int = 0) -> NativeDecoder:
    d = TaehvDims()
    d.latent_channels, d.latent_height, d.latent_width = latent_channels, h, w
    d.channels[:] = list(channels)
    return NativeDecoder(lib, 'taehv', d, precision, device)


def NativeWanVae(lib: C.CDLL, dim: int, z_dim: int, h: int, w: int, precision: str, device: int = 0) -> NativeDecoder:
    return NativeDecoder(lib, 'wanvae', WanVaeDims(dim, z_dim, h, w), precision, device)


def load_lib() -> C.CDLL:
    lib = C.CDLL(LIB)
    vp, i32, f64p = C.c_void_p, C.c_int, C.POINTER(C.c_double)
    lib.ssn_abi_version.restype = i32
    lib.ssn_last_error.restype = C.c_char_p
    lib.ssn_taehv_create.argtypes = [C.POINTER(TaehvDims), i32, i32, C.POINTER(vp)]
    lib.ssn_wanvae_create.argtypes = [C.POINTER(WanVaeDims), i32, i32, C.POINTER(vp)]
    lib.ssn_taehv_info.argtypes = [vp, C.POINTER(i32), C.POINTER(i32), C.POINTER(i32), f64p, f64p]
    lib.ssn_wanvae_info.argtypes = [vp, C.POINTER(i32), C.POINTER(i32), C.POINTER(i32), f64p, f64p, C.POINTER(C.c_int64)]
    for prefix in ('taehv', 'wanvae'):
        fn = lambda name: getattr(lib, f'ssn_{prefix}_{name}')  # noqa: E731
        fn('destroy').argtypes = [vp]
        fn('set_weight').argtypes = [vp, C.c_char_p, vp, C.c_int64, i32]
        fn('finalize').argtypes = [vp, i32]
        fn('decode').argtypes = [vp, vp, i32, vp, C.c_int64, C.POINTER(i32)]
        fn('reset').argtypes = [vp]
        fn('describe').argtypes = [vp, C.c_char_p, i32]
        fn('split').argtypes = [vp, vp]
    return lib


def levels(a: np.ndarray, b: np.ndarray) -> str:
    d = np.abs(a.astype(np.int16) - b.astype(np.int16))
    return f'max {int(d.max()):3d} levels, mean {d.mean():.4f}, {100.0 * (d > 1).mean():.3f}% off by more than 1'


def median_after_first(ms: List[float]) -> float:
    return statistics.median(ms[1:]) if len(ms) > 1 else ms[0]
