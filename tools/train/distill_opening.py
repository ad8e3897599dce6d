"""Distils the demo model into an OPENING model: the runtime's 4-step re-noising sampler, run from
pure noise with an empty cache, then gives a first block with the prompted objects in it.

    python3 tools/train/distill_opening.py --out $OUT --minutes 3.5

Why (docs/demo-model.md): the loop re-noises with fresh noise between steps, so the first step's x0
estimate from pure noise z decides the layout, and an undistilled flow model's estimate there is
the mean of all openings (background). The student therefore learns a deterministic map
z -> opening at the first step, and to keep and sharpen that opening at the three later steps.

Paired targets (the map must be learnable in minutes by a model with only relative positions):
- for each object slot j of the prompt, a matched-filter field over z: the projection of every
  latent pixel of z onto the latent direction of "object colour minus background colour",
  summed over the 3 frames, smoothed at the object's scale (Gaussian, 1 latent pixel = 4 px),
  unit variance everywhere. Directions are orthogonalised in prompt order (independent fields), and
  a later slot's field is pushed down where earlier slots' fields are high (fewer collisions);
- slot j's object sits at the argmax of its field (outermost latent ring excluded, its centres
  would lie off the frame's valid range) outside the exclusion disc of earlier slots
  (prompt order), refined to sub-latent-pixel precision by a softmax centroid of the 3x3
  neighbourhood (so near-ties between neighbours move the object continuously);
- target = the block rendered by tools/data/scenes.py's geometry at those positions (radius 7,
  the canonical velocity of the slot, frames 0..2), so every target is a real opening.
This is where the teacher's own detector of faint objects at high noise would "see" objects in z,
and it is translation-equivariant, as the architecture is.

Loss (x0 MSE at every inference step, the four shifted timesteps of [1000, 750, 500, 250]):
- step 1: student(z, s=1) -> x0, target the paired opening with its contrast to the background
  doubled (--first-contrast). The loop passes the layout to step 2 only through 0.0625 x0 under
  0.9375 fresh noise: a 7 px object is then a 2-4 sigma matched-filter signal (blue on dark blue
  the weakest), too weak to place it reliably among ~40 places. Step 1's x0 is never shown (only
  the last step's is emitted), so it may carry the layout louder;
- steps 2..4: the sampler's own inputs, x = (1 - s) b + s n with fresh n, where b is the student's
  previous x0 estimate (no gradient through it) or, with probability 0.5, that step's target
  itself; targets of steps 2..4 are the plain opening.
AdamW, warm-up, cosine decay on the time budget, grad clip 1, bf16 autocast, EMA (saved). The word
table (text_encoder.embedding.weight) is frozen: it stays the main model's.

Status: one H100 run of 210 s (991 steps) did NOT give recognisable openings; numbers and what to
try next are in docs/demo-model.md ("Distilling an opening model").

Writes to --out: opening.safetensors (EMA, float32, the same keys as the demo model, checkpointed
every --save-every seconds), distill-log.json, metrics.json, demo-opening.png (student openings
continued by the unchanged main model), teacher-opening.png (the same from the main model alone).
"""
from __future__ import annotations

import argparse
import copy
import json
import math
import os
import time
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F

from common import (  # noqa: E402  (also puts tools/reference and tools/data on sys.path)
    BLOCK, DEFAULT_MODEL_JSON, DEFAULT_WEIGHTS, HELD_OUT_SEED, INFERENCE_STEPS, ROOT, SHIFT, adamw, autocast_args,
    ema_update, freeze, freeze_text, held_out, load_dims, load_model, lr_at, matching_params, optimizer_step, pick_device,
    save_atomic, save_sheet, set_lr, set_tf32,
)
from model import KVCache, WanModel, keep_last_frames, load_weights, shifted_steps  # noqa: E402
import scenes  # noqa: E402

RADIUS = scenes.CANONICAL_RADIUS
SMOOTH_SIGMA = 1.0  # latent pixels (4 px): about the object's scale
PUSH_DOWN = 0.5  # later slot field -= PUSH_DOWN * earlier fields (then renormalised)
EXCLUDE = 4.5  # latent pixels (18 px) around earlier objects
CENTROID_TAU = 0.25

PNG_PROMPTS = [
    'a red circle and a blue square bouncing on a dark green background',
    'a yellow triangle bouncing on a dark blue background',
    'a white square, a magenta circle and a cyan triangle bouncing on a black background',
    'a green circle and a red triangle bouncing on a dark gray background',
    'a cyan circle bouncing on a dark purple background',
    'a blue triangle, a yellow square and a red circle bouncing on a dark gray background',
]

OBJ_RGB = torch.tensor(list(scenes.OBJECT_COLOURS.values()), dtype=torch.float32)  # [7, 3]
BG_RGB = torch.tensor(list(scenes.BACKGROUNDS.values()), dtype=torch.float32)  # [5, 3]


# ----------------------------------------------------------------------------------------------
# Prompts as arrays (so a whole batch of targets is made on the GPU without Python loops)
# ----------------------------------------------------------------------------------------------

class PromptSet:
    """count [N], colour/shape index [N, 3] (slots past count: 0), background index [N], tokens [N, textLen]."""

    def __init__(self, scene_list: Sequence[scenes.Scene], vocab, text_len: int, device):
        n = len(scene_list)
        colour_names, bg_names = list(scenes.OBJECT_COLOURS), list(scenes.BACKGROUNDS)
        count = np.zeros(n, dtype=np.int64)
        colour = np.zeros((n, 3), dtype=np.int64)
        shape = np.zeros((n, 3), dtype=np.int64)
        bg = np.zeros(n, dtype=np.int64)
        ids = np.zeros((n, text_len), dtype=np.int64)
        lens = np.zeros(n, dtype=np.int64)
        for i, s in enumerate(scene_list):
            count[i] = len(s.colours)
            for j, (c, sh) in enumerate(zip(s.colours, s.shapes)):
                colour[i, j] = colour_names.index(c)
                shape[i, j] = scenes.SHAPES.index(sh)
            bg[i] = bg_names.index(s.background)
            tok = scenes.tokenize(s.caption(), vocab)[:text_len]
            ids[i, :len(tok)] = tok
            lens[i] = len(tok)
        self.captions = [s.caption() for s in scene_list]
        self.count, self.colour, self.shape, self.bg, self.ids, self.lens = (
            torch.from_numpy(a).to(device) for a in (count, colour, shape, bg, ids, lens))
        self.valid = torch.arange(3, device=device)[None, :] < self.count[:, None]  # [N, 3]
        vel = np.zeros((n, 3, 2), dtype=np.float32)
        for i in range(n):
            for j, (_, _, vx, vy) in enumerate(scenes.CANONICAL_LAYOUT[int(count[i])]):
                vel[i, j] = (vx, vy)
        self.velocity = torch.from_numpy(vel).to(device)

    def take(self, idx: torch.Tensor) -> Dict[str, torch.Tensor]:
        return {k: getattr(self, k)[idx] for k in ('count', 'colour', 'shape', 'bg', 'ids', 'lens', 'valid', 'velocity')}


def random_prompts(seed: int, n: int, vocab, text_len: int, device) -> PromptSet:
    rng = np.random.default_rng(seed)
    return PromptSet([scenes.sample_scene(rng) for _ in range(n)], vocab, text_len, device)


# ----------------------------------------------------------------------------------------------
# Paired targets: z -> layout -> rendered opening
# ----------------------------------------------------------------------------------------------

def colour_directions(p: Dict[str, torch.Tensor]) -> torch.Tensor:
    """Latent direction of each slot's 'object minus background' (space-to-depth tiles a pixel's RGB
    16 times), orthogonalised in slot order. [B, 3, 48] unit vectors (unused slots: anything)."""
    dev = p['colour'].device
    diff = OBJ_RGB.to(dev)[p['colour']] - BG_RGB.to(dev)[p['bg']][:, None, :]  # [B, 3, 3] rgb
    d = diff.repeat(1, 1, 16)  # channel c = (dy*4 + dx)*3 + rgb
    out = []
    for j in range(3):
        v = d[:, j]
        for u in out:
            v = v - (v * u).sum(-1, keepdim=True) * u
        out.append(v / v.norm(dim=-1, keepdim=True).clamp_min(1e-6))
    return torch.stack(out, dim=1)


def gaussian_kernel(sigma: float, device) -> torch.Tensor:
    r = int(math.ceil(2.5 * sigma))
    x = torch.arange(-r, r + 1, dtype=torch.float32, device=device)
    g = torch.exp(-x * x / (2 * sigma * sigma))
    return (g[:, None] * g[None, :])[None, None]  # [1, 1, k, k]


def slot_fields(z: torch.Tensor, p: Dict[str, torch.Tensor]) -> torch.Tensor:
    """z [B, 48, 3, H, W] -> unit-variance fields [B, 3, H, W] (one per slot)."""
    b, _, nf, h, w = z.shape
    dirs = colour_directions(p)
    g = torch.einsum('bkc,bcfhw->bkhw', dirs, z.float()) / math.sqrt(nf)  # N(0, 1) per latent pixel
    ker = gaussian_kernel(SMOOTH_SIGMA, z.device)
    pad = ker.shape[-1] // 2
    sm = F.conv2d(g.reshape(b * 3, 1, h, w), ker, padding=pad).reshape(b, 3, h, w)
    norm = F.conv2d(torch.ones(1, 1, h, w, device=z.device), ker * ker, padding=pad).sqrt()
    f = sm / norm  # unit variance at every position, borders included
    f1 = f[:, 0]
    f2 = (f[:, 1] - PUSH_DOWN * f1) / math.sqrt(1 + PUSH_DOWN ** 2)
    f3 = (f[:, 2] - PUSH_DOWN * (f1 + f[:, 1])) / math.sqrt(1 + 2 * PUSH_DOWN ** 2)
    return torch.stack([f1, f2, f3], dim=1)


def layout_from_noise(z: torch.Tensor, p: Dict[str, torch.Tensor]) -> torch.Tensor:
    """Object centres in pixels [B, 3, 2] (x, y): argmax of each slot's field outside earlier slots'
    exclusion discs, refined by the softmax centroid of its 3x3 neighbourhood."""
    fields = slot_fields(z, p)
    b, _, h, w = fields.shape
    dev = z.device
    yy, xx = torch.meshgrid(torch.arange(h, device=dev, dtype=torch.float32),
                            torch.arange(w, device=dev, dtype=torch.float32), indexing='ij')
    grid = torch.stack([xx.reshape(-1), yy.reshape(-1)], dim=-1)  # [HW, 2] (x, y) latent pixel
    offs = torch.tensor([(dx, dy) for dy in (-1, 0, 1) for dx in (-1, 0, 1)], device=dev, dtype=torch.float32)  # [9, 2]
    blocked = torch.zeros(b, h * w, dtype=torch.bool, device=dev)
    # centres on the outermost latent ring would be clamped off the field's peak: not candidates
    rim = (grid[:, 0] < 1) | (grid[:, 0] > w - 2) | (grid[:, 1] < 1) | (grid[:, 1] > h - 2)
    centres = []
    for j in range(3):
        f = fields[:, j].reshape(b, -1)
        idx = f.masked_fill(blocked | rim[None], float('-inf')).argmax(dim=1)  # [B]
        peak = grid[idx]  # [B, 2]
        nb = peak[:, None, :] + offs[None]  # [B, 9, 2]
        inside = (nb[..., 0] >= 0) & (nb[..., 0] < w) & (nb[..., 1] >= 0) & (nb[..., 1] < h)
        nb_idx = (nb[..., 1].clamp(0, h - 1) * w + nb[..., 0].clamp(0, w - 1)).long()
        vals = torch.gather(f, 1, nb_idx).masked_fill(~inside, float('-inf'))
        wgt = torch.softmax(vals / CENTROID_TAU, dim=1)
        c = (wgt[..., None] * nb).sum(dim=1)  # latent pixel coordinates
        centres.append(c)
        near = (grid[None] - c[:, None]).norm(dim=-1) < EXCLUDE  # [B, HW]
        blocked = blocked | (near & p['valid'][:, j:j + 1])
    lat = torch.stack(centres, dim=1)  # [B, 3, 2]
    px = (lat + 0.5) * (scenes.SIZE / w)
    return px.clamp(RADIUS, scenes.SIZE - RADIUS)


def render_openings(pos: torch.Tensor, p: Dict[str, torch.Tensor], frames: int = BLOCK) -> torch.Tensor:
    """scenes.render's geometry for arrays: pixels [B, T, 64, 64, 3] (0..255, rounded)."""
    dev = pos.device
    b = pos.shape[0]
    radius = torch.full((b, 3), RADIUS, device=dev)
    t = torch.arange(frames, dtype=torch.float32, device=dev)[None, None, :].expand(b, 1, frames)
    return scenes.draw(pos, p['velocity'], radius, p['shape'], p['valid'], BG_RGB.to(dev)[p['bg']],
                       OBJ_RGB.to(dev)[p['colour']], t)['pixels']


def paired_targets(z: torch.Tensor, p: Dict[str, torch.Tensor]) -> torch.Tensor:
    return scenes.space_to_depth(render_openings(layout_from_noise(z, p), p))


# ----------------------------------------------------------------------------------------------
# Sampling (the loop of docs/model.md), batched
# ----------------------------------------------------------------------------------------------

def step_sigmas(count: int = len(INFERENCE_STEPS)) -> List[float]:
    """The runtime's shifted sigmas (src/loop/timesteps.ts): the configured 4 steps, else `count`
    evenly spaced steps from 1000."""
    return sigmas_of(INFERENCE_STEPS if count == len(INFERENCE_STEPS) else [1000 * (1 - i / count) for i in range(count)])


def sigmas_of(steps: Sequence[float]) -> List[float]:
    """The loop's noise levels of timesteps on Wan's 0..1000 scale: shifted, on the 0..1 scale."""
    return [t / 1000 for t in shifted_steps(steps, SHIFT)]


def guidance_at(guidance: float, interval: Optional[Tuple[float, float]], s: float) -> float:
    """The guidance of a step at noise level s: `guidance` inside the interval (lo, hi) (None: everywhere), 1 outside."""
    return guidance if interval is None or interval[0] <= s <= interval[1] else 1.0


def guided(v_cond: torch.Tensor, v_null: torch.Tensor, guidance: float) -> torch.Tensor:
    """Classifier-free guidance: v_null + guidance * (v_cond - v_null) (1 = the conditional flow)."""
    return v_null + guidance * (v_cond - v_null)


def empty_prompt_kv(model: WanModel, batch: int, device) -> list:
    """The empty prompt's cross K/V (lengths 0: an all-zero text context), [batch] rows."""
    dims = model.dims
    ids = torch.zeros(batch, dims.text_len, dtype=torch.long, device=device)
    return model.cross_kv(model.encode_text_batch(ids, torch.zeros(batch, dtype=torch.long, device=device)))


@torch.no_grad()
def sample_block(model: WanModel, xkv, noise: torch.Tensor, fpos: torch.Tensor, cache, gen: torch.Generator,
                 sampler: str = 'renoise', count: int = len(INFERENCE_STEPS), guidance: float = 1.0,
                 xkv_null=None, guidance_interval: Optional[Tuple[float, float]] = None) -> torch.Tensor:
    """The runtime's block sampler (re-noising, or the deterministic Euler 'ode'); noise [B, C, F, H, W].
    guidance != 1: each step's flow is guided() between the prompt's and the empty prompt's (xkv_null)
    flow of the same model, input and cache (one extra forward a step); guidance_interval (lo, hi): only at the steps
    whose noise level s lies in it, the others take the prompt's flow alone (guidance in a limited interval)."""
    if guidance != 1.0 and xkv_null is None:
        raise ValueError('sample_block: guidance != 1 needs the empty prompt\'s cross K/V (xkv_null)')
    b, nf = noise.shape[0], noise.shape[2]
    x, x0 = noise, noise
    sig = step_sigmas(count)
    for k, s in enumerate(sig):
        tt = torch.full((b, nf), s * 1000, device=noise.device)
        v = model(x, tt, fpos, cross_kv=xkv, cache=cache).flow
        g = guidance_at(guidance, guidance_interval, s)
        if g != 1.0:
            v = guided(v, model(x, tt, fpos, cross_kv=xkv_null, cache=cache).flow, g)
        x0 = x - s * v
        if k < len(sig) - 1:
            if sampler == 'ode':
                x = x + (sig[k + 1] - s) * v
            else:
                fresh = torch.randn(noise.shape, generator=gen).to(noise.device)
                x = (1 - sig[k + 1]) * x0 + sig[k + 1] * fresh
    return x0


@torch.no_grad()
def generate(opening: WanModel, main: WanModel, p: Dict[str, torch.Tensor], blocks: int, seed: int, window: int = 12,
             opening_sampler: str = 'renoise', opening_steps: int = len(INFERENCE_STEPS),
             rest_sampler: str = 'renoise', rest_steps: int = len(INFERENCE_STEPS), guidance: float = 1.0,
             context: Optional[torch.Tensor] = None, opening_guidance: Optional[float] = None,
             guidance_interval: Optional[Tuple[float, float]] = None) -> torch.Tensor:
    """First block from `opening` (empty cache, sample_block's `opening_sampler` with `opening_steps`
    steps), the rest from `main` (`rest_sampler`, `rest_steps`); every clean pass (the K/V that enter
    the cache) is the main model's, with the prompt; the cache keeps the last window - 3 frames. One
    CPU generator (seed) draws all the noise. guidance: classifier-free guidance of every denoising
    step of every block (1 = none); opening_guidance, if given, that of the first block instead; guidance_interval:
    sample_block's, for every block.
    context: latents [B, C, k*3, H, W] given as the first k blocks (written to the cache by clean
    passes, no noise drawn for them); the blocks after them are sampled by `main`. Returns latents
    [B, C, blocks*3, H, W], the given blocks included."""
    dims = main.dims
    dev = next(main.parameters()).device
    b = p['ids'].shape[0]
    gen = torch.Generator(device='cpu').manual_seed(seed)
    ctx = main.encode_text_batch(p['ids'], p['lens'])
    xkv_main = main.cross_kv(ctx)
    xkv_open = xkv_main if opening is main else opening.cross_kv(opening.encode_text_batch(p['ids'], p['lens']))
    first_guidance = guidance if opening_guidance is None else opening_guidance
    null_main = empty_prompt_kv(main, b, dev) if guidance != 1.0 or first_guidance != 1.0 else None
    null_open = None
    if first_guidance != 1.0:
        null_open = null_main if opening is main else empty_prompt_kv(opening, b, dev)
    shape = (b, dims.latent_channels, BLOCK, dims.latent_height, dims.latent_width)
    cache = KVCache.empty(dims, b, dev)
    given = 0 if context is None else context.shape[2] // BLOCK
    out = []
    for bi in range(blocks):
        fpos = torch.arange(bi * BLOCK, (bi + 1) * BLOCK, device=dev)
        if bi < given:
            x0 = context[:, :, bi * BLOCK:(bi + 1) * BLOCK].to(dev)
        elif bi == 0:
            noise = torch.randn(shape, generator=gen).to(dev)
            x0 = sample_block(opening, xkv_open, noise, fpos, None, gen, opening_sampler, opening_steps, first_guidance,
                              null_open, guidance_interval)
        else:
            noise = torch.randn(shape, generator=gen).to(dev)
            x0 = sample_block(main, xkv_main, noise, fpos, cache, gen, rest_sampler, rest_steps, guidance, null_main,
                              guidance_interval)
        out.append(x0)
        if bi == blocks - 1:
            break
        cache = keep_last_frames(main.cache_clean_block(x0, fpos, xkv_main, cache), window - BLOCK, dims)
    return torch.cat(out, dim=2)


# ----------------------------------------------------------------------------------------------
# A simple colour detector (nearest palette colour within a distance)
# ----------------------------------------------------------------------------------------------

def reference_areas(p: Dict[str, torch.Tensor]) -> torch.Tensor:
    """Pixel area of each slot's object when drawn alone at radius 7 (per shape): [B, 3]."""
    dev = p['shape'].device
    lone = {k: v.clone() for k, v in p.items()}
    areas = torch.zeros(p['shape'].shape, device=dev)
    centre = torch.full((p['shape'].shape[0], 3, 2), 32.0, device=dev)
    for j in range(3):
        lone['valid'] = torch.zeros_like(p['valid'])
        lone['valid'][:, j] = p['valid'][:, j]
        px = render_openings(centre, lone, 1)[:, 0]
        areas[:, j] = classify_mask(px, p['colour'][:, j]).sum(dim=(1, 2)).float()
    return areas


def classify(px: torch.Tensor) -> torch.Tensor:
    """px [..., 3] (0..255) -> class: 0..6 object colour, 7..11 background, -1 neither (distance > 60)."""
    pal = torch.cat([OBJ_RGB, BG_RGB]).to(px.device)
    d = (px[..., None, :] - pal).norm(dim=-1)
    best = d.argmin(dim=-1)
    return torch.where(d.min(dim=-1).values <= 60, best, torch.full_like(best, -1))


def classify_mask(px: torch.Tensor, colour: torch.Tensor) -> torch.Tensor:
    """px [B, H, W, 3], colour [B] -> bool [B, H, W]."""
    return classify(px) == colour[:, None, None]


SHAPE_AREA_PER_R2 = torch.tensor([math.pi, (2 * 0.85) ** 2, 3 * math.sqrt(3) / 4 * 1.4 ** 2])  # circle, square, triangle


def shape_ious(m: torch.Tensor) -> torch.Tensor:
    """m [..., H, W] (0/1) -> [..., 3]: intersection over union of the mask with each trained shape (scenes.draw's
    geometry: circle, axis-aligned square, upward triangle) of the mask's own area centred on its centroid, so only the
    outline counts (the runtime's sinkstream eval measures the same on the largest region of the colour). An empty
    mask gives 0."""
    dev = m.device
    c = torch.arange(scenes.SIZE, dtype=torch.float32, device=dev) + 0.5
    a = m.sum(dim=(-2, -1))
    mx = (m * c).sum(dim=(-2, -1)) / a.clamp_min(1)
    my = (m * c[:, None]).sum(dim=(-2, -1)) / a.clamp_min(1)
    dx = c - mx[..., None, None]  # [..., 1, W]
    dy = c[:, None] - my[..., None, None]  # [..., H, 1]
    out = []
    for k, per_r2 in enumerate(SHAPE_AREA_PER_R2.tolist()):
        r = (a / per_r2).sqrt()[..., None, None]
        if k == 0:
            sdf = (dx * dx + dy * dy).sqrt() - r
        elif k == 1:
            sdf = torch.maximum(dx.abs(), dy.abs()) - 0.85 * r
        else:
            sdf = torch.maximum(torch.maximum(dy, 0.8660254 * dx - 0.5 * dy), -0.8660254 * dx - 0.5 * dy) - 0.7 * r
        t = (sdf <= 0).float()
        inter = (m * t).sum(dim=(-2, -1))
        union = torch.maximum(m, t).sum(dim=(-2, -1))
        out.append(torch.where(a > 0, inter / union.clamp_min(1), torch.zeros_like(a)))
    return torch.stack(out, dim=-1)


def detect_objects(px: torch.Tensor, p: Dict[str, torch.Tensor], ref_area: torch.Tensor) -> Dict[str, torch.Tensor]:
    """px [B, T, 64, 64, 3] frames of one block, per prompted object slot (3 a clip): `ratio` and `spread` [B, 3] (mean
    colour-mask area over frames against its drawn area `ref_area`; RMS distance of its pixels from their centroid),
    `present` [B, 3] (a valid slot whose ratio is >= 0.4), `best_shape` [B, 3, T] (the trained shape its mask matches best, each
    frame), `shape_right` and `shape_iou` [B, 3] (the share of frames whose best match is the prompted shape; the IoU
    with the prompted shape); per clip `stray` (pixels a frame of colours the prompt does not name) and `bg_share`."""
    b, nt = px.shape[:2]
    cls = classify(px)  # [B, T, H, W]
    c = torch.arange(scenes.SIZE, dtype=torch.float32, device=px.device) + 0.5
    areas, spreads, best_shape, shape_right, shape_iou = [], [], [], [], []
    for j in range(3):
        m = (cls == p['colour'][:, j, None, None, None]).float()
        a = m.sum(dim=(2, 3))  # [B, T]
        ious = shape_ious(m)  # [B, T, 3]
        best = ious.argmax(dim=-1)  # [B, T]
        best_shape.append(best)
        shape_right.append((best == p['shape'][:, j, None]).float().mean(dim=1))
        shape_iou.append(torch.gather(ious, 2, p['shape'][:, j, None, None].expand(-1, nt, 1))[..., 0].mean(dim=1))
        mx = (m * c[None, None, None, :]).sum(dim=(2, 3)) / a.clamp_min(1)
        my = (m * c[None, None, :, None]).sum(dim=(2, 3)) / a.clamp_min(1)
        var = (m * ((c[None, None, None, :] - mx[..., None, None]) ** 2 + (c[None, None, :, None] - my[..., None, None]) ** 2)).sum(dim=(2, 3)) / a.clamp_min(1)
        areas.append(a.mean(dim=1))
        spreads.append(var.sqrt().mean(dim=1))
    ratio = torch.stack(areas, dim=1) / ref_area.clamp_min(1)  # [B, 3]
    valid = p['valid']
    named = torch.zeros(b, 7, dtype=torch.bool, device=px.device)
    named.scatter_(1, p['colour'], valid)
    objcls = cls.clamp(0, 6)
    stray = ((cls >= 0) & (cls <= 6) & ~torch.gather(named, 1, objcls.reshape(b, -1)).reshape(cls.shape)).float().sum(dim=(2, 3)).mean(dim=1)
    return {
        'ratio': ratio,
        'present': (ratio >= 0.4) & valid,
        'spread': torch.stack(spreads, dim=1),
        'best_shape': torch.stack(best_shape, dim=1),  # [B, 3, T]
        'shape_right': torch.stack(shape_right, dim=1),
        'shape_iou': torch.stack(shape_iou, dim=1),
        'stray': stray,
        'bg_share': (cls == (7 + p['bg'])[:, None, None, None]).float().mean(dim=(1, 2, 3)),
    }


def detect(px: torch.Tensor, p: Dict[str, torch.Tensor], ref_area: torch.Tensor) -> Dict[str, float]:
    """px [B, T, 64, 64, 3] frames of one block: detect_objects summarised over the prompted objects (presence, area
    ratio, spread and shape of the present ones) and the clips (stray colours, background share)."""
    return summarise_objects(detect_objects(px, p, ref_area), p['valid'])


def summarise_objects(d: Dict[str, torch.Tensor], valid: torch.Tensor) -> Dict[str, float]:
    """detect's numbers from detect_objects' tensors."""
    present, ratio = d['present'], d['ratio']
    return {
        'objects_present': float(present.sum() / valid.sum().clamp_min(1)),  # area >= 40% of the object's drawn area
        'clips_all_present': float((present | ~valid).all(dim=1).float().mean()),
        'area_ratio_median': float(ratio[valid].median()),
        'area_ratio_p10': float(ratio[valid].quantile(0.1)),
        'area_ratio_p90': float(ratio[valid].quantile(0.9)),
        'spread_px_median_present': float(d['spread'][present].median()) if present.any() else float('nan'),
        'stray_colour_px_per_frame': float(d['stray'].mean()),
        # over the present objects: the share of frames whose colour mask is closest to the prompted shape, and the IoU
        'shape_accuracy_present': float(d['shape_right'][present].mean()) if present.any() else float('nan'),
        'shape_iou_median_present': float(d['shape_iou'][present].median()) if present.any() else float('nan'),
        'background_share': float(d['bg_share'].mean()),
    }


def recovery_scenes(n: int) -> List[scenes.Scene]:
    """n scenes for recovery(): numpy seeds from HELD_OUT_SEED (parameters no training run drew) whose captions are
    held out (never trained on by the students)."""
    out: List[scenes.Scene] = []
    i = 0
    while len(out) < n:
        sc = scenes.sample_scene(np.random.default_rng(HELD_OUT_SEED + i))
        i += 1
        if held_out(sc.caption()):
            out.append(sc)
    return out


def component_labels(mask: torch.Tensor) -> torch.Tensor:
    """mask bool [..., H, W] -> long [..., H, W]: each pixel's 4-connected component's label (1 + the largest flat index
    of its pixels; 0 off the mask), spread by max-pooling until the labels settle."""
    shape = mask.shape
    h, w = shape[-2:]
    m = mask.reshape(-1, 1, h, w)
    ids = torch.arange(1, h * w + 1, device=mask.device, dtype=torch.float32).reshape(1, 1, h, w)
    lab = torch.where(m, ids, torch.zeros_like(ids))
    cross = torch.tensor([[0, 1, 0], [1, 1, 1], [0, 1, 0]], dtype=torch.bool, device=mask.device)
    while True:
        pad = torch.nn.functional.pad(lab, (1, 1, 1, 1))
        win = pad.unfold(2, 3, 1).unfold(3, 3, 1)[..., cross]  # [N, 1, H, W, 5]: the pixel and its 4 neighbours
        nxt = torch.where(m, win.amax(dim=-1), lab)
        if torch.equal(nxt, lab):
            break
        lab = nxt
    return lab.long().reshape(shape)


# A colour's 4-connected region of at least this many pixels counts as an object (the runtime's evaluation has the same
# floor).
MIN_OBJECT_PX = 12


def component_centroids(mask: torch.Tensor, min_px: int = MIN_OBJECT_PX,
                        labels: Optional[torch.Tensor] = None) -> Tuple[torch.Tensor, torch.Tensor]:
    """mask bool [..., H, W] -> (centroids [..., H * W, 2] (y, x), kept [..., H * W]): its 4-connected components
    (component_labels(mask), or `labels` where the caller has them), a slot per possible label, kept where the
    component has >= min_px pixels."""
    shape = mask.shape
    h, w = shape[-2:]
    flat = (component_labels(mask) if labels is None else labels).reshape(-1, h * w)
    ys, xs = torch.meshgrid(torch.arange(h, device=mask.device), torch.arange(w, device=mask.device), indexing='ij')
    sums = torch.zeros(flat.shape[0], h * w + 1, 3, device=mask.device)
    sums.scatter_add_(1, flat[..., None].expand(-1, -1, 3),
                      torch.stack([torch.ones(h * w, device=mask.device), ys.flatten().float(), xs.flatten().float()],
                                  dim=-1).expand(flat.shape[0], -1, -1))
    count = sums[:, 1:, 0]
    centroids = sums[:, 1:, 1:] / count.clamp_min(1)[..., None]
    return centroids.reshape(*shape[:-2], h * w, 2), (count >= min_px).reshape(*shape[:-2], h * w)


def components(mask: torch.Tensor, min_px: int = MIN_OBJECT_PX,
               labels: Optional[torch.Tensor] = None) -> torch.Tensor:
    """mask bool [..., H, W] -> [...]: its 4-connected components of at least min_px pixels (labels: its
    component_labels if the caller has them)."""
    return component_centroids(mask, min_px, labels)[1].sum(dim=-1)


def prompted_components(px: torch.Tensor, p: Dict[str, torch.Tensor], min_px: int = MIN_OBJECT_PX,
                        labels: Optional[torch.Tensor] = None) -> torch.Tensor:
    """px [B, T, H, W, 3], p['colour'] [B, 3] -> [B, T, 3]: per frame, each prompted slot's 4-connected components
    of its colour of at least min_px pixels (slots past the prompt's objects count colour 0's: mask with p['valid']).
    labels: [B, T, 3, H, W], each slot's component_labels, if the caller has them."""
    cls = classify(px)
    return torch.stack([components(cls == p['colour'][:, j, None, None, None], min_px,
                                   None if labels is None else labels[:, :, j]) for j in range(3)], dim=2)


def copy_beside_truth(centroids: torch.Tensor, kept: torch.Tensor, truth: torch.Tensor, radius: float = 6.0) -> torch.Tensor:
    """centroids, kept: component_centroids of a generated frame's pixels of one object's colour; truth: bool [..., H, W],
    the ground truth's pixels of that colour -> bool [...]: the frame draws it more than once (components of >= 12 px)
    and one of them is centred within radius px of where the object truly is (the centroid of truth), i.e. the object
    kept in its place and drawn again apart."""
    h, w = truth.shape[-2:]
    ys, xs = torch.meshgrid(torch.arange(h, device=truth.device), torch.arange(w, device=truth.device), indexing='ij')
    area = truth.sum(dim=(-2, -1)).float()
    where = torch.stack([(truth * ys).sum(dim=(-2, -1)), (truth * xs).sum(dim=(-2, -1))], dim=-1) / area.clamp_min(1)[..., None]
    near = ((centroids - where[..., None, :]).norm(dim=-1) <= radius) & kept
    return (kept.sum(dim=-1) > 1) & near.any(dim=-1) & (area > 0)


def scene_copy(sc: scenes.Scene, j: int, rng: np.random.Generator) -> scenes.Scene:
    """A scene of the object j alone, drawn a second time: its colour, shape, size and speed, a start drawn uniformly
    inside the frame and a direction drawn uniformly (the copy recovery's copied context paints over the frames)."""
    r = sc.radii[j]
    start = tuple(float(v) for v in r + (scenes.SIZE - 2 * r) * rng.random(2))
    speed = float(np.hypot(*sc.velocity[j]))
    ang = 2 * np.pi * float(rng.random())
    return scenes.Scene(sc.background, [sc.colours[j]], [sc.shapes[j]], [r], [start],
                        [(speed * np.cos(ang), speed * np.sin(ang))])


def scene_without(sc: scenes.Scene, j: int) -> scenes.Scene:
    """The scene with its object j left out (the others keep their paths)."""
    keep = [k for k in range(len(sc.colours)) if k != j]
    return scenes.Scene(sc.background, [sc.colours[k] for k in keep], [sc.shapes[k] for k in keep],
                        [sc.radii[k] for k in keep], [sc.start[k] for k in keep], [sc.velocity[k] for k in keep])


@torch.no_grad()
def recovery(model: WanModel, scene_list: Sequence[scenes.Scene], vocab, seed: int, sampler: str = 'ode',
             steps: int = 16, guidance: float = 1.0, window: int = 12, context_blocks: int = 3,
             generated_blocks: int = 3, blocks_out: Optional[Dict[str, torch.Tensor]] = None,
             faded: Sequence[float] = (), copied: Optional[int] = None) -> Dict[str, float]:
    """Does the model draw a prompted object its context has lost? Each scene's first context_blocks blocks are given
    as ground truth (clean passes into the cache, as the runtime writes generated blocks), once whole and once with one
    prompted object (slot `i % count` of scene i) left out of every context frame; then generated_blocks blocks are
    generated with the block sampler. Returns the share of clips whose erased object is present (the detector's area
    ratio >= 0.4) in the first and in the last generated block, and the same for that object with nothing erased.
    faded (shares k): also contexts where that object is faded to k of its strength (k x the whole frame + (1 - k) x the
    erased one); for every context also the mean number of extra copies of that object's colour a generated frame
    (its components of >= 12 px beyond one, by classify: the runtime's "objects drawn twice" with this module's colour
    threshold), and the share of the frames with extra copies where one of them is the object where it truly is
    (copy_beside_truth: kept in its place and drawn again apart, not two new ones elsewhere). copied (a context block):
    also a context where that object is drawn a second time from that block of the context on (scene_copy: its own
    start and direction; 0: in every context frame, 1: the first block shows it once, as train_teacher's --context-copy
    does by default), and the same copies measure for every context: does the model continue a copy its context shows?
    One CPU generator (seed) draws the noise; every context gets the same noise. blocks_out (a dict), if given, receives
    each context's generated frames (pixels [B, T, 64, 64, 3])."""
    dev = next(model.parameters()).device
    n = len(scene_list)
    p = PromptSet(scene_list, vocab, model.dims.text_len, dev).take(torch.arange(n, device=dev))
    which = torch.tensor([i % len(sc.colours) for i, sc in enumerate(scene_list)], device=dev)
    erased_scenes = [scene_without(sc, int(which[i])) for i, sc in enumerate(scene_list)]
    frames = context_blocks * BLOCK
    only = dict(p, valid=torch.nn.functional.one_hot(which, 3).bool() & p['valid'])
    ref = reference_areas(p)
    out: Dict[str, float] = {}
    whole_px = scenes.render(scene_list, frames)['pixels']
    whole = scenes.space_to_depth(whole_px)
    gone = scenes.space_to_depth(scenes.render(erased_scenes, frames)['pixels'])
    contexts = [('nothing erased', whole), ('erased', gone)] + [(f'faded to {k:g}', k * whole + (1 - k) * gone)
                                                                for k in faded]
    if copied is not None:
        if not 0 <= copied < context_blocks:
            raise ValueError(f'copied: expected a context block, 0..{context_blocks - 1}, got {copied}')
        rng = np.random.default_rng(seed)
        copy_px = scenes.render([scene_copy(sc, int(which[i]), rng) for i, sc in enumerate(scene_list)], frames)['pixels']
        bare_px = scenes.render([scenes.Scene(sc.background, [], [], [], [], []) for sc in scene_list], frames)['pixels']
        copy_px[:, :copied * BLOCK] = bare_px[:, :copied * BLOCK]  # no copy before block `copied`
        contexts.append(('copied', scenes.space_to_depth(scenes.paint_over(whole_px, copy_px, bare_px))))
    copies = bool(faded) or copied is not None
    colour = p['colour'].gather(1, which[:, None])[:, 0]
    truth = None  # the object's pixels in the generated frames' ground truth, the same for every context
    if copies:
        truth_px = scenes.render(scene_list, frames + generated_blocks * BLOCK)['pixels'][:, frames:].to(dev)
        truth = classify(truth_px) == colour[:, None, None, None]
    for name, ctx in contexts:
        lat = generate(model, model, p, context_blocks + generated_blocks, seed, window, opening_sampler=sampler,
                       opening_steps=steps, rest_sampler=sampler, rest_steps=steps, guidance=guidance, context=ctx)
        px = scenes.depth_to_space(lat[:, :, frames:].float(), first_frame=frames)
        if blocks_out is not None:
            blocks_out[name] = px
        for label, block in (('first generated block', px[:, :BLOCK]), ('last generated block', px[:, -BLOCK:])):
            out[f'{name}: that object present, {label}'] = detect(block, only, ref)['objects_present']
        if copies:
            centroids, kept = component_centroids(classify(px) == colour[:, None, None, None])
            found = kept.sum(dim=-1)
            out[f'{name}: that object drawn twice, extra copies a frame'] = float((found - 1).clamp_min(0).float().mean())
            beside = copy_beside_truth(centroids, kept, truth)
            out[f'{name}: frames with copies where one is it, where it is'] = float(beside.sum() / (found > 1).sum().clamp_min(1))
    return out


def to_pixels(latent: torch.Tensor) -> torch.Tensor:
    return scenes.depth_to_space(latent.float().cpu())  # [B, T, 64, 64, 3]


save_grid = save_sheet  # the PNG contact sheet (tools/train/common.py)


def png_prompts(vocab, text_len: int, device, seeds: int) -> PromptSet:
    lst = []
    for cap in PNG_PROMPTS:
        sc = scenes.parse_caption(cap)
        lst += [sc] * seeds
    return PromptSet(lst, vocab, text_len, device)


def evaluate(opening: WanModel, main: WanModel, evalset: PromptSet, ref: torch.Tensor, blocks: int, seed: int,
             **sampler) -> Dict[str, Dict[str, float]]:
    p = evalset.take(torch.arange(evalset.count.shape[0], device=evalset.count.device))
    lat = generate(opening, main, p, blocks, seed, **sampler)
    px = scenes.depth_to_space(lat.float())
    res = {'opening (frames 0-2)': detect(px[:, :BLOCK], p, ref)}
    if blocks > 1:
        last = (blocks - 1) * BLOCK
        res[f'continued, frames {last}-{last + BLOCK - 1}'] = detect(px[:, last:last + BLOCK], p, ref)
    return res


# ----------------------------------------------------------------------------------------------
# Training
# ----------------------------------------------------------------------------------------------

def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument('--model', default=DEFAULT_MODEL_JSON)
    ap.add_argument('--weights', default=DEFAULT_WEIGHTS)
    ap.add_argument('--out', required=True)
    ap.add_argument('--minutes', type=float, default=3.5)
    ap.add_argument('--batch', type=int, default=256)
    ap.add_argument('--lr', type=float, default=5e-4)
    ap.add_argument('--warmup', type=int, default=100)
    ap.add_argument('--ema', type=float, default=0.995)
    ap.add_argument('--first-weight', type=float, default=1.0, help='loss weight of the first step (others 1)')
    ap.add_argument('--first-contrast', type=float, default=2.0, help="step 1's target: background + this x (opening - background)")
    ap.add_argument('--target-input', type=float, default=0.5, help='probability that a later step re-noises the target instead of the previous estimate')
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--prompts', type=int, default=20000, help='training prompt pool size')
    ap.add_argument('--eval-n', type=int, default=256)
    ap.add_argument('--eval-blocks', type=int, default=6)
    ap.add_argument('--png-blocks', type=int, default=8)
    ap.add_argument('--save-every', type=float, default=40.0, help='seconds between checkpoints')
    ap.add_argument('--log-every', type=int, default=50)
    ap.add_argument('--device', default=None)
    ap.add_argument('--eval-only', default=None, metavar='WEIGHTS',
                    help="no training: evaluate these opening weights ('main' = the main model) and exit")
    ap.add_argument('--opening-sampler', default='renoise', choices=['renoise', 'ode'], help='with --eval-only')
    ap.add_argument('--opening-steps', type=int, default=len(INFERENCE_STEPS), help='with --eval-only')
    args = ap.parse_args()

    t_start = time.time()
    os.makedirs(args.out, exist_ok=True)
    dev = pick_device(args.device)
    set_tf32(dev, True)
    vocab = scenes.vocabulary()
    dims = load_dims(args.model, vocab)
    torch.manual_seed(args.seed)
    teacher = freeze(load_model(dims, args.weights, dev))
    student = copy.deepcopy(teacher).train()
    model_p = freeze_text(student)  # the word table stays the main model's, so one text context serves both models
    ema = copy.deepcopy(teacher).eval()
    ema_p = matching_params(ema, student)

    pool = random_prompts(args.seed + 1, args.prompts, vocab, dims.text_len, dev)
    evalset = random_prompts(10_000 + args.seed, args.eval_n, vocab, dims.text_len, dev)
    ref = reference_areas(evalset.take(torch.arange(args.eval_n, device=dev)))
    pngset = png_prompts(vocab, dims.text_len, dev, 2)
    metrics: Dict[str, object] = {'args': vars(args)}
    png_cols = [0, 1, 2] + list(range(5, args.png_blocks * BLOCK, 3))

    if args.eval_only:
        opening = teacher
        if args.eval_only != 'main':
            opening = copy.deepcopy(teacher)
            load_weights(opening, args.eval_only)
            opening = opening.to(dev).eval()
        how = dict(opening_sampler=args.opening_sampler, opening_steps=args.opening_steps)
        res = evaluate(opening, teacher, evalset, ref, args.eval_blocks, seed=123, **how)
        pp = pngset.take(torch.arange(pngset.count.shape[0], device=dev))
        name = f'opening-{args.opening_sampler}-{args.opening_steps}.png'
        save_grid(to_pixels(generate(opening, teacher, pp, args.png_blocks, seed=5, **how)), png_cols, os.path.join(args.out, name))
        with open(os.path.join(args.out, 'eval.json'), 'w') as f:
            json.dump({'args': vars(args), 'metrics': res, 'seconds': round(time.time() - t_start, 1)}, f, indent=1)
        print(json.dumps(res, indent=1), flush=True)
        return

    # baseline: the main model opening by itself, and the paired targets as a detector check
    t0 = time.time()
    p_eval = evalset.take(torch.arange(args.eval_n, device=dev))
    zt = torch.randn(args.eval_n, dims.latent_channels, BLOCK, dims.latent_height, dims.latent_width,
                     generator=torch.Generator().manual_seed(7)).to(dev)
    metrics['targets (paired openings)'] = detect(scenes.depth_to_space(paired_targets(zt, p_eval)), p_eval, ref)
    metrics['teacher'] = evaluate(teacher, teacher, evalset, ref, args.eval_blocks, seed=123)
    pp = pngset.take(torch.arange(pngset.count.shape[0], device=dev))
    save_grid(to_pixels(generate(teacher, teacher, pp, args.png_blocks, seed=5)), png_cols, os.path.join(args.out, 'teacher-opening.png'))
    print(f'baseline in {time.time() - t0:.1f} s: {json.dumps(metrics["teacher"])}', flush=True)
    print(f'targets: {json.dumps(metrics["targets (paired openings)"])}', flush=True)

    opt = adamw(model_p, dev, args.lr, weight_decay=0.0)
    amp = autocast_args(dev)
    sig = step_sigmas()
    n_steps = len(sig)
    fpos = torch.arange(BLOCK, device=dev)
    shape = (args.batch, dims.latent_channels, BLOCK, dims.latent_height, dims.latent_width)
    step_w = torch.tensor([args.first_weight] + [1.0] * (n_steps - 1), device=dev)
    step_w = step_w / step_w.sum()
    budget = 60 * args.minutes
    start = time.time()
    last_save = start
    log: List[Dict[str, float]] = []
    run = torch.zeros(n_steps, device=dev)
    run_n = 0
    step = 0
    meta = {'recipe': 'tools/train/distill_opening.py', 'base': os.path.relpath(args.weights, ROOT)}
    while time.time() - start < budget:
        idx = torch.randint(0, args.prompts, (args.batch,), device=dev)
        p = pool.take(idx)
        z = torch.randn(shape, device=dev)
        x0t = paired_targets(z, p)
        bg = (BG_RGB.to(dev)[p['bg']] / 127.5 - 1).repeat(1, 16)[:, :, None, None, None]  # [B, 48, 1, 1, 1]
        x0t1 = bg + args.first_contrast * (x0t - bg)
        frac = (time.time() - start) / budget
        lr = lr_at(step, frac, args.lr, args.warmup)
        set_lr(opt, lr)
        # the sampler's inputs at steps 2..4, from the student's own estimates (no gradient)
        inputs = [z]
        with torch.no_grad(), torch.autocast(**amp):
            xkv_ng = student.cross_kv(student.encode_text_batch(p['ids'], p['lens']))
            x = z
            for k in range(n_steps - 1):
                tt = torch.full((args.batch, BLOCK), sig[k] * 1000, device=dev)
                x0 = (x - sig[k] * student(x, tt, fpos, cross_kv=xkv_ng).flow).float()
                use_t = (torch.rand(args.batch, device=dev) < args.target_input)[:, None, None, None, None]
                base = torch.where(use_t, x0t1 if k == 0 else x0t, x0)
                x = (1 - sig[k + 1]) * base + sig[k + 1] * torch.randn_like(z)
                inputs.append(x)
        xin = torch.cat(inputs, dim=0)  # [4B, ...], step-major
        s_all = torch.tensor(sig, device=dev).repeat_interleave(args.batch)  # [4B]
        with torch.autocast(**amp):
            ctx = student.encode_text_batch(p['ids'], p['lens'])
            xkv = [(k_.repeat(n_steps, 1, 1), v_.repeat(n_steps, 1, 1)) for k_, v_ in student.cross_kv(ctx)]
            flow = student(xin, (s_all * 1000)[:, None].expand(-1, BLOCK), fpos, cross_kv=xkv).flow
        x0p = xin - s_all[:, None, None, None, None] * flow.float()
        err = (x0p - torch.cat([x0t1] + [x0t] * (n_steps - 1), dim=0)).pow(2).mean(dim=(1, 2, 3, 4)).view(n_steps, args.batch).mean(dim=1)
        loss = (err * step_w).sum()
        optimizer_step(opt, loss, student.parameters())
        ema_update(ema_p, model_p, step, args.ema)
        step += 1
        run += err.detach()
        run_n += 1
        if step % args.log_every == 0:
            el = time.time() - start
            e = (run / max(run_n, 1)).tolist()
            log.append({'step': step, 'seconds': round(el, 1), 'lr': lr, 'x0_mse_per_step': [round(v, 5) for v in e]})
            print(f'step {step} x0 mse per step {[f"{v:.4f}" for v in e]} lr {lr:.2e} t {el:.0f}s', flush=True)
            run.zero_()
            run_n = 0
        if time.time() - last_save > args.save_every:
            save_atomic(ema, os.path.join(args.out, 'opening.safetensors'), {**meta, 'steps': str(step)})
            last_save = time.time()
    train_s = time.time() - start
    save_atomic(ema, os.path.join(args.out, 'opening.safetensors'), {**meta, 'steps': str(step), 'train_seconds': f'{train_s:.0f}'})
    with open(os.path.join(args.out, 'distill-log.json'), 'w') as f:
        json.dump({'args': vars(args), 'steps': step, 'seconds': train_s, 'log': log}, f)
    print(f'saved after {step} steps, {train_s:.0f} s', flush=True)

    t0 = time.time()
    metrics['student'] = evaluate(ema, teacher, evalset, ref, args.eval_blocks, seed=123)
    metrics['student, second noise seed'] = evaluate(ema, teacher, evalset, ref, 1, seed=321)
    save_grid(to_pixels(generate(ema, teacher, pp, args.png_blocks, seed=5)), png_cols, os.path.join(args.out, 'demo-opening.png'))
    metrics['train'] = {'steps': step, 'seconds': round(train_s, 1), 'batch': args.batch}
    metrics['png'] = {'rows': [c for c in pngset.captions], 'frames': png_cols}
    metrics['wall_seconds'] = round(time.time() - t_start, 1)
    with open(os.path.join(args.out, 'metrics.json'), 'w') as f:
        json.dump(metrics, f, indent=1)
    print(f'eval in {time.time() - t0:.1f} s', flush=True)
    print(json.dumps({k: metrics[k] for k in ('teacher', 'student', 'student, second noise seed')}, indent=1), flush=True)


if __name__ == '__main__':
    main()
