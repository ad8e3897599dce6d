"""Does a demo model draw a prompted object that its context has lost? (distill_opening.recovery)

The students lose an object for seconds and continue the frames without it; this measures that failure directly:
held-out scenes (captions with crc32 % 8 == 0, never trained on by the students; scene parameters the teacher never
drew) are given as ground truth for three blocks, once whole and once with one prompted object left out, and the
model generates three blocks after them. Printed (JSON): the share of clips whose left-out object is present in the
first and in the last generated block, beside the same object's presence when nothing was left out.

    python3 tools/train/eval_recovery.py --weights tools/train/checkpoints/teacher-run11.safetensors --sampler ode --steps 16
    python3 tools/train/eval_recovery.py --weights models/demo/model.safetensors --sampler renoise --steps 4
"""
from __future__ import annotations

import argparse
import json
import time

import torch

from common import add_model_sampler_args, load_dims, load_model, pick_device  # noqa: E402
import distill_opening as opening_eval  # noqa: E402
import scenes  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_sampler_args(ap)
    ap.add_argument('--n', type=int, default=64, help='held-out scenes')
    ap.add_argument('--seed', type=int, default=7)
    ap.add_argument('--faded', default='', help='also contexts with the object faded to these shares (e.g. 0.25,0.5), '
                    'and every context\'s extra copies of it a frame, with the share of the frames with copies where '
                    'one of them is the object where it truly is')
    ap.add_argument('--copied', type=int, default=None, metavar='BLOCK',
                    help='also a context where the object is drawn a second time (its own start and direction) from '
                         'this context block on (0: every context frame; 1: the first block shows it once), and every '
                         'context\'s extra copies of it a frame: is a copy continued?')
    ap.add_argument('--device', default=None)
    args = ap.parse_args()
    if args.n < 1 or args.steps < 1:
        ap.error('--n and --steps must be at least 1')
    if args.copied is not None and not 0 <= args.copied < 3:
        ap.error(f'--copied: expected a context block, 0..2, got {args.copied}')
    try:
        faded = [float(v) for v in args.faded.split(',') if v.strip()]
    except ValueError:
        faded = [-1.0]
    if not all(0 < k < 1 for k in faded):
        ap.error(f'--faded: expected shares in (0, 1), got {args.faded!r}')
    dev = pick_device(args.device)
    vocab = scenes.vocabulary()
    model = load_model(load_dims(args.model, vocab), args.weights, dev).float().eval()
    t0 = time.time()
    with torch.no_grad():
        res = opening_eval.recovery(model, opening_eval.recovery_scenes(args.n), vocab, args.seed, args.sampler, args.steps, args.guidance,
                                   faded=faded, copied=args.copied)
    print(json.dumps({'weights': args.weights, 'sampler': f'{args.sampler} {args.steps}', 'guidance': args.guidance,
                      'scenes': args.n, 'seconds': round(time.time() - t0, 1),
                      **{k: round(v, 4) for k, v in res.items()}}, indent=1))


if __name__ == '__main__':
    main()
