#!/usr/bin/env python3
"""Every kernel of one native forward at the 1.3B shape, for Nsight Compute (issue 18: which of the engine's own
kernels keeps the elementwise phase at ~40 % of the memory's rate).

  ncu --profile-from-start off --clock-control none --csv --page raw \\
      --metrics gpu__time_duration.sum,dram__bytes_read.sum,dram__bytes_write.sum \\
      python3 tools/bench/native-kernels.py [--fp8-products] [--fp8-attention] [--key-frames 21] > kernels.csv
  python3 tools/bench/native-kernels.py --summarise kernels.csv

The engine (bf16, synthetic weights as tools/bench/native-vs-torch.py draws them, CUDA graphs off) fills its cache
with clean passes to --key-frames frames of keys (the block's own 3 included), runs two warm forwards, then one
forward between cudaProfilerStart and cudaProfilerStop: with --profile-from-start off, ncu sees that forward's
launches only. --summarise reads ncu's CSV: per kernel, launches, µs, DRAM bytes and the rate they moved at.
"""
from __future__ import annotations

import argparse
import collections
import csv
import importlib.util
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))

# units ncu may print in its raw page, to ns and bytes
UNITS = {'': 1.0, 'byte': 1.0, 'Kbyte': 1e3, 'Mbyte': 1e6, 'Gbyte': 1e9, 'nsecond': 1.0, 'usecond': 1e3, 'msecond': 1e6,
         'ns': 1.0, 'us': 1e3, 'ms': 1e6, 'B': 1.0, 'KB': 1e3, 'MB': 1e6, 'GB': 1e9}


def summarise(path: str) -> None:
    rows = [r for r in csv.reader(open(path)) if r]
    head = next(i for i, r in enumerate(rows) if 'Kernel Name' in r)
    cols, units, data = rows[head], rows[head + 1], rows[head + 2:]
    name_col = cols.index('Kernel Name')
    metric = {m: cols.index(m) for m in ('gpu__time_duration.sum', 'dram__bytes_read.sum', 'dram__bytes_write.sum')}

    def value(r, m):
        c = metric[m]
        return float(r[c].replace(',', '')) * UNITS[units[c]] if r[c] else 0.0

    agg = collections.defaultdict(lambda: [0, 0.0, 0.0, 0.0])
    for r in data:
        a = agg[r[name_col][:90]]
        a[0] += 1
        a[1] += value(r, 'gpu__time_duration.sum')
        a[2] += value(r, 'dram__bytes_read.sum')
        a[3] += value(r, 'dram__bytes_write.sum')
    total = sum(a[1] for a in agg.values())
    print(f'one forward: {total / 1e6:.2f} ms over {sum(a[0] for a in agg.values())} launches')
    for name, (n, ns, rd, wr) in sorted(agg.items(), key=lambda kv: -kv[1][1]):
        print(f'{ns / 1e6:8.3f} ms {100 * ns / total:5.1f} %  {n:4d} x {ns / n / 1e3:8.1f} us  '
              f'read {rd / n / 1e6:7.1f} MB  write {wr / n / 1e6:7.1f} MB  {(rd + wr) / ns:6.0f} GB/s  {name}')


def forward(args) -> None:
    import torch
    spec = importlib.util.spec_from_file_location('native_vs_torch', os.path.join(HERE, 'native-vs-torch.py'))
    nvt = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(nvt)
    dims = nvt.wan13b_dims()
    frames = 3
    if args.key_frames < frames or args.key_frames % frames:
        sys.exit(f'--key-frames {args.key_frames}: a multiple of {frames}, at least {frames}')
    with torch.no_grad():
        model = nvt.make_model(dims, 3)
        eng = nvt.NativeEngine(dims, 0, 0)
        eng.set_product_precision(args.fp8_products)
        eng.set_attention_precision(args.fp8_attention)
        eng.set_cuda_graphs(False)
        eng.set_weights(model.state_dict())
        del model
        torch.cuda.empty_cache()
        eng.set_prompt(nvt.make_context(dims, 3).numpy())
        g = torch.Generator().manual_seed(9)
        latent = torch.randn(dims.latent_channels, frames, dims.latent_height, dims.latent_width, generator=g).numpy()
        cached = args.key_frames - frames
        nvt.fill_cache(dims, [eng], latent, cached // frames, frames)
        fpos = list(range(cached, cached + frames))
        for _ in range(2):
            eng.forward(latent, [937.5] * frames, fpos)
        torch.cuda.synchronize()
        torch.cuda.cudart().cudaProfilerStart()
        eng.forward(latent, [937.5] * frames, fpos)
        torch.cuda.synchronize()
        torch.cuda.cudart().cudaProfilerStop()
        eng.close()
    print(f'native-kernels: one forward at {args.key_frames} frames of keys, fp8 products {args.fp8_products}, '
          f'fp8 attention {args.fp8_attention}', file=sys.stderr)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--fp8-products', action='store_true', help='engine.dtype fp8')
    ap.add_argument('--fp8-attention', action='store_true', help='engine.attention fp8')
    ap.add_argument('--key-frames', type=int, default=21, help='frames of keys the profiled forward attends to')
    ap.add_argument('--summarise', metavar='CSV', help="no forward: read ncu's CSV and print per-kernel figures")
    args = ap.parse_args()
    if args.summarise:
        summarise(args.summarise)
    else:
        forward(args)


if __name__ == '__main__':
    main()
