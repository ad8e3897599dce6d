"""Where a model's self-attention goes once a sink is apart from the window: does it lean on the first frames?

    python3 tools/train/eval_sink_attention.py --weights models/demo/model.safetensors --positions cache

Rolls out held-out prompts with the runtime's loop (the 4-step re-noising sampler, fresh noise between steps) under a
sink cache (the first --sink frames forever plus the last window - sink - block frames; `--positions cache`
re-indexes the cached frames in the window as the default configuration does, `absolute` keeps their frame numbers),
and at the last denoising step of every block whose cache holds the sink apart from the history (block index >=
--from-block) records, per layer, the share of the block's queries' attention (mean over prompts, heads and queries)
on the sink frames, on the history frames and on the block itself, and each share divided by what a uniform spread
over the keys would give it (1: no preference; above 1: the frames draw more than their number). A model that uses
its first frames as an attention sink gives the sink frames far more than their share; one that does not, about
their share or less. Prints JSON.
"""
from __future__ import annotations

import argparse
import json
from typing import Dict, List

import torch

from common import add_model_sampler_args, load_dims, load_model, pick_device  # noqa: E402  (puts tools/reference on sys.path)
import model as reference  # noqa: E402
from model import KVCache  # noqa: E402
import scenes  # noqa: E402
from distill_opening import step_sigmas  # noqa: E402
from train_teacher import held_out_prompts  # noqa: E402
import distill_opening as opening_eval  # noqa: E402
from eval_shapes import canonical_positions  # noqa: E402
from self_forcing import evict  # noqa: E402


class AttentionRecorder:
    """Wraps the reference model's attention(): while `kinds` is set (one label per key row: 0 sink, 1 history,
    2 the block itself), adds each layer's attention mass per kind (mean over batch, heads and queries)."""

    def __init__(self, layers: int) -> None:
        self.kinds: torch.Tensor | None = None
        self.layer = 0
        self.layers = layers
        self.mass = torch.zeros(layers, 3, dtype=torch.float64)
        self.uniform = torch.zeros(layers, 3, dtype=torch.float64)
        self.samples = 0
        self.inner = reference.attention

    def __call__(self, q, k, v, mask=None):
        out = self.inner(q, k, v, mask)
        # self-attention only: its keys are the cache rows and the block (cross-attention's are the prompt's)
        if self.kinds is not None and mask is None and k.shape[1] == self.kinds.numel():
            d = q.shape[-1]
            logits = (q.float().transpose(1, 2) @ k.float().transpose(1, 2).transpose(-1, -2)) / d ** 0.5
            w = torch.softmax(logits, dim=-1).mean(dim=(0, 1, 2))  # [Lk]
            for kind in range(3):
                sel = self.kinds == kind
                self.mass[self.layer, kind] += float(w[sel].sum())
                self.uniform[self.layer, kind] += float(sel.float().mean())
            self.layer = (self.layer + 1) % self.layers
            if self.layer == 0:
                self.samples += 1
        return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_sampler_args(ap)
    ap.add_argument('--n', type=int, default=32, help='held-out prompts')
    ap.add_argument('--blocks', type=int, default=16)
    ap.add_argument('--window', type=int, default=12)
    ap.add_argument('--sink', type=int, default=3)
    ap.add_argument('--block', type=int, default=3)
    ap.add_argument('--positions', choices=['cache', 'absolute'], default='cache')
    ap.add_argument('--from-block', type=int, default=None, help='first block measured (default: the first whose cache has evicted a frame)')
    ap.add_argument('--prime', action='store_true', help="the first block is the prompt's ground-truth opening (a model that cannot open from noise)")
    ap.add_argument('--seed', type=int, default=5)
    ap.add_argument('--device', default=None)
    args = ap.parse_args()
    dev = pick_device(args.device)
    vocab = scenes.vocabulary()
    dims = load_dims(args.model, vocab)
    net = load_model(dims, args.weights, dev).float().eval()
    recorder = AttentionRecorder(dims.layers)
    reference.attention = recorder
    blk, history = args.block, args.window - args.sink - args.block
    first = args.from_block if args.from_block is not None else (args.sink + history) // blk + 1
    p = held_out_prompts(0, args.n, vocab, dims.text_len, dev).take(torch.arange(args.n, device=dev))
    gen = torch.Generator(device=dev).manual_seed(args.seed)
    sig = step_sigmas(args.steps)
    tokens = dims.tokens_per_frame
    shape = (args.n, dims.latent_channels, blk, dims.latent_height, dims.latent_width)
    with torch.no_grad():
        xkv = net.cross_kv(net.encode_text_batch(p['ids'], p['lens']))
        cache = KVCache.empty(dims, args.n, dev)
        for bi in range(args.blocks):
            start = bi * blk
            frames = cache.positions[::tokens, 0].long() if cache.rows else torch.zeros(0, dtype=torch.long, device=dev)
            view, fpos = cache, torch.arange(start, start + blk, device=dev)
            if args.positions == 'cache' and cache.rows:
                rank = torch.arange(len(frames), device=dev).repeat_interleave(tokens)
                pos = cache.positions.clone()
                pos[:, 0] = rank.to(pos)
                view, fpos = cache.select(torch.arange(cache.rows, device=dev), pos), torch.arange(len(frames), len(frames) + blk, device=dev)
            kinds = torch.cat([torch.where(frames < args.sink, 0, 1).repeat_interleave(tokens),
                               torch.full((blk * tokens,), 2, device=dev)]).to(dev)
            x = torch.randn(shape, generator=gen, device=dev)
            if bi == 0 and args.prime:
                x0 = scenes.space_to_depth(opening_eval.render_openings(canonical_positions(p), p, frames=blk)).to(dev)
            for k in range(len(sig) if not (bi == 0 and args.prime) else 0):
                recorder.kinds = kinds if (bi >= first and k == len(sig) - 1) else None
                tt = torch.full((args.n, blk), sig[k] * 1000, device=dev)
                x0 = (x - sig[k] * net(x, tt, fpos, cross_kv=xkv, cache=view).flow).float()
                if k < len(sig) - 1:
                    x = (1 - sig[k + 1]) * x0 + sig[k + 1] * torch.randn(shape, generator=gen, device=dev)
            recorder.kinds = None
            cache = net.cache_clean_block(x0, torch.arange(start, start + blk, device=dev), xkv, cache)
            cache = evict(cache, start + blk, args.window, args.sink, blk)
    s = max(recorder.samples, 1)
    mass, uniform = recorder.mass / s, recorder.uniform / s
    names = ['sink frames', 'history frames', 'the block itself']
    out: Dict[str, object] = {
        'weights': args.weights, 'positions': args.positions, 'primed': args.prime, 'n': args.n, 'blocks measured': f'{first}..{args.blocks - 1}',
        'cache': f'sink {args.sink} + history {history} + block {blk} latent frames',
        'per layer': [
            {names[j]: {'attention share': round(float(mass[i, j]), 4), 'over uniform': round(float(mass[i, j] / uniform[i, j]), 3)}
             for j in range(3)} for i in range(dims.layers)
        ],
    }
    total = mass.mean(dim=0)
    out['mean over layers'] = {names[j]: {'attention share': round(float(total[j]), 4),
                                          'over uniform': round(float(total[j] / uniform.mean(dim=0)[j]), 3)} for j in range(3)}
    print(json.dumps(out, indent=1))


if __name__ == '__main__':
    main()
