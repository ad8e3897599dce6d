"""Draws the training curve: python3 tools/train/plot_loss.py models/demo/training-log.json docs/demo-model-loss.png"""
import json
import math
import sys

from PIL import Image, ImageDraw

W, H, L, R, T, B = 720, 360, 70, 20, 30, 50


def main(src: str, dst: str) -> None:
    log = json.load(open(src))['log']
    steps = [e['step'] for e in log]
    loss = [e['loss'] for e in log]
    lo, hi = math.log10(min(loss)) - 0.05, math.log10(max(loss)) + 0.05
    img = Image.new('RGB', (W, H), 'white')
    d = ImageDraw.Draw(img)
    x = lambda s: L + (W - L - R) * s / max(steps)  # noqa: E731
    y = lambda v: T + (H - T - B) * (hi - math.log10(v)) / (hi - lo)  # noqa: E731
    d.rectangle([L, T, W - R, H - B], outline='black')
    for v in (0.04, 0.05, 0.07, 0.1, 0.2, 0.5, 1.0):
        if lo <= math.log10(v) <= hi:
            d.line([L, y(v), W - R, y(v)], fill=(225, 225, 225))
            d.text((8, y(v) - 6), f'{v:g}', fill='black')
    for s in range(0, max(steps) + 1, 1000):
        d.line([x(s), H - B, x(s), H - B + 4], fill='black')
        d.text((x(s) - 10, H - B + 8), str(s), fill='black')
    runs = sorted({e.get('run', 0) for e in log})
    colours = [(31, 119, 180), (214, 39, 40)]
    for r in runs:
        pts = [(x(e['step']), y(e['loss'])) for e in log if e.get('run', 0) == r]
        d.line(pts, fill=colours[r % 2], width=2)
    d.text((L, 8), 'training loss (flow MSE, log scale) vs step; blue: run 1, red: run 2 (resumed)', fill='black')
    d.text((W // 2 - 20, H - 20), 'step', fill='black')
    img.save(dst)


if __name__ == '__main__':
    main(sys.argv[1], sys.argv[2])
