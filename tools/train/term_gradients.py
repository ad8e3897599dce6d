"""How hard each pixel term of self_forcing.py pulls on a model: the gradient norm over the generator's parameters of
the speed term (speed_loss) and the copy term (copy_loss) at weight 1, on the model's own rollouts (the runtime's loop,
blocks from the previous frame at 700, 525, 350, 175, every block to its last step), so that a term's weight can be set
against the DMD term's (its gradient norm is the `gnorm` of a training log). --exit-step K stops every block at step K
(0 = the first) and measures the terms on that step's estimate, as a training rollout does for a block whose random
exit is K.

    python3 tools/train/term_gradients.py [--weights models/demo/model.safetensors] [--videos 8] [--blocks 6]
        [--draws 3] [--seed 5] [--exit-step K]

Prints one line per draw of prompts (from the training pool): the rollouts' speed ratio and speed term, the copy
term's value, both gradient norms, and where the copy term's gradient in the pixels lies: its share within 4 px of the
colour's largest component (the object's edge), 4-8 px, and farther (copies). CPU: one draw of 8 videos took 42 s
with the model's loading (2 cores, beside other work).
"""
import argparse
import math
import os
import sys
from typing import Optional, Sequence

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import self_forcing as sf  # noqa: E402
from common import DEFAULT_MODEL_JSON, DEFAULT_WEIGHTS, freeze_text, load_dims, load_model  # noqa: E402


def grad_norm(loss: torch.Tensor, params, retain: bool) -> float:
    grads = torch.autograd.grad(loss, params, retain_graph=retain, allow_unused=True)
    return math.sqrt(sum(float((g.float() ** 2).sum()) for g in grads if g is not None))


def copy_gradient_by_distance(px: torch.Tensor, p, reaches=(4, 8)) -> list:
    """The copy term's gradient in the pixels (its absolute value summed over RGB) where a prompted colour is near,
    split by the distance to that colour's largest component: shares within reaches[0] px, between, and farther."""
    px = px.detach().requires_grad_(True)
    loss, _ = sf.copy_loss(px, p)
    g, = torch.autograd.grad(loss, px)
    g = g.abs().sum(-1)
    bands = [0.0] * (len(reaches) + 1)
    for j in range(3):
        keep, size = sf.largest_components(px.detach(), p['colour'][:, j])
        counted = (size >= sf.MIN_OBJECT_PX) & p['valid'][:, j, None]
        near = (sf.colour_closeness(px.detach(), p['colour'][:, j]) > 0) & counted[..., None, None]
        inner = torch.zeros_like(keep)
        for i, r in enumerate(reaches):
            grown = sf.grown_by(keep, r)
            bands[i] += float((g * (near & grown & ~inner)).sum())
            inner = inner | grown
        bands[-1] += float((g * (near & ~inner)).sum())
    total = sum(bands)
    return [b / total if total > 0 else float('nan') for b in bands]


def main(argv: Optional[Sequence[str]] = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--weights', default=DEFAULT_WEIGHTS)
    ap.add_argument('--videos', type=int, default=8)
    ap.add_argument('--blocks', type=int, default=6)
    ap.add_argument('--draws', type=int, default=3)
    ap.add_argument('--seed', type=int, default=5)
    ap.add_argument('--exit-step', type=int, default=None, help="each block's exit step (default: its last)")
    args = ap.parse_args(argv)
    if min(args.videos, args.blocks, args.draws) < 1:
        ap.error('--videos, --blocks and --draws: expected at least 1')
    torch.manual_seed(args.seed)
    vocab = sf.scenes.vocabulary()
    model = load_model(load_dims(DEFAULT_MODEL_JSON, vocab), args.weights, 'cpu').train()
    params = freeze_text(model)
    pool = sf.prompt_pool(args.seed + 1, 2000, False, vocab, model.dims.text_len, 'cpu', sf.parse_count_probs(None))
    sig, rest = sf.step_sigmas(), sf.sigmas_of([700, 525, 350, 175])
    exit_step = len(sig) - 1 if args.exit_step is None else args.exit_step
    if not 0 <= exit_step < len(sig):
        ap.error(f'--exit-step: expected 0 to {len(sig) - 1}, got {args.exit_step}')
    for draw in range(args.draws):
        p = pool.take(torch.randint(0, 2000, (args.videos,)))
        xkv = model.cross_kv(model.encode_text_batch(p['ids'], p['lens']))
        exits = [exit_step] * args.blocks
        video = sf.rollout(model, xkv, args.videos, args.blocks, sig, None, 12, 3, 3, exits, None, sig_rest=rest)
        px = sf.scenes.depth_to_space(video.float())
        speed, ratio = sf.speed_loss(px, p, 3, torch.ones(args.blocks, dtype=torch.bool))
        copies, value = sf.copy_loss(px, p)
        speed_grad, copy_grad = grad_norm(speed, params, True), grad_norm(copies, params, False)
        edge, ring, far = copy_gradient_by_distance(px, p)
        print(f'draw {draw}: speed ratio {ratio:.3f}, speed term {float(speed.detach()):.4f}, gradient {speed_grad:.3f} '
              f'| copy term {value:.3f}, gradient {copy_grad:.3f}, in the pixels {edge:.3f} within 4 px of the object, '
              f'{ring:.3f} at 4-8 px, {far:.3f} farther', flush=True)


if __name__ == '__main__':
    main()
