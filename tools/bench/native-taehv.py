#!/usr/bin/env python3
"""The native TAEHV decoder (native/src/taehv-decoder.cu, through the C API over ctypes) against the PyTorch reference
(tools/reference/taehv.py) at the real shape with synthetic weights, decoding block by block as a stream does.

  python3 tools/bench/native-taehv.py                    # 480x832 (latent 60x104), blocks of 3 latent frames
  python3 tools/bench/native-taehv.py --latent 8x12 --check-blocks 3 --bench-blocks 4   # a quick small run

Correctness: every native variant (bf16, fp16, fp32; bf16 with the fused conv-bias-ReLU off) streams the same
blocks as the fp32 PyTorch reference decodes the whole clip at once; errors are in 8-bit levels of the RGB24
output (|native byte - round(reference * 255)|), so 0-1 is rounding. PyTorch bf16 (cudnn.benchmark, channels_last)
streams the same blocks for comparison. Speed: milliseconds per block (latents on the host in, RGB24 frames on
the host out), median over the blocks after the first, for native and PyTorch side by side.

Needs a GPU, PyTorch with CUDA, and `bash scripts/build-native.sh` (native/build/libsinkstream_native.so).
"""
from __future__ import annotations

import argparse
import copy
import os
import statistics
import sys
import time
from typing import List

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, 'tools', 'reference'))
from taehv import StreamingTaehv, TaehvDecoder, randomize  # noqa: E402
from native_decoder import NativeDecoder, NativeTaehv, levels, load_lib, median_after_first  # noqa: E402



def to_bytes(frames: torch.Tensor) -> np.ndarray:
    """[n, 3, H, W] in [0, 1] -> uint8 [n, H, W, 3] (round half to even, as torch.round)"""
    return (frames.float().clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).contiguous().cpu().numpy()



def gpu_bytes(frames: torch.Tensor) -> torch.Tensor:
    """[n, 3, H, W] in [0, 1] -> uint8 [n, H, W, 3] on the GPU (round half to even, as torch.round)"""
    return (frames.float().clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).contiguous()


def torch_stream_bytes(model: TaehvDecoder, blocks: List[np.ndarray], dtype: torch.dtype, channels_last: bool) -> tuple:
    """Streams the blocks as the runtime would (host latent in, host bytes out); returns (frames, wall ms per block,
    device ms per block from the latent's upload to the RGB24 bytes on the GPU)."""
    s = StreamingTaehv(model)
    outs, ms, dev = [], [], []
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    e0, e1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    with torch.no_grad():
        for b in blocks:
            torch.cuda.synchronize()
            t0 = time.perf_counter()
            e0.record()
            x = torch.from_numpy(b).cuda().permute(1, 0, 2, 3).to(dtype).contiguous(memory_format=fmt)
            y = gpu_bytes(s.decode(x))
            e1.record()
            outs.append(y.cpu().numpy())
            ms.append((time.perf_counter() - t0) * 1e3)
            dev.append(e0.elapsed_time(e1))
    return np.concatenate(outs, 0), ms, dev


def native_stream(nat: NativeDecoder, blocks: List[np.ndarray]) -> tuple:
    outs, ms, dev = [], [], []
    for b in blocks:
        t0 = time.perf_counter()
        outs.append(nat.decode(b))
        ms.append((time.perf_counter() - t0) * 1e3)
        dev.append(nat.info()[2])
    return np.concatenate(outs, 0), ms, dev



def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument('--latent', default='60x104', help='latent HxW (480x832 frames: 60x104)')
    ap.add_argument('--channels', default='256,128,64,64')
    ap.add_argument('--block', type=int, default=3, help='latent frames per block')
    ap.add_argument('--check-blocks', type=int, default=4)
    ap.add_argument('--bench-blocks', type=int, default=20)
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--variants', default='bf16,bf16-unfused,fp16,fp32')
    args = ap.parse_args()
    H, W = (int(v) for v in args.latent.split('x'))
    channels = tuple(int(v) for v in args.channels.split(','))
    Cl, F = 16, args.block
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False  # the fp32 reference in fp32
    torch.backends.cudnn.benchmark = True
    print(f'device {torch.cuda.get_device_name(0)}, torch {torch.__version__}, torch cuDNN {torch.backends.cudnn.version()}')
    print(f'shape: latent {Cl}x{H}x{W} -> frames {8 * H}x{8 * W}, channels {channels}, blocks of {F} latent frames')

    model = TaehvDecoder(Cl, channels).eval()
    randomize(model, args.seed)
    model = model.cuda()
    state = {k: v for k, v in model.state_dict().items()}
    g = torch.Generator().manual_seed(args.seed + 1)
    n_blocks = max(args.check_blocks, args.bench_blocks)
    latents = torch.randn(Cl, n_blocks * F, H, W, generator=g).numpy()
    blocks = [np.ascontiguousarray(latents[:, i * F:(i + 1) * F]) for i in range(n_blocks)]
    check = blocks[:args.check_blocks]

    # the reference: fp32, the whole checked clip at once
    with torch.no_grad():
        clip = torch.from_numpy(np.concatenate(check, 1)).cuda().permute(1, 0, 2, 3).contiguous()
        ref = to_bytes(model.decode_clip(clip))
        del clip
    torch.cuda.empty_cache()
    print(f'reference (PyTorch fp32, whole clip of {args.check_blocks * F} latent frames): {ref.shape[0]} frames')
    ref_stream, _, _ = torch_stream_bytes(model, check, torch.float32, False)
    print(f'  PyTorch fp32 streaming vs whole clip: {levels(ref_stream, ref)}')

    rows = []
    lib = load_lib()
    for variant in args.variants.split(','):
        precision = variant.split('-')[0]
        os.environ['SSN_TAEHV_FUSED'] = '0' if variant.endswith('-unfused') else 'auto'
        if variant == 'bf16':
            os.environ['SSN_TAEHV_VERBOSE'] = '1'  # each plan to stderr: algorithm, times, fused or not
        else:
            os.environ.pop('SSN_TAEHV_VERBOSE', None)
        t0 = time.perf_counter()
        nat = NativeTaehv(lib, Cl, H, W, channels, precision)
        nat.set_weights(state)
        load_ms = (time.perf_counter() - t0) * 1e3
        t0 = time.perf_counter()
        nat.finalize(F)
        warm_ms = (time.perf_counter() - t0) * 1e3
        plans, plan_ms, _, provider = nat.info()
        print(f'native {variant}: {provider}')
        print(f'  open {load_ms:.0f} ms (weights), finalize {warm_ms:.0f} ms (of which planning {plan_ms:.0f} ms, {plans} plans) + warm-up block')
        out, ms, dev = native_stream(nat, check)
        counts = [4 * F - 3] + [4 * F] * (len(check) - 1)
        assert out.shape[0] == sum(counts), (out.shape, counts)
        print(f'  streaming ({"/".join(map(str, counts))} frames) vs reference whole clip: {levels(out, ref)}')
        print(f'  first block after warm-up: {ms[0]:.2f} ms (device {dev[0]:.2f} ms)')
        nat.reset()
        again = nat.decode(check[0])
        same = np.array_equal(again, out[:again.shape[0]])
        print(f'  reset, then block 0 again: {"identical" if same else "DIFFERENT: " + levels(again, out[:again.shape[0]])}')
        nat.reset()
        _, ms, dev = native_stream(nat, blocks[:args.bench_blocks])
        # again into one reused host buffer (its pages already mapped): what the copy to the host costs without
        # first-touch page faults, and the device time split
        nat.reset()
        buf = np.empty((4 * F, nat.height, nat.width, 3), np.uint8)
        buf.fill(0)
        reused, splits = [], []
        for b in blocks[:args.bench_blocks]:
            t0 = time.perf_counter()
            nat.decode(b, buf)
            reused.append((time.perf_counter() - t0) * 1e3)
            splits.append(nat.split())
        split = [statistics.median(x[i] for x in splits[1:]) for i in range(3)]
        print(f'  per block (median after the first): {median_after_first(ms):.2f} ms into fresh host memory, '
              f'{median_after_first(reused):.2f} ms into a reused buffer; device: upload {split[0]:.2f}, network + RGB24 '
              f'{split[1]:.2f}, to host {split[2]:.2f} ms')
        plans2, plan_ms2, _, _ = nat.info()
        if plans2 != plans:
            print(f'  note: {plans2 - plans} more plans during the bench ({plan_ms2 - plan_ms:.0f} ms)')
        rows.append((f'native {variant}', levels(out, ref), median_after_first(ms), median_after_first(reused), split[0] + split[1]))
        nat.close()
        del nat
        torch.cuda.empty_cache()

    for name, dtype in (('PyTorch bf16', torch.bfloat16), ('PyTorch fp16', torch.float16), ('PyTorch fp32', torch.float32)):
        m = copy.deepcopy(model).to(dtype)
        cl = dtype != torch.float32
        if cl:
            m = m.to(memory_format=torch.channels_last)
        out, _, _ = torch_stream_bytes(m, check, dtype, cl)
        torch_stream_bytes(m, blocks[:2], dtype, cl)  # cudnn.benchmark's search for every shape
        _, ms, dev = torch_stream_bytes(m, blocks[:args.bench_blocks], dtype, cl)
        rows.append((name + (' channels_last' if cl else ''), levels(out, ref), median_after_first(ms), float('nan'),
                     median_after_first(dev)))
        del m
        torch.cuda.empty_cache()

    frames = 4 * F
    print(f'\nper block of {F} latent frames -> {frames} frames of {8 * W}x{8 * H} (median over blocks 2-{args.bench_blocks}; '
          'host latent in, host RGB24 out), error vs PyTorch fp32 whole clip over the first '
          f'{args.check_blocks} blocks:')
    print('(ms per block: wall, into fresh host memory as the runtime hands out frames / into a reused buffer; GPU ms: '
          'latent upload to RGB24 bytes on the GPU, without the copy to the host)')
    print(f'| decoder | ms per block | ms, reused buffer | GPU ms | frames/s (wall) | error (8-bit levels) |')
    print('| --- | --- | --- | --- | --- | --- |')
    for name, err, ms, reused, gpu in rows:
        print(f'| {name} | {ms:.2f} | {"-" if reused != reused else f"{reused:.2f}"} | {gpu:.2f} | {1e3 * frames / ms:.0f} | {err} |')


if __name__ == '__main__':
    main()
