"""Procedural training clips: one to three coloured shapes bouncing on a coloured background.

Deterministic from a seed. `sample_scenes` draws scene parameters with numpy; `render` draws the
frames with torch (CPU or GPU, a whole batch at once) from a closed-form bouncing trajectory, and
returns the ground truth per frame (positions, velocities). The palette, the shapes and the caption
grammar are the single source of truth: `write_spec` saves them to models/demo/ (palette.json,
vocab.json) for the runtime's text encoder and the evaluation's detector.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Dict, List, Sequence, Tuple

import numpy as np
import torch

SIZE = 64  # frame side in pixels

OBJECT_COLOURS: Dict[str, Tuple[int, int, int]] = {
    'red': (230, 40, 40),
    'green': (50, 205, 60),
    'blue': (40, 90, 245),
    'yellow': (245, 225, 40),
    'magenta': (230, 60, 220),
    'cyan': (40, 220, 230),
    'white': (240, 240, 240),
}
BACKGROUNDS: Dict[str, Tuple[int, int, int]] = {
    'dark green': (25, 80, 40),
    'dark blue': (20, 35, 90),
    'dark gray': (60, 60, 60),
    'dark purple': (60, 25, 75),
    'black': (10, 10, 10),
}
SHAPES = ('circle', 'square', 'triangle')

RADIUS_RANGE = (5.0, 8.0)  # pixels
SPEED_RANGE = (0.5, 2.0)  # pixels per frame
COUNT_PROBS = (0.3, 0.4, 0.3)  # one, two, three objects

# The first block of a video has no context, so whatever is random in it can only come out of a
# few-step sampler as an average (a blur). The opening layout is therefore a function of the prompt:
# object i of k starts at CANONICAL_LAYOUT[k][i] = (x, y, vx, vy), radius CANONICAL_RADIUS. Later
# blocks follow from the context, so training also sees random scenes at random phases (there the
# first block is context only, never a target).
CANONICAL_RADIUS = 7.0
CANONICAL_LAYOUT = {
    1: [(22.0, 24.0, 1.3, 0.8)],
    2: [(18.0, 20.0, 1.2, 0.9), (44.0, 42.0, -1.0, -1.1)],
    3: [(16.0, 18.0, 1.2, 0.8), (46.0, 20.0, -0.9, 1.1), (30.0, 46.0, 1.0, -1.2)],
}


def vocabulary() -> List[str]:
    words = ['a', 'and', 'bouncing', 'on', 'background', 'dark']
    words += list(OBJECT_COLOURS)
    words += list(SHAPES)
    for bg in BACKGROUNDS:
        for w in bg.split():
            if w not in words:
                words.append(w)
    return words


def tokenize(text: str, vocab: Sequence[str]) -> List[int]:
    """Lowercase, split on non-letters, look up (the runtime's built-in encoder does the same)."""
    index = {w: i for i, w in enumerate(vocab)}
    words = [w for w in re.split('[^a-z]+', text.lower()) if w]
    missing = [w for w in words if w not in index]
    if missing:
        raise KeyError(f'words outside the vocabulary: {missing}')
    return [index[w] for w in words]


@dataclass
class Scene:
    background: str
    colours: List[str]
    shapes: List[str]
    radii: List[float]
    start: List[Tuple[float, float]]  # (x, y) pixel centre at frame 0
    velocity: List[Tuple[float, float]]  # (vx, vy) pixels per frame at frame 0

    def caption(self) -> str:
        return caption(self.colours, self.shapes, self.background)


def caption(colours: Sequence[str], shapes: Sequence[str], background: str) -> str:
    objs = [f'a {c} {s}' for c, s in zip(colours, shapes)]
    if len(objs) == 1:
        what = objs[0]
    else:
        what = ', '.join(objs[:-1]) + ' and ' + objs[-1]
    return f'{what} bouncing on a {background} background'


def sample_scene(rng: np.random.Generator, count_probs: Sequence[float] = COUNT_PROBS) -> Scene:
    k = int(rng.choice([1, 2, 3], p=count_probs))
    colours = list(rng.choice(list(OBJECT_COLOURS), size=k, replace=False))
    shapes = [str(rng.choice(SHAPES)) for _ in range(k)]
    background = str(rng.choice(list(BACKGROUNDS)))
    radii, start, vel = [], [], []
    for _ in range(k):
        r = float(rng.uniform(*RADIUS_RANGE))
        x, y = (float(rng.uniform(r, SIZE - r)) for _ in range(2))
        speed = float(rng.uniform(*SPEED_RANGE))
        ang = float(rng.uniform(0, 2 * np.pi))
        radii.append(r)
        start.append((x, y))
        vel.append((speed * np.cos(ang), speed * np.sin(ang)))
    return Scene(background, [str(c) for c in colours], shapes, radii, start, vel)


def canonical_scene(colours: Sequence[str], shapes: Sequence[str], background: str) -> Scene:
    layout = CANONICAL_LAYOUT[len(colours)]
    return Scene(background, list(colours), list(shapes), [CANONICAL_RADIUS] * len(colours),
                 [(x, y) for x, y, _, _ in layout], [(vx, vy) for _, _, vx, vy in layout])


def sample_canonical_scene(rng: np.random.Generator) -> Scene:
    s = sample_scene(rng)
    return canonical_scene(s.colours, s.shapes, s.background)


def parse_caption(text: str) -> Scene:
    """The canonical scene of a caption of the training grammar (ground truth of a prompt)."""
    words = [w for w in re.split('[^a-z]+', text.lower()) if w]
    colours, shapes = [], []
    for i, w in enumerate(words):
        if w in SHAPES and i > 0 and words[i - 1] in OBJECT_COLOURS:
            colours.append(words[i - 1])
            shapes.append(w)
    bg = None
    for name in BACKGROUNDS:
        if f'on a {name} background' in ' '.join(words):
            bg = name
    if not colours or bg is None or len(colours) > 3:
        raise ValueError(f'not a caption of the training grammar: {text!r}')
    return canonical_scene(colours, shapes, bg)


def sample_scenes(seed: int, n: int) -> List[Scene]:
    rng = np.random.default_rng(seed)
    return [sample_scene(rng) for _ in range(n)]


def _bounce(p0: torch.Tensor, v: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor, t: torch.Tensor):
    """Closed-form reflection between lo and hi. p0, v, lo, hi [...]; t [T] -> pos, vel [..., T]."""
    span = (hi - lo)[..., None]
    u = torch.remainder((p0 - lo)[..., None] + v[..., None] * t, 2 * span)  # t broadcasts: [T] or [B, 1, T]
    rising = u <= span
    pos = lo[..., None] + torch.where(rising, u, 2 * span - u)
    vel = torch.where(rising, v[..., None], -v[..., None]).expand_as(pos)
    return pos, vel


def paint_over(pixels: torch.Tensor, layer: torch.Tensor, bare: torch.Tensor) -> torch.Tensor:
    """pixels, layer, bare [..., 3]: `pixels` with every pixel where `layer` (a render of some objects) differs from
    `bare` (the same render without them: its background) taken from `layer`, i.e. those objects drawn on top."""
    return torch.where((layer != bare).any(dim=-1, keepdim=True), layer, pixels)


def render(scenes: Sequence[Scene], frames: int, start_frame=0, device='cpu') -> Dict[str, torch.Tensor]:
    """Renders frames [start, start + frames) of each scene (start_frame: an int or one per scene).

    Returns pixels [B, T, H, W, 3] float in 0..255 (rounded), and per object (K = 3 slots, `valid`
    marks the used ones) positions / velocities [B, K, T, 2] (x, y), colour index, shape index."""
    b, kmax = len(scenes), 3
    colour_names = list(OBJECT_COLOURS)
    valid = np.zeros((b, kmax), dtype=bool)
    radius = np.ones((b, kmax), dtype=np.float32)
    p0 = np.zeros((b, kmax, 2), dtype=np.float32)
    v0 = np.zeros((b, kmax, 2), dtype=np.float32)
    shape_idx = np.zeros((b, kmax), dtype=np.int64)
    colour_idx = np.zeros((b, kmax), dtype=np.int64)
    obj_rgb = np.zeros((b, kmax, 3), dtype=np.float32)
    bg_rgb = np.zeros((b, 3), dtype=np.float32)
    for i, s in enumerate(scenes):
        bg_rgb[i] = BACKGROUNDS[s.background]
        for k in range(len(s.colours)):
            valid[i, k] = True
            radius[i, k] = s.radii[k]
            p0[i, k] = s.start[k]
            v0[i, k] = s.velocity[k]
            shape_idx[i, k] = SHAPES.index(s.shapes[k])
            colour_idx[i, k] = colour_names.index(s.colours[k])
            obj_rgb[i, k] = OBJECT_COLOURS[s.colours[k]]
    valid, radius, p0, v0, shape_idx, colour_idx, obj_rgb, bg_rgb = (
        torch.from_numpy(x).to(device) for x in (valid, radius, p0, v0, shape_idx, colour_idx, obj_rgb, bg_rgb))
    starts = torch.as_tensor(np.broadcast_to(np.asarray(start_frame, dtype=np.float32), (b,)).copy(), device=device)
    t = starts[:, None, None] + torch.arange(frames, dtype=torch.float32, device=device)  # [B, 1, T]
    return {**draw(p0, v0, radius, shape_idx, valid, bg_rgb, obj_rgb, t), 'valid': valid, 'colour': colour_idx,
            'shape': shape_idx}


def draw(start: torch.Tensor, velocity: torch.Tensor, radius: torch.Tensor, shape_idx: torch.Tensor,
         valid: torch.Tensor, bg_rgb: torch.Tensor, obj_rgb: torch.Tensor, t: torch.Tensor) -> Dict[str, torch.Tensor]:
    """The geometry of render for arrays (K object slots a clip): start / velocity [B, K, 2] (x, y),
    radius [B, K] (unused slots: any positive value), shape index [B, K], valid [B, K], background
    RGB [B, 3], object RGB [B, K, 3], frame times t [B, 1, T]. Returns pixels [B, T, H, W, 3] (0..255,
    rounded), positions / velocities [B, K, T, 2], outline_distance [B, T, H, W] (each pixel centre's distance from
    the nearest drawn object's outline, inf in a frame without objects)."""
    b, kmax = start.shape[:2]
    frames = t.shape[-1]
    device = start.device
    lo = radius
    hi = SIZE - radius
    px, vx = _bounce(start[..., 0], velocity[..., 0], lo, hi, t)
    py, vy = _bounce(start[..., 1], velocity[..., 1], lo, hi, t)  # [B, K, T]

    c = torch.arange(SIZE, dtype=torch.float32, device=device) + 0.5
    dx = c[None, None, None, None, :] - px[..., None, None]  # [B, K, T, 1, W]
    dy = c[None, None, None, :, None] - py[..., None, None]  # [B, K, T, H, 1]
    r = radius[:, :, None, None, None]
    circle = torch.sqrt(dx * dx + dy * dy) - r
    square = torch.maximum(dx.abs(), dy.abs()) - 0.85 * r
    # upward equilateral triangle, circumradius 1.4 r (area close to the circle and square): three outward edge normals, inradius R/2
    big = 1.4 * r
    n1 = dy  # bottom edge, normal (0, 1)
    n2 = 0.8660254 * dx - 0.5 * dy  # right edge
    n3 = -0.8660254 * dx - 0.5 * dy  # left edge
    triangle = torch.maximum(torch.maximum(n1, n2), n3) - big / 2
    sdf = torch.where(shape_idx[:, :, None, None, None] == 0, circle,
                      torch.where(shape_idx[:, :, None, None, None] == 1, square, triangle))
    cover = (0.5 - sdf).clamp(0, 1) * valid[:, :, None, None, None].float()  # [B, K, T, H, W]

    # distance of each pixel centre from the nearest outline of a drawn object (the loss weighting's band)
    outline = torch.where(valid[:, :, None, None, None], sdf.abs(), torch.full_like(sdf, float('inf'))).amin(dim=1)

    img = bg_rgb[:, None, None, None, :].expand(b, frames, SIZE, SIZE, 3).clone()
    for k in range(kmax):
        a = cover[:, k, :, :, :, None]
        img = img * (1 - a) + obj_rgb[:, k, None, None, None, :] * a
    return {
        'pixels': img.round(),
        'positions': torch.stack([px, py], dim=-1),
        'velocities': torch.stack([vx, vy], dim=-1),
        'outline_distance': outline,  # [B, T, H, W] pixels (inf where no object is drawn)
    }


# Latent frames 0 .. FIRST_FRAMES_NEGATED - 1 of a video hold their frames negated (model.json `firstFramesNegated`; 0:
# every latent frame alike). A layout whose first frames differ from the rest, as a video VAE's first latent frame
# does, so that a model trained on it can tell the start of its video from any later moment.
FIRST_FRAMES_NEGATED = 0


def set_first_frames_negated(n: int) -> None:
    """The layout of every later space_to_depth / depth_to_space: the first n latent frames of a video negated."""
    global FIRST_FRAMES_NEGATED
    if n < 0:
        raise ValueError(f'firstFramesNegated: expected >= 0, got {n}')
    FIRST_FRAMES_NEGATED = int(n)


def _negate_leading(latent: torch.Tensor, first_frame: int) -> torch.Tensor:
    """latent [B, C, T, h, w] whose frame 0 is the video's frame first_frame, with the layout's leading frames negated."""
    n = FIRST_FRAMES_NEGATED - first_frame
    if n <= 0:
        return latent
    sign = torch.ones(latent.shape[2], dtype=latent.dtype, device=latent.device)
    sign[:n] = -1
    return latent * sign[None, None, :, None, None]


def space_to_depth(pixels: torch.Tensor, factor: int = 4, first_frame: int = 0) -> torch.Tensor:
    """pixels [B, T, H, W, 3] in 0..255 -> latent [B, 3 f^2, T, H/f, W/f], value = pixel/127.5 - 1,
    channel c = (dy*f + dx)*3 + rgb for pixel (y*f + dy, x*f + dx); frame 0 is the video's frame first_frame
    (the layout's leading frames are negated)."""
    return _negate_leading(pack_pixels(pixels / 127.5 - 1, factor), first_frame)


def pack_pixels(values: torch.Tensor, factor: int = 4) -> torch.Tensor:
    """Per-pixel values [B, T, H, W, 3] -> the latent layout [B, 3 f^2, T, H/f, W/f] (space_to_depth without the
    value mapping: e.g. a per-pixel loss weight lands on the latent entries of its pixel)."""
    b, t, h, w, _ = values.shape
    x = values.reshape(b, t, h // factor, factor, w // factor, factor, 3)  # b t y dy x dx rgb
    x = x.permute(0, 3, 5, 6, 1, 2, 4)  # b dy dx rgb t y x
    return x.reshape(b, factor * factor * 3, t, h // factor, w // factor)


def mirror_latent(latent: torch.Tensor) -> torch.Tensor:
    """The latent [B, 3 f^2, T, h, w] of the frames mirrored left-right: tiles in reverse order along x, and each
    tile's pixel columns (dx) reversed; the leading frames' sign is per frame, so it commutes."""
    b, c, t, h, w = latent.shape
    f = int(round((c // 3) ** 0.5))
    assert 3 * f * f == c, f'{c} channels: not a space_to_depth latent'
    return latent.reshape(b, f, f, 3, t, h, w).flip(2).flip(-1).reshape(b, c, t, h, w)


def flip_latent(latent: torch.Tensor) -> torch.Tensor:
    """The latent [B, 3 f^2, T, h, w] of the frames flipped upside down: tiles in reverse order along y, and each
    tile's pixel rows (dy) reversed; like mirror_latent, it commutes with the leading frames' sign."""
    b, c, t, h, w = latent.shape
    f = int(round((c // 3) ** 0.5))
    assert 3 * f * f == c, f'{c} channels: not a space_to_depth latent'
    return latent.reshape(b, f, f, 3, t, h, w).flip(1).flip(-2).reshape(b, c, t, h, w)


def depth_to_space(latent: torch.Tensor, factor: int = 4, first_frame: int = 0) -> torch.Tensor:
    """Inverse of space_to_depth: [B, 3 f^2, T, h, w] -> pixels [B, T, h f, w f, 3] in 0..255 (clamped); frame 0 is
    the video's frame first_frame."""
    latent = _negate_leading(latent, first_frame)
    b, c, t, h, w = latent.shape
    x = latent.reshape(b, factor, factor, 3, t, h, w).permute(0, 4, 5, 1, 6, 2, 3)  # b t y dy x dx rgb
    x = x.reshape(b, t, h * factor, w * factor, 3)
    return ((x + 1) * 127.5).clamp(0, 255)
