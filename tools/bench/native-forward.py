#!/usr/bin/env python3
"""One native forward at the 1.3B shape with 21 frames of keys, and one cache update at a full window, timed in a
process of its own, so settings read from the environment at start (SSN_ATTENTION, SSN_GEMM_EPILOGUE) or two
builds (run it from each checkout) can be compared in alternating runs on the GPU machine:

  TAG=a python3 tools/bench/native-forward.py; TAG=b SSN_GEMM_EPILOGUE=0 python3 tools/bench/native-forward.py; ...

Prints '[forward] TAG: forward ... ms, cache update ... ms'; with OUT set, saves the first latent frame's flow as
$OUT/flow-TAG.npy so that runs can be compared number for number.
"""
import importlib.util
import os
import statistics
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
_spec = importlib.util.spec_from_file_location('native_vs_torch', os.path.join(HERE, 'native-vs-torch.py'))
nvt = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(nvt)
from native_lib import NativeEngine  # noqa: E402

FRAMES = 3


def main() -> None:
    tag = os.environ.get('TAG', 'run')
    dims = nvt.wan13b_dims()
    T = dims.tokens_per_frame
    model = nvt.make_model(dims, 3)
    e = NativeEngine(dims, 0, 0)
    e.set_weights(model.state_dict())
    e.set_prompt(nvt.make_context(dims, 3).numpy())
    lat = np.random.default_rng(9).standard_normal((dims.latent_channels, FRAMES, dims.latent_height, dims.latent_width),
                                                   dtype=np.float32)
    nvt.fill_cache(dims, [e], lat, 6, FRAMES)  # 18 cached frames
    fpos = list(range(18, 21))
    ts = nvt.timed(lambda: e.forward(lat, [937.5] * FRAMES, fpos), 20)
    flow, _ = e.forward(lat, [937.5] * FRAMES, fpos)
    if os.environ.get('OUT'):
        np.save(os.path.join(os.environ['OUT'], f'flow-{tag}.npy'), flow[:, :1])
    # the sink plan at a full window: keep the 3 sink frames and the last 15 of [18 cached || 3 new]
    keep = np.concatenate([np.arange(3 * T), np.arange(6 * T, 21 * T)])
    us = []
    for _ in range(6):
        e.forward(lat, [0.0] * FRAMES, fpos, keep_kv=True)
        t0 = time.perf_counter()
        e.update_cache(keep.size, 1, False, keep, np.ones(keep.size), nvt.token_positions(dims, range(18)))
        us.append((time.perf_counter() - t0) * 1e3)
    e.close()
    print(f'[forward] {tag}: forward at 21 frames {statistics.median(ts):.2f} ms (min {min(ts):.2f}), '
          f'cache update {statistics.median(us[1:]):.2f} ms', flush=True)


if __name__ == '__main__':
    main()
