#!/usr/bin/env python3
"""Streams on one GPU against several, with the native engine (issue 6). Run on a machine with 2+ GPUs.

  python3 tools/bench/native-pipeline.py [--streams 2] [--blocks 12] [--gpus N]

Same synthetic 1.3B-shape weights, every stream its own video under a sink policy (absolute positions, window 21
frames, sink 3), each 3-frame block = 4 denoising steps + the clean pass, noise drawn on the host as the runtime does.
Layouts, measured one after the other in this run:
  one-gpu    every stream's whole model on GPU 0
  pipeline   the 30 layers split into one contiguous range per GPU; a forward runs stage to stage, the hidden state
             copied GPU to GPU; while one stream's forward is on GPU 1 another's is on GPU 0
  replicas   every stream's whole model on GPU (stream mod GPUs): what a pipeline is measured against
Each stream runs on its own thread (ctypes lets go of the GIL in the engine). Timing starts once every stream's
window is full (block 7). Prints frames/s in all, per-block latency (median, p99: a block's frames are delivered
together, so this is their latency) and the ratio to one GPU; writes native-pipeline.json under $OUT when set.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import sys
import threading
import time

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
_spec = importlib.util.spec_from_file_location('native_vs_torch', os.path.join(HERE, 'native-vs-torch.py'))
nvt = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(nvt)
from native_lib import NativeEngine, attention_backend  # noqa: E402

FRAMES = 3          # frames per block
WINDOW_FRAMES = 21  # cached frames + the block
SINK_FRAMES = 3
WARMUP_BLOCKS = 8   # the window is full from block 7 on


class Stream:
    """One video: one engine (on one GPU, or a pipeline engine over several) with its own cache."""

    def __init__(self, dims, stages, state, ctx):
        self.dims = dims
        if len(stages) == 1:
            self.engine = NativeEngine(dims, stages[0][0], 0)
        else:  # the engine's own pipeline: stage i on stages[i][0] running layers [begin, end)
            self.engine = NativeEngine(dims, stages[0][0], 0, pipeline=([g for g, _, _ in stages], [e - b for _, b, e in stages]))
        self.engine.set_weights(state)
        self.engine.set_prompt(ctx)

    def forward(self, x, t, fpos, keep_kv=False):
        flow, _ = self.engine.forward(x, [t] * FRAMES, fpos, keep_kv)
        return flow

    def update_cache(self, idx, pos):
        self.engine.update_cache(idx.size, 1, False, idx, np.ones(idx.size), pos)

    def reset(self):
        self.engine.reset_cache()

    def close(self):
        self.engine.close()


def run_stream(s: Stream, blocks: int, seed: int, barrier: threading.Barrier, out: dict) -> None:
    dims = s.dims
    T, L = dims.tokens_per_frame, FRAMES * dims.tokens_per_frame
    steps = nvt.shifted([1000, 750, 500, 250])
    sink, window = SINK_FRAMES * T, WINDOW_FRAMES * T
    shape = (dims.latent_channels, FRAMES, dims.latent_height, dims.latent_width)
    rng = np.random.default_rng(seed)
    s.reset()
    pos_host = np.zeros((0, 3), np.float32)
    latency, ends = [], []
    try:
        for b in range(WARMUP_BLOCKS + blocks):
            if b == WARMUP_BLOCKS:
                barrier.wait()
                out['start'] = time.perf_counter()
            t0 = time.perf_counter()
            fpos = list(range(b * FRAMES, (b + 1) * FRAMES))
            x = rng.standard_normal(shape, dtype=np.float32)
            for k, t in enumerate(steps):
                flow = s.forward(x, t, fpos)
                x0 = x - (t / 1000) * flow
                if k + 1 < len(steps):
                    sig = steps[k + 1] / 1000
                    x = (1 - sig) * x0 + sig * rng.standard_normal(shape, dtype=np.float32)
            s.forward(x0, 0.0, fpos, keep_kv=True)
            total = pos_host.shape[0] + L
            keep = window - L
            idx = np.arange(total) if total <= keep else \
                np.concatenate([np.arange(sink), np.arange(total - (keep - sink), total)])
            pos_host = np.concatenate([pos_host, nvt.token_positions(dims, fpos)])[idx]
            s.update_cache(idx, pos_host)
            if b >= WARMUP_BLOCKS:
                latency.append((time.perf_counter() - t0) * 1e3)
                ends.append(time.perf_counter())
    except Exception as ex:  # reported by the caller
        out['error'] = repr(ex)
        barrier.abort()
    out['latency'] = latency
    out['ends'] = ends


def measure(name: str, dims, layout, state, ctx, blocks: int) -> dict:
    """layout: per stream, its stages as (device, begin, end)."""
    streams = [Stream(dims, stages, state, ctx) for stages in layout]
    barrier = threading.Barrier(len(streams))
    outs = [dict() for _ in streams]
    threads = [threading.Thread(target=run_stream, args=(s, blocks, 100 + i, barrier, outs[i])) for i, s in enumerate(streams)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    for s in streams:
        s.close()
    torch.cuda.empty_cache()
    errors = [o['error'] for o in outs if 'error' in o]
    if errors:
        raise RuntimeError(f'{name}: {errors[0]}')
    start = min(o['start'] for o in outs)
    end = max(o['ends'][-1] for o in outs)
    lat = sorted(v for o in outs for v in o['latency'])
    frames = FRAMES * blocks * len(streams)
    r = dict(layout=name, streams=len(streams), stages=[list(st) for st in layout[0]], frames=frames,
             seconds=end - start, fps=frames / (end - start), latency_median_ms=statistics.median(lat),
             latency_p99_ms=float(np.percentile(lat, 99)), latency_max_ms=max(lat))
    print(f"[pipeline] {name}: {r['fps']:.1f} frames/s in all, block latency median {r['latency_median_ms']:.0f} ms, "
          f"p99 {r['latency_p99_ms']:.0f} ms ({len(streams)} streams x {blocks} blocks)", flush=True)
    return r


class Staged:
    """Stage engines driven as one engine, this script handing the hidden state from stage to stage."""

    def __init__(self, engines, hidden):
        self.engines, self.hidden = engines, hidden

    def forward(self, x, t, fpos, keep_kv=False):
        h, flow = None, None
        for i, e in enumerate(self.engines):
            out = self.hidden[i] if i < len(self.hidden) else None
            flow, _ = e.forward_stage(x if i == 0 else None, h, out, t, fpos, keep_kv)
            h = out
        return flow, -1

    def update_cache(self, *plan):
        for e in self.engines:
            e.update_cache(*plan)


def stage_times(dims, stages, state, ctx) -> tuple:
    """Each stage alone (one engine per stage, the hidden state handed over by this script) at a full window: the
    split's balance. Also checks the stages' flow against one whole-model engine on the same input."""
    engines = []
    for device, begin, end in stages:
        e = NativeEngine(dims, device, 0, layers=(begin, end))
        e.set_weights(state)
        e.set_prompt(ctx)
        engines.append(e)
    whole = NativeEngine(dims, 0, 0)
    whole.set_weights(state)
    whole.set_prompt(ctx)
    L = FRAMES * dims.tokens_per_frame
    hidden = [torch.empty((L, dims.dim), dtype=torch.float32, device=f'cuda:{e.device}') for e in engines[:-1]]
    lat = np.random.default_rng(3).standard_normal((dims.latent_channels, FRAMES, dims.latent_height, dims.latent_width),
                                                   dtype=np.float32)

    staged = Staged(engines, hidden)
    nvt.fill_cache(dims, [staged, whole], lat, 6, FRAMES)  # 18 cached frames
    fpos = list(range(18, 21))
    diff = nvt.rel(staged.forward(lat, [500.0] * FRAMES, fpos)[0],
                   torch.from_numpy(whole.forward(lat, [500.0] * FRAMES, fpos)[0]))
    times = []
    h = None
    for i, e in enumerate(engines):
        out = hidden[i] if i < len(hidden) else None
        ts = nvt.timed(lambda: e.forward_stage(lat if i == 0 else None, h, out, [500.0] * FRAMES, fpos), 5)
        times.append(statistics.median(ts))
        h = out
    for e in engines + [whole]:
        e.close()
    return times, diff


def split(layers: int, parts: int) -> list:
    base, extra = divmod(layers, parts)
    bounds, at = [], 0
    for p in range(parts):
        n = base + (1 if p < extra else 0)
        bounds.append((at, at + n))
        at += n
    return bounds


@torch.no_grad()
def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument('--streams', type=int, default=2)
    ap.add_argument('--blocks', type=int, default=12, help='measured blocks per stream, after the window is full')
    ap.add_argument('--gpus', type=int, default=torch.cuda.device_count())
    a = ap.parse_args()
    if a.gpus < 2:
        sys.exit(f'native-pipeline: needs 2 or more GPUs, found {a.gpus}')
    dims = nvt.wan13b_dims()
    print(f'[pipeline] {a.gpus} x {torch.cuda.get_device_name(0)}; 1.3B shape, synthetic weights; attention: '
          f'{attention_backend()}', flush=True)
    model = nvt.make_model(dims, 3)
    ctx = nvt.make_context(dims, 3).numpy()
    state = model.state_dict()
    ranges = split(dims.layers, a.gpus)
    pipe_stages = [(g, b, e) for g, (b, e) in enumerate(ranges)]
    st, diff = stage_times(dims, pipe_stages, state, ctx)
    print('[pipeline] stage forward times at a full window: ' +
          ', '.join(f'GPU {g} layers {b}-{e - 1}: {t:.1f} ms' for (g, b, e), t in zip(pipe_stages, st)) +
          f'; staged flow vs one engine: relative difference {diff:.2e}', flush=True)
    results = dict(gpus=a.gpus, device=torch.cuda.get_device_name(0), attention=attention_backend(),
                   stage_ms=st, staged_vs_whole=diff, stages=pipe_stages, layouts=[])
    one = measure('one-gpu', dims, [[(0, 0, dims.layers)]] * a.streams, state, ctx, a.blocks)
    pipe = measure('pipeline', dims, [pipe_stages] * a.streams, state, ctx, a.blocks)
    reps = measure('replicas', dims, [[(i % a.gpus, 0, dims.layers)] for i in range(a.streams)], state, ctx, a.blocks)
    results['layouts'] = [one, pipe, reps]
    print()
    print(f"| layout | GPUs | streams | frames/s | x one GPU | block latency median ms | p99 ms |")
    print('| --- | --- | --- | --- | --- | --- | --- |')
    for r, g in ((one, 1), (pipe, a.gpus), (reps, a.gpus)):
        print(f"| {r['layout']} | {g} | {r['streams']} | {r['fps']:.1f} | {r['fps'] / one['fps']:.2f}x | "
              f"{r['latency_median_ms']:.0f} | {r['latency_p99_ms']:.0f} |")
    out = os.environ.get('OUT')
    if out:
        with open(os.path.join(out, 'native-pipeline.json'), 'w') as f:
            json.dump(results, f, indent=1, default=float)


if __name__ == '__main__':
    main()
