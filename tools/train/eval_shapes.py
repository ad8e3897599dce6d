"""Does a demo model draw the prompted shapes, and where does it lose them?

For held-out prompts (the training evaluation's, never trained on) at their opening layout, measures the shape of
each prompted object (distill_opening.shape_ious: the colour's pixels against a circle, a square and a triangle of
the same area at the same centroid) in:
- the ground truth (the reference: 1.0 when nothing overlaps);
- the model's one-step clean estimate x0 from the ground truth noised to each level s (empty cache, as the opening
  block is made): at low s the shape is in the input, at s = 1 it can only come from the prompt;
- the same from an input that shows every object as the next shape (circle -> square -> triangle -> circle) at the
  --swap-levels: which does the model draw, the prompt's shape or the input's? (the counts' columns say);
- how far the estimate follows a word of the prompt (--word-levels): the first object's shape word changed to the next
  shape, or its colour word to a colour the prompt does not use, with the same input and noise: the change of x0
  projected on the change of the ground truth between the two prompts, sum(dx0 . dtruth) / sum(dtruth^2) (1: the
  estimate changes as the truth does, 0: the word is ignored, or it changes something else);
- the block after two true blocks (frames 6-8, frames 0-5 clean in the cache as the runtime writes them), one step
  from the truth noised to each --continued-levels level, and from the next shape at the first of them: does the
  model carry the shape its context shows into the next block, or draw the noisy input's?
- the shape and colour words as the model's text projection (text_embedding, before cross-attention) passes them on:
  their mean norm and mean pairwise cosine (words the model cannot tell apart come out parallel);
- the opening block from pure noise by the sampler (the runtime's 4-step re-noising loop, or an ODE for a teacher);
- the last of --blocks blocks of a video continued by the same sampler (a cache of the last 9 frames);
- the same videos continued by the sampler from the two true blocks: frames 6-8 and the last block (--blocks 3 or more).
Printed (JSON), per case: objects present, extra copies of a prompted object a frame, shape accuracy (share of
present objects whose best match is the prompted shape; chance 1/3), the median IoU with the prompted shape, the
confusion counts (prompted -> best), and by the prompt's object count: the share present, and of the present
objects' frames the share whose best match is the prompted shape, the shape the prompt gives another object (a shape
bound to the wrong colour), or neither.

    python3 tools/train/eval_shapes.py --weights models/demo/model.safetensors
    python3 tools/train/eval_shapes.py --weights tools/train/checkpoints/teacher-run11.safetensors --sampler ode --steps 16 --guidance 3
"""
from __future__ import annotations

import argparse
import functools
import json
import time
from typing import Dict, Optional

import torch

from common import BLOCK, add_model_sampler_args, load_dims, load_model, noise_interval, pick_device  # noqa: E402
import distill_opening as opening_eval  # noqa: E402
import scenes  # noqa: E402
from model import KVCache, WanModel  # noqa: E402
from train_teacher import held_out_prompts  # noqa: E402


def canonical_positions(p: Dict[str, torch.Tensor]) -> torch.Tensor:
    """[B, 3, 2] start positions of the prompt's opening layout (scenes.CANONICAL_LAYOUT by object count)."""
    pos = torch.zeros(p['count'].shape[0], 3, 2)
    for i, k in enumerate(p['count'].tolist()):
        for j, (x, y, _, _) in enumerate(scenes.CANONICAL_LAYOUT[k]):
            pos[i, j] = torch.tensor([x, y])
    return pos.to(p['count'].device)


def measure(px: torch.Tensor, p: Dict[str, torch.Tensor], ref: torch.Tensor) -> Dict[str, object]:
    """px [B, T, 64, 64, 3]: the detector's presence, the shape measure and a prompted -> best-match confusion."""
    objects = opening_eval.detect_objects(px, p, ref)
    det = opening_eval.summarise_objects(objects, p['valid'])
    confusion = torch.zeros(3, 3, dtype=torch.long)
    # per object count: [objects, present, frames matching the prompted shape, another object's prompted shape, neither]
    by_count = torch.zeros(4, 5, dtype=torch.long)
    for i in range(p['count'].shape[0]):
        k = int(p['count'][i])
        prompted = p['shape'][i, :k].tolist()
        for j in range(k):
            by_count[k, 0] += 1
            if not objects['present'][i, j]:
                continue
            by_count[k, 1] += 1
            own = prompted[j]
            others = set(prompted[:j] + prompted[j + 1:]) - {own}
            for b in objects['best_shape'][i, j].tolist():
                confusion[own, b] += 1
                by_count[k, 2 if b == own else 3 if b in others else 4] += 1
    return {
        'objects_present': round(det['objects_present'], 4),
        'extra copies a frame': round(extra_copies(px, p), 4),
        'shape_accuracy': round(det['shape_accuracy_present'], 4),
        'shape_iou_median': round(det['shape_iou_median_present'], 4),
        'best match of each prompted shape (circle square triangle)': {
            name: ' '.join(str(v) for v in confusion[k].tolist()) for k, name in enumerate(scenes.SHAPES)},
        # the binding of shape to colour: with more objects, a wrong shape may be the one the prompt gives another object
        'by object count: present, and of the frames right / another object\'s shape / neither': {
            str(k): ' '.join([f'{row[1] / row[0]:.3f}'] + [f'{v / max(sum(row[2:]), 1):.3f}' for v in row[2:]])
            for k, row in enumerate(by_count.tolist()) if row[0]},
    }


def extra_copies(px: torch.Tensor, p: Dict[str, torch.Tensor]) -> float:
    """px [B, T, 64, 64, 3] -> extra copies of each prompted object a frame: the components of >= 12 px of its colour
    beyond one (the runtime's "objects drawn twice"), averaged over the prompted objects' frames."""
    found = opening_eval.prompted_components(px, p)  # [B, T, 3]
    valid = p['valid'][:, None, :].expand_as(found)
    return float((found - 1).clamp_min(0)[valid].float().mean())


@torch.no_grad()
def x0_estimates(model: WanModel, p: Dict[str, torch.Tensor], lat: torch.Tensor, s: float, guidance: float,
                 gen: torch.Generator, context: Optional[torch.Tensor] = None) -> torch.Tensor:
    """The model's clean estimate of the block `lat` noised to level s (guided if guidance != 1): the opening (empty
    cache), or with `context` [B, C, k*3, H, W] the block after k clean blocks, which enter the cache by clean passes
    as the runtime's loop writes them."""
    b = lat.shape[0]
    dev = lat.device
    noisy = (1 - s) * lat + s * torch.randn(lat.shape, generator=gen).to(dev)
    xkv = model.cross_kv(model.encode_text_batch(p['ids'], p['lens']))
    cache = KVCache.empty(model.dims, b, dev)
    given = 0 if context is None else context.shape[2] // BLOCK
    for bi in range(given):
        fpos = torch.arange(bi * BLOCK, (bi + 1) * BLOCK, device=dev)
        cache = model.cache_clean_block(context[:, :, bi * BLOCK:(bi + 1) * BLOCK], fpos, xkv, cache)
    fpos = torch.arange(given * BLOCK, (given + 1) * BLOCK, device=dev)
    tt = torch.full((b, BLOCK), s * 1000, device=dev)
    v = model(noisy, tt, fpos, cross_kv=xkv, cache=cache).flow
    if guidance != 1.0:
        v = opening_eval.guided(v, model(noisy, tt, fpos, cross_kv=opening_eval.empty_prompt_kv(model, b, dev), cache=cache).flow, guidance)
    return noisy - s * v


def with_word_changed(p: Dict[str, torch.Tensor], word: str, vocab, text_len: int) -> Dict[str, torch.Tensor]:
    """The prompts with the first object's shape changed to the next shape, or its colour to the first colour the
    prompt does not use; tokens rebuilt from the caption."""
    q = {k: v.clone() for k, v in p.items()}
    if word == 'shape':
        q['shape'][:, 0] = (p['shape'][:, 0] + 1) % len(scenes.SHAPES)
    else:
        for i in range(p['count'].shape[0]):
            used = set(p['colour'][i, :int(p['count'][i])].tolist())
            q['colour'][i, 0] = min(c for c in range(len(scenes.OBJECT_COLOURS)) if c not in used)
    colours, backgrounds = list(scenes.OBJECT_COLOURS), list(scenes.BACKGROUNDS)
    for i in range(p['count'].shape[0]):
        k = int(p['count'][i])
        tok = scenes.tokenize(scenes.caption([colours[c] for c in q['colour'][i, :k].tolist()],
                                             [scenes.SHAPES[c] for c in q['shape'][i, :k].tolist()],
                                             backgrounds[int(p['bg'][i])]), vocab)[:text_len]
        q['ids'][i] = 0
        q['ids'][i, :len(tok)] = torch.tensor(tok)
        q['lens'][i] = len(tok)
    return q


@torch.no_grad()
def word_following(model: WanModel, p: Dict[str, torch.Tensor], word: str, s: float, vocab, seed: int) -> float:
    """sum(dx0 . dtruth) / sum(dtruth^2): dx0 = x0(changed prompt) - x0(prompt) from the same input (the prompt's truth
    noised to s) and noise, dtruth = truth(changed prompt) - truth(prompt)."""
    q = with_word_changed(p, word, vocab, p['ids'].shape[1])
    pos = canonical_positions(p)
    lat = scenes.space_to_depth(opening_eval.render_openings(pos, p))
    lat_q = scenes.space_to_depth(opening_eval.render_openings(pos, q))
    a = x0_estimates(model, p, lat, s, 1.0, torch.Generator(device='cpu').manual_seed(seed))
    b = x0_estimates(model, q, lat, s, 1.0, torch.Generator(device='cpu').manual_seed(seed))
    d_truth = lat_q - lat
    return float(((b - a) * d_truth).sum() / d_truth.pow(2).sum())


@torch.no_grad()
def word_vectors(model: WanModel, vocab) -> Dict[str, Dict[str, float]]:
    """Mean norm and mean pairwise cosine of the shape words' and of the colour words' rows after the text projection
    (the word table's row through text_embedding; the position term the context adds is left out)."""
    table = model.text_encoder.embedding.weight
    out = {}
    for kind, words in (('shape words', list(scenes.SHAPES)), ('colour words', list(scenes.OBJECT_COLOURS))):
        v = model.text_embedding(table[[vocab.index(w) for w in words]].float())
        c = torch.nn.functional.normalize(v, dim=1)
        cos = c @ c.T
        n = len(words)
        out[kind] = {'mean norm': round(float(v.norm(dim=1).mean()), 3),
                     'mean pairwise cosine': round(float((cos.sum() - n) / (n * (n - 1))), 3)}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_sampler_args(ap)
    ap.add_argument('--levels', default='0.25,0.5,0.75,0.9,1.0', help='noise levels s of the one-step estimates')
    ap.add_argument('--swap-levels', default='0.25,0.5', help='noise levels of the estimates from inputs with the next shape')
    ap.add_argument('--continued-levels', default='0.5,1.0',
                    help='noise levels of the one-step estimates of the block after two true blocks (also from the next shape at the first)')
    ap.add_argument('--word-levels', default='0.5,0.75,0.9,1.0', help='noise levels of the word-following measure')
    ap.add_argument('--blocks', type=int, default=6, help='blocks of the continued videos (0: none)')
    ap.add_argument('--opening-guidance', type=float, default=None,
                    help="the sampler's guidance for the first block of the videos (default: --guidance)")
    ap.add_argument('--guidance-interval', default=None,
                    help="lo,hi: guidance only at noise levels in [lo, hi]: the videos' sampler's steps there, and the "
                         'one-step estimates from a level there (the others unguided)')
    ap.add_argument('--n', type=int, default=128, help='held-out prompts')
    ap.add_argument('--seed', type=int, default=7)
    ap.add_argument('--device', default=None)
    args = ap.parse_args()
    if args.n < 1 or args.steps < 1 or args.blocks < 0:
        ap.error('--n and --steps must be at least 1, --blocks at least 0')
    interval = None
    if args.guidance_interval is not None:
        try:
            interval = noise_interval(args.guidance_interval)
        except ValueError as e:
            ap.error(f'--guidance-interval: {e}')
    guidance_at = functools.partial(opening_eval.guidance_at, args.guidance, interval)  # of a one-step estimate at s

    levels = [float(v) for v in args.levels.split(',') if v.strip()]
    swap_levels = [float(v) for v in args.swap_levels.split(',') if v.strip()]
    word_levels = [float(v) for v in args.word_levels.split(',') if v.strip()]
    continued_levels = [float(v) for v in args.continued_levels.split(',') if v.strip()]
    if any(not 0 < s <= 1 for s in levels + swap_levels + word_levels + continued_levels):
        ap.error('--levels, --swap-levels, --word-levels, --continued-levels: noise levels in (0, 1]')
    dev = pick_device(args.device)
    vocab = scenes.vocabulary()
    dims = load_dims(args.model, vocab)
    model = load_model(dims, args.weights, dev).float().eval()
    t0 = time.time()
    p = held_out_prompts(0, args.n, vocab, dims.text_len, dev).take(torch.arange(args.n, device=dev))
    ref = opening_eval.reference_areas(p)
    # three blocks of each prompt's opening layout, as prompted and with every object the next shape: the first block is
    # the opening's truth, the first two the continued block's context, the third its truth
    pos = canonical_positions(p)
    clip_px = opening_eval.render_openings(pos, p, frames=3 * BLOCK)
    truth = clip_px[:, :BLOCK]
    clip = scenes.space_to_depth(clip_px)
    clip_next = scenes.space_to_depth(opening_eval.render_openings(pos, dict(p, shape=(p['shape'] + 1) % 3), frames=3 * BLOCK))
    lat, lat_next = clip[:, :, :BLOCK], clip_next[:, :, :BLOCK]
    context, third, third_next = clip[:, :, :2 * BLOCK], clip[:, :, 2 * BLOCK:], clip_next[:, :, 2 * BLOCK:]
    out: Dict[str, object] = {'weights': args.weights, 'prompts': args.n, 'guidance': args.guidance,
                              **({} if args.opening_guidance is None else {'opening guidance': args.opening_guidance}),
                              **({} if interval is None else {'guidance interval (noise levels)': list(interval)}),
                              'ground truth': measure(truth, p, ref)}
    gen = torch.Generator(device='cpu').manual_seed(args.seed)
    with torch.no_grad():
        for s in levels:
            out[f'one-step x0 from s = {s:g}'] = measure(scenes.depth_to_space(x0_estimates(model, p, lat, s, guidance_at(s), gen)), p, ref)
        for s in swap_levels:
            out[f'one-step x0 from the next shape, s = {s:g}'] = measure(
                scenes.depth_to_space(x0_estimates(model, p, lat_next, s, guidance_at(s), gen)), p, ref)
        for s in continued_levels:
            out[f'continued one-step x0 from s = {s:g} (frames 6-8, frames 0-5 true in the cache)'] = measure(
                scenes.depth_to_space(x0_estimates(model, p, third, s, guidance_at(s), gen, context), first_frame=2 * BLOCK), p, ref)
        if continued_levels:
            s = continued_levels[0]
            out[f'continued one-step x0 from the next shape, s = {s:g} (the cache shows the prompted shape)'] = measure(
                scenes.depth_to_space(x0_estimates(model, p, third_next, s, guidance_at(s), gen, context), first_frame=2 * BLOCK), p, ref)
        out['words after the text projection'] = word_vectors(model, vocab)
        out['word following (x0 change projected on the truth change)'] = {
            f's = {s:g}': {w: round(word_following(model, p, w, s, vocab, args.seed), 4) for w in ('shape', 'colour')}
            for s in word_levels}
        last = (args.blocks - 1) * BLOCK  # the first frame of the videos' last block
        if args.blocks > 0:
            video = opening_eval.generate(model, model, p, args.blocks, args.seed, 12, opening_sampler=args.sampler,
                                          opening_steps=args.steps, rest_sampler=args.sampler, rest_steps=args.steps,
                                          guidance=args.guidance, opening_guidance=args.opening_guidance,
                                          guidance_interval=interval)
            px = scenes.depth_to_space(video.float())
            out[f'opening ({args.sampler} {args.steps})'] = measure(px[:, :BLOCK], p, ref)
            out[f'continued, frames {last}-{last + BLOCK - 1}'] = measure(px[:, last:], p, ref)
        if args.blocks > 2:  # two true blocks, then at least one generated
            video = opening_eval.generate(model, model, p, args.blocks, args.seed, 12, rest_sampler=args.sampler,
                                          rest_steps=args.steps, guidance=args.guidance, context=context,
                                          guidance_interval=interval)
            px = scenes.depth_to_space(video.float())
            out['from a true context (frames 0-5 given): frames 6-8'] = measure(px[:, 2 * BLOCK:3 * BLOCK], p, ref)
            out[f'from a true context (frames 0-5 given): frames {last}-{last + BLOCK - 1}'] = measure(px[:, last:], p, ref)
    out['seconds'] = round(time.time() - t0, 1)
    print(json.dumps(out, indent=1))


if __name__ == '__main__':
    main()
