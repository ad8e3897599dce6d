"""Saves a PNG contact sheet of a few generated clips: python3 tools/data/preview.py out.png [seed]"""
import os
import sys

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from scenes import render, sample_scenes  # noqa: E402


def contact_sheet(pixels: torch.Tensor, every: int = 2, scale: int = 2) -> Image.Image:
    """pixels [B, T, H, W, 3] -> one image, a row per clip, every `every`-th frame."""
    rows = [torch.cat(list(clip[::every]), dim=1) for clip in pixels]
    sheet = torch.cat(rows, dim=0).clamp(0, 255).to(torch.uint8).cpu().numpy()
    img = Image.fromarray(np.ascontiguousarray(sheet))
    return img.resize((img.width * scale, img.height * scale), Image.NEAREST)


if __name__ == '__main__':
    seed = int(sys.argv[2]) if len(sys.argv) > 2 else 0
    scenes = sample_scenes(seed, 6)
    for s in scenes:
        print(s.caption())
    contact_sheet(render(scenes, 18)['pixels']).save(sys.argv[1])
