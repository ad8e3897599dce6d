"""Writes the data spec the runtime and the evaluation read: python3 tools/data/write_spec.py models/demo

  vocab.json     the built-in text encoder's vocabulary (token id = index)
  palette.json   object colours, backgrounds, shapes, caption grammar, frame size (the detector's palette)
  dynamics.json  motion statistics of the training data, measured on rendered clips (pixels / frame)
"""
import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import scenes  # noqa: E402


def dynamics(seed: int = 12345, clips: int = 2000, frames: int = 18) -> dict:
    """Per-object, per-frame centroid displacement of the rendered ground truth."""
    data = scenes.render(scenes.sample_scenes(seed, clips), frames)
    pos = data['positions']  # [B, K, T, 2]
    step = (pos[:, :, 1:] - pos[:, :, :-1]).norm(dim=-1)  # [B, K, T-1]
    step = step[data['valid']].reshape(-1).numpy()
    q = np.percentile(step, [5, 25, 50, 75, 95])
    return {
        'unit': 'pixels per frame (64x64 frames)',
        'clips': clips,
        'framesPerClip': frames,
        'seed': seed,
        'speedMean': float(step.mean()),
        'speedStd': float(step.std()),
        'speedPercentiles': {'p5': q[0], 'p25': q[1], 'p50': q[2], 'p75': q[3], 'p95': q[4]},
        'speedRange': list(scenes.SPEED_RANGE),
        'radiusRange': list(scenes.RADIUS_RANGE),
        'objectCountProbabilities': {'1': scenes.COUNT_PROBS[0], '2': scenes.COUNT_PROBS[1], '3': scenes.COUNT_PROBS[2]},
    }


def main(out_dir: str) -> None:
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, 'vocab.json'), 'w') as f:
        json.dump(scenes.vocabulary(), f)
        f.write('\n')
    palette = {
        'frameSize': scenes.SIZE,
        'objects': {k: list(v) for k, v in scenes.OBJECT_COLOURS.items()},
        'backgrounds': {k: list(v) for k, v in scenes.BACKGROUNDS.items()},
        'shapes': list(scenes.SHAPES),
        'caption': 'a <colour> <shape>[, a <colour> <shape>] [and a <colour> <shape>] bouncing on a <background> background',
        # the prompt's ground truth: object i of k opens at layouts[k][i] = [x, y, vx, vy] (pixels, pixels/frame)
        # and bounces between radius and frameSize - radius on each axis
        'opening': {
            'radius': scenes.CANONICAL_RADIUS,
            'layouts': {str(k): [list(o) for o in v] for k, v in scenes.CANONICAL_LAYOUT.items()},
        },
        # shape geometry of the renderer: square half-side = squareHalf * r, triangle circumradius = triangleCircumradius * r
        'geometry': {'squareHalf': 0.85, 'triangleCircumradius': 1.4},
    }
    with open(os.path.join(out_dir, 'palette.json'), 'w') as f:
        json.dump(palette, f, indent=2)
        f.write('\n')
    with open(os.path.join(out_dir, 'dynamics.json'), 'w') as f:
        json.dump(dynamics(), f, indent=2)
        f.write('\n')


if __name__ == '__main__':
    main(sys.argv[1] if len(sys.argv) > 1 else 'models/demo')
