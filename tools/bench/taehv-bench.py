#!/usr/bin/env python3
"""TAEHV at the real Wan2.1 shape on the GPU machine: PyTorch (CUDA) against ONNX Runtime (WebGPU), per block.

  python3 tools/bench/taehv-bench.py                      # 10 blocks of 3 latent frames (60x104 -> 12 frames of 480x832)
  python3 tools/bench/taehv-bench.py --blocks 20 --out /tmp/taehv-bench --providers webgpu,cpu

1. Synthetic weights at the real shape (taew2_1: channels 256/128/64/64, 16 latent channels; the runtime's
   distributions, tools/reference/taehv.py) and seeded latents, written as safetensors for the Node side.
2. PyTorch, tools/reference/taehv.py's streaming decoder on CUDA (cudnn.benchmark on, one warm-up stream):
   ms of the first block (9 frames) and the median of the later ones (12 frames), in fp16, fp16 channels_last,
   bf16 and fp32 (TF32 off).
3. ONNX Runtime through tools/bench/taehv-ort.ts (the runtime's graphs, RGB24 out): the same blocks on each
   provider in float16 and float32, then the first two blocks again with float frames out, compared with the
   PyTorch fp32 reference (TF32 off): max and mean absolute error in [0, 1] units (x255 = bytes).

Needs torch with CUDA, numpy, and Node with the project's node_modules (run from the repository root).
Prints a table and writes OUT/taehv-bench.json.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, 'tools', 'reference'))
from safetensors_io import load_file, save_file  # noqa: E402
from taehv import StreamingTaehv, TaehvDecoder, randomize  # noqa: E402

C, F, H, W = 16, 3, 60, 104


def blocks_of(latents: torch.Tensor, blocks: int):
    """latents [C, T, H, W] -> per block [F, C, H, W]."""
    return [latents[:, b * F:(b + 1) * F].permute(1, 0, 2, 3).contiguous() for b in range(blocks)]


@torch.no_grad()
def time_torch(model: TaehvDecoder, blocks, dtype: torch.dtype, channels_last: bool) -> dict:
    m = TaehvDecoder(C).eval()
    m.load_state_dict(model.state_dict())
    m = m.to('cuda', dtype)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    if channels_last:
        m = m.to(memory_format=fmt)
    inputs = [b.to('cuda', dtype).contiguous(memory_format=fmt) for b in blocks]
    s = StreamingTaehv(m)
    for x in inputs[:3]:  # warm-up stream: cuDNN picks its algorithms
        s.decode(x)
    s.reset()
    torch.cuda.synchronize()
    ms = []
    for x in inputs:
        t = time.perf_counter()
        s.decode(x)
        torch.cuda.synchronize()
        ms.append((time.perf_counter() - t) * 1000)
    later = ms[1:]
    return {'firstBlockMs': ms[0], 'msPerBlock': statistics.median(later), 'videoFps': 12 * 1000 / statistics.median(later), 'allBlockMs': ms}


@torch.no_grad()
def reference_frames(model: TaehvDecoder, blocks) -> np.ndarray:
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    m = TaehvDecoder(C).eval()
    m.load_state_dict(model.state_dict())
    m = m.to('cuda', torch.float32)
    s = StreamingTaehv(m)
    out = torch.cat([s.decode(b.to('cuda')) for b in blocks[:2]], 0)
    torch.backends.cudnn.allow_tf32 = True
    return out.float().cpu().numpy()


def run_ort(provider: str, dtype: str, weights: str, latents: str, blocks: int, float_out: str) -> dict:
    cmd = ['node', '--import', 'tsx', os.path.join(ROOT, 'tools', 'bench', 'taehv-ort.ts'), '--provider', provider, '--dtype', dtype,
           '--latent', f'{H}x{W}', '--weights', weights, '--latents', latents, '--blocks', str(blocks), '--float-out', float_out, '--json']
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if r.returncode != 0:
        lines = [l for l in (r.stderr + r.stdout).splitlines() if 'Error' in l or 'error' in l]
        return {'error': lines[0].strip() if lines else f'exit {r.returncode}: {(r.stderr + r.stdout)[-300:]}'}
    return json.loads(r.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument('--blocks', type=int, default=10)
    ap.add_argument('--out', default=None)
    ap.add_argument('--providers', default='webgpu', help='ONNX Runtime providers, comma separated (webgpu, cpu)')
    ap.add_argument('--seed', type=int, default=0)
    args = ap.parse_args()
    out = args.out or tempfile.mkdtemp(prefix='taehv-bench-')
    os.makedirs(out, exist_ok=True)
    torch.backends.cudnn.benchmark = True
    results: dict = {'shape': {'latent': [C, F, H, W], 'frames': [12, 3, 8 * H, 8 * W]}, 'blocks': args.blocks, 'gpu': torch.cuda.get_device_name()}

    model = TaehvDecoder(C).eval()
    randomize(model, args.seed)
    weights = os.path.join(out, 'taehv-synthetic.safetensors')
    save_file({k: v.numpy() for k, v in model.state_dict().items()}, weights)
    g = torch.Generator().manual_seed(args.seed + 1)
    latents = torch.randn(C, F * args.blocks, H, W, generator=g)
    latents_file = os.path.join(out, 'latents.safetensors')
    save_file({'latents': latents.numpy()}, latents_file)
    blocks = blocks_of(latents, args.blocks)

    torch_results = {}
    for name, dtype, cl in [('fp16', torch.float16, False), ('fp16 channels_last', torch.float16, True), ('bf16', torch.bfloat16, False), ('fp32 (TF32 off)', torch.float32, False)]:
        if dtype == torch.float32:
            torch.backends.cudnn.allow_tf32 = False
        torch_results[name] = time_torch(model, blocks, dtype, cl)
        torch.backends.cudnn.allow_tf32 = True
        r = torch_results[name]
        print(f"pytorch {name:20s} first block {r['firstBlockMs']:8.2f} ms   later blocks {r['msPerBlock']:8.2f} ms   {r['videoFps']:7.1f} video frames/s", flush=True)
    results['pytorch'] = torch_results

    ref = reference_frames(model, blocks)
    ort_results = {}
    for provider in [p for p in args.providers.split(',') if p]:
        for dtype in (['float16', 'float32'] if provider == 'webgpu' else ['float32']):
            key = f'{provider} {dtype}'
            float_out = os.path.join(out, f'ort-{provider}-{dtype}.safetensors')
            r = run_ort(provider, dtype, weights, latents_file, args.blocks, float_out)
            if 'error' not in r:
                got = load_file(float_out)['frames']
                assert got.shape == ref.shape, (got.shape, ref.shape)
                err = np.abs(got.astype(np.float64) - ref.astype(np.float64))
                r['maxAbsError'] = float(err.max())
                r['meanAbsError'] = float(err.mean())
                print(f"ort {key:24s} first block {r['firstBlockMs']:8.2f} ms   later blocks {r['msPerBlock']:8.2f} ms   "
                      f"{r['videoFramesPerSecond']:7.1f} video frames/s   sessions {r['sessionsMs']:.0f} ms   "
                      f"vs PyTorch fp32: max {r['maxAbsError']:.2e} ({255 * r['maxAbsError']:.2f} bytes), mean {r['meanAbsError']:.2e}", flush=True)
            else:
                print(f"ort {key:24s} failed: {r['error']}", flush=True)
            ort_results[key] = r
    results['ort'] = ort_results
    path = os.path.join(out, 'taehv-bench.json')
    with open(path, 'w') as f:
        json.dump(results, f, indent=1)
    print(f'wrote {path}')


if __name__ == '__main__':
    main()
