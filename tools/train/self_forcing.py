"""Self-Forcing for the demo model: a few-step autoregressive STUDENT trained on its own rollouts.

    python3 tools/train/self_forcing.py --teacher models/demo/model.safetensors --out $OUT --minutes 7.5

The student (initialised from --init, default the teacher) generates videos block by block exactly
as the runtime does (docs/model.md, The loop): pure noise, the 4-step re-noising sampler
(shifted sigmas 1, .9375, .8333, .625; fresh noise between steps), then a clean pass at t = 0 whose
keys and values enter its OWN KV cache, under the default cache policy (sink, absolute positions:
the first S frames forever plus the last W - S - F frames; W 12, S 3, F 3). Rollouts are longer
than the window (--rollout-blocks 8 = 24 frames), so training sees the sink and evictions
(--rollout-blocks-max: a random length per rollout, for longer sink-to-window gaps).

Objective: DMD (distribution matching distillation), as in Self-Forcing:
- per block, one exit step k (uniform over the 4 steps, shared by the batch): steps before k run
  without gradient, step k with gradient; its x0 estimate is the block's output. The clean pass
  that writes the block into the cache runs without gradient (gradient only through the last
  denoising step of each block);
- the rolled-out video x is noised per block, x_s = (1 - s) x + s n (s from the shift-5
  distribution), and scored by the frozen TEACHER (real score) and a CRITIC (fake score,
  initialised from the teacher whatever --init is, trained by flow matching on the student's own videos). Both see the
  noisy block conditioned on the student's own clean earlier blocks with exactly the runtime's
  attention pattern (one pass over [clean ‖ noisy] with a sink/window block mask, absolute
  positions) — the conditionals p(x_b | x_<b) whose sum is the KL of the whole video;
- generator gradient (fake_x0 - real_x0) / mean|x - real_x0| per block (DMD's normaliser),
  applied through loss = 0.5 || x - sg(x - grad) ||^2;
- critic: K flow-matching steps per generator step on the same (detached) rollout with fresh noise
  levels (--critic-steps), larger learning rate (two time-scale update); --critic-warmup N trains the critic alone
  on the student's rollouts for the first N steps, so that the first generator steps see a fake score of the
  student's own distribution, not the teacher's (the critic starts as the teacher);
- block 0 opens from pure noise with an empty cache, so the opening is trained like every block.
Rollout ODE distillation (--ode-weight W, default off): added to DMD (or alone, --dmd-weight 0), the student is
regressed onto the teacher's deterministic samples on its own rollouts: from each block's start (pure noise; with
--block-start-steps the previous frame noised to the first level) the teacher's guided ODE is integrated to 0 with the
rollout's clean blocks as context (teacher_ode), and the student's x0 from the ODE's state at one of its own levels is
regressed onto the ODE's end (ode_regression; CausVid's and Self-Forcing's ODE-pair initialisation, on own contexts).
Rewarded distillation (--reward-beta B, --ode-reward-beta B; Reward Forcing's Re-DMD): each rollout block's DMD term
(or the ODE term's, by the teacher's sample) weighted by exp(B r), r = block_rewards (the prompted objects present minus
their extra copies), the weights normalised to mean 1 over the batch for each block index (reward_weights).
Classifier-free guidance (--real-guidance G, default 1 = none): the real score is the teacher's
guided flow, v_empty + G (v_prompt - v_empty), the empty prompt being lengths 0 (an all-zero text
context); the critic (fake score) stays unguided and conditional, as in DMD2 / Self-Forcing. It
needs a teacher trained with dropped prompts (train_teacher.py --cond-drop). --real-guidance-interval lo,hi guides
only the frames whose noise level lies in [lo, hi] (the prompt's flow alone elsewhere). --real-score-mirror computes the
real score of a random half of the batch on the clip mirrored left-right, and mirrors its flow back: the data (and
every prompt) is mirror-symmetric, a teacher that places or steers its objects more to one side is not, and the
expectation over the mirror is the teacher's score made symmetric. Its triangles point up, so a clip upside down is
out of the data only with a triangle: --real-score-flip also takes the real score of a random half of the clips without
one upside down (and flips its flow back).
Motion (--speed-weight W, --motion-reward W): a block's net speed is its prompted objects' centroid displacement from
its first to its last frame, where an object is drawn once in both, as a share of the training data's mean speed
(block_motion; inside the block, because the step across a boundary is where objects jump). --speed-weight adds
W (mean net speed over the blocks at their last two exit steps - 1)^2, differentiable through soft centroids
(speed_loss): the student's mean speed held to the data's. --motion-reward adds W times the speed (capped at 1.5) to
Re-DMD's block reward. --smooth-weight W adds W times the objects' mean acceleration (acceleration_loss: the length
of the soft centroid's second difference over three frames where the object is drawn once, in units of the data's mean
speed), since the data's objects move in straight lines between bounces and a one-frame jump or turn is not motion.
Copies (--copy-penalty W): W times the prompted colours' pixels away from each colour's largest connected component,
as a share of its size (copy_loss), so that speed is not bought with a copy drawn ahead and jumped to.
--count-probs p1,p2,p3 sets the training prompt pool's shares of one, two and three objects (the data's 0.3, 0.4, 0.3
by default); the held-out evaluation keeps the data's.
The word table (text_encoder.embedding.weight) is frozen in the student and the critic.

Held-out prompts: captions with crc32 % 8 == 0 are never trained on; the evaluation uses them.

Writes to --out: model.safetensors (EMA student, float32, the runtime's keys), loss.json,
metrics.json (teacher vs student: objects present in block 0 and after --eval-blocks blocks over
--eval-n held-out prompts; a --long-blocks rollout's colour fidelity and border sharpness early vs
late), filmstrip.png (student: --long-blocks rollouts of fixed prompts, every 8th frame),
teacher-filmstrip.png (the same from the teacher).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import time
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from common import (  # noqa: E402  (also puts tools/reference and tools/data on sys.path)
    DEFAULT_MODEL_JSON, DEFAULT_WEIGHTS, INFERENCE_STEPS, adamw, autocast_args, ema_update, freeze, freeze_text,
    frozen_copy, held_out, load_dims, load_model, lr_at, matching_params, noise_interval, optimizer_step, pick_device,
    save_atomic, save_sheet, set_lr, set_tf32, shift_s, write_model_json,
)
from model import KVCache, WanModel, flow_of_output, flow_target  # noqa: E402
import scenes  # noqa: E402
from distill_opening import (  # noqa: E402
    MIN_OBJECT_PX, OBJ_RGB, PNG_PROMPTS, PromptSet, classify, component_centroids, component_labels, detect,
    empty_prompt_kv, guided, prompted_components, recovery, recovery_scenes, reference_areas, sigmas_of, step_sigmas,
)


# ----------------------------------------------------------------------------------------------
# Prompts: a held-out share of the caption space
# ----------------------------------------------------------------------------------------------

def parse_count_probs(text: Optional[str]) -> Tuple[float, float, float]:
    """'p1,p2,p3' -> shares of one, two and three objects (non-negative, summing to 1); None -> the data's."""
    if text is None:
        return scenes.COUNT_PROBS
    try:
        probs = tuple(float(v) for v in text.split(','))
    except ValueError:
        raise SystemExit(f'--count-probs: expected three numbers p1,p2,p3, got {text!r}')
    if len(probs) != 3 or not all(0 <= v <= 1 for v in probs) or abs(sum(probs) - 1) > 1e-6:  # NaN fails 0 <= v
        raise SystemExit(f'--count-probs: expected three non-negative shares summing to 1, got {text!r}')
    return probs  # type: ignore[return-value]


def prompt_pool(seed: int, n: int, held: bool, vocab, text_len: int, device,
                count_probs: Sequence[float] = scenes.COUNT_PROBS) -> PromptSet:
    """n random training-grammar prompts, only held-out captions (held) or only training ones; count_probs:
    the shares of one, two and three objects (the data's by default)."""
    rng = np.random.default_rng(seed)
    out: List[scenes.Scene] = []
    while len(out) < n:
        s = scenes.sample_scene(rng, count_probs)
        if held_out(s.caption()) == held:
            out.append(s)
    return PromptSet(out, vocab, text_len, device)


# ----------------------------------------------------------------------------------------------
# The runtime's cache policy (sink, absolute positions; sink 0 = the window policy)
# ----------------------------------------------------------------------------------------------

def visible_frames(frames: int, block: int, window: int, sink: int) -> torch.Tensor:
    """bool [frames, frames]: frame j is in the cache of the block holding frame i (j < that block's
    first frame, and j a sink frame or one of the last window - sink - block frames before it)."""
    f = torch.arange(frames)
    f0 = (f // block) * block  # first frame of the query's block
    history = window - sink - block
    j = f[None, :]
    before = j < f0[:, None]
    return before & ((j < sink) | (j >= f0[:, None] - history))


def rollout_mask(blocks: int, block: int, tokens: int, window: int, sink: int, device) -> torch.Tensor:
    """bool [2L, 2L] over [clean ‖ noisy] tokens (True = may attend): each block, noisy (its denoising
    steps) or clean (its clean pass), attends to the cache the runtime holds for it and to itself."""
    n = blocks * block
    cache = visible_frames(n, block, window, sink)
    blk = torch.arange(n) // block
    same = blk[:, None] == blk[None, :]
    none = torch.zeros(n, n, dtype=torch.bool)
    top = torch.cat([cache | same, none], dim=1)
    bottom = torch.cat([cache, same], dim=1)
    m = torch.cat([top, bottom], dim=0)  # frame level [2n, 2n]
    m = m.repeat_interleave(tokens, dim=0).repeat_interleave(tokens, dim=1)
    return m.to(device)


def evict(cache: KVCache, next_start: int, window: int, sink: int, block: int) -> KVCache:
    """Keeps the sink frames and the last window - sink - block frames before next_start."""
    frame = cache.positions[:, 0]
    keep = (frame < sink) | (frame >= next_start - (window - sink - block))
    if bool(keep.all()):
        return cache
    return cache.select(torch.nonzero(keep).reshape(-1))


# ----------------------------------------------------------------------------------------------
# Rollouts: the runtime's loop, batched, with the student's own cache
# ----------------------------------------------------------------------------------------------

def from_previous_frame(frame: torch.Tensor, noise: torch.Tensor, s0: float) -> torch.Tensor:
    """A block's start under the runtime's generation.blockStart previous-frame (src/loop/sampler.ts startFromFrame):
    the last frame before it, repeated over its frames, noised to the first level s0: (1 - s0) frame + s0 noise."""
    return (1 - s0) * frame + s0 * noise


def rollout(model: WanModel, xkv, batch: int, blocks: int, sig: Sequence[float], gen: Optional[torch.Generator],
            window: int, sink: int, block: int, exits: Optional[Sequence[int]] = None, amp: Optional[Dict] = None,
            sig_rest: Optional[Sequence[float]] = None) -> torch.Tensor:
    """Latents [B, C, blocks*block, H, W]. exits: per block the step whose x0 is the output, computed
    with gradient (steps before it without); None: all steps, no gradient (the runtime's loop). sig_rest: the runtime's
    generation.blockStart previous-frame: every block after the first starts from the last frame before it, repeated
    and noised to sig_rest[0], and is denoised over sig_rest (as many steps as sig); None: every block from pure noise
    over sig."""
    dims = model.dims
    dev = next(model.parameters()).device
    shape = (batch, dims.latent_channels, block, dims.latent_height, dims.latent_width)
    cache = KVCache.empty(dims, batch, dev)
    amp = amp or dict(device_type=dev.type, enabled=False)

    def noise() -> torch.Tensor:
        return torch.randn(shape, generator=gen, device=dev)

    out = []
    for bi in range(blocks):
        fpos = torch.arange(bi * block, (bi + 1) * block, device=dev)
        levels = sig if sig_rest is None or bi == 0 else sig_rest
        last = len(levels) - 1 if exits is None else exits[bi]
        x = noise()
        if levels is not sig:
            x = from_previous_frame(out[-1][:, :, -1:].detach(), x, levels[0])
        x0 = x
        for k in range(last + 1):
            grad = exits is not None and k == last
            with torch.set_grad_enabled(grad and torch.is_grad_enabled()), torch.autocast(**amp):
                tt = torch.full((batch, block), levels[k] * 1000, device=dev)
                x0 = (x - levels[k] * model(x, tt, fpos, cross_kv=xkv, cache=cache).flow).float()
            if k < last:
                x = (1 - levels[k + 1]) * x0.detach() + levels[k + 1] * noise()
        out.append(x0)
        if bi == blocks - 1:
            break
        with torch.no_grad(), torch.autocast(**amp):
            cache = model.cache_clean_block(x0.detach(), fpos, xkv, cache)
        cache = evict(cache, (bi + 1) * block, window, sink, block)
    return torch.cat(out, dim=2)


def teacher_forced_flow(model: WanModel, clean: torch.Tensor, noisy: torch.Tensor, s_frame: torch.Tensor,
                        xkv, mask: torch.Tensor) -> torch.Tensor:
    """Flow of every noisy block given the clean earlier blocks, attention as the runtime's (mask)."""
    dims = model.dims
    nf = clean.shape[2]
    per = dims.tokens_per_frame
    x = torch.cat([model.patchify(clean), model.patchify(noisy)], dim=1)
    t_all = torch.cat([torch.zeros_like(s_frame), s_frame * 1000], dim=1)
    e, e0 = model.embed_time(t_all)
    pos = model.token_positions(torch.arange(nf, device=clean.device))
    out = model.run_tokens(x, e.repeat_interleave(per, dim=1), e0.repeat_interleave(per, dim=1),
                           torch.cat([pos, pos], dim=0), xkv, None, mask)
    return flow_of_output(model.unpatchify(out.flow[:, nf * per:], nf).float(), noisy, s_frame * 1000, dims.prediction)


def mirrored_where(latent: torch.Tensor, mirror: Optional[torch.Tensor], flip: Optional[torch.Tensor] = None) -> torch.Tensor:
    """latent [B, C, T, h, w] with the clips where mirror [B] (bool) is set mirrored left-right, and those where flip
    [B] is set flipped upside down; None: none. Both are their own inverse and commute, so it also maps back."""
    if mirror is not None:
        latent = torch.where(mirror[:, None, None, None, None], scenes.mirror_latent(latent), latent)
    if flip is not None:
        latent = torch.where(flip[:, None, None, None, None], scenes.flip_latent(latent), latent)
    return latent


def flippable(p: Dict[str, torch.Tensor]) -> torch.Tensor:
    """[B] bool: the prompts without a triangle, whose clips are as likely upside down (a triangle points up)."""
    return ~((p['shape'] == scenes.SHAPES.index('triangle')) & p['valid']).any(dim=1)


def real_flow(teacher: WanModel, clean: torch.Tensor, noisy: torch.Tensor, s_frame: torch.Tensor, xkv, xkv_null,
              mask: torch.Tensor, guidance: float, opening_guidance: Optional[float] = None, block: int = 3,
              interval: Optional[Tuple[float, float]] = None) -> torch.Tensor:
    """The real score's flow: teacher_forced_flow with the prompt, guided() towards it from the empty
    prompt's (xkv_null) when guidance != 1 (one extra teacher pass). opening_guidance (None: guidance)
    is the first block's scale: the block that opens from noise, where the prompt must place the objects.
    interval (lo, hi): guided only where a frame's noise level lies in it, the prompt's flow alone elsewhere."""
    g0 = guidance if opening_guidance is None else opening_guidance
    v = teacher_forced_flow(teacher, clean, noisy, s_frame, xkv, mask)
    if guidance == 1.0 and g0 == 1.0:
        return v
    scale = torch.full((clean.shape[2],), guidance, device=v.device, dtype=v.dtype)
    scale[:block] = g0
    scale = scale[None].expand(clean.shape[0], -1)  # [B, F]
    if interval is not None:
        scale = torch.where((s_frame >= interval[0]) & (s_frame <= interval[1]), scale, torch.ones_like(scale))
    return guided(v, teacher_forced_flow(teacher, clean, noisy, s_frame, xkv_null, mask), scale[:, None, :, None, None])


def ode_grid(steps: Sequence[float], substeps: int) -> List[float]:
    """The teacher's ODE grid (noise levels, 0..1) from steps[0] to 0: every interval between the student's timesteps
    (and from the last one to 0) split into `substeps` even steps of the timestep, then shifted as the loop's steps are;
    the student's own levels are grid points k * substeps."""
    ts = list(steps) + [0.0]
    grid = [ts[k] + (ts[k + 1] - ts[k]) * j / substeps for k in range(len(steps)) for j in range(substeps)] + [0.0]
    return sigmas_of(grid)


@torch.no_grad()
def teacher_ode(teacher: WanModel, clean: torch.Tensor, start: torch.Tensor, grid: torch.Tensor, xkv, xkv_null,
                mask: torch.Tensor, guidance: float, opening_guidance: Optional[float], block: int,
                interval: Optional[Tuple[float, float]] = None) -> torch.Tensor:
    """The teacher's guided probability-flow ODE (Euler over the real score, real_flow) of every block of a rollout at once,
    each from its own start, given the rollout's clean blocks as context (mask: the runtime's cache). grid [blocks, N + 1]:
    each block's noise levels, from its start's level to 0. Returns the states at every grid point, [N + 1, B, C, F, H, W]
    (the last: the teacher's samples)."""
    x = start
    states = [x]
    for j in range(grid.shape[1] - 1):
        s_frame = grid[:, j].repeat_interleave(block)[None].expand(x.shape[0], -1).contiguous()
        v = real_flow(teacher, clean, x, s_frame, xkv, xkv_null, mask, guidance, opening_guidance, block, interval).float()
        x = x + (grid[:, j + 1] - grid[:, j]).repeat_interleave(block)[None, None, :, None, None] * v
        states.append(x)
    return torch.stack(states)


def ode_regression(student: WanModel, teacher: WanModel, clean: torch.Tensor, start: torch.Tensor, grid: torch.Tensor,
                   substeps: int, xkv_s, xkv_t, xkv_null, mask: torch.Tensor, guidance: float,
                   opening_guidance: Optional[float], block: int, gen: Optional[torch.Generator] = None, amp=None,
                   first_block: int = 0, target_weights: Optional[Callable[[torch.Tensor], torch.Tensor]] = None,
                   min_level: int = 0, interval: Optional[Tuple[float, float]] = None):
    """Rollout ODE distillation: the teacher's ODE from each block's start (teacher_ode) on the student's own rollout,
    and the student's x0 from the ODE's state at one of its own levels (a random one per video and block, grid point
    k * substeps, k >= min_level), regressed onto the ODE's end: mean squared error over the blocks from first_block on,
    with gradient into the student only. min_level 1 leaves out the block's start, where the student would regress a
    whole sample from noise alone (the mean of the teacher's samples there). target_weights: the teacher's samples
    from first_block on [B, C, F', H, W] -> a weight per video and block [B, F' / block] (--ode-reward-beta: the
    teacher's samples that draw well count more)."""
    dev = clean.device
    b, nb = clean.shape[0], grid.shape[0]
    states = teacher_ode(teacher, clean, start, grid, xkv_t, xkv_null, mask, guidance, opening_guidance, block, interval)
    levels = (grid.shape[1] - 1) // substeps
    k = torch.randint(min_level, levels, (b, nb), generator=gen, device=dev) * substeps  # [B, blocks] grid points
    kf = k.repeat_interleave(block, dim=1)  # [B, F]
    pick = kf[None, :, None, :, None, None].expand(1, *states.shape[1:])
    x = states.gather(0, pick)[0]
    s_frame = grid.gather(1, k.T).T.repeat_interleave(block, dim=1).contiguous()  # [B, F]
    with torch.autocast(**(amp or dict(device_type=dev.type, enabled=False))):
        flow = teacher_forced_flow(student, clean, x, s_frame, xkv_s, mask)
    x0 = x - s_frame[:, None, :, None, None] * flow.float()
    f0 = first_block * block
    target = states[-1][:, :, f0:]
    err = (x0[:, :, f0:] - target).pow(2)
    err = err.reshape(b, err.shape[1], -1, block, *err.shape[3:]).mean(dim=(1, 3, 4, 5))  # [B, blocks]
    if target_weights is not None:
        err = err * target_weights(target)
    return err.mean()


def sample_s(batch: int, blocks: int, device, lo: float, hi: float) -> torch.Tensor:
    return shift_s(torch.rand(batch, blocks, device=device)).clamp(lo, hi)


# ----------------------------------------------------------------------------------------------
# Evaluation
# ----------------------------------------------------------------------------------------------

def border_sharpness(px: torch.Tensor, p: Dict[str, torch.Tensor]) -> torch.Tensor:
    """px [B, T, 64, 64, 3] -> [B]: mean luminance gradient magnitude at the borders of prompted
    objects (pixels of a prompted colour with a 4-neighbour of another class); NaN where none."""
    cls = classify(px)  # [B, T, H, W]
    prompted = torch.zeros(px.shape[:4], dtype=torch.bool, device=px.device)
    for j in range(3):
        prompted |= (cls == p['colour'][:, j, None, None, None]) & p['valid'][:, j, None, None, None]
    lum = 0.299 * px[..., 0] + 0.587 * px[..., 1] + 0.114 * px[..., 2]
    gx = torch.zeros_like(lum)
    gy = torch.zeros_like(lum)
    gx[..., :, 1:-1] = (lum[..., :, 2:] - lum[..., :, :-2]) / 2
    gy[..., 1:-1, :] = (lum[..., 2:, :] - lum[..., :-2, :]) / 2
    g = (gx * gx + gy * gy).sqrt()
    diff = torch.zeros_like(prompted)
    diff[..., 1:, :] |= cls[..., 1:, :] != cls[..., :-1, :]
    diff[..., :-1, :] |= cls[..., :-1, :] != cls[..., 1:, :]
    diff[..., :, 1:] |= cls[..., :, 1:] != cls[..., :, :-1]
    diff[..., :, :-1] |= cls[..., :, :-1] != cls[..., :, 1:]
    border = (prompted & diff).float()
    n = border.sum(dim=(1, 2, 3))
    return torch.where(n > 0, (g * border).sum(dim=(1, 2, 3)) / n.clamp_min(1), torch.full_like(n, float('nan')))


def colour_fidelity(px: torch.Tensor, p: Dict[str, torch.Tensor], min_px: float = 12.0) -> torch.Tensor:
    """[B]: share of the prompted colours covering >= min_px pixels, mean over the frames."""
    cls = classify(px)
    hits = []
    for j in range(3):
        a = (cls == p['colour'][:, j, None, None, None]).float().sum(dim=(2, 3))  # [B, T]
        hits.append((a >= min_px).float().mean(dim=1))
    h = torch.stack(hits, dim=1) * p['valid'].float()
    return h.sum(dim=1) / p['valid'].float().sum(dim=1)


def weighted_centroids(w: torch.Tensor) -> torch.Tensor:
    """w [..., H, W] (>= 0) -> [..., 2] (y, x): the centroid of the pixel centres weighted by w (0, 0 where w is all 0)."""
    ys = torch.arange(w.shape[-2], dtype=w.dtype, device=w.device) + 0.5
    xs = torch.arange(w.shape[-1], dtype=w.dtype, device=w.device) + 0.5
    mass = w.sum(dim=(-2, -1)).clamp_min(1e-6)
    return torch.stack([(w * ys[:, None]).sum(dim=(-2, -1)) / mass, (w * xs).sum(dim=(-2, -1)) / mass], dim=-1)


def centroid_speed(px: torch.Tensor, p: Dict[str, torch.Tensor], stride: int = 4, min_px: float = 12.0) -> torch.Tensor:
    """px [B, T, 64, 64, 3] -> [B]: mean speed (px/frame) of the prompted colours' centroids, each
    measured between frames t and t + stride where the colour covers >= min_px pixels in both; NaN where
    never. (A colour's centroid over all its pixels: a blob that splits or re-forms moves it too.)"""
    cls = classify(px)
    total = torch.zeros(px.shape[0], device=px.device)
    count = torch.zeros(px.shape[0], device=px.device)
    for j in range(3):
        m = (cls == p['colour'][:, j, None, None, None]).float()  # [B, T, H, W]
        a = m.sum(dim=(2, 3))
        cy, cx = weighted_centroids(m).unbind(dim=-1)
        ok = (a[:, stride:] >= min_px) & (a[:, :-stride] >= min_px) & p['valid'][:, j, None]
        d = torch.hypot(cx[:, stride:] - cx[:, :-stride], cy[:, stride:] - cy[:, :-stride]) / stride
        total += (d * ok).sum(dim=1)
        count += ok.sum(dim=1)
    return torch.where(count > 0, total / count.clamp_min(1), torch.full_like(total, float('nan')))


def block_rewards(px: torch.Tensor, p: Dict[str, torch.Tensor], block: int, min_px: int = MIN_OBJECT_PX,
                  labels: Optional[torch.Tensor] = None) -> torch.Tensor:
    """px [B, T, 64, 64, 3] -> [B, T / block]: the reward of each block for --reward-beta, mean over its frames of
    (share of the prompted objects present) - (extra copies per prompted object): an object is present where its
    colour has a 4-connected component of >= min_px pixels, and every such component beyond one is a copy. Dropping
    an object scores as low as drawing it twice, so a student cannot raise the reward by drawing less."""
    found = prompted_components(px, p, min_px, labels)  # [B, T, 3]
    valid = p['valid'][:, None, :].float()  # [B, 1, 3]
    objects = valid.sum(dim=2).clamp_min(1)
    present = ((found >= 1).float() * valid).sum(dim=2) / objects
    extra = ((found - 1).clamp_min(0).float() * valid).sum(dim=2) / objects
    r = present - extra  # [B, T]
    return r.reshape(r.shape[0], -1, block).mean(dim=2)


DATA_SPEED = sum(scenes.SPEED_RANGE) / 2  # the training clips' mean speed, px/frame (uniform over the range; a bounce keeps it)


def block_spans(frames: int, block: int) -> Tuple[List[int], List[int]]:
    """Each block's (first, last) frames, between which its net motion is measured: inside the block, because the
    step across a block's boundary is where a model's objects jump (tools/eval/block-steps.ts: the teacher's
    boundary step is twice its others), and a jump is not the motion asked for."""
    ends = list(range(block - 1, frames, block))
    return [e - (block - 1) for e in ends], ends


def single_centroids(px: torch.Tensor, colour: torch.Tensor, min_px: int = MIN_OBJECT_PX,
                     labels: Optional[torch.Tensor] = None) -> Tuple[torch.Tensor, torch.Tensor]:
    """px [B, T, H, W, 3], colour [B] -> (once bool [B, T], centroid [B, T, 2]): where the colour has exactly one
    4-connected component of >= min_px pixels (drawn once), and that component's centroid (y, x). labels: the colour's
    component_labels [B, T, H, W] if the caller has them."""
    cents, kept = component_centroids(classify(px) == colour[:, None, None, None], min_px, labels)
    once = kept.sum(dim=-1) == 1
    return once, (cents * kept[..., None]).sum(dim=-2)


def prompted_labels(px: torch.Tensor, p: Dict[str, torch.Tensor]) -> torch.Tensor:
    """px [B, T, H, W, 3] -> long [B, T, 3, H, W]: component_labels of each prompted slot's colour. The labelling is the
    costly part of the pixel terms and the block reward: a training step computes it once and passes it to
    block_rewards, drawn_once and copy_loss."""
    cls = classify(px)
    return torch.stack([component_labels(cls == p['colour'][:, j, None, None, None]) for j in range(3)], dim=2)


def drawn_once(px: torch.Tensor, p: Dict[str, torch.Tensor], min_px: int = MIN_OBJECT_PX,
               labels: Optional[torch.Tensor] = None) -> Tuple[torch.Tensor, torch.Tensor]:
    """px [B, T, H, W, 3] -> (once bool [B, T, 3], centroid [B, T, 3, 2]): single_centroids of each prompted slot's
    colour (slots past the prompt's objects are not masked here: block_motion and acceleration_loss mask them with
    p['valid']). A training step with both motion terms computes it once and passes it to each; labels:
    prompted_labels(px) if the caller has them."""
    pairs = [single_centroids(px, p['colour'][:, j], min_px, None if labels is None else labels[:, :, j])
             for j in range(3)]
    return torch.stack([o for o, _ in pairs], dim=2), torch.stack([c for _, c in pairs], dim=2)


def colour_closeness(px: torch.Tensor, colour: torch.Tensor, reach: float = 60.0) -> torch.Tensor:
    """px [B, T, H, W, 3], colour [B] -> [B, T, H, W]: each pixel's closeness to the object colour, 1 at it and 0 from
    `reach` RGB away (the distance classify allows; every other palette colour is more than twice that away, so a
    pixel with closeness > 0 is classified as this colour), differentiable in px."""
    rgb = OBJ_RGB.to(px.device)[colour][:, None, None, None, :]
    return (1 - (px - rgb).norm(dim=-1) / reach).clamp_min(0)


def soft_centroids(px: torch.Tensor, colour: torch.Tensor, reach: float = 60.0) -> torch.Tensor:
    """px [B, T, H, W, 3], colour [B] -> [B, T, 2] (y, x): the centroid of the pixels weighted by colour_closeness,
    differentiable in px."""
    return weighted_centroids(colour_closeness(px, colour, reach))


def block_motion(px: torch.Tensor, p: Dict[str, torch.Tensor], block: int, min_px: int = MIN_OBJECT_PX,
                 soft: bool = False, drawn: Optional[Tuple[torch.Tensor, torch.Tensor]] = None) -> Tuple[torch.Tensor, torch.Tensor]:
    """px [B, T, 64, 64, 3] -> (speed [B, T / block], ok bool [B, T / block]): each block's net speed as a share of the
    training data's mean, mean over the prompted colours drawn once (one component of >= min_px pixels) in both of
    the block's first and last frames (block_spans): the centroid's displacement between them divided by the frames
    between; ok where any colour counts. soft: the displacement of soft_centroids, differentiable in px; the colours
    counted are the same. drawn: drawn_once(px) if the caller has it."""
    starts, ends = block_spans(px.shape[1], block)
    span = torch.tensor([max(e - s, 1) for s, e in zip(starts, ends)], dtype=torch.float32, device=px.device)
    total = torch.zeros(px.shape[0], len(ends), device=px.device)
    count = torch.zeros_like(total)
    once_all, cents_all = drawn if drawn is not None else drawn_once(px.detach(), p, min_px)
    for j in range(3):
        once, cents = once_all[:, :, j], cents_all[:, :, j]
        ok = once[:, starts] & once[:, ends] & p['valid'][:, j, None]
        if soft:
            c = soft_centroids(px, p['colour'][:, j])
            a, b = c[:, starts], c[:, ends]
        else:
            a, b = cents[:, starts], cents[:, ends]
        d = (b - a).norm(dim=-1) / span
        total = total + torch.where(ok, d, torch.zeros_like(d))
        count = count + ok.float()
    return total / count.clamp_min(1) / DATA_SPEED, count > 0


def motion_rewards(px: torch.Tensor, p: Dict[str, torch.Tensor], block: int, cap: float = 1.5) -> torch.Tensor:
    """[B, T / block]: block_motion's speed capped at `cap`, for --motion-reward; a block with no colour drawn once in
    its first and last frames takes the mean of its block index over the batch (0 where none has one), so it is
    neither favoured nor held back."""
    speed, ok = block_motion(px, p, block)
    speed = speed.clamp(max=cap)
    n = ok.float().sum(dim=0, keepdim=True)
    mean = torch.where(ok, speed, torch.zeros_like(speed)).sum(dim=0, keepdim=True) / n.clamp_min(1)
    return torch.where(ok, speed, mean.expand_as(speed))


def mean_over_samples(zero: torch.Tensor, parts) -> Tuple[torch.Tensor, float]:
    """parts: (values, ok bool) pairs of the same shapes -> (the mean of the values where ok, summed over the pairs in
    order onto `zero` (a 0 that keeps the graph), and its value), or (zero, NaN) where no value is ok: the reduction of
    the pixel terms, so that a rollout without samples adds nothing and logs nothing."""
    total = zero
    count = 0.0
    for values, ok in parts:
        total = total + torch.where(ok, values, torch.zeros_like(values)).sum()
        count += float(ok.sum())
    if count == 0:
        return total, float('nan')
    loss = total / count
    return loss, float(loss.detach())


def acceleration_loss(video_px: torch.Tensor, p: Dict[str, torch.Tensor], min_px: int = MIN_OBJECT_PX,
                      drawn: Optional[Tuple[torch.Tensor, torch.Tensor]] = None) -> Tuple[torch.Tensor, float]:
    """The smoothness term (--smooth-weight): the training clips' objects move at a constant velocity between bounces,
    so the mean length of the second difference of each prompted colour's soft centroid over three consecutive frames
    where it is drawn once in all three, in units of the data's mean speed (a turn back at the mean speed scores 2), a
    length and not its square so that a jump across the frame does not outweigh the rest; differentiable in every
    frame. drawn: drawn_once(video_px) if the caller has it. Returns the loss (0 without samples) and its value (NaN
    without)."""
    once_all = (drawn if drawn is not None else drawn_once(video_px.detach(), p, min_px))[0]

    def colour_parts(j: int) -> Tuple[torch.Tensor, torch.Tensor]:
        once = once_all[:, :, j]
        ok = once[:, 2:] & once[:, 1:-1] & once[:, :-2] & p['valid'][:, j, None]
        c = soft_centroids(video_px, p['colour'][:, j])
        return ((c[:, 2:] - 2 * c[:, 1:-1] + c[:, :-2]) / DATA_SPEED).pow(2).sum(dim=-1).add(1e-6).sqrt(), ok

    return mean_over_samples(video_px.sum() * 0, (colour_parts(j) for j in range(3)))


def speed_loss(video_px: torch.Tensor, p: Dict[str, torch.Tensor], block: int, blocks_kept: torch.Tensor,
               drawn: Optional[Tuple[torch.Tensor, torch.Tensor]] = None) -> Tuple[torch.Tensor, float]:
    """The speed moment term (--speed-weight): (mean net block speed / the training data's mean - 1)^2, the mean over
    the batch's blocks marked in blocks_kept [T / block] (those at their late exit steps, whose estimates are sharp)
    where a colour is drawn once in the block's first and last frames; differentiable (block_motion soft).
    Returns the loss (0 without samples) and the mean speed ratio (NaN without)."""
    speed, ok = block_motion(video_px, p, block, soft=True, drawn=drawn)
    ok = ok & blocks_kept[None, :]
    if not bool(ok.any()):
        return video_px.sum() * 0, float('nan')
    mean = speed[ok].mean()
    return (mean - 1) ** 2, float(mean.detach())


def largest_components(px: torch.Tensor, colour: torch.Tensor,
                       labels: Optional[torch.Tensor] = None) -> Tuple[torch.Tensor, torch.Tensor]:
    """px [B, T, H, W, 3], colour [B] -> (bool [B, T, H, W], pixels [B, T]): each frame's largest 4-connected component
    of the colour's pixels, and its size (0 where the colour is absent). labels: the colour's component_labels if the
    caller has them."""
    mask = classify(px) == colour[:, None, None, None]
    lab = component_labels(mask) if labels is None else labels
    flat = lab.flatten(-2)
    sizes = torch.zeros(*flat.shape[:-1], flat.shape[-1] + 1, device=px.device).scatter_add_(
        -1, flat, torch.ones_like(flat, dtype=torch.float32))
    sizes[..., 0] = 0  # off the mask
    size, label = sizes.max(dim=-1)
    return mask & (lab == label[..., None, None]), size


def grown_by(mask: torch.Tensor, px: int) -> torch.Tensor:
    """bool [..., H, W] -> the mask grown by px pixels (a (2 px + 1)-square neighbourhood)."""
    h, w = mask.shape[-2:]
    grown = torch.nn.functional.max_pool2d(mask.float().reshape(-1, 1, h, w), 2 * px + 1, 1, px)
    return grown.reshape(mask.shape) > 0


def copy_loss(video_px: torch.Tensor, p: Dict[str, torch.Tensor], min_px: int = MIN_OBJECT_PX, margin: int = 2,
              labels: Optional[torch.Tensor] = None, frames_kept: Optional[torch.Tensor] = None,
              hold: float = 0.0) -> Tuple[torch.Tensor, float]:
    """The copy term (--copy-penalty): each prompted colour's closeness (colour_closeness) summed over the pixels outside
    its largest 4-connected component grown by `margin` px, as a share of that component's pixels; the mean over the
    frames and prompted colours whose largest component has >= min_px pixels. A second copy as large as the object
    scores about 1, a few stray pixels a little, the object's own soft edge nothing; an absent object is not counted
    (drawing nothing must not score better than drawing once). Differentiable in px: it pulls a copy's pixels off the
    colour, and only where the object is also drawn elsewhere. labels: prompted_labels(video_px) if the caller has them.
    frames_kept: bool [T], the frames counted (default all; training counts those of blocks at their late exit steps,
    as the speed term does, since an early step's blurred estimate spreads the colour past the margin without a copy).
    hold (--copy-hold): adds this times the largest component's own shortfall from the colour (1 - closeness, as a
    share of its pixels), so that fading the colour everywhere, which also lowers the copies' closeness, does not pay.
    Returns the loss (0 without samples) and its value (NaN without)."""
    def colour_parts(j: int) -> Tuple[torch.Tensor, torch.Tensor]:
        colour = p['colour'][:, j]
        keep, size = largest_components(video_px.detach(), colour, None if labels is None else labels[:, :, j])
        close = colour_closeness(video_px, colour)
        outside = (close * ~grown_by(keep, margin)).sum(dim=(-2, -1)) / size.clamp_min(1)
        if hold:
            outside = outside + hold * ((1 - close) * keep).sum(dim=(-2, -1)) / size.clamp_min(1)
        ok = (size >= min_px) & p['valid'][:, j, None]
        return outside, ok if frames_kept is None else ok & frames_kept[None, :]

    return mean_over_samples(video_px.sum() * 0, (colour_parts(j) for j in range(3)))


def student_step(step: int, critic_warmup: int) -> Optional[int]:
    """The student's own step count at training step `step` (its learning-rate warm-up and EMA count from its first
    update), or None while the critic trains alone (the first `critic_warmup` steps)."""
    return None if step < critic_warmup else step - critic_warmup


def reward_weights(r: torch.Tensor, beta: float) -> torch.Tensor:
    """r [B, blocks] -> [B, blocks]: Re-DMD (Reward Forcing): each block's DMD term weighted by exp(beta r), the target
    tilted towards blocks of high reward; normalised to mean 1 over the batch for each block index, so that beta
    changes which videos the student matches the teacher on, not the step size, and not which blocks: a block index
    shares its exit step over the batch, and an early exit's blurred estimate scores lower whatever the student draws.
    beta 0: all 1 (plain DMD)."""
    return torch.softmax(beta * r.float(), dim=0) * r.shape[0]


def effective_share(w: torch.Tensor) -> float:
    """w [B, blocks] -> the batch's effective sample size under the weights as a share of B, mean over blocks."""
    return float((w.sum(dim=0) ** 2 / (w.shape[0] * w.pow(2).sum(dim=0))).mean())


def finite_json(v):
    """NaN / inf -> None, so the files are strict JSON."""
    if isinstance(v, float):
        return v if math.isfinite(v) else None
    if isinstance(v, dict):
        return {k: finite_json(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [finite_json(x) for x in v]
    return v


def nanmean(x: torch.Tensor) -> float:
    ok = ~torch.isnan(x)
    return float(x[ok].mean()) if bool(ok.any()) else float('nan')


@torch.no_grad()
def evaluate(model: WanModel, evalset: PromptSet, ref: torch.Tensor, args, sig, amp, long_n: int) -> Dict[str, object]:
    dev = next(model.parameters()).device
    n = evalset.count.shape[0]
    p = evalset.take(torch.arange(n, device=dev))
    xkv = model.cross_kv(model.encode_text_batch(p['ids'], p['lens']))
    gen = torch.Generator(device=dev).manual_seed(123)
    k = args.eval_blocks
    lat = rollout(model, xkv, n, k, sig, gen, args.window, args.sink, args.block, amp=amp, sig_rest=args.sig_rest)
    px = scenes.depth_to_space(lat.float())
    F_ = args.block
    res: Dict[str, object] = {
        'first block': detect(px[:, :F_], p, ref),
        f'block {k - 1} (frames {(k - 1) * F_}-{k * F_ - 1})': detect(px[:, (k - 1) * F_:k * F_], p, ref),
    }
    # a long rollout of the first long_n prompts under the sink cache, and the same without the sink (window only)
    q = {key: v[:long_n] for key, v in p.items()}
    xkv_l = [(a[:long_n], b[:long_n]) for a, b in xkv]
    for sink, label in ((args.sink, ''), (0, ', window only (no sink)')):
        if label and args.sink == 0:
            continue
        res[f'long rollout ({args.long_blocks} blocks, {long_n} prompts{label}; early = blocks 1-'
            f'{max(1, args.long_blocks // 4)}, late = last {max(1, args.long_blocks // 4)})'] = long_rollout(
                model, q, xkv_l, ref[:long_n], args, sig, amp, long_n, sink)
    return res


@torch.no_grad()
def long_rollout(model: WanModel, q: Dict[str, torch.Tensor], xkv_l, ref: torch.Tensor, args, sig, amp, long_n: int,
                 sink: int) -> Dict[str, object]:
    """A --long-blocks rollout with `sink` sink frames: per block objects present, colour fidelity and border sharpness,
    early against late, and the motion against training clips."""
    dev = next(model.parameters()).device
    F_ = args.block
    gen = torch.Generator(device=dev).manual_seed(321)
    lat = rollout(model, xkv_l, long_n, args.long_blocks, sig, gen, args.window, sink, args.block, amp=amp,
                  sig_rest=args.sig_rest)
    px = scenes.depth_to_space(lat.float())
    frames = lambda blocks: px[:, blocks[0] * F_:blocks[1] * F_]  # noqa: E731
    per_block = []
    for bi in range(args.long_blocks):
        pb = frames((bi, bi + 1))
        per_block.append({
            'objects_present': detect(pb, q, ref)['objects_present'],
            'colour_fidelity': float(colour_fidelity(pb, q).mean()),
            'border_sharpness': nanmean(border_sharpness(pb, q)),
        })
    quarter = max(1, args.long_blocks // 4)
    early, late = per_block[1:1 + quarter], per_block[-quarter:]

    def avg(rows, key):
        v = [r[key] for r in rows if not math.isnan(r[key])]
        return sum(v) / len(v) if v else float('nan')

    summary = {}
    for key in ('objects_present', 'colour_fidelity', 'border_sharpness'):
        e, l_ = avg(early, key), avg(late, key)
        summary[key] = {'early': e, 'late': l_, 'late_over_early': l_ / e if e and not math.isnan(e) else float('nan')}
    # motion: the same centroid speed on the rollout's early / late frames and on training clips as long
    data = scenes.render(scenes.sample_scenes(args.seed + 1000, long_n), args.long_blocks * F_, device=dev)
    data_speed = nanmean(centroid_speed(data['pixels'], {'colour': data['colour'], 'valid': data['valid']}))
    e_s = nanmean(centroid_speed(frames((1, 1 + quarter)), q))
    l_s = nanmean(centroid_speed(frames((args.long_blocks - quarter, args.long_blocks)), q))
    summary['speed_px_per_frame'] = {'early': e_s, 'late': l_s, 'training_data': data_speed,
                                     'late_over_data': l_s / data_speed if data_speed else float('nan')}
    return {'summary': summary, 'per_block': per_block}


def filmstrip(model: WanModel, vocab, args, sig, amp, path: str) -> None:
    dev = next(model.parameters()).device
    ps = PromptSet([scenes.parse_caption(c) for c in PNG_PROMPTS], vocab, model.dims.text_len, dev)
    p = ps.take(torch.arange(len(PNG_PROMPTS), device=dev))
    with torch.no_grad():
        xkv = model.cross_kv(model.encode_text_batch(p['ids'], p['lens']))
        gen = torch.Generator(device=dev).manual_seed(5)
        lat = rollout(model, xkv, len(PNG_PROMPTS), args.long_blocks, sig, gen, args.window, args.sink, args.block, amp=amp,
                      sig_rest=args.sig_rest)
    px = scenes.depth_to_space(lat.float().cpu())  # [B, T, 64, 64, 3]
    save_sheet(px, list(range(0, px.shape[1], 8)), path)


# ----------------------------------------------------------------------------------------------
# Training
# ----------------------------------------------------------------------------------------------

def main(argv: Optional[Sequence[str]] = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--model', default=DEFAULT_MODEL_JSON, help='architecture (model.json)')
    ap.add_argument('--teacher', default=DEFAULT_WEIGHTS)
    ap.add_argument('--init', default=None, help='student (and critic) start weights; default: the teacher')
    ap.add_argument('--out', required=True)
    ap.add_argument('--minutes', type=float, default=7.5, help='training time (evaluation not counted)')
    ap.add_argument('--steps', type=int, default=None,
                    help='stop after this many steps (or --minutes, whichever first); the cosine follows whichever of '
                         'the two is further along')
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--batch', type=int, default=128)
    ap.add_argument('--rollout-blocks', type=int, default=8, help='blocks per training rollout (> window / block)')
    ap.add_argument('--rollout-blocks-max', type=int, default=None,
                    help='if set, each rollout has a uniform number of blocks in [--rollout-blocks, this] (longer sink gaps)')
    ap.add_argument('--block', type=int, default=3)
    ap.add_argument('--window', type=int, default=12)
    ap.add_argument('--sink', type=int, default=3)
    ap.add_argument('--lr', type=float, default=1e-4, help='student')
    ap.add_argument('--lr-critic', type=float, default=2e-4)
    ap.add_argument('--critic-steps', type=int, default=3, help='critic updates per student update')
    ap.add_argument('--warmup', type=int, default=20)
    ap.add_argument('--critic-warmup', type=int, default=0,
                    help='steps at the start that train the critic alone (the student and its EMA unchanged)')
    ap.add_argument('--ema', type=float, default=0.99)
    ap.add_argument('--real-guidance', type=float, default=1.0,
                    help="classifier-free guidance of the teacher's (real) score; 1 = none (no extra teacher pass)")
    ap.add_argument('--opening-real-guidance', type=float, default=None,
                    help="the real score's guidance on the first block (opened from noise); default: --real-guidance")
    ap.add_argument('--real-guidance-interval', default=None,
                    help="lo,hi: the real score (and the ODE term's teacher) guided only at noise levels in [lo, hi]")
    ap.add_argument('--real-score-mirror', action='store_true',
                    help='the real score of a random half of the batch taken on the clip mirrored left-right (and mirrored back)')
    ap.add_argument('--real-score-flip', action='store_true',
                    help='the real score of a random half of the clips without a triangle taken on the clip upside down (and back)')
    ap.add_argument('--s-min', type=float, default=0.02, help='DMD noise levels: shift-5 distribution clamped to [s-min, s-max]')
    ap.add_argument('--s-max', type=float, default=0.98)
    ap.add_argument('--exit', default='random', choices=['random', 'last'], help="each block's exit step (Self-Forcing: random)")
    ap.add_argument('--prompts', type=int, default=20000, help='training prompt pool')
    ap.add_argument('--count-probs', default=None,
                    help="p1,p2,p3: the training pool's shares of one, two and three objects (default: the data's)")
    ap.add_argument('--eval-n', type=int, default=256, help='held-out prompts of the evaluation')
    ap.add_argument('--eval-blocks', type=int, default=6, help='objects present after this many blocks')
    ap.add_argument('--long-blocks', type=int, default=40)
    ap.add_argument('--long-n', type=int, default=64, help='prompts of the long rollout')
    ap.add_argument('--recovery-n', type=int, default=256, help='scenes of the recovery measure (distill_opening.recovery)')
    ap.add_argument('--no-teacher-eval', action='store_true')
    ap.add_argument('--no-eval', action='store_true', help='train and save, no evaluation (timing runs, or a run continued by another)')
    ap.add_argument('--log-every', type=int, default=20)
    ap.add_argument('--device', default=None)
    ap.add_argument('--block-start-steps', default=None,
                    help="the runtime's generation.blockStart previous-frame with these generation.steps (e.g. 700,525,350,175; "
                         "as many as the 4 of the loop): every block after the first starts from the frame before it, in the "
                         "rollouts trained on and in the evaluation; default: every block from pure noise")
    ap.add_argument('--reward-beta', type=float, default=0.0,
                    help="Re-DMD: weight each rollout block's DMD term by exp(beta r), r = block_rewards (objects "
                         'present minus extra copies), normalised over the batch per block index (0: plain DMD)')
    ap.add_argument('--motion-reward', type=float, default=0.0,
                    help="with --reward-beta: add this times each block's net speed as a share of the training data's "
                         'mean (motion_rewards, capped at 1.5) to its reward, so faster blocks weigh more (0: off)')
    ap.add_argument('--speed-weight', type=float, default=0.0,
                    help="the speed moment term (speed_loss): (the rollout blocks' mean net speed / the training data's "
                         'mean - 1)^2 over the blocks at the last two exit steps, times this (0: off)')
    ap.add_argument('--smooth-weight', type=float, default=0.0,
                    help="the smoothness term (acceleration_loss): the prompted objects' mean acceleration (its length) over "
                         'the rollout, in units of the data\'s mean speed, times this (0: off)')
    ap.add_argument('--copy-penalty', type=float, default=0.0,
                    help="the copy term (copy_loss): each prompted colour's pixels away from its largest component, as a "
                         "share of that component's, over the rollout, times this (0: off)")
    ap.add_argument('--copy-exits', default='late', choices=['late', 'all'],
                    help="the blocks the copy term counts: those at their last two steps (late, as the speed term), or "
                         "every block whatever its exit step (all: students 78 and 79)")
    ap.add_argument('--copy-hold', type=float, nargs='?', const=1.0, default=0.0,
                    help="the copy term also holds each colour's largest component at the colour, its shortfall times "
                         'this (alone: 1; students 78, 79, 83 and 84, without it, stopped drawing objects)')
    ap.add_argument('--copy-from', type=int, default=0,
                    help="the student's step from which the copy term is on (0: from its first; the early steps of a DMD "
                         "run draw objects in pieces, which the term would take for copies)")
    ap.add_argument('--ode-min-level', type=int, default=0,
                    help="the ODE term's lowest student level (0: from each block's start; 1: the start left to DMD)")
    ap.add_argument('--ode-reward-beta', type=float, default=0.0,
                    help="the ODE term's blocks weighted by exp(beta r) of the teacher's samples (its targets), r = "
                         'block_rewards, normalised over the batch per block index (0: unweighted)')
    ap.add_argument('--log-reward', action='store_true',
                    help='compute and log the rollouts\' reward with --reward-beta 0 too (a control run at equal cost)')
    ap.add_argument('--dmd-weight', type=float, default=1.0, help='the DMD term (0: none, and no critic is trained)')
    ap.add_argument('--ode-weight', type=float, default=0.0,
                    help='rollout ODE distillation (ode_regression): the student regressed onto the guided teacher ODE '
                         'from each block\'s start on its own rollout, weighted by this; 0: off')
    ap.add_argument('--ode-substeps', type=int, default=3, help="teacher ODE steps between two of the student's levels")
    ap.add_argument('--ode-guidance', type=float, default=None,
                    help="the teacher ODE's guidance after the opening block (default: --real-guidance)")
    ap.add_argument('--ode-from-block', type=int, default=0,
                    help='blocks before this one get no ODE term (1: the opening block is left to DMD)')
    ap.add_argument('--ode-batch', type=int, default=None, help='videos of the batch that get the ODE term (default: half)')
    args = ap.parse_args(argv)
    if args.steps is not None and args.steps < 1:
        ap.error(f'--steps: expected at least 1, got {args.steps}')
    if args.critic_warmup < 0 or (args.critic_warmup > 0 and args.dmd_weight == 0):
        ap.error(f'--critic-warmup: expected >= 0, and 0 with --dmd-weight 0 (no critic), got {args.critic_warmup}')
    assert args.window % args.block == 0 and args.sink % args.block == 0, 'window and sink in whole blocks'
    args.sig_rest = None
    args.rest_steps = None
    args.guidance_interval = None
    if args.real_guidance_interval is not None:
        try:
            args.guidance_interval = noise_interval(args.real_guidance_interval)
        except ValueError as e:
            ap.error(f'--real-guidance-interval: {e}')
    if args.block_start_steps:
        try:
            rest = [float(v) for v in args.block_start_steps.split(',')]
        except ValueError:
            rest = []
        if len(rest) != len(step_sigmas()) or not all(0 < t < 1000 for t in rest):
            ap.error(f'--block-start-steps: expected {len(step_sigmas())} timesteps in (0, 1000), got {args.block_start_steps!r}')
        args.sig_rest = sigmas_of(rest)
        args.rest_steps = rest
    if min(args.ode_weight, args.dmd_weight) < 0 or args.ode_substeps < 1 or not 0 <= args.ode_from_block < args.rollout_blocks \
            or not 0 <= args.ode_min_level < len(step_sigmas()):
        ap.error('--ode-weight and --dmd-weight must be >= 0, --ode-substeps >= 1, '
                 f'--ode-from-block in [0, --rollout-blocks), --ode-min-level in [0, {len(step_sigmas())})')
    for flag in ('speed_weight', 'smooth_weight', 'copy_penalty', 'copy_from', 'copy_hold'):
        if not getattr(args, flag) >= 0:  # NaN fails too
            ap.error(f"--{flag.replace('_', '-')}: expected >= 0, got {getattr(args, flag)}")
    if args.motion_reward != 0 and args.reward_beta == 0:
        ap.error('--motion-reward: adds to the reward of --reward-beta, which is 0 (plain DMD): give --reward-beta too')

    t_start = time.time()
    os.makedirs(args.out, exist_ok=True)
    dev = pick_device(args.device)
    set_tf32(dev, True)
    amp = autocast_args(dev)
    torch.manual_seed(args.seed)
    vocab = scenes.vocabulary()
    dims = load_dims(args.model, vocab)

    teacher = freeze(load_model(dims, args.teacher, dev))
    init = args.init or args.teacher
    student = load_model(dims, init, dev).train()
    critic = load_model(dims, args.teacher, dev).train()  # the fake score starts as the real one
    dims = student.dims  # with the word encoder's neighbour tables if the init has them
    write_model_json(args.out, dims)
    gen_params = freeze_text(student)
    critic_params = freeze_text(critic)
    ema = frozen_copy(student)
    ema_p = matching_params(ema, student)

    pool = prompt_pool(args.seed + 1, args.prompts, False, vocab, dims.text_len, dev, parse_count_probs(args.count_probs))
    evalset = prompt_pool(10_000 + args.seed, args.eval_n, True, vocab, dims.text_len, dev)
    ref = reference_areas(evalset.take(torch.arange(args.eval_n, device=dev)))
    sig = step_sigmas()
    long_n = min(args.long_n, args.eval_n)
    metrics: Dict[str, object] = {'args': vars(args), 'device': str(dev),
                                  'held_out_rule': 'crc32(caption) % 8 == 0 (never trained on)'}
    if not args.no_teacher_eval:
        t0 = time.time()
        metrics['teacher (4-step loop)'] = evaluate(teacher, evalset, ref, args, sig, amp, long_n)
        filmstrip(teacher, vocab, args, sig, amp, os.path.join(args.out, 'teacher-filmstrip.png'))
        print(f'teacher eval {time.time() - t0:.1f} s', flush=True)

    opt_g = adamw(gen_params, dev, args.lr, betas=(0.0, 0.99))
    opt_c = adamw(critic_params, dev, args.lr_critic, betas=(0.0, 0.99))
    F_ = args.block
    lengths = list(range(args.rollout_blocks, max(args.rollout_blocks, args.rollout_blocks_max or 0) + 1))
    masks = {n: rollout_mask(n, F_, dims.tokens_per_frame, args.window, args.sink, dev) for n in lengths}
    budget = 60 * args.minutes
    log: List[Dict[str, object]] = []
    acc = {'dmd': 0.0, 'critic': 0.0, 'ode': 0.0, 'gnorm': 0.0, 'reward': 0.0, 'ess': 0.0, 'ode_reward': 0.0,
           'motion': 0.0, 'speed': 0.0, 'accel': 0.0, 'copies': 0.0}
    acc_n = 0
    term_n = {'speed': 0, 'accel': 0, 'copies': 0}  # steps whose rollout had samples for each pixel term: its log's mean

    # the teacher ODE's levels, per rollout length: the first block from pure noise, the others from where they start
    grid_first = ode_grid(INFERENCE_STEPS, args.ode_substeps)
    grid_rest = ode_grid(args.rest_steps or INFERENCE_STEPS, args.ode_substeps)
    ode_grids = {n: torch.tensor([grid_first] + [grid_rest] * (n - 1), device=dev) for n in lengths}
    step = 0
    # The empty prompt's teacher K/V for a guided real score: the teacher is frozen, so once, not every step.
    guiding = args.real_guidance != 1.0 or (args.opening_real_guidance not in (None, 1.0)) or (
        args.ode_weight > 0 and args.ode_guidance not in (None, 1.0))
    with torch.no_grad(), torch.autocast(**amp):
        xkv_t_null = empty_prompt_kv(teacher, args.batch, dev) if guiding else None
    start = time.time()
    while time.time() - start < budget and (args.steps is None or step < args.steps):
        frac = (time.time() - start) / budget
        if args.steps:
            frac = max(frac, step / args.steps)
        g_step = student_step(step, args.critic_warmup)
        trains_student = g_step is not None
        set_lr(opt_g, lr_at(g_step or 0, frac, args.lr, args.warmup))
        set_lr(opt_c, lr_at(step, frac, args.lr_critic, args.warmup))
        idx = torch.randint(0, args.prompts, (args.batch,), device=dev)
        p = pool.take(idx)
        with torch.autocast(**amp):
            xkv_s = student.cross_kv(student.encode_text_batch(p['ids'], p['lens']))
        with torch.no_grad(), torch.autocast(**amp):
            xkv_t = teacher.cross_kv(teacher.encode_text_batch(p['ids'], p['lens']))
        ctx_c = critic.encode_text_batch(p['ids'], p['lens']).detach()
        nb = lengths[int(torch.randint(0, len(lengths), ()))]
        mask = masks[nb]
        exits = [int(e) for e in torch.randint(0, len(sig), (nb,))] if args.exit == 'random' else [len(sig) - 1] * nb
        # -- student rollout (gradient through each block's exit step) and the DMD gradient
        copy_on = args.copy_penalty > 0 and trains_student and g_step >= args.copy_from
        pixel_terms = args.speed_weight > 0 or args.smooth_weight > 0 or copy_on
        with torch.set_grad_enabled((args.dmd_weight > 0 or pixel_terms) and trains_student):
            video = rollout(student, xkv_s, args.batch, nb, sig, None, args.window, args.sink, F_, exits, amp,
                            sig_rest=args.sig_rest)
        vid = video.detach()
        # the rollout's prompted colours labelled once, for the DMD term's block reward and the pixel terms
        rewarded = args.dmd_weight > 0 and (args.reward_beta != 0 or args.log_reward)
        labels = prompted_labels(scenes.depth_to_space(vid), p) if trains_student and (rewarded or pixel_terms) else None
        ode = torch.zeros((), device=dev)
        if args.ode_weight > 0 and trains_student:
            m = args.ode_batch or max(1, args.batch // 2)
            starts = torch.randn_like(vid[:m])
            if args.sig_rest is not None:  # blocks after the first start from the frame before them
                prev = vid[:m, :, F_ - 1:-1:F_].repeat_interleave(F_, dim=2)
                starts[:, :, F_:] = from_previous_frame(prev, starts[:, :, F_:], args.sig_rest[0])
            grid = ode_grids[nb]
            pm = {k: v[:m] for k, v in p.items()}

            def target_weights(target: torch.Tensor) -> torch.Tensor:
                r = block_rewards(scenes.depth_to_space(target), pm, F_)
                acc['ode_reward'] += float(r.mean())
                return reward_weights(r, args.ode_reward_beta)

            ode = ode_regression(student, teacher, vid[:m], starts, grid, args.ode_substeps,
                                 [(a[:m], b[:m]) for a, b in xkv_s], [(a[:m], b[:m]) for a, b in xkv_t],
                                 None if xkv_t_null is None else [(a[:m], b[:m]) for a, b in xkv_t_null], mask,
                                 args.real_guidance if args.ode_guidance is None else args.ode_guidance,
                                 args.opening_real_guidance, F_, amp=amp,
                                 first_block=args.ode_from_block,
                                 target_weights=target_weights if args.ode_reward_beta != 0 or args.log_reward else None,
                                 min_level=args.ode_min_level, interval=args.guidance_interval)
        dmd = torch.zeros((), device=dev)
        crit = 0.0
        if args.dmd_weight > 0 and trains_student:
            s_blk = sample_s(args.batch, nb, dev, args.s_min, args.s_max)
            s_frame = s_blk.repeat_interleave(F_, dim=1)
            sv = s_frame[:, None, :, None, None]
            noisy = (1 - sv) * vid + sv * torch.randn_like(vid)
            mirror = (torch.rand(args.batch, device=dev) < 0.5) if args.real_score_mirror else None
            flip = (torch.rand(args.batch, device=dev) < 0.5) & flippable(p) if args.real_score_flip else None
            with torch.no_grad(), torch.autocast(**amp):
                xkv_c = critic.cross_kv(ctx_c)
                real_v = real_flow(teacher, mirrored_where(vid, mirror, flip), mirrored_where(noisy, mirror, flip), s_frame,
                                   xkv_t, xkv_t_null, mask, args.real_guidance, args.opening_real_guidance, F_,
                                   args.guidance_interval)
                real = noisy - sv * mirrored_where(real_v, mirror, flip)
                fake = noisy - sv * teacher_forced_flow(critic, vid, noisy, s_frame, xkv_c, mask)
            b_, c_, _, h_, w_ = vid.shape
            blocks_view = (b_, c_, nb, F_, h_, w_)
            norm = (vid - real).abs().reshape(blocks_view).mean(dim=(1, 3, 4, 5), keepdim=True).clamp_min(1e-3)
            grad = ((fake - real).reshape(blocks_view) / norm).reshape(vid.shape)
            grad = torch.nan_to_num(grad)
            sq = (video - (vid - grad)).pow(2).reshape(blocks_view)
            if rewarded:
                with torch.no_grad():
                    px = scenes.depth_to_space(vid)
                    r = block_rewards(px, p, F_, labels=labels)
                    if args.motion_reward != 0:
                        m = motion_rewards(px, p, F_)
                        acc['motion'] += float(m.mean())
                        r = r + args.motion_reward * m
                    w = reward_weights(r, args.reward_beta)
                sq = sq * w[:, None, :, None, None, None]
                acc['reward'] += float(r.mean())
                acc['ess'] += effective_share(w)
            dmd = 0.5 * sq.mean()
        spd = torch.zeros((), device=dev)
        video_px = drawn = None
        if pixel_terms and trains_student:
            video_px = scenes.depth_to_space(video.float())
        if (args.speed_weight > 0 or args.smooth_weight > 0) and trains_student:
            drawn = drawn_once(video_px.detach(), p, labels=labels)
        late_exit = torch.tensor([e >= len(sig) - 2 for e in exits], device=dev)
        if args.speed_weight > 0 and trains_student:
            spd, ratio = speed_loss(video_px, p, F_, late_exit, drawn)
            if math.isfinite(ratio):
                acc['speed'] += ratio
                term_n['speed'] += 1
        smooth = torch.zeros((), device=dev)
        if args.smooth_weight > 0 and trains_student:
            smooth, value = acceleration_loss(video_px, p, drawn=drawn)
            if math.isfinite(value):
                acc['accel'] += value
                term_n['accel'] += 1
        copies = torch.zeros((), device=dev)
        if copy_on:
            kept = late_exit.repeat_interleave(F_) if args.copy_exits == 'late' else None
            copies, value = copy_loss(video_px, p, labels=labels, frames_kept=kept, hold=args.copy_hold)
            if math.isfinite(value):
                acc['copies'] += value
                term_n['copies'] += 1
        gnorm = 0.0
        loss_g = (args.dmd_weight * dmd + args.ode_weight * ode + args.speed_weight * spd + args.smooth_weight * smooth
                  + args.copy_penalty * copies)
        if trains_student and loss_g.requires_grad:  # without DMD, a step before --copy-from may have no term
            gnorm = optimizer_step(opt_g, loss_g, gen_params)
            ema_update(ema_p, gen_params, g_step, args.ema)
        if args.dmd_weight > 0:
            # -- critic: flow matching on the student's own rollout (its clean blocks as context)
            for _ in range(args.critic_steps):
                s_c = sample_s(args.batch, nb, dev, 0.0, 1.0).repeat_interleave(F_, dim=1)
                sc = s_c[:, None, :, None, None]
                n_c = torch.randn_like(vid)
                x_c = (1 - sc) * vid + sc * n_c
                with torch.autocast(**amp):
                    flow = teacher_forced_flow(critic, vid, x_c, s_c, critic.cross_kv(ctx_c), mask)
                loss_c = (flow.float() - flow_target(x_c, vid, n_c, s_c, critic.dims.prediction)).pow(2).mean()
                optimizer_step(opt_c, loss_c, critic_params)
                crit += float(loss_c.detach()) / max(args.critic_steps, 1)
        step += 1
        acc['dmd'] += float(dmd.detach())
        acc['critic'] += crit
        acc['ode'] += float(ode.detach())
        acc['gnorm'] += float(gnorm)
        acc_n += 1
        if step % args.log_every == 0:
            el = time.time() - start
            row = {'step': step, 'seconds': round(el, 1), 'lr': opt_g.param_groups[0]['lr'],
                   **{k: v / acc_n for k, v in acc.items() if k not in term_n},
                   **{k: acc[k] / n if n else float('nan') for k, n in term_n.items()}}
            log.append(row)
            print(f"step {step} dmd {row['dmd']:.3e} critic {row['critic']:.4f} ode {row['ode']:.3e} "
                  f"gnorm {row['gnorm']:.3e} reward {row['reward']:.3f} ess {row['ess']:.2f} "
                  f"ode_reward {row['ode_reward']:.3f} motion {row['motion']:.3f} speed {row['speed']:.3f} "
                  f"accel {row['accel']:.3f} copies {row['copies']:.3f} t {el:.0f}s",
                  flush=True)
            acc = {k: 0.0 for k in acc}
            acc_n = 0
            term_n = dict.fromkeys(term_n, 0)
    train_s = time.time() - start
    meta = {'recipe': 'tools/train/self_forcing.py', 'teacher': os.path.basename(args.teacher), 'steps': str(step),
            'train_seconds': f'{train_s:.0f}', 'real_guidance': str(args.real_guidance),
            'opening_real_guidance': str(args.opening_real_guidance),
            'real_guidance_interval': str(args.real_guidance_interval), 'real_score_mirror': str(args.real_score_mirror),
            'real_score_flip': str(args.real_score_flip), 'count_probs': args.count_probs or 'data', 'critic_warmup': str(args.critic_warmup)}
    if args.reward_beta != 0 or args.ode_reward_beta != 0:
        meta.update(reward_beta=str(args.reward_beta), ode_reward_beta=str(args.ode_reward_beta),
                    motion_reward=str(args.motion_reward))
    if args.speed_weight > 0 or args.smooth_weight > 0 or args.copy_penalty > 0:
        meta.update(speed_weight=str(args.speed_weight), smooth_weight=str(args.smooth_weight),
                    copy_penalty=str(args.copy_penalty), copy_exits=args.copy_exits,
                    copy_from=str(args.copy_from), copy_hold=str(args.copy_hold))
    if args.ode_weight > 0:
        meta.update(dmd_weight=str(args.dmd_weight), ode_weight=str(args.ode_weight), ode_substeps=str(args.ode_substeps),
                    ode_guidance=str(args.ode_guidance), ode_from_block=str(args.ode_from_block),
                    ode_min_level=str(args.ode_min_level))
    save_atomic(ema, os.path.join(args.out, 'model.safetensors'), meta)
    with open(os.path.join(args.out, 'loss.json'), 'w') as f:
        json.dump(finite_json({'args': vars(args), 'steps': step, 'seconds': train_s, 'log': log}), f)
    print(f'saved after {step} steps, {train_s:.0f} s ({step / max(train_s, 1e-9):.2f} steps/s)', flush=True)

    if args.no_eval:
        return
    t0 = time.time()
    metrics['student (EMA, 4-step loop)'] = evaluate(ema, evalset, ref, args, sig, amp, long_n)
    with torch.no_grad():
        metrics['recovery, the 4-step loop (an object left out of a 9-frame ground-truth context)'] = recovery(
            ema.eval(), recovery_scenes(args.recovery_n), vocab, 7, 'renoise', len(sig))
    filmstrip(ema, vocab, args, sig, amp, os.path.join(args.out, 'filmstrip.png'))
    metrics['train'] = {'steps': step, 'seconds': round(train_s, 1), 'batch': args.batch,
                        'rollout_frames': [n * F_ for n in lengths]}
    metrics['filmstrip'] = {'rows': PNG_PROMPTS, 'every': 8, 'frames': args.long_blocks * F_}
    metrics['wall_seconds'] = round(time.time() - t_start, 1)
    with open(os.path.join(args.out, 'metrics.json'), 'w') as f:
        json.dump(finite_json(metrics), f, indent=1)
    print(f'eval {time.time() - t0:.1f} s', flush=True)
    short = {k: {kk: vv for kk, vv in v.items() if not kk.startswith('long')} for k, v in metrics.items()
             if isinstance(v, dict) and k.startswith(('teacher', 'student'))}
    print(json.dumps(short, indent=1), flush=True)
    for k, v in metrics.items():
        if isinstance(v, dict) and k.startswith(('teacher', 'student')):
            for kk, vv in v.items():
                if kk.startswith('long'):
                    print(k, kk, json.dumps(vv['summary']), flush=True)


if __name__ == '__main__':
    main()
