#!/usr/bin/env python3
"""The native Wan2.1 VAE decoder (native/src/wan-vae-decoder.cu, through the C API over ctypes) against the PyTorch
reference (tools/reference/wan_vae.py) at the real shape with synthetic weights, decoding a stream as the runtime
does: the first latent frame alone, then blocks of 3.

  python3 tools/bench/native-wan-vae.py                               # 832x480 (latent 60x104), base width 96
  python3 tools/bench/native-wan-vae.py --latent 6x8 --dim 8 --variants fp32,bf16 --bench-blocks 2   # small, quick

Correctness: each native variant streams the checked blocks ([1, 3] latent frames: 1 + 12 video frames) and is
compared with PyTorch fp32 (no TF32) streaming the same blocks (decode_stream, which tools/reference/wan_vae.py's
selftest checks against vae.py's own frame-by-frame loop); errors are in 8-bit levels of the RGB24 output
(|native byte - floor((reference + 1) * 127.5 + 0.5)|, clamped), so 0-1 is rounding. PyTorch bf16 (cudnn.benchmark;
with and without channels_last_3d) is compared the same way. Speed: milliseconds per block of 3 latent frames (12
video frames; host latent in, host RGB24 out), median over the blocks after the first, native and PyTorch side by side.

Needs a GPU, PyTorch with CUDA, and `bash scripts/build-native.sh` (native/build/libsinkstream_native.so).
"""
from __future__ import annotations

import argparse
import copy
import os
import statistics
import sys
import time
from dataclasses import replace
from typing import List

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, 'tools', 'reference'))
from wan_vae import WAN21, WanVaeDecoder, decoder_flops_per_latent_frame, random_init  # noqa: E402
from native_decoder import NativeDecoder, NativeWanVae, levels, load_lib, median_after_first  # noqa: E402



def gpu_bytes(frames: torch.Tensor) -> torch.Tensor:
    """[1, 3, n, H, W] in about [-1, 1] -> uint8 [n, H, W, 3] on the GPU: floor((v + 1) * 127.5 + 0.5), clamped"""
    v = torch.floor((frames[0].float() + 1) * 127.5 + 0.5).clamp(0, 255)
    return v.to(torch.uint8).permute(1, 2, 3, 0).contiguous()



def torch_stream(model: WanVaeDecoder, blocks: List[np.ndarray], dtype: torch.dtype, channels_last: bool):
    """Streams the blocks (host latent in, host bytes out); returns (frames, wall ms per block, GPU ms per block)."""
    cache = model.new_stream()
    outs, ms, dev = [], [], []
    e0, e1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    with torch.no_grad():
        for b in blocks:
            torch.cuda.synchronize()
            t0 = time.perf_counter()
            e0.record()
            z = torch.from_numpy(b).cuda()[None].to(dtype)
            if channels_last:
                z = z.contiguous(memory_format=torch.channels_last_3d)
            y = gpu_bytes(model.decode_block(z, cache))
            e1.record()
            outs.append(y.cpu().numpy())
            ms.append((time.perf_counter() - t0) * 1e3)
            dev.append(e0.elapsed_time(e1))
    return np.concatenate(outs, 0), ms, dev


def native_stream(nat: NativeDecoder, blocks: List[np.ndarray]):
    outs, ms, splits = [], [], []
    for b in blocks:
        t0 = time.perf_counter()
        outs.append(nat.decode(b))
        ms.append((time.perf_counter() - t0) * 1e3)
        splits.append(nat.split())
    return np.concatenate(outs, 0), ms, splits



def to_channels_last(model: torch.nn.Module) -> torch.nn.Module:
    for m in model.modules():
        if isinstance(m, torch.nn.Conv3d):
            m.weight.data = m.weight.data.contiguous(memory_format=torch.channels_last_3d)
        elif isinstance(m, torch.nn.Conv2d):
            m.weight.data = m.weight.data.contiguous(memory_format=torch.channels_last)
    return model


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument('--latent', default='60x104', help='latent HxW (480x832 frames: 60x104)')
    ap.add_argument('--dim', type=int, default=96, help='base width (Wan2.1: 96)')
    ap.add_argument('--block', type=int, default=3, help='latent frames per block after the first latent frame')
    ap.add_argument('--bench-blocks', type=int, default=6, help='blocks of --block frames timed after the first frame')
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--variants', default='bf16,fp16', help='native precisions (bf16, fp16, fp32)')
    ap.add_argument('--torch', default='bf16,bf16-cl', help='PyTorch runs compared: bf16, bf16-cl (channels_last_3d), fp16')
    args = ap.parse_args()
    H, W = (int(v) for v in args.latent.split('x'))
    arch = replace(WAN21, dim=args.dim)
    Z, F = arch.z_dim, args.block
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False  # the fp32 reference in fp32
    torch.backends.cudnn.benchmark = True
    flops = decoder_flops_per_latent_frame(arch, 8 * H, 8 * W)['total']
    print(f'device {torch.cuda.get_device_name(0)}, torch {torch.__version__}, torch cuDNN {torch.backends.cudnn.version()}')
    print(f'shape: latent {Z}x{H}x{W} -> frames {8 * H}x{8 * W}, base width {arch.dim}; a stream: the first latent frame, '
          f'then blocks of {F}; {flops / 1e12:.2f} TFLOP per latent frame after the first')

    model = WanVaeDecoder(arch).eval()
    random_init(model, args.seed)
    model = model.cuda()
    state = {k: v for k, v in model.state_dict().items()}
    state['latent.mean'] = model.latent_mean.flatten()
    state['latent.std'] = model.latent_std.flatten()
    g = torch.Generator().manual_seed(args.seed + 1)
    latents = torch.randn(Z, 1 + args.bench_blocks * F, H, W, generator=g).numpy()
    blocks = [np.ascontiguousarray(latents[:, :1])] + [np.ascontiguousarray(latents[:, 1 + i * F:1 + (i + 1) * F])
                                                       for i in range(args.bench_blocks)]
    check = blocks[:2]

    t0 = time.perf_counter()
    ref, ref_ms, _ = torch_stream(model, check, torch.float32, False)
    print(f'reference: PyTorch fp32 streaming blocks [1, {F}]: {ref.shape[0]} frames in {(time.perf_counter() - t0):.1f} s '
          f'(block of {F}: {ref_ms[1]:.0f} ms, first calls included)')
    torch.cuda.empty_cache()

    rows = []
    lib = load_lib()
    print(f'libsinkstream_native ABI {lib.ssn_abi_version()}')
    for variant in args.variants.split(','):
        t0 = time.perf_counter()
        nat = NativeWanVae(lib, arch.dim, Z, H, W, variant)
        nat.set_weights(state)
        load_ms = (time.perf_counter() - t0) * 1e3
        t0 = time.perf_counter()
        nat.finalize(F)
        warm_ms = (time.perf_counter() - t0) * 1e3
        plans, plan_ms, _, nbytes, provider = nat.info()
        print(f'native {variant}: {provider}')
        print(f'  open {load_ms:.0f} ms (weights), finalize {warm_ms:.0f} ms (of which choosing algorithms {plan_ms:.0f} ms, '
              f'{plans} geometries) with warm-up blocks; {nbytes / 2**30:.2f} GiB on the GPU')
        out, ms, _ = native_stream(nat, check)
        assert out.shape[0] == ref.shape[0], (out.shape, ref.shape)
        err = levels(out, ref)
        print(f'  streaming blocks [1, {F}] ({out.shape[0]} frames) vs PyTorch fp32: {err}')
        nat.reset()
        again = nat.decode(check[0])
        same = np.array_equal(again, out[:again.shape[0]])
        print(f'  reset, then the first latent frame again: {"identical" if same else "DIFFERENT: " + levels(again, out[:1])}')
        nat.reset()
        buf = np.zeros((4 * F, nat.height, nat.width, 3), np.uint8)
        times, splits = [], []
        for b in blocks:
            t0 = time.perf_counter()
            nat.decode(b, buf)
            times.append((time.perf_counter() - t0) * 1e3)
            splits.append(nat.split())
        per = times[1:]  # the blocks of F
        split = [statistics.median(s[i] for s in splits[2:] or splits[1:]) for i in range(3)]
        ms_block = median_after_first(per)
        print(f'  first latent frame {times[0]:.1f} ms; per block of {F} (median after the first): {ms_block:.1f} ms wall; '
              f'device: upload {split[0]:.2f}, network + RGB24 {split[1]:.1f}, to host {split[2]:.2f} ms; '
              f'{F * flops / (split[1] * 1e-3) / 1e12:.0f} TFLOP/s over the network')
        plans2, plan_ms2, _, _, _ = nat.info()
        if plans2 != plans:
            print(f'  note: {plans2 - plans} more geometries planned during the bench ({plan_ms2 - plan_ms:.0f} ms)')
        rows.append((f'native {variant}', err, ms_block, split[1]))
        nat.close()
        del nat
        torch.cuda.empty_cache()

    for name in [t for t in args.torch.split(',') if t]:
        dtype = torch.float16 if name.startswith('fp16') else torch.bfloat16
        cl = name.endswith('-cl')
        m = copy.deepcopy(model).to(dtype)
        if cl:
            m = to_channels_last(m)
        try:
            out, _, _ = torch_stream(m, check, dtype, cl)
            err = levels(out, ref)
            torch_stream(m, blocks[:3], dtype, cl)  # cudnn.benchmark's search for every shape
            _, ms, dev = torch_stream(m, blocks, dtype, cl)
            rows.append((f'PyTorch {name.replace("-cl", " channels_last_3d")}', err, median_after_first(ms[1:]), median_after_first(dev[1:])))
            print(f'PyTorch {name}: {rows[-1][2]:.1f} ms per block of {F} (GPU {rows[-1][3]:.1f} ms); vs PyTorch fp32: {err}')
        except RuntimeError as e:  # e.g. out of memory
            print(f'PyTorch {name}: {str(e).splitlines()[0]}')
        del m
        torch.cuda.empty_cache()

    print(f'\nper block of {F} latent frames -> {4 * F} frames of {8 * W}x{8 * H} (median over blocks 2-{args.bench_blocks}; '
          'host latent in, host RGB24 out); error vs PyTorch fp32 over blocks [1, 3] (13 frames):')
    print('| decoder | ms per block (wall) | GPU ms (network) | video frames/s | TFLOP/s | error (8-bit levels) |')
    print('| --- | --- | --- | --- | --- | --- |')
    for name, err, ms, gpu in rows:
        print(f'| {name} | {ms:.1f} | {gpu:.1f} | {1e3 * 4 * F / ms:.0f} | {F * flops / (gpu * 1e-3) / 1e12:.0f} | {err} |')


if __name__ == '__main__':
    main()
