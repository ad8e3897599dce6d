#!/usr/bin/env python3
"""Does splitting the keys fill the H200 better at 4680 queries? (issue 18 item 4, on the GPU machine)

  python3 tools/bench/attention-split.py

One block's self-attention at the 1.3B shape (4680 queries, 12 heads of 128, token-major rows as the engine keeps
them) through PyTorch's cuDNN attention, timed with CUDA events (median of 20 after 5 warm-ups):
- whole: one call over every key;
- split n: the keys cut into n equal runs laid side by side as the batch dimension (the same memory, no copy; the
  queries repeated n times), each run's output and log-sum-exp, then the n partial outputs merged by their
  log-sum-exp (the merge timed with it). The merged output is checked against whole.
With tiles of 128 queries a call has 12 x 37 = 444 tiles on 132 SMs (3.4 waves, the last a third full); split 2
gives 888 (6.7 waves). Prints one line per case; writes OUT/attention-split.json when OUT is set.
"""
from __future__ import annotations

import json
import os
import statistics

import torch

DEV = 'cuda'
HEADS, HEAD_DIM, QUERIES = 12, 128, 4680
FRAME = 1560


def timed(fn, reps: int = 20, warm: int = 5) -> float:
    for _ in range(warm):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        b.synchronize()
        times.append(a.elapsed_time(b))
    return statistics.median(times)


def cudnn(q, k, v, lse: bool):
    """[B, H, S, D] views in; (output [B, H, Lq, D], log-sum-exp [B, H, Lq] or None)."""
    r = torch.ops.aten._scaled_dot_product_cudnn_attention(q, k, v, None, lse, 0.0, False, False, scale=HEAD_DIM ** -0.5)
    return r[0], (r[1] if lse else None)


def merge(out: torch.Tensor, lse: torch.Tensor) -> torch.Tensor:
    """n partial attentions [n, H, Lq, D] with their log-sum-exp [n, H, Lq] -> [1, H, Lq, D]."""
    lse = lse.float()
    if lse.dim() == 4:
        lse = lse.squeeze(-1)
    w = torch.softmax(lse, dim=0).unsqueeze(-1)
    return (out.float() * w).sum(0, keepdim=True).to(out.dtype)


def main() -> None:
    torch.manual_seed(0)
    results = []
    for frames in (21, 12):
        keys = frames * FRAME
        # token-major rows [tokens, heads, dim], viewed as [1, H, S, D] like the engine's strides
        qt = torch.randn(QUERIES, HEADS, HEAD_DIM, device=DEV, dtype=torch.bfloat16)
        kt = torch.randn(keys, HEADS, HEAD_DIM, device=DEV, dtype=torch.bfloat16)
        vt = torch.randn(keys, HEADS, HEAD_DIM, device=DEV, dtype=torch.bfloat16)
        q = qt.unsqueeze(0).transpose(1, 2)
        k = kt.unsqueeze(0).transpose(1, 2)
        v = vt.unsqueeze(0).transpose(1, 2)
        flop = 4 * QUERIES * keys * HEADS * HEAD_DIM
        whole, _ = cudnn(q, k, v, False)
        for lse in (False, True):
            ms = timed(lambda: cudnn(q, k, v, lse))
            line = dict(frames=frames, keys=keys, case='whole' + (' +lse' if lse else ''), ms=ms, tflops=flop / ms / 1e9)
            results.append(line)
            print(f"{frames:2d} frames  {line['case']:<14} {ms:7.3f} ms  {line['tflops']:6.0f} TFLOP/s", flush=True)
        for n in (2, 3, 4, 6):
            if keys % n:
                continue
            run = keys // n
            ks = kt.view(n, run, HEADS, HEAD_DIM).transpose(1, 2)
            vs = vt.view(n, run, HEADS, HEAD_DIM).transpose(1, 2)
            qs = q.expand(n, -1, -1, -1)
            try:
                cudnn(qs, ks, vs, True)
                qcase = 'q broadcast'
            except RuntimeError:
                qs = q.repeat(n, 1, 1, 1)
                qcase = 'q copied'
            part = timed(lambda: cudnn(qs, ks, vs, True))
            both = timed(lambda: merge(*cudnn(qs, ks, vs, True)))
            o, l = cudnn(qs, ks, vs, True)
            err = float((merge(o, l).float() - whole.float()).norm() / whole.float().norm())
            line = dict(frames=frames, keys=keys, case=f'split {n} ({qcase})', ms=part, ms_with_merge=both,
                        tflops=flop / part / 1e9, error_vs_whole=err)
            results.append(line)
            print(f"{frames:2d} frames  split {n:<8} {part:7.3f} ms  {line['tflops']:6.0f} TFLOP/s; with torch merge "
                  f"{both:7.3f} ms; merged vs whole {err:.2e} ({qcase})", flush=True)
    out = os.environ.get('OUT')
    if out:
        with open(os.path.join(out, 'attention-split.json'), 'w') as f:
            json.dump(dict(gpu=torch.cuda.get_device_name(), torch=torch.__version__,
                           cudnn=torch.backends.cudnn.version(), results=results), f, indent=1)


if __name__ == '__main__':
    main()
