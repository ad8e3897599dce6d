"""Self-checks of tools/train/self_forcing.py (CPU, seconds): python3 tools/train/test_self_forcing.py

1. the one-pass score of a whole rollout (teacher_forced_flow with rollout_mask) == the runtime's
   block-by-block computation with a KV cache under the sink / window policy (evict), for several
   windows and sinks; and the check can fail: the full-cache mask gives other flows once frames
   leave the window; after each block, the cache holds exactly the sink frames and the newest
   window - sink - block frames.
"""
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), 'reference'))
import self_forcing as sf  # noqa: E402
from model import Dims, KVCache, WanModel, block_causal_mask  # noqa: E402

B, BLOCKS, F = 2, 6, 3


def make_model() -> WanModel:
    torch.manual_seed(0)
    dims = Dims(dim=48, layers=2, heads=2, ffn_dim=96, latent_channels=12, text_dim=16, text_len=6,
                latent_height=8, latent_width=8, vocab_size=10)
    m = WanModel(dims)
    torch.nn.init.normal_(m.head.head.weight, std=0.1)  # the zero head would make every check pass
    return m.eval()


def sequential_flows(m: WanModel, clean, noisy, s, xkv, window: int, sink: int) -> torch.Tensor:
    cache = KVCache.empty(m.dims, B)
    out = []
    for b in range(BLOCKS):
        fp = torch.arange(b * F, (b + 1) * F)
        sl = slice(b * F, (b + 1) * F)
        out.append(m(noisy[:, :, sl], s[:, sl] * 1000, fp, cross_kv=xkv, cache=cache).flow)
        o = m(clean[:, :, sl], torch.zeros(B, F), fp, cross_kv=xkv, cache=cache, return_kv=True)
        cache = sf.evict(cache.append(o.block_k, o.block_v, o.block_positions), (b + 1) * F, window, sink, F)
        frames = sorted(set(int(v) for v in cache.positions[:, 0].tolist()))
        newest = list(range(max(0, (b + 1) * F - (window - sink - F)), (b + 1) * F))
        assert frames == sorted(set([f for f in range(sink) if f < (b + 1) * F] + newest)), frames
    return torch.cat(out, dim=2)


def test_one_pass_equals_runtime_cache() -> None:
    m = make_model()
    d = m.dims
    torch.manual_seed(1)
    for window, sink in ((12, 3), (12, 0), (9, 3), (15, 6)):
        clean = torch.randn(B, d.latent_channels, BLOCKS * F, d.latent_height, d.latent_width)
        noisy = torch.randn_like(clean)
        s = torch.rand(B, BLOCKS).repeat_interleave(F, 1)
        xkv = m.cross_kv(torch.randn(B, d.text_len, d.text_dim))
        with torch.no_grad():
            one = sf.teacher_forced_flow(m, clean, noisy, s, xkv, sf.rollout_mask(BLOCKS, F, d.tokens_per_frame, window, sink, 'cpu'))
            seq = sequential_flows(m, clean, noisy, s, xkv, window, sink)
            full = sf.teacher_forced_flow(m, clean, noisy, s, xkv, block_causal_mask(BLOCKS * F, d.tokens_per_frame, F))
        err = float((one - seq).abs().max() / seq.abs().max())
        assert err < 1e-5, (window, sink, err)
        # the last block has lost frames from its cache: the full-cache mask must differ there
        last = slice((BLOCKS - 1) * F, BLOCKS * F)
        gap = float((full[:, :, last] - seq[:, :, last]).abs().max() / seq.abs().max())
        assert gap > 1e-3, (window, sink, gap)


if __name__ == '__main__':
    test_one_pass_equals_runtime_cache()
    print('ok')
