"""umT5 encoder at the real shape: synthetic weights for both engines, then PyTorch's ms per prompt
and its difference from the ONNX Runtime contexts tools/bench/umt5-encode.ts wrote.

  # 1. weights (bf16 safetensors, ~11.5 GB at 24 layers; the distributions of src/text/umt5-weights.ts)
  python3 tools/bench/umt5_torch.py make-weights --out /tmp/umt5/w.safetensors [--layers 24] [--vocab 256384]
  # 2. ONNX Runtime: ms per prompt and its contexts
  node --import tsx tools/bench/umt5-encode.ts --weights /tmp/umt5/w.safetensors --provider cpu --threads 16 --out /tmp/umt5/ort
  # 3. PyTorch: ms per prompt (CUDA, bf16 as Wan runs it, and fp32) and max |ORT - torch| per length
  python3 tools/bench/umt5_torch.py run --weights /tmp/umt5/w.safetensors --ort /tmp/umt5/ort --device cuda --dtype bf16
  python3 tools/bench/umt5_torch.py run --weights /tmp/umt5/w.safetensors --ort /tmp/umt5/ort --device cuda --dtype fp32

Times: median of --reps forwards after one warm-up, torch.cuda.synchronize() around each.
Errors: max |ort - torch| and that divided by the torch context's RMS, over the prompt's rows.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import struct
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'reference'))
from umt5 import Umt5Arch, Umt5Encoder, synthetic_distribution  # noqa: E402


def make_weights(args) -> None:
    arch = Umt5Arch(layers=args.layers, vocab=args.vocab)
    gen = torch.Generator().manual_seed(args.seed)
    shapes = {k: list(v.shape) for k, v in Umt5Encoder(Umt5Arch(dim=8, layers=arch.layers, heads=2, ffn_dim=8, vocab=8)).state_dict().items()}
    real = {}
    for key in shapes:
        if key == 'token_embedding.weight':
            real[key] = [arch.vocab, arch.dim]
        elif key.endswith('pos_embedding.embedding.weight'):
            real[key] = [arch.buckets, arch.heads]
        elif re.search(r'attn\.[qkvo]\.weight$', key):
            real[key] = [arch.dim, arch.dim]
        elif key.endswith('gate.0.weight') or key.endswith('fc1.weight'):
            real[key] = [arch.ffn_dim, arch.dim]
        elif key.endswith('fc2.weight'):
            real[key] = [arch.dim, arch.ffn_dim]
        else:
            real[key] = [arch.dim]
    header, offset = {}, 0
    for key, shape in real.items():
        n = int(np.prod(shape)) * 2
        header[key] = {'dtype': 'BF16', 'shape': shape, 'data_offsets': [offset, offset + n]}
        offset += n
    blob = json.dumps(header).encode()
    blob += b' ' * ((8 - len(blob) % 8) % 8)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, 'wb') as f:
        f.write(struct.pack('<Q', len(blob)))
        f.write(blob)
        for key, shape in real.items():
            mean, std = synthetic_distribution(key, shape, arch)
            t = (torch.randn(shape, generator=gen) * std + mean).to(torch.bfloat16)
            f.write(t.view(torch.int16).numpy().tobytes())
    print(f'wrote {args.out}: {offset / 2**30:.1f} GiB, {arch.layers} layers')


def load_weights(path: str):
    with open(path, 'rb') as f:
        (n,) = struct.unpack('<Q', f.read(8))
        header = json.loads(f.read(n))
    base = 8 + n
    raw = np.memmap(path, dtype=np.uint8, mode='r')
    out = {}
    for key, info in header.items():
        if key == '__metadata__':
            continue
        a, b = info['data_offsets']
        assert info['dtype'] == 'BF16', (key, info['dtype'])
        bits = np.array(raw[base + a:base + b]).view(np.int16)
        out[key] = torch.from_numpy(bits).view(torch.bfloat16).view(info['shape'])
    return out


def run(args) -> None:
    sd = load_weights(args.weights)
    layers = 1 + max(int(k.split('.')[1]) for k in sd if k.startswith('blocks.'))
    vocab = sd['token_embedding.weight'].shape[0]
    arch = Umt5Arch(layers=layers, vocab=vocab)
    dtype = {'bf16': torch.bfloat16, 'fp32': torch.float32, 'fp16': torch.float16}[args.dtype]
    model = Umt5Encoder(arch)
    model.load_state_dict(sd)
    model = model.to(device=args.device, dtype=dtype).eval()
    ids = json.load(open(os.path.join(args.ort, 'ids.json')))
    sync = torch.cuda.synchronize if args.device.startswith('cuda') else (lambda: None)
    print(f'PyTorch {torch.__version__} {args.device} {args.dtype}: {layers} layers, dim {arch.dim}')
    for n, seq in sorted(ids.items(), key=lambda kv: int(kv[0])):
        x = torch.tensor(seq, device=args.device).view(1, -1)
        with torch.no_grad():
            ctx = model(x)[0]
            times = []
            for _ in range(args.reps):
                sync()
                t = time.perf_counter()
                ctx = model(x)[0]
                sync()
                times.append((time.perf_counter() - t) * 1000)
        ref = ctx.float().cpu()
        line = f'L={int(n):>3}: median {sorted(times)[len(times) // 2]:.1f} ms (min {min(times):.1f})'
        ort_file = os.path.join(args.ort, f'ort-{n}.f32')
        if os.path.exists(ort_file):
            ort = torch.from_numpy(np.fromfile(ort_file, dtype=np.float32)).view(ref.shape)
            err = (ort - ref).abs().max().item()
            rms = ref.pow(2).mean().sqrt().item()
            line += f'  max |ort - torch| {err:.3g} ({err / rms:.3g} of rms {rms:.3g})'
        print(line)


def main() -> None:
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest='cmd', required=True)
    m = sub.add_parser('make-weights')
    m.add_argument('--out', required=True)
    m.add_argument('--layers', type=int, default=24)
    m.add_argument('--vocab', type=int, default=256384)
    m.add_argument('--seed', type=int, default=0)
    r = sub.add_parser('run')
    r.add_argument('--weights', required=True)
    r.add_argument('--ort', required=True)
    r.add_argument('--device', default='cuda')
    r.add_argument('--dtype', default='bf16', choices=['bf16', 'fp32', 'fp16'])
    r.add_argument('--reps', type=int, default=5)
    args = p.parse_args()
    make_weights(args) if args.cmd == 'make-weights' else run(args)


if __name__ == '__main__':
    main()
