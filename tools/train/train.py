"""Trains the bundled demo model on procedurally generated clips (tools/data/scenes.py).

    python3 tools/train/train.py --model models/demo/model.json --out $OUT --minutes 6 [--resume DIR]

Recipe (docs/demo-model.md):
- latent = space-to-depth (f = 4) of 64x64 RGB: 48 channels at 16x16, patch (1, 2, 2) -> 64 tokens a frame;
- clips of `--window` frames, blocks of `--block` frames; teacher forcing on clean previous blocks:
  one pass over [clean ‖ noisy] with a block-causal mask (model.forward_teacher_forcing), the clean
  half at t = 0 exactly as the inference clean pass;
- flow matching: x_t = (1 - s) x0 + s n, target v = n - x0; one s per block, half of the blocks from
  the shift-5 distribution s = 5u / (1 + 4u), half from the four shifted inference timesteps;
- half of the clips open a video (the prompt's canonical layout from frame 0, scenes.py says why);
  half are random scenes at a random phase whose first block is context only (no loss);
- clean context lightly corrupted (prob 0.5, x0 + sigma n, sigma ~ U(0, 0.1)) so the model tolerates
  its own imperfect clean passes;
- AdamW, warm-up, cosine decay on the time budget, grad clip 1, EMA of the weights (saved).
Writes to --out: model.safetensors (EMA, fp32), train_state.pt (raw weights + counters), loss.json,
samples.png (few-step samples of fixed prompts).
"""
from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np
import torch

from common import (  # noqa: E402  (also puts tools/reference and tools/data on sys.path)
    DEFAULT_MODEL_JSON, INFERENCE_STEPS, SHIFT, adamw, autocast_args, ema_update, frozen_copy, load_dims, lr_at,
    optimizer_step, pick_device, save_atomic, save_sheet, set_lr, set_tf32, shift_s,
)
from model import WanModel, generate, load_weights, shifted_steps  # noqa: E402
import scenes  # noqa: E402

SAMPLE_PROMPTS = [
    'a red circle and a blue square bouncing on a dark green background',
    'a yellow triangle bouncing on a dark blue background',
    'a white square, a magenta circle and a cyan triangle bouncing on a black background',
    'a green circle and a red triangle bouncing on a dark gray background',
]


def make_batch(seed: int, step: int, n: int, frames: int, vocab, text_len: int, device, canonical: float):
    """Half opening clips (canonical layout of the prompt, from frame 0), half random scenes at a
    random phase. Returns latents, tokens, and which clips' first block is a target."""
    rng = np.random.default_rng([seed, step])
    is_open = rng.uniform(size=n) < canonical
    batch = [scenes.sample_canonical_scene(rng) if o else scenes.sample_scene(rng) for o in is_open]
    start = np.where(is_open, 0, rng.integers(0, 400, size=n))
    data = scenes.render(batch, frames, start_frame=start, device=device)
    latent = scenes.space_to_depth(data['pixels'])
    ids = torch.zeros(n, text_len, dtype=torch.long)
    lens = torch.zeros(n, dtype=torch.long)
    for i, s in enumerate(batch):
        tok = scenes.tokenize(s.caption(), vocab)[:text_len]
        ids[i, :len(tok)] = torch.tensor(tok)
        lens[i] = len(tok)
    return latent, ids.to(device), lens.to(device), rng, torch.from_numpy(is_open).to(device)


def sample_block_s(rng: np.random.Generator, n: int, blocks: int, infer_s) -> np.ndarray:
    u = rng.uniform(size=(n, blocks))
    shifted = shift_s(u)
    fixed = np.asarray(infer_s)[rng.integers(0, len(infer_s), size=(n, blocks))]
    return np.where(rng.uniform(size=(n, blocks)) < 0.5, shifted, fixed).astype(np.float32)


def save_samples(model: WanModel, vocab, path: str, blocks: int, window: int, block_frames: int) -> None:
    clips = []
    for i, p in enumerate(SAMPLE_PROMPTS):
        ctx = model.encode_text(scenes.tokenize(p, vocab))
        lat = generate(model, ctx, blocks, block_frames, INFERENCE_STEPS, SHIFT, window, seed=i)
        clips.append(scenes.depth_to_space(lat[None].float().cpu())[0])  # [T, 64, 64, 3]
    frames = clips[0].shape[0]
    save_sheet(torch.stack(clips), list(range(0, frames, max(1, frames // 12)))[:12], path)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument('--model', default=DEFAULT_MODEL_JSON)
    ap.add_argument('--out', required=True)
    ap.add_argument('--minutes', type=float, default=6.0)
    ap.add_argument('--total-minutes', type=float, default=None, help='LR schedule length over all resumes')
    ap.add_argument('--resume', default=None, help='folder with train_state.pt (and model.safetensors)')
    ap.add_argument('--batch', type=int, default=48)
    ap.add_argument('--window', type=int, default=18)
    ap.add_argument('--block', type=int, default=3)
    ap.add_argument('--lr', type=float, default=6e-4)
    ap.add_argument('--warmup', type=int, default=300)
    ap.add_argument('--ema', type=float, default=0.999)
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--sample-blocks', type=int, default=40)
    ap.add_argument('--log-every', type=int, default=50)
    ap.add_argument('--canonical', type=float, default=0.5, help='share of opening clips (canonical layout)')
    args = ap.parse_args()

    os.makedirs(args.out, exist_ok=True)
    dev = pick_device(None)
    set_tf32(dev, True)
    vocab = scenes.vocabulary()
    dims = load_dims(args.model, vocab)
    torch.manual_seed(args.seed)
    model = WanModel(dims).to(dev)
    step, elapsed_before, log, warm_from = 0, 0.0, [], 0
    if args.resume:
        st = torch.load(os.path.join(args.resume, 'train_state.pt'), map_location=dev)
        model.load_state_dict(st['model'])
        step, elapsed_before = st['step'], st['elapsed']
        warm_from = step
        with open(os.path.join(args.resume, 'loss.json')) as f:
            log = json.load(f)['log']
    ema = frozen_copy(model)
    if args.resume and os.path.exists(os.path.join(args.resume, 'model.safetensors')):
        load_weights(ema, os.path.join(args.resume, 'model.safetensors'))
        ema.to(dev)
    opt = adamw(model.parameters(), dev, args.lr)
    total_s = 60 * (args.total_minutes or args.minutes)  # each run: warm-up + cosine over its budget
    budget_s = 60 * args.minutes
    infer_s = [t / 1000 for t in shifted_steps(INFERENCE_STEPS, SHIFT)]
    n_params = sum(p.numel() for p in model.parameters())
    print(f'device {dev}, params {n_params / 1e6:.2f} M, dims {dims.to_dict()}, vocab {len(vocab)}', flush=True)
    amp = autocast_args(dev)
    nblocks = args.window // args.block
    start = time.time()
    run_loss, run_n = 0.0, 0
    ema_p, model_p = list(ema.parameters()), list(model.parameters())
    while time.time() - start < budget_s:
        latent, ids, lens, rng, is_open = make_batch(args.seed, step, args.batch, args.window, vocab, dims.text_len, dev, args.canonical)
        s_blk = torch.from_numpy(sample_block_s(rng, args.batch, nblocks, infer_s)).to(dev)
        s = s_blk.repeat_interleave(args.block, dim=1)  # [B, N]
        noise = torch.randn_like(latent)
        sv = s[:, None, :, None, None]
        noisy = (1 - sv) * latent + sv * noise
        target = noise - latent
        sigma = torch.rand(args.batch, device=dev) * 0.1 * (torch.rand(args.batch, device=dev) < 0.5).float()
        clean = latent + sigma[:, None, None, None, None] * torch.randn_like(latent)
        frac = (time.time() - start) / total_s
        lr = lr_at(step - warm_from, frac, args.lr, args.warmup)
        set_lr(opt, lr)
        with torch.autocast(**amp):
            ctx = model.encode_text_batch(ids, lens)
            xkv = model.cross_kv(ctx)
            flow = model.forward_teacher_forcing(clean, noisy, s * 1000, xkv, args.block)
        # the first block of a random-phase clip is context only: its content is not implied by the prompt
        w = torch.ones(args.batch, args.window, device=dev)
        w[:, :args.block] = is_open[:, None].float()
        err = (flow.float() - target).pow(2).mean(dim=(1, 3, 4))  # [B, N]
        loss = (err * w).sum() / w.sum()
        optimizer_step(opt, loss, model.parameters())
        ema_update(ema_p, model_p, step, args.ema)
        step += 1
        run_loss += loss.item() if step % 10 == 0 else 0.0
        run_n += 1 if step % 10 == 0 else 0
        if step % args.log_every == 0:
            el = elapsed_before + time.time() - start
            log.append({'step': step, 'loss': run_loss / max(run_n, 1), 'lr': lr, 'seconds': round(el, 1), 'run': int(bool(args.resume))})
            print(f"step {step} loss {log[-1]['loss']:.4f} lr {lr:.2e} t {el:.0f}s", flush=True)
            run_loss, run_n = 0.0, 0
    elapsed = elapsed_before + time.time() - start
    torch.save({'model': model.state_dict(), 'step': step, 'elapsed': elapsed}, os.path.join(args.out, 'train_state.pt'))
    meta = {'steps': str(step), 'train_seconds': f'{elapsed:.0f}', 'recipe': 'tools/train/train.py'}
    save_atomic(ema, os.path.join(args.out, 'model.safetensors'), meta)
    with open(os.path.join(args.out, 'loss.json'), 'w') as f:
        json.dump({'args': vars(args), 'params': n_params, 'steps': step, 'seconds': elapsed, 'log': log}, f)
    print(f'saved after {step} steps, {elapsed:.0f} s', flush=True)
    if args.sample_blocks > 0:
        t0 = time.time()
        save_samples(ema, vocab, os.path.join(args.out, 'samples.png'), args.sample_blocks, 12, args.block)
        print('sample prompts:', SAMPLE_PROMPTS, flush=True)
        print(f'samples in {time.time() - t0:.1f} s', flush=True)


if __name__ == '__main__':
    main()
