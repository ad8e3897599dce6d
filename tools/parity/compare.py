"""Parity, part 2: the PyTorch reference (tools/reference) on the inputs that export.ts fed the ONNX
graphs, in float32 (and float64 as a sanity bound), against ONNX Runtime's outputs.

    python3 tools/parity/compare.py [dir=tmp/parity] [--weights models/demo/model.safetensors]
                                    [--model models/demo/model.json] [--tolerance 1e-4]

Compares, as ||a - b|| / ||b||: every layer's cross-attention K/V of the prompt; every layer's cache
K/V produced by the three clean passes (the reference recomputes them from the clean latents); and the
block under test (frames 9..11, t = 833.3, 576 cached rows a layer): its flow and its K/V. If the
`onnxruntime` Python package is present (the GPU machine has it), the exported graphs are also run
there on the CPU provider. Exit status 1 if any error is over the tolerance.
"""
import argparse
import json
import os
import sys

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, 'tools', 'reference'))
from model import Dims, KVCache, WanModel, load_weights  # noqa: E402
from safetensors_io import load_file  # noqa: E402


def rel(a, b) -> float:
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-30))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument('dir', nargs='?', default=os.path.join(ROOT, 'tmp', 'parity'))
    ap.add_argument('--weights', default=os.path.join(ROOT, 'models', 'demo', 'model.safetensors'))
    ap.add_argument('--model', default=os.path.join(ROOT, 'models', 'demo', 'model.json'))
    ap.add_argument('--tolerance', type=float, default=1e-4)
    args = ap.parse_args()

    data = {k: torch.from_numpy(v) for k, v in load_file(os.path.join(args.dir, 'parity.safetensors')).items()}
    weights = load_file(args.weights)
    spec = json.load(open(args.model))
    vocab = weights['text_encoder.embedding.weight'].shape[0] if 'text_encoder.embedding.weight' in weights else None
    dims = Dims.from_dict({**spec, 'vocab_size': vocab})
    rows = []

    for dtype in (torch.float32, torch.float64):
        model = WanModel(dims)
        load_weights(model, args.weights)
        model = model.to(dtype).eval()
        L = dims.layers
        name = 'float32' if dtype == torch.float32 else 'float64'
        with torch.no_grad():
            xkv = model.cross_kv(data['context'][None].to(dtype))
            for i in range(L):
                rows.append((name, f'cross_k.{i}', rel(data[f'ort.cross_k.{i}'], xkv[i][0])))
                rows.append((name, f'cross_v.{i}', rel(data[f'ort.cross_v.{i}'], xkv[i][1])))
            # the cache, recomputed by the reference's own clean passes
            cache = KVCache.empty(dims, 1, dtype=dtype)
            blk = 0
            while f'clean_latent.{blk}' in data:
                lat = data[f'clean_latent.{blk}'].to(dtype)
                f = lat.shape[2]
                o = model(lat, torch.zeros(1, f), torch.arange(blk * f, (blk + 1) * f), cross_kv=xkv, cache=cache, return_kv=True)
                cache = cache.append(o.block_k, o.block_v, o.block_positions)
                blk += 1
            for i in range(L):
                rows.append((name, f'cache_k.{i} (3 clean passes)', rel(data[f'cache_k.{i}'], cache.keys[i][0])))
                rows.append((name, f'cache_v.{i} (3 clean passes)', rel(data[f'cache_v.{i}'], cache.values[i][0])))
            rows.append((name, 'cache positions', rel(data['cache_pos'], cache.positions)))
            # the block under test, on exactly the cache ONNX Runtime saw
            ort_cache = KVCache([data[f'cache_k.{i}'][None].to(dtype) for i in range(L)],
                                [data[f'cache_v.{i}'][None].to(dtype) for i in range(L)], data['cache_pos'])
            out = model(data['latent'].to(dtype), data['timesteps'][None], data['frame_positions'].long(),
                        cross_kv=[(data[f'ort.cross_k.{i}'][None].to(dtype), data[f'ort.cross_v.{i}'][None].to(dtype)) for i in range(L)],
                        cache=ort_cache, return_kv=True)
            rows.append((name, f'flow (block, {ort_cache.rows} cached rows)', rel(data['ort.flow'], out.output)))
            for i in range(L):
                rows.append((name, f'block k.{i}', rel(data[f'ort.k.{i}'], out.block_k[i][0])))
                rows.append((name, f'block v.{i}', rel(data[f'ort.v.{i}'], out.block_v[i][0])))

    try:
        import onnxruntime as ort  # noqa: WPS433 (optional: present on the GPU machine)
        sess = ort.InferenceSession(os.path.join(args.dir, 'transformer.onnx'), providers=['CPUExecutionProvider'])
        feeds = {'latent': data['latent'].numpy(), 'timesteps': data['timesteps'].numpy(), 'frame_positions': data['frame_positions'].numpy()}
        for i in range(dims.layers):
            feeds[f'cross_k.{i}'] = data[f'ort.cross_k.{i}'].numpy()
            feeds[f'cross_v.{i}'] = data[f'ort.cross_v.{i}'].numpy()
            feeds[f'cache_k.{i}'] = data[f'cache_k.{i}'].numpy()
            feeds[f'cache_v.{i}'] = data[f'cache_v.{i}'].numpy()
            feeds[f'cache_pos.{i}'] = data['cache_pos'].numpy()
        flow = sess.run(['flow'], feeds)[0]
        rows.append((f'onnxruntime-python {ort.__version__}', 'flow vs onnxruntime-node', rel(flow, data['ort.flow'])))
    except ImportError:
        rows.append(('onnxruntime-python', 'not installed here: skipped', float('nan')))

    worst = max(e for d, _, e in rows if d == 'float32' and np.isfinite(e))
    print(f'torch {torch.__version__}; cases: {args.dir}; tolerance {args.tolerance:g} (float32)')
    print(f'{"reference":<12} {"tensor":<40} rel. error vs ONNX Runtime')
    for d, what, e in rows:
        print(f'{d:<12} {what:<40} {e:.3e}')
    print(f'worst float32 relative error: {worst:.3e} -> {"PASS" if worst < args.tolerance else "FAIL"}')
    return 0 if worst < args.tolerance else 1


if __name__ == '__main__':
    sys.exit(main())
