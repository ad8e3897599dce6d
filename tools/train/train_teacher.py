"""Trains the demo model as a TEACHER that opens videos from pure noise (issue 16, step 1), in one
time-boxed GPU call, then evaluates it.

    python3 tools/train/train_teacher.py --init models/demo/model.safetensors --out $OUT/teacher --minutes 7.5

Why the previous model could not open a video (docs/demo-model.md): its first blocks were trained
only on the prompt's canonical layout, a single fixed place per object, which a model with relative
positions only (RoPE, cross-attention without positions) cannot locate from noise, so its estimate
there is a blur. A generative teacher must learn the real distribution of openings: objects at
random places. So here every first block is a target and comes from a random scene at a random
phase (no canonical layouts), and most of the compute goes to exactly that case.

Recipe (flow matching, x_s = (1 - s) x0 + s n, target v = n - x0, bf16 autocast, fp32 master weights):
- stream "open" (--batch-open clips a step): a random scene's 3-frame block at a random phase
  (0..399), denoised with an empty cache (the opening of a video: 192 tokens, no context, no mask),
  one s per clip: with probability --open-shift-share from the shift-5 distribution
  s = 5u / (1 + 4u) (the density of the ODE sampler's steps), else uniform in (0, 1);
- stream "tf" (--batch-tf clips a step): train.py's teacher forcing, one pass over [clean 18 frames
  ‖ noisy 18 frames] with the block-causal mask, random scenes at a random phase, EVERY block a
  target (the first is an opening too); one s per block, half shift-5, half the four shifted
  inference timesteps (the runtime's 4-step loop continues videos this way); clean context lightly
  corrupted (prob 0.5, sigma ~ U(0, 0.1));
- --cond-drop P: each clip of both streams gets the empty prompt (length 0, an all-zero text
  context) with probability P, so the model also learns the unconditional flow that classifier-free
  guidance needs (P = 0, the default, draws no extra random numbers);
- --context-recycle P (default 0: off): the teacher's own errors in its context, in the manner of error-recycling
  fine-tuning: for a share P of the "tf" clips, every context frame is replaced by the model's own one-step estimate
  of it (the frame noised to s ~ U(--context-recycle-sigma), its x0 predicted by the current weights in one
  no-grad teacher-forcing pass over the ground-truth context), while the targets stay the ground truth; so the
  teacher learns to continue from frames as imperfect as the ones it generates, which a clean context never shows;
- --context-erase P (default 0: off): for a share P of the "tf" clips, one of the prompted objects is missing from
  the context over a random run of blocks (from block a to block b - 1, 0 <= a < b <= the clip's blocks) while every
  target block still holds it: the prompt, not the context, says which objects a frame holds, so the teacher learns
  to draw an object its context has lost (the students lose objects for seconds and a teacher trained on clean
  context only continues the loss; the ground truth never shows a vanished object); --context-erase-from B
  (default 0) starts every run at block B or later: with 1 the clip shows the object before it goes, so the target's
  object is where its path leads, not a place the context gives no clue to (teachers trained with runs from block 0
  draw a lost object again at places that are not where it was, often twice; whether these runs are why is what a
  teacher trained with B = 1 tests);
- --context-fade P (default 0: off): for a share P of the "tf" clips (not those that lost an object), one prompted
  object is faded in the context over a random run of blocks, each frame keeping a share ~ U(--context-fade-keep) of
  it, while every target holds it whole where it was: the context erasure teaches a teacher to draw an object its
  context lost, and one that cannot tell a faint object from a lost one draws it again beside the faint one (the
  objects drawn twice); this shows it that a faint object is still the object;
- --context-copy P (default 0: off): for a share P of the "tf" clips (not those that lost or faded an object), one
  prompted object is drawn a second time in the context over a random run of blocks from --context-copy-from on (its
  own start and direction, the same speed), while every target holds it once: the teacher learns not to continue a
  copy its context shows (a student's copies otherwise stay, as the teacher's conditionals continue them);
- --copy-weight W (default 0: off; with --context-copy): the squared error of every latent entry of a pixel where the
  copy would stand, in the frames from the block after the copy first appears on (whose context shows it), counts
  1 + W times (as --outline-weight, times its weight where both apply). Where the copy would stand the target is the
  background, a few percent of a frame, so an unweighted loss gains little from leaving the copy out;
- --outline-weight W (default 0: off): the squared error of every latent entry whose pixel centre lies within
  --outline-band pixels of a drawn object's outline counts 1 + W times, the loss normalised by the mean weight. The
  pixels that tell a circle from a square or a triangle of the same place and size are a few percent of a frame, so
  an unweighted loss gains little from drawing the prompted shape; the models before this option drew a shape that did
  not depend on the prompt's shape word (tools/train/eval_shapes.py);
- --shape-swap P (default 0: off): for a share P of the "open" clips, the noisy input is made from the same scene
  with every object's shape drawn again at random (same place, size and colour), while the target keeps the
  prompted shapes. The model's own intermediate estimates are shape-neutral blobs, and on ground-truth inputs the
  shape is in the input whenever the place is, so nothing but this asks the model to take the shape from the prompt;
- --shape-swap-tf P (default 0: off): the same for a share P of the "tf" clips: the noisy copy of every block shows the
  clip's objects with their shapes drawn again at random (one draw a clip; same places, sizes and colours), while the
  clean context and the targets keep the prompted shapes, so a continued block takes its shape from the context (the
  first block from the prompt). Teacher run 11, given two true blocks, estimates the next one from pure noise in one
  step with the right shape (accuracy 0.80 at guidance 3) but from an input that shows another shape at s = 0.25 draws
  the input's (0.03); its ODE continuation of the true blocks keeps the shape for one block (0.62) and has lost it three
  blocks later (0.36; eval_shapes.py, docs/demo-model.md);
- --shape-swap-min-s S (default 0: every level): both swaps only in the frames whose noise level s is at least S. At a
  low level the input shows its outline almost exactly, and a swap there asks the model to redraw an outline it can see
  (teacher run 12, swapped at every level: ragged outlines, median IoU 0.48 against run 11's 0.66); above S the place
  is in the input but the shape is still to be decided;
- --text-neighbours: the word encoder gets its neighbour tables (each word's context row also adds the previous
  word's row of one table and the next word's of another; the runtime reads them from the checkpoint), zero where
  --init has none, so the model starts as it was; they learn at --neighbour-lr-scale times the learning rate. Without
  them a row is its word plus its place, and which shape goes with which colour must be worked out from the places;
  --neighbour-tables previous (or next) trains that table only and leaves the other as it starts (zero when added):
  `previous` changes only the rows after a word (a shape's row learns its colour), `next` only the rows before one;
- --max-steps N: stop after N steps even if minutes remain, and run the cosine over the steps (whichever of the two
  is further along), so two runs on a shared CPU can be compared step for step;
- --train-only text: only the text path learns (the word table, the text projection, every block's cross-attention
  and its norm); the rest of the network is frozen. For a teacher that draws well but reads a word badly;
- loss = mean MSE of "open" + --tf-weight x mean MSE of "tf" (one backward);
- AdamW (0.9, 0.99, wd 0.01; fused on CUDA), warm-up, cosine to 10% over the wall-clock budget,
  grad clip 1, EMA of the weights (saved); optional torch.compile (--compile; eager if it fails).
Scenes are sampled and rendered on the device, vectorised (the same distribution and geometry as
tools/data/scenes.py: sample_scene / render; --self-check compares them), captions tokenised as
tensors: no Python loop over clips.

Evaluation (held-out prompts: scenes.sample_scene with numpy seed 10_000_000 + --seed, which
training never draws from; training draws from a torch generator): distill_opening.py's detector
(an object is present when its colour covers >= 40% of its drawn area), first block and the block
--eval-blocks later, for whole videos made by one sampler (ODE 16 and 32 Euler steps, the runtime's
`generation.sampler: ode` with evenly spaced steps; the runtime's 4-step re-noising loop), and ODE 16
openings continued by the 4-step loop. Also the detector's ceiling (ground-truth random scenes).
--eval-guidance 1,3: the ODE runs for every (step count, guidance) pair, with classifier-free
guidance v = v_empty + g (v_prompt - v_empty) at every step (metrics keys 'ode16' for g = 1,
'ode16, guidance 3' otherwise).

Writes to --out (5 files): model.safetensors (EMA, float32, the runtime's keys; also written every
--save-every seconds while training), loss.json (curve, throughput, timing), metrics.json,
openings-ode16.png (the first ODE step count at the largest --eval-guidance; named
openings-ode16-guidance3.png when that is not 1) and openings-renoise4.png (PNG prompts x 2 seeds:
frames 0-2 then every 3rd).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import time
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from common import (  # noqa: E402  (also puts tools/reference and tools/data on sys.path)
    BLOCK, DEFAULT_MODEL_JSON, HELD_OUT_SEED, INFERENCE_STEPS, ROOT, SHIFT, adamw, autocast_args, dims_of_file, ema_update,
    frozen_copy, load_dims, lr_at, pick_device, save_atomic, save_sheet, set_lr, set_tf32, shift_s, write_model_json,
)
from model import PREDICTIONS, TEXT_NEIGHBOUR_KEYS, Dims, WanModel, flow_target, load_weights, shifted_steps  # noqa: E402
import scenes  # noqa: E402
import distill_opening as opening_eval  # noqa: E402  (detector, prompt sets, the runtime's block sampler)


# ----------------------------------------------------------------------------------------------
# Scenes on the device: scenes.sample_scene's distribution and scenes.render's geometry, batched
# ----------------------------------------------------------------------------------------------

class DeviceScenes:
    """Samples random scenes and their captions' tokens as tensors, from one seeded generator."""

    def __init__(self, vocab: Sequence[str], text_len: int, device, seed: int):
        self.device = torch.device(device)
        self.text_len = text_len
        self.gen = torch.Generator(device=self.device).manual_seed(seed)
        index = {w: i for i, w in enumerate(vocab)}
        tok = lambda ws: torch.tensor([index[w] for w in ws], device=self.device)  # noqa: E731
        self.colour_tok = tok(list(scenes.OBJECT_COLOURS))
        self.shape_tok = tok(list(scenes.SHAPES))
        bg_words = [name.split() for name in scenes.BACKGROUNDS]
        self.bg_has_dark = torch.tensor([len(w) == 2 for w in bg_words], device=self.device)
        self.bg_first = tok([w[0] for w in bg_words])  # 'dark' or the one word
        self.bg_last = tok([w[-1] for w in bg_words])
        self.w = {k: index[k] for k in ('a', 'and', 'bouncing', 'on', 'background')}
        self.obj_rgb = torch.tensor(list(scenes.OBJECT_COLOURS.values()), dtype=torch.float32, device=self.device)
        self.bg_rgb = torch.tensor(list(scenes.BACKGROUNDS.values()), dtype=torch.float32, device=self.device)
        self.count_cdf = torch.tensor(np.cumsum(scenes.COUNT_PROBS)[:-1], dtype=torch.float32, device=self.device)

    def _rand(self, *shape) -> torch.Tensor:
        return torch.rand(*shape, generator=self.gen, device=self.device)

    def sample(self, n: int, max_phase: int = 400) -> Dict[str, torch.Tensor]:
        """n random scenes: count [n], colour/shape [n, 3], bg [n], radius [n, 3], start/velocity
        [n, 3, 2] (x, y), valid [n, 3], phase [n] (the first rendered frame, an integer)."""
        count = 1 + (self._rand(n, 1) >= self.count_cdf[None]).sum(dim=1)
        colour = self._rand(n, len(scenes.OBJECT_COLOURS)).argsort(dim=1)[:, :3]  # distinct colours
        shape = (self._rand(n, 3) * len(scenes.SHAPES)).long().clamp(max=len(scenes.SHAPES) - 1)
        bg = (self._rand(n) * len(scenes.BACKGROUNDS)).long().clamp(max=len(scenes.BACKGROUNDS) - 1)
        lo, hi = scenes.RADIUS_RANGE
        radius = lo + (hi - lo) * self._rand(n, 3)
        start = radius[..., None] + (scenes.SIZE - 2 * radius[..., None]) * self._rand(n, 3, 2)
        slo, shi = scenes.SPEED_RANGE
        speed = slo + (shi - slo) * self._rand(n, 3)
        ang = 2 * math.pi * self._rand(n, 3)
        velocity = torch.stack([speed * torch.cos(ang), speed * torch.sin(ang)], dim=-1)
        phase = (self._rand(n) * max_phase).floor()
        valid = torch.arange(3, device=self.device)[None] < count[:, None]
        return {'count': count, 'colour': colour, 'shape': shape, 'bg': bg, 'radius': radius, 'start': start,
                'velocity': velocity, 'valid': valid, 'phase': phase}

    def tokens(self, b: Dict[str, torch.Tensor]):
        """Token ids [n, textLen] and lengths [n] of scenes.caption() for each scene, as scenes.tokenize
        gives them: 'a c s', then ', a c s' (the comma is no word) and 'and a c s' for the last of
        several, then 'bouncing on a [dark] <bg> background'."""
        n = b['count'].shape[0]
        k = b['count'][:, None]
        j = torch.arange(3, device=self.device)[None]
        full = lambda v: torch.full((n,), v, device=self.device, dtype=torch.long)  # noqa: E731
        cand, keep = [], []
        for slot in range(3):
            last_of_many = (k[:, 0] == slot + 1) & (k[:, 0] > 1)
            if slot > 0:
                cand.append(full(self.w['and']))
                keep.append(last_of_many)
            cand += [full(self.w['a']), self.colour_tok[b['colour'][:, slot]], self.shape_tok[b['shape'][:, slot]]]
            keep += [(j[:, slot] < k[:, 0])] * 3
        tail = [full(self.w['bouncing']), full(self.w['on']), full(self.w['a']), self.bg_first[b['bg']],
                self.bg_last[b['bg']], full(self.w['background'])]
        tail_keep = [None, None, None, self.bg_has_dark[b['bg']], None, None]
        for c, kp in zip(tail, tail_keep):
            cand.append(c)
            keep.append(torch.ones(n, dtype=torch.bool, device=self.device) if kp is None else kp)
        cand_t = torch.stack(cand, dim=1)
        keep_t = torch.stack(keep, dim=1)
        pos = keep_t.long().cumsum(dim=1) - 1
        pos = torch.where(keep_t & (pos < self.text_len), pos, torch.full_like(pos, self.text_len))  # dropped -> spill column
        ids = torch.zeros(n, self.text_len + 1, dtype=torch.long, device=self.device)
        ids.scatter_(1, pos, torch.where(pos < self.text_len, cand_t, torch.zeros_like(cand_t)))
        lens = keep_t.sum(dim=1).clamp(max=self.text_len)
        return ids[:, :self.text_len], lens

    def render(self, b: Dict[str, torch.Tensor], frames: int) -> torch.Tensor:
        """Pixels [n, frames, 64, 64, 3] (0..255, rounded) of frames phase .. phase + frames - 1:
        scenes.render's closed-form bounce and signed-distance shapes."""
        return self.draw(b, frames)['pixels']

    def draw(self, b: Dict[str, torch.Tensor], frames: int) -> Dict[str, torch.Tensor]:
        """scenes.draw of frames phase .. phase + frames - 1: pixels and the outline distance among its outputs."""
        t = b['phase'][:, None, None] + torch.arange(frames, dtype=torch.float32, device=self.device)  # [n, 1, T]
        radius = torch.where(b['valid'], b['radius'], torch.ones_like(b['radius']))
        return scenes.draw(b['start'], b['velocity'], radius, b['shape'], b['valid'], self.bg_rgb[b['bg']],
                           self.obj_rgb[b['colour']], t)

    def to_scene_list(self, b: Dict[str, torch.Tensor]) -> List[scenes.Scene]:
        """The same scenes as scenes.Scene objects (for --self-check)."""
        out = []
        cn, bn = list(scenes.OBJECT_COLOURS), list(scenes.BACKGROUNDS)
        for i in range(b['count'].shape[0]):
            k = int(b['count'][i])
            out.append(scenes.Scene(
                bn[int(b['bg'][i])], [cn[int(c)] for c in b['colour'][i, :k]],
                [scenes.SHAPES[int(s)] for s in b['shape'][i, :k]], [float(r) for r in b['radius'][i, :k]],
                [(float(x), float(y)) for x, y in b['start'][i, :k]], [(float(x), float(y)) for x, y in b['velocity'][i, :k]]))
        return out


# ----------------------------------------------------------------------------------------------
# Training
# ----------------------------------------------------------------------------------------------

def drop_prompts(src: DeviceScenes, lens: torch.Tensor, p: float) -> torch.Tensor:
    """Each prompt becomes the empty prompt (length 0) with probability p, for classifier-free
    guidance. p == 0 draws no random numbers, so seeded runs without dropping reproduce."""
    if p <= 0:
        return lens
    return torch.where(src._rand(lens.shape[0]) < p, torch.zeros_like(lens), lens)


TEXT_PATH = ('text_encoder.', 'text_embedding.', '.cross_attn.', '.norm3.')


def text_path(name: str) -> bool:
    """--train-only text: whether a parameter is on the prompt's way into the network."""
    return name.startswith(TEXT_PATH[:2]) or any(part in name for part in TEXT_PATH[2:])


def swap_shapes(src: DeviceScenes, b: Dict[str, torch.Tensor], share: float) -> Dict[str, torch.Tensor]:
    """--shape-swap: the scenes with, for a share of them, every object's shape drawn again uniformly (it may come out
    the same)."""
    n = b['count'].shape[0]
    chosen = src._rand(n) < share
    drawn = (src._rand(n, 3) * len(scenes.SHAPES)).long().clamp(max=len(scenes.SHAPES) - 1)
    return dict(b, shape=torch.where(chosen[:, None], drawn, b['shape']))


def shown_latents(src: DeviceScenes, b: Dict[str, torch.Tensor], lat: torch.Tensor, share: float, frames: int,
                  s: torch.Tensor, min_s: float = 0.0) -> torch.Tensor:
    """The clean latents a noisy input is made from: `lat`, or with share > 0 (--shape-swap, --shape-swap-tf) the scenes
    rendered again with, for that share of them, other shapes, only in the frames whose noise level s ([n, frames]) is
    at least min_s (--shape-swap-min-s). share 0 draws no random numbers."""
    if share <= 0:
        return lat
    swapped = scenes.space_to_depth(src.render(swap_shapes(src, b, share), frames))
    return swapped if min_s <= 0 else torch.where((s >= min_s)[:, None, :, None, None], swapped, lat)


def latent_weights(w: torch.Tensor) -> torch.Tensor:
    """Per-pixel loss weights [B, T, H, W] -> the latent layout [B, C, T, h, w] (each latent entry the weight of its pixel)."""
    return scenes.pack_pixels(w[..., None].expand(*w.shape, 3))


def outline_weights(outline_distance: torch.Tensor, weight: float, band: float) -> torch.Tensor:
    """--outline-weight: [B, T, H, W] pixel distances from the nearest outline -> loss weights in the latent layout
    [B, C, T, h, w]: 1 + weight within band pixels of an outline, else 1."""
    return latent_weights(1 + weight * (outline_distance <= band).float())


def make_inputs(src: DeviceScenes, args, dims: Dims, infer_s: torch.Tensor) -> Dict[str, torch.Tensor]:
    """One step's tensors (all on the device, all random numbers from the scene generator)."""
    gen, dev = src.gen, src.device
    x: Dict[str, torch.Tensor] = {}
    if args.batch_open > 0:
        b = src.sample(args.batch_open)
        drawn = src.draw(b, BLOCK)
        lat = scenes.space_to_depth(drawn['pixels'])
        if args.outline_weight > 0:
            x['o_weight'] = outline_weights(drawn['outline_distance'], args.outline_weight, args.outline_band)
        x['o_ids'], x['o_lens'] = src.tokens(b)
        x['o_lens'] = drop_prompts(src, x['o_lens'], args.cond_drop)
        u = src._rand(args.batch_open)
        s = torch.where(src._rand(args.batch_open) < args.open_shift_share, shift_s(u), src._rand(args.batch_open))
        s = s.clamp(1e-3, 1.0)
        noise = torch.randn(lat.shape, generator=gen, device=dev)
        sv = s[:, None, None, None, None]
        s_frame = s[:, None].expand(-1, BLOCK)
        shown = shown_latents(src, b, lat, args.shape_swap, BLOCK, s_frame, args.shape_swap_min_s)
        x['o_noisy'] = (1 - sv) * shown + sv * noise
        x['o_target'] = flow_target(x['o_noisy'], lat, noise, s_frame, dims.prediction)
        x['o_t'] = (s_frame * 1000).contiguous()
    if args.batch_tf > 0:
        n, nb = args.batch_tf, args.window // BLOCK
        b = src.sample(args.batch_tf)
        drawn = src.draw(b, args.window)
        lat = scenes.space_to_depth(drawn['pixels'])
        if args.outline_weight > 0:
            x['t_weight'] = outline_weights(drawn['outline_distance'], args.outline_weight, args.outline_band)
        x['t_ids'], x['t_lens'] = src.tokens(b)
        x['t_lens'] = drop_prompts(src, x['t_lens'], args.cond_drop)
        u = src._rand(n, nb)
        fixed = infer_s[(src._rand(n, nb) * len(infer_s)).long().clamp(max=len(infer_s) - 1)]
        s_blk = torch.where(src._rand(n, nb) < 0.5, shift_s(u), fixed)
        s = s_blk.repeat_interleave(BLOCK, dim=1)  # [n, frames]
        noise = torch.randn(lat.shape, generator=gen, device=dev)
        x['t_t'] = s * 1000
        sigma = src._rand(n) * 0.1 * (src._rand(n) < 0.5).float()
        x['t_clean'] = lat + sigma[:, None, None, None, None] * torch.randn(lat.shape, generator=gen, device=dev)
        erased = None
        if args.context_erase > 0:
            x['t_clean'], erased = erase_context_objects(src, b, lat, x['t_clean'], args.context_erase,
                                                         first_block=args.context_erase_from)
        if args.context_fade > 0:  # a clip loses an object or fades one, not both
            x['t_clean'], faded = erase_context_objects(src, b, lat, x['t_clean'], args.context_fade,
                                                        args.context_fade_keep,
                                                        None if erased is None else erased.any(dim=1),
                                                        first_block=args.context_erase_from)
            erased = faded if erased is None else erased | faded
        if args.context_copy > 0:  # nor is one of its objects drawn twice as well
            x['t_clean'], copied, copy_drawn = copy_context_objects(src, b, lat, x['t_clean'], args.context_copy,
                                                                    None if erased is None else erased.any(dim=1),
                                                                    first_block=args.context_copy_from)
            if args.copy_weight > 0:
                w = copy_weights(copied, copy_drawn, args.copy_weight)
                x['t_weight'] = w * x['t_weight'] if 't_weight' in x else w
        # the swap's draws come last, so the context and everything before it are the unswapped run's
        sv = s[:, None, :, None, None]
        shown = shown_latents(src, b, lat, args.shape_swap_tf, args.window, s, args.shape_swap_min_s)
        x['t_noisy'] = (1 - sv) * shown + sv * noise
        x['t_target'] = flow_target(x['t_noisy'], lat, noise, s, dims.prediction)
    return x


def pick_context_runs(src: DeviceScenes, b: Dict[str, torch.Tensor], frames: int, share: float,
                      exclude: Optional[torch.Tensor], first_block: int) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The clips a context change touches (a share of them, not the excluded), the object slot it changes in each, and
    the [n, frames] mask of the frames it changes: one random run of whole blocks [a, b) with a >= first_block."""
    n, nb = b['count'].shape[0], frames // BLOCK
    chosen = src._rand(n) < share
    if exclude is not None:
        chosen = chosen & ~exclude
    which = (src._rand(n) * b['count'].float()).long().clamp(max=2)
    first = first_block + (src._rand(n) * (nb - first_block)).long().clamp(max=nb - 1 - first_block)
    end = first + 1 + (src._rand(n) * (nb - first).float()).long().clamp(max=nb - 1 - first)
    block_of_frame = torch.arange(frames, device=b['count'].device) // BLOCK
    changed = chosen[:, None] & (block_of_frame[None] >= first[:, None]) & (block_of_frame[None] < end[:, None])
    return chosen, which, changed


def erase_context_objects(src: DeviceScenes, b: Dict[str, torch.Tensor], lat: torch.Tensor, clean: torch.Tensor,
                          share: float, keep: Tuple[float, float] = (0.0, 0.0),
                          exclude: Optional[torch.Tensor] = None, first_block: int = 0) -> Tuple[torch.Tensor, torch.Tensor]:
    """--context-erase: a share of the clips lose one prompted object from their context frames over a random run of
    whole blocks [a, b); the targets (rendered from `lat`) keep it. keep (lo, hi), --context-fade: the object is not
    removed but faded, a clip's frames keeping a share ~ U(lo, hi) of it (a blend of the frame with and without it).
    exclude [n]: clips that are not chosen. first_block (--context-erase-from): the run starts at that block or later,
    so that the clip shows the object, where it is, before it goes. Returns the new context and a [n, frames] mask of
    the frames changed. share 0 draws no random numbers, nor does keep (0, 0)."""
    n, frames = lat.shape[0], lat.shape[2]
    if share <= 0:
        return clean, torch.zeros(n, frames, dtype=torch.bool, device=lat.device)
    chosen, which, frames_changed = pick_context_runs(src, b, frames, share, exclude, first_block)
    gone = torch.nn.functional.one_hot(which, 3).bool() & chosen[:, None]
    erased = dict(b, valid=b['valid'] & ~gone)
    lat_erased = scenes.space_to_depth(src.render(erased, frames))
    delta = torch.where(frames_changed[:, None, :, None, None], lat_erased - lat, torch.zeros_like(lat))
    if keep != (0.0, 0.0):
        kept = keep[0] + (keep[1] - keep[0]) * src._rand(n)
        delta = delta * (1 - kept)[:, None, None, None, None]
    return clean + delta, frames_changed


def copy_context_objects(src: DeviceScenes, b: Dict[str, torch.Tensor], lat: torch.Tensor, clean: torch.Tensor,
                         share: float, exclude: Optional[torch.Tensor] = None,
                         first_block: int = 1) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """--context-copy: a share of the clips show one prompted object twice in their context frames over a random run
    of whole blocks [a, b), a >= first_block: a second drawing of it (same colour, shape and size, its own start and
    direction, the same speed) painted over the frame; the targets (rendered from `lat`) hold it once. exclude [n]:
    clips that are not chosen. Returns the new context, a [n, frames] mask of the frames changed and a [n, frames, H, W]
    pixel mask of where the copy stands in every frame of the clip, shown or not (false in clips not chosen). share 0
    draws no random numbers."""
    n, frames = lat.shape[0], lat.shape[2]
    if share <= 0:
        return (clean, torch.zeros(n, frames, dtype=torch.bool, device=lat.device),
                torch.zeros(n, frames, scenes.SIZE, scenes.SIZE, dtype=torch.bool, device=lat.device))
    chosen, which, frames_changed = pick_context_runs(src, b, frames, share, exclude, first_block)
    rows = torch.arange(n, device=lat.device)
    radius = b['radius'][rows, which]
    start = radius[:, None] + (scenes.SIZE - 2 * radius[:, None]) * src._rand(n, 2)
    speed = b['velocity'][rows, which].norm(dim=-1)
    ang = 2 * math.pi * src._rand(n)
    velocity = torch.stack([speed * torch.cos(ang), speed * torch.sin(ang)], dim=-1)
    only = torch.nn.functional.one_hot(which, 3).bool() & chosen[:, None]
    copy = dict(b, valid=only, start=b['start'].clone(), velocity=b['velocity'].clone())
    copy['start'][rows, which] = start
    copy['velocity'][rows, which] = velocity
    copy_px = src.render(copy, frames)
    bare_px = src.render(dict(b, valid=torch.zeros_like(b['valid'])), frames)
    drawn_px = src.render(b, frames)
    painted = scenes.paint_over(drawn_px, copy_px, bare_px)
    delta = scenes.space_to_depth(painted) - lat
    delta = torch.where(frames_changed[:, None, :, None, None], delta, torch.zeros_like(delta))
    copy_drawn = (copy_px != bare_px).any(dim=-1) & chosen[:, None, None, None]
    return clean + delta, frames_changed, copy_drawn


def copy_weights(frames_changed: torch.Tensor, copy_drawn: torch.Tensor, weight: float) -> torch.Tensor:
    """--copy-weight: loss weights in the latent layout [n, C, frames, h, w], 1 + weight on the pixels where the copy
    stands (copy_drawn [n, frames, H, W]) in every frame from the block after the copied run's first block on (the
    frames whose context shows the copy), else 1."""
    frames = frames_changed.shape[1]
    first = frames_changed.float().argmax(dim=1)  # the run's first frame (0 where nothing changed: no copy drawn)
    seen = torch.arange(frames, device=frames_changed.device)[None] >= first[:, None] + BLOCK
    return latent_weights(1 + weight * (copy_drawn & seen[:, :, None, None]).float())


@torch.no_grad()
def recycle_context(model: WanModel, x: Dict[str, torch.Tensor], src: DeviceScenes, share: float,
                    sigma: Tuple[float, float], prediction: str) -> int:
    """--context-recycle: a share of the teacher-forcing clips get, as context, the model's own one-step x0 of each
    frame noised to s ~ U(sigma) (one s per block), in place of the ground truth. Returns the clips changed."""
    if share <= 0:
        return 0
    clean = x['t_clean']
    n, frames = clean.shape[0], clean.shape[2]
    chosen = src._rand(n) < share
    if not bool(chosen.any()):
        return 0
    lo, hi = sigma
    s = (lo + (hi - lo) * src._rand(n, frames // BLOCK)).repeat_interleave(BLOCK, dim=1)  # [n, frames]
    sv = s[:, None, :, None, None]
    noisy = (1 - sv) * clean + sv * torch.randn(clean.shape, generator=src.gen, device=src.device)
    xkv = model.cross_kv(model.encode_text_batch(x['t_ids'], x['t_lens']))
    out = model.forward_teacher_forcing(clean, noisy, s * 1000, xkv, BLOCK).float()
    x0 = out if prediction == 'sample' else noisy - sv * out
    x['t_clean'] = torch.where(chosen[:, None, None, None, None], x0.to(clean.dtype), clean)
    return int(chosen.sum())


def weighted_mse(pred: torch.Tensor, target: torch.Tensor, weight: Optional[torch.Tensor]) -> torch.Tensor:
    """Mean squared error; with per-entry weights, sum(w e^2) / sum(w) (the loss keeps its scale)."""
    err = (pred.float() - target).pow(2)
    return err.mean() if weight is None else (err * weight).sum() / weight.sum()


def step_losses(model: WanModel, x: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """Mean flow-matching MSE of each stream (the function torch.compile sees)."""
    out: Dict[str, torch.Tensor] = {}
    if 'o_noisy' in x:
        xkv = model.cross_kv(model.encode_text_batch(x['o_ids'], x['o_lens']))
        fpos = torch.arange(BLOCK, device=x['o_noisy'].device)
        flow = model(x['o_noisy'], x['o_t'], fpos, cross_kv=xkv).flow
        out['open'] = weighted_mse(flow, x['o_target'], x.get('o_weight'))
    if 't_noisy' in x:
        xkv = model.cross_kv(model.encode_text_batch(x['t_ids'], x['t_lens']))
        flow = model.forward_teacher_forcing(x['t_clean'], x['t_noisy'], x['t_t'], xkv, BLOCK)
        out['tf'] = weighted_mse(flow, x['t_target'], x.get('t_weight'))
    return out


# ----------------------------------------------------------------------------------------------
# Evaluation: whole videos from noise, one sampler (or an ODE opening continued by the 4-step loop)
# ----------------------------------------------------------------------------------------------

@torch.no_grad()
def generate_video(model: WanModel, p: Dict[str, torch.Tensor], blocks: int, seed: int, first: str = 'ode',
                   first_steps: int = 16, rest: Optional[str] = None, rest_steps: Optional[int] = None,
                   window: int = 12, guidance: float = 1.0) -> torch.Tensor:
    """Latents [B, C, blocks*3, H, W] of videos opened from pure noise (empty cache) by the block
    sampler `first` with `first_steps` steps (distill_opening.sample_block: 'ode' = the runtime's
    generation.sampler ode over evenly spaced steps, 'renoise' = the re-noising loop), later blocks
    by `rest` (default: the same); each block enters the cache by a clean pass; the cache keeps the
    last window - 3 frames. guidance: classifier-free guidance of every denoising step (1 = none)."""
    return opening_eval.generate(model, model, p, blocks, seed, window, opening_sampler=first, opening_steps=first_steps,
                                 rest_sampler=rest or first, rest_steps=rest_steps or first_steps, guidance=guidance)


def ode_run_name(steps: int, guidance: float) -> str:
    """metrics.json key of an ODE run: 'ode16' unguided (as before guidance existed), else 'ode16, guidance 3'."""
    return f'ode{steps}' if guidance == 1.0 else f'ode{steps}, guidance {guidance:g}'


def held_out_prompts(seed: int, n: int, vocab, text_len: int, device) -> opening_eval.PromptSet:
    return opening_eval.PromptSet([scenes.sample_scene(np.random.default_rng(HELD_OUT_SEED + seed + i)) for i in range(n)],
                                  vocab, text_len, device)


@torch.no_grad()
def evaluate(model: WanModel, evalset: opening_eval.PromptSet, blocks: int, seed: int, chunk: int,
             **how) -> Dict[str, Dict[str, float]]:
    """The detector on the first block and on the last of `blocks` (videos made in chunks of prompts)."""
    n = evalset.count.shape[0]
    dev = evalset.count.device
    firsts, lasts = [], []
    for a in range(0, n, chunk):
        p = evalset.take(torch.arange(a, min(n, a + chunk), device=dev))
        lat = generate_video(model, p, blocks, seed + a, **how)
        px = scenes.depth_to_space(lat.float())
        firsts.append(px[:, :BLOCK])
        lasts.append(px[:, (blocks - 1) * BLOCK:])
    p = evalset.take(torch.arange(n, device=dev))
    ref = opening_eval.reference_areas(p)
    res = {'opening (frames 0-2)': opening_eval.detect(torch.cat(firsts), p, ref)}
    if blocks > 1:
        last = (blocks - 1) * BLOCK
        res[f'continued, frames {last}-{last + BLOCK - 1}'] = opening_eval.detect(torch.cat(lasts), p, ref)
    return res


def png_grid(model: WanModel, vocab, dims: Dims, dev, path: str, blocks: int, scale: int = 2, **how) -> Dict[str, object]:
    """Rows: the PNG prompts x 2 noise seeds; columns: frames 0-2, then every 3rd frame."""
    pset = opening_eval.png_prompts(vocab, dims.text_len, dev, 2)
    p = pset.take(torch.arange(pset.count.shape[0], device=dev))
    lat = generate_video(model, p, blocks, seed=5, **how)
    cols = [0, 1, 2] + list(range(5, blocks * BLOCK, 3))
    save_sheet(opening_eval.to_pixels(lat), cols, path, scale)
    return {'rows': pset.captions, 'frames': cols}


# ----------------------------------------------------------------------------------------------
# Self-check (CPU, seconds): the device sampler matches scenes.py's render and tokenizer
# ----------------------------------------------------------------------------------------------

def self_check(vocab, text_len: int) -> None:
    src = DeviceScenes(vocab, text_len, 'cpu', seed=3)
    b = src.sample(300)
    lst = src.to_scene_list(b)
    ids, lens = src.tokens(b)
    for i, s in enumerate(lst):
        ref = scenes.tokenize(s.caption(), vocab)[:text_len]
        got = ids[i, :int(lens[i])].tolist()
        assert got == ref and int(lens[i]) == len(ref), (s.caption(), got, ref)
        assert (ids[i, int(lens[i]):] == 0).all()
    px = src.render(b, 6)
    ref_px = scenes.render(lst, 6, start_frame=b['phase'].numpy())['pixels']
    err = (px - ref_px).abs().max().item()
    assert err <= 1.0, f'render differs from scenes.render by {err}'
    frac = ((px - ref_px).abs() > 0).float().mean().item()
    assert frac < 1e-4, f'{frac} of pixels differ from scenes.render'
    counts = torch.bincount(b['count'], minlength=4)[1:].float() / 300
    assert all(abs(float(c) - p) < 0.1 for c, p in zip(counts, scenes.COUNT_PROBS)), counts
    for i in range(300):
        assert len(set(b['colour'][i].tolist())) == 3
    r = b['radius'][b['valid']]
    assert float(r.min()) >= scenes.RADIUS_RANGE[0] and float(r.max()) <= scenes.RADIUS_RANGE[1]
    sp = b['velocity'][b['valid']].norm(dim=-1)
    assert float(sp.min()) >= scenes.SPEED_RANGE[0] - 1e-4 and float(sp.max()) <= scenes.SPEED_RANGE[1] + 1e-4
    print(f'self-check ok: 300 captions tokenised as scenes.tokenize, render max |diff| {err} ({frac:.2e} of pixels), '
          f'counts {counts.tolist()}', flush=True)


# ----------------------------------------------------------------------------------------------

def train_neighbour_tables(model: WanModel, which: str) -> None:
    """--neighbour-tables: 'both' leaves both tables trainable; 'previous' or 'next' freezes the other one."""
    if which != 'both':
        model.text_encoder.get_submodule('next' if which == 'previous' else 'previous').weight.requires_grad_(False)


def main(argv: Optional[List[str]] = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--model', default=DEFAULT_MODEL_JSON)
    ap.add_argument('--init', default=None, help='start from these weights (a runtime safetensors), else from scratch')
    ap.add_argument('--prediction', choices=PREDICTIONS, default=None,
                    help="what the head outputs: 'flow' (v) or 'sample' (x0, trained with the flow loss); default: --model's")
    ap.add_argument('--text-neighbours', action='store_true',
                    help="give the word encoder its neighbour tables (each word's row also carries the words beside it), "
                         "zero where --init has none")
    ap.add_argument('--neighbour-lr-scale', type=float, default=30.0,
                    help='the neighbour tables learn at this multiple of --lr (they start at zero)')
    ap.add_argument('--neighbour-tables', choices=['both', 'previous', 'next'], default='both',
                    help='which neighbour table learns; the other keeps its starting values (zero when added)')
    ap.add_argument('--reinit-head', action='store_true',
                    help='zero the output head after --init (a run that changes --prediction starts the head afresh)')
    ap.add_argument('--out', required=True)
    ap.add_argument('--minutes', type=float, default=7.5, help='training wall-clock budget (compile included)')
    ap.add_argument('--max-steps', type=int, default=0, help='stop after this many steps (0: only --minutes decides)')
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--batch-open', type=int, default=512, help='opening blocks (3 frames, empty cache) a step')
    ap.add_argument('--batch-tf', type=int, default=16, help='teacher-forcing clips (--window frames) a step')
    ap.add_argument('--window', type=int, default=18)
    ap.add_argument('--first-frames-negated', type=int, default=None,
                    help="the latent layout: a video's first N latent frames stored negated (model.json firstFramesNegated; "
                         "default: --model's). Every clip starts at its video's first frame")
    ap.add_argument('--tf-weight', type=float, default=1.0)
    ap.add_argument('--context-recycle', type=float, default=0.0,
                    help="share of teacher-forcing clips whose context is the model's own one-step estimate (0 = off)")
    ap.add_argument('--context-recycle-sigma', default='0.2,0.6',
                    help='noise levels (lo,hi) the recycled context frames are estimated from')
    ap.add_argument('--context-erase', type=float, default=0.0,
                    help='share of teacher-forcing clips whose context loses one prompted object over a run of blocks')
    ap.add_argument('--context-erase-from', type=int, default=0,
                    help="the erased (or faded) run of blocks starts at this block of the clip or later: 1 keeps the "
                         "object in the clip's first block, so the targets' object is where the context last showed "
                         "it went, never a place the context gives no clue to")
    ap.add_argument('--context-fade', type=float, default=0.0,
                    help='share of teacher-forcing clips whose context shows one prompted object faded over a run of '
                         'blocks while the targets hold it whole, where it was: a faint object is still the object')
    ap.add_argument('--context-fade-keep', default='0.2,0.8',
                    help="share (lo,hi) of the faded object's strength its context frames keep")
    ap.add_argument('--context-copy', type=float, default=0.0,
                    help='share of teacher-forcing clips whose context shows one prompted object twice over a run of '
                         'blocks while the targets hold it once: an object drawn twice is not continued twice')
    ap.add_argument('--copy-weight', type=float, default=0.0,
                    help='with --context-copy: extra loss weight where the copy would stand, in the frames whose '
                         'context shows it (0 = off)')
    ap.add_argument('--context-copy-from', type=int, default=1,
                    help="the copied run of blocks starts at this block of the clip or later (1: the clip shows the "
                         "object once before its copy appears, so which drawing is the object is in the context)")
    ap.add_argument('--cond-drop', type=float, default=0.0,
                    help='probability that a training clip gets the empty prompt (classifier-free guidance); 0 draws no random numbers')
    ap.add_argument('--shape-swap', type=float, default=0.0,
                    help="share of opening clips whose noisy input shows other shapes than the prompt's (0 = off)")
    ap.add_argument('--shape-swap-tf', type=float, default=0.0,
                    help='share of "tf" clips whose noisy blocks show other shapes than the context and the targets')
    ap.add_argument('--shape-swap-min-s', type=float, default=0.0,
                    help='the swaps only where the noise level s is at least this (0: at every level)')
    ap.add_argument('--train-only', choices=['all', 'text'], default='all',
                    help='text: only the text path learns (word table, text projection, cross-attention), the rest frozen')
    ap.add_argument('--outline-weight', type=float, default=0.0,
                    help='extra loss weight of the latent entries within --outline-band px of an object outline (0 = off)')
    ap.add_argument('--outline-band', type=float, default=1.5, help='pixels from an outline that --outline-weight covers')
    ap.add_argument('--open-shift-share', type=float, default=0.7, help='share of opening s from the shift-5 distribution (rest uniform)')
    ap.add_argument('--lr', type=float, default=4e-4)
    ap.add_argument('--warmup', type=int, default=200)
    ap.add_argument('--ema', type=float, default=0.999)
    ap.add_argument('--compile', action='store_true', help='torch.compile the loss (PyTorch 2.x; eager if it fails)')
    ap.add_argument('--log-every', type=int, default=50)
    ap.add_argument('--save-every', type=float, default=90.0, help='seconds between EMA checkpoints')
    ap.add_argument('--eval-n', type=int, default=256, help='held-out prompts')
    ap.add_argument('--eval-blocks', type=int, default=6, help='blocks a video; the last is the continued one')
    ap.add_argument('--eval-chunk', type=int, default=256)
    ap.add_argument('--recovery-n', type=int, default=256, help='scenes of the recovery measure (distill_opening.recovery)')
    ap.add_argument('--png-blocks', type=int, default=8)
    ap.add_argument('--eval-ode-steps', default='16,32', help='ODE step counts evaluated (the first also makes the PNG and the continuation run)')
    ap.add_argument('--eval-guidance', default='1',
                    help='classifier-free guidance scales of the ODE evaluation (comma list; 1 = none); the PNG uses the largest')
    ap.add_argument('--device', default=None)
    ap.add_argument('--eval-only', action='store_true', help='no training: evaluate --init (or random weights)')
    ap.add_argument('--no-eval', action='store_true', help='train and save, no evaluation (e.g. timing runs, or a run continued by another)')
    ap.add_argument('--self-check', action='store_true', help='check the device scene sampler against scenes.py and exit')
    args = ap.parse_args(argv)
    if not 0.0 <= args.cond_drop <= 1.0:
        ap.error(f'--cond-drop: expected a probability in [0, 1], got {args.cond_drop}')
    try:
        guidances = [float(v) for v in args.eval_guidance.split(',') if v.strip()]
    except ValueError:
        ap.error(f'--eval-guidance: expected a comma list of numbers, got {args.eval_guidance!r}')
    if not guidances:
        ap.error('--eval-guidance: expected at least one number')
    for share in ('context_erase', 'context_copy', 'context_fade', 'shape_swap', 'shape_swap_tf', 'context_recycle'):
        if not 0.0 <= getattr(args, share) <= 1.0:
            ap.error(f"--{share.replace('_', '-')}: expected a share in [0, 1], got {getattr(args, share)}")
    if not 0 <= args.context_erase_from < args.window // BLOCK:
        ap.error(f'--context-erase-from: expected a block of the clip, 0..{args.window // BLOCK - 1}, got {args.context_erase_from}')
    if args.copy_weight < 0 or (args.copy_weight > 0 and args.context_copy <= 0):
        ap.error(f'--copy-weight: expected >= 0, and --context-copy > 0 with it, got {args.copy_weight} '
                 f'with --context-copy {args.context_copy}')
    if not 0 <= args.context_copy_from < args.window // BLOCK:
        ap.error(f'--context-copy-from: expected a block of the clip, 0..{args.window // BLOCK - 1}, got {args.context_copy_from}')
    try:
        args.context_fade_keep = tuple(float(v) for v in args.context_fade_keep.split(','))
    except ValueError:
        args.context_fade_keep = ()
    if len(args.context_fade_keep) != 2 or not 0.0 <= args.context_fade_keep[0] <= args.context_fade_keep[1] < 1.0:
        ap.error(f'--context-fade-keep: expected lo,hi with 0 <= lo <= hi < 1, got {args.context_fade_keep!r}')
    if not 0.0 <= args.shape_swap_min_s <= 1.0:
        ap.error(f'--shape-swap-min-s: expected a noise level in [0, 1], got {args.shape_swap_min_s}')
    if args.outline_weight < 0 or args.outline_band <= 0:
        ap.error(f'--outline-weight: expected >= 0 and --outline-band > 0, got {args.outline_weight} and {args.outline_band}')
    try:
        recycle_sigma = tuple(float(v) for v in args.context_recycle_sigma.split(','))
    except ValueError:
        recycle_sigma = ()
    if len(recycle_sigma) != 2 or not 0.0 < recycle_sigma[0] <= recycle_sigma[1] <= 1.0:
        ap.error(f'--context-recycle-sigma: expected lo,hi with 0 < lo <= hi <= 1, got {args.context_recycle_sigma!r}')

    t_start = time.time()
    vocab = scenes.vocabulary()
    dims = load_dims(args.model, vocab)
    if args.prediction:
        dims.prediction = args.prediction
    if args.init:  # an --init with the neighbour tables keeps them (load_weights refuses a file's keys the model lacks)
        dims = dims_of_file(dims, args.init)
    if args.text_neighbours:
        dims.text_neighbours = True
    if args.first_frames_negated is not None:
        if args.first_frames_negated < 0:
            ap.error(f'--first-frames-negated: expected >= 0, got {args.first_frames_negated}')
        dims.first_frames_negated = args.first_frames_negated
        scenes.set_first_frames_negated(args.first_frames_negated)
    if args.neighbour_lr_scale <= 0:
        ap.error(f'--neighbour-lr-scale: expected > 0, got {args.neighbour_lr_scale}')
    if args.neighbour_tables != 'both' and not dims.text_neighbours:
        ap.error(f'--neighbour-tables {args.neighbour_tables}: the model has no neighbour tables (add --text-neighbours)')
    if args.max_steps < 0:
        ap.error(f'--max-steps: expected >= 0, got {args.max_steps}')
    if args.self_check:
        self_check(vocab, dims.text_len)
        return
    os.makedirs(args.out, exist_ok=True)
    write_model_json(args.out, dims)
    dev = pick_device(args.device)
    torch.manual_seed(args.seed)
    model = WanModel(dims)
    if args.init:
        added = load_weights(model, args.init, missing_ok=TEXT_NEIGHBOUR_KEYS if dims.text_neighbours else ())
        if added:
            print(f'{args.init} has no {", ".join(added)}: starting them at zero', flush=True)
    if args.reinit_head:
        torch.nn.init.zeros_(model.head.head.weight)
        torch.nn.init.zeros_(model.head.head.bias)
    model = model.to(dev).train()
    ema = frozen_copy(model)
    n_params = sum(q.numel() for q in model.parameters())
    info = {'device': torch.cuda.get_device_name(dev) if dev.type == 'cuda' else 'cpu', 'torch': torch.__version__,
            'params': n_params, 'dims': dims.to_dict()}
    print(f'{info}, init {args.init}', flush=True)
    meta = {'recipe': 'tools/train/train_teacher.py', 'init': os.path.relpath(args.init, ROOT) if args.init else 'scratch',
            'seed': str(args.seed), 'cond_drop': str(args.cond_drop), 'prediction': dims.prediction,
            'context_recycle': f'{args.context_recycle} at s {args.context_recycle_sigma}',
            'context_erase': f'{args.context_erase} from block {args.context_erase_from}',
            'context_fade': f'{args.context_fade} keeping {args.context_fade_keep}',
            'context_copy': f'{args.context_copy} from block {args.context_copy_from}, weight {args.copy_weight}', 'outline_weight': f'{args.outline_weight} within {args.outline_band} px',
            'shape_swap': str(args.shape_swap), 'shape_swap_tf': str(args.shape_swap_tf),
            'shape_swap_min_s': str(args.shape_swap_min_s), 'train_only': args.train_only,
            'text_neighbours': f'{dims.text_neighbours} ({args.neighbour_tables}, lr x{args.neighbour_lr_scale})'}
    weights_path = os.path.join(args.out, 'model.safetensors')

    step, train_s, log, timing, compiled = 0, 0.0, [], {}, False
    if not args.eval_only:
        set_tf32(dev, True)
        src = DeviceScenes(vocab, dims.text_len, dev, args.seed)
        infer_s = torch.tensor([t / 1000 for t in shifted_steps(INFERENCE_STEPS, SHIFT)], device=dev)
        if args.train_only == 'text':
            for name, q in model.named_parameters():
                q.requires_grad_(text_path(name))
        train_neighbour_tables(model, args.neighbour_tables)
        trained = [(n, q) for n, q in model.named_parameters() if q.requires_grad]
        groups = [{'params': [q for n, q in trained if n not in TEXT_NEIGHBOUR_KEYS]},
                  {'params': [q for n, q in trained if n in TEXT_NEIGHBOUR_KEYS], 'lr_scale': args.neighbour_lr_scale}]
        opt = adamw([g for g in groups if g['params']], dev, args.lr)
        amp = autocast_args(dev)
        losses_fn = step_losses
        if args.compile:
            if hasattr(torch, 'compile'):
                losses_fn = torch.compile(step_losses)
                compiled = True
            else:
                print(f'--compile: torch {torch.__version__} has no torch.compile, running eager', flush=True)
        ema_p, model_p = list(ema.parameters()), list(model.parameters())
        budget = 60 * args.minutes
        start = time.time()
        last_save = start
        run = {'open': torch.zeros((), device=dev), 'tf': torch.zeros((), device=dev)}
        run_n, run_t0, run_step0 = 0, start, 0
        sync = (lambda: torch.cuda.synchronize(dev)) if dev.type == 'cuda' else (lambda: None)
        while time.time() - start < budget and not (0 < args.max_steps <= step):
            timed = 20 <= step < 40  # a few synchronised steps: where a step's time goes
            if timed:
                sync()
                t0 = time.time()
            x = make_inputs(src, args, dims, infer_s)
            if args.context_recycle > 0 and 't_clean' in x:
                with torch.autocast(**amp):
                    recycle_context(model, x, src, args.context_recycle, recycle_sigma, dims.prediction)
            if timed:
                sync()
                t1 = time.time()
            frac = (time.time() - start) / budget
            if args.max_steps:
                frac = max(frac, step / args.max_steps)
            lr = lr_at(step, frac, args.lr, args.warmup)
            set_lr(opt, lr)
            try:
                with torch.autocast(**amp):
                    ls = losses_fn(model, x)
                loss = ls.get('open', 0.0) + args.tf_weight * ls.get('tf', 0.0)
                opt.zero_grad(set_to_none=True)
                loss.backward()
            except Exception as e:  # noqa: BLE001 - a failed compile falls back to eager
                if not compiled or step > 0:
                    raise
                print(f'torch.compile failed ({type(e).__name__}: {str(e)[:300]}), running eager', flush=True)
                losses_fn, compiled = step_losses, False
                timing['compile_failed_after_s'] = round(time.time() - start, 1)
                opt.zero_grad(set_to_none=True)
                continue
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            ema_update(ema_p, model_p, step, args.ema)
            if timed:
                sync()
                t2 = time.time()
                timing.setdefault('data_ms', []).append(1000 * (t1 - t0))
                timing.setdefault('step_ms', []).append(1000 * (t2 - t1))
            if step == 0:
                sync()
                timing['first_step_s'] = round(time.time() - start, 1)  # compile time, when compiled
                print(f"first step (compile {'on' if compiled else 'off'}) took {timing['first_step_s']} s", flush=True)
            for k in run:
                if k in ls:
                    run[k] += ls[k].detach().float()
            run_n += 1
            step += 1
            if step % args.log_every == 0:
                el = time.time() - start
                vals = {k: float(v) / run_n for k, v in run.items()}
                rate = (step - run_step0) / max(time.time() - run_t0, 1e-9)
                log.append({'step': step, 'seconds': round(el, 1), 'lr': lr, 'loss_open': vals['open'], 'loss_tf': vals['tf'],
                            'steps_per_s': round(rate, 2)})
                print(f"step {step} open {vals['open']:.4f} tf {vals['tf']:.4f} lr {lr:.2e} {rate:.1f} steps/s t {el:.0f}s", flush=True)
                for k in run:
                    run[k].zero_()
                run_n, run_t0, run_step0 = 0, time.time(), step
            if time.time() - last_save > args.save_every:
                save_atomic(ema, weights_path, {**meta, 'steps': str(step)})
                last_save = time.time()
        sync()
        train_s = time.time() - start
        for k in ('data_ms', 'step_ms'):
            if k in timing:
                timing[k] = round(float(np.median(timing[k])), 2)
        save_atomic(ema, weights_path, {**meta, 'steps': str(step), 'train_seconds': f'{train_s:.0f}'})
        clips = step * (args.batch_open + args.batch_tf)
        with open(os.path.join(args.out, 'loss.json'), 'w') as f:
            json.dump({'args': vars(args), **info, 'compiled': compiled, 'steps': step, 'seconds': round(train_s, 1),
                       'steps_per_s': round(step / max(train_s, 1e-9), 2), 'clips': clips,
                       'timing (median of synchronised steps 20-39)': timing, 'log': log}, f, indent=1)
        print(f'saved after {step} steps, {train_s:.0f} s ({step / max(train_s, 1e-9):.1f} steps/s, timing {timing})', flush=True)

    if args.no_eval:
        return
    # -- evaluation (fp32, no TF32: as the runtime computes) --------------------------------------
    set_tf32(dev, False)
    t0 = time.time()
    ev = ema.float().eval()
    evalset = held_out_prompts(args.seed, args.eval_n, vocab, dims.text_len, dev)
    metrics: Dict[str, object] = {'args': vars(args), **info, 'train': {'steps': step, 'seconds': round(train_s, 1),
                                                                          'compiled': compiled},
                                  'held_out': f'{args.eval_n} prompts of scenes.sample_scene(np.random.default_rng({HELD_OUT_SEED} + seed + i))'}
    p_all = evalset.take(torch.arange(args.eval_n, device=dev))
    gt = DeviceScenes(vocab, dims.text_len, dev, seed=HELD_OUT_SEED)
    gb = gt.sample(args.eval_n)
    for key in ('colour', 'shape', 'bg', 'valid', 'count'):
        gb[key] = p_all[key]
    metrics['ceiling: ground-truth random scenes of these prompts'] = opening_eval.detect(
        gt.render(gb, BLOCK), p_all, opening_eval.reference_areas(p_all))
    chunk = max(1, args.eval_chunk)
    ode = [int(v) for v in args.eval_ode_steps.split(',') if v.strip()]
    runs = {ode_run_name(c, g): dict(first='ode', first_steps=c, guidance=g) for c in ode for g in guidances}
    runs['renoise4 (the runtime loop)'] = dict(first='renoise', first_steps=4)
    runs[f'ode{ode[0]} opening, renoise4 continuation'] = dict(first='ode', first_steps=ode[0], rest='renoise', rest_steps=4)
    for name, how in runs.items():
        t1 = time.time()
        metrics[name] = evaluate(ev, evalset, args.eval_blocks, 123, chunk, **how)
        print(f'{name} ({time.time() - t1:.1f} s): ' + json.dumps({k: round(v['objects_present'], 4) for k, v in metrics[name].items()}), flush=True)
    metrics[f'ode{ode[0]}, second noise seed'] = evaluate(ev, evalset, 1, 321, chunk, first='ode', first_steps=ode[0])
    recovery_set = opening_eval.recovery_scenes(args.recovery_n)
    for g in guidances:
        t1 = time.time()
        key = f'recovery, {ode_run_name(ode[0], g)} (an object left out of a 9-frame ground-truth context)'
        metrics[key] = opening_eval.recovery(ev, recovery_set, vocab, 7, 'ode', ode[0], g)
        print(f'{key} ({time.time() - t1:.1f} s): ' + json.dumps({k: round(v, 4) for k, v in metrics[key].items()}), flush=True)
    metrics['eval_seconds'] = round(time.time() - t0, 1)
    metrics_path = os.path.join(args.out, 'metrics.json')
    with open(metrics_path, 'w') as f:  # before the PNGs, so a failing picture loses no numbers
        json.dump(metrics, f, indent=1)
    metrics['png'] = {}
    g_png = max(guidances)
    png_ode = f'openings-ode{ode[0]}.png' if g_png == 1.0 else f'openings-ode{ode[0]}-guidance{g_png:g}.png'
    for name, how in ((png_ode, dict(first='ode', first_steps=ode[0], guidance=g_png)),
                      ('openings-renoise4.png', dict(first='renoise', first_steps=4))):
        try:
            metrics['png'][name] = png_grid(ev, vocab, dims, dev, os.path.join(args.out, name), args.png_blocks, **how)
        except Exception as e:  # noqa: BLE001
            metrics['png'][name] = f'failed: {type(e).__name__}: {e}'
    metrics['eval_seconds'] = round(time.time() - t0, 1)
    metrics['wall_seconds'] = round(time.time() - t_start, 1)
    with open(metrics_path, 'w') as f:
        json.dump(metrics, f, indent=1)
    summary = {k: {kk: round(vv['objects_present'], 4) for kk, vv in v.items()} for k, v in metrics.items()
               if isinstance(v, dict) and k.startswith(('ode', 'renoise'))}
    print(f"eval in {metrics['eval_seconds']} s, wall {metrics['wall_seconds']} s\n" + json.dumps(summary, indent=1), flush=True)


if __name__ == '__main__':
    main()
