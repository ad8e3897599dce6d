"""What the demo-model training scripts share (train.py, distill_opening.py, train_teacher.py,
self_forcing.py): import paths, the runtime's sampler constants, the set-up every run does (device,
TF32, bf16 autocast, AdamW, EMA), the learning-rate schedule, checkpoints and PNG sheets.

Importing this module puts tools/reference and tools/data on sys.path, so a script can then import
`model` and `scenes`.
"""
from __future__ import annotations

import copy
import dataclasses
import json
import math
import os
import struct
import sys
import zlib
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
for _sub in ('data', 'reference'):
    _p = os.path.join(ROOT, 'tools', _sub)
    if _p not in sys.path:
        sys.path.insert(0, _p)

from model import Dims, WanModel, load_weights, save_weights  # noqa: E402

INFERENCE_STEPS = (1000, 750, 500, 250)  # the runtime's 4-step loop, before the shift
SHIFT = 5.0
BLOCK = 3  # frames a block
DEFAULT_MODEL_JSON = os.path.join(ROOT, 'models', 'demo', 'model.json')
DEFAULT_WEIGHTS = os.path.join(ROOT, 'models', 'demo', 'model.safetensors')
HELD_OUT_SEED = 10_000_000  # evaluation scenes: numpy sample_scene streams from here on; training uses a torch generator


def held_out(caption: str) -> bool:
    """Captions the students never train on (an eighth of the caption space)."""
    return zlib.crc32(caption.encode()) % 8 == 0


def shift_s(u):
    """The shift-5 map s = 5u / (1 + 4u) (torch tensors or numpy arrays): uniform u -> the density of
    the sampler's steps."""
    return SHIFT * u / (1 + (SHIFT - 1) * u)


def lr_at(step: int, frac: float, base: float, warmup: int) -> float:
    """Linear warm-up over `warmup` steps, then cosine from `base` to 10% over the time budget (frac)."""
    warm = min(1.0, (step + 1) / warmup)
    return base * warm * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(frac, 1.0))))


def set_lr(opt: torch.optim.Optimizer, lr: float) -> None:
    """lr for every parameter group, times the group's `lr_scale` where it has one."""
    for g in opt.param_groups:
        g['lr'] = lr * g.get('lr_scale', 1.0)


# ----------------------------------------------------------------------------------------------
# Set-up
# ----------------------------------------------------------------------------------------------

def add_model_sampler_args(ap) -> None:
    """The arguments every measuring tool shares: architecture, weights, the block sampler, its steps and guidance."""
    ap.add_argument('--model', default=DEFAULT_MODEL_JSON, help='architecture (model.json)')
    ap.add_argument('--weights', default=DEFAULT_WEIGHTS)
    ap.add_argument('--sampler', choices=['ode', 'renoise'], default='renoise',
                    help="'ode' for a teacher (many steps), 'renoise' for a student (the runtime's loop)")
    ap.add_argument('--steps', type=int, default=4)
    ap.add_argument('--guidance', type=float, default=1.0)


def noise_interval(text: str) -> Tuple[float, float]:
    """'lo,hi' -> (lo, hi), two noise levels with 0 <= lo <= hi <= 1 (a guidance interval); ValueError otherwise."""
    try:
        lo, hi = (float(v) for v in text.split(','))
    except ValueError:
        raise ValueError(f'expected two noise levels lo,hi, got {text!r}') from None
    if not 0 <= lo <= hi <= 1:
        raise ValueError(f'expected 0 <= lo <= hi <= 1, got {text!r}')
    return lo, hi


def pick_device(name: Optional[str]) -> torch.device:
    return torch.device(name or ('cuda' if torch.cuda.is_available() else 'cpu'))


def set_tf32(dev: torch.device, on: bool) -> None:
    """TF32 matmuls for training (on), full fp32 for evaluation (off); CUDA only."""
    if dev.type == 'cuda':
        torch.backends.cuda.matmul.allow_tf32 = on
        torch.backends.cudnn.allow_tf32 = on


def autocast_args(dev: torch.device) -> Dict[str, object]:
    """torch.autocast arguments: bf16 on CUDA, off on the CPU."""
    if dev.type == 'cuda':
        return dict(device_type='cuda', dtype=torch.bfloat16)
    return dict(device_type='cpu', dtype=torch.bfloat16, enabled=False)


def adamw(params: Iterable[torch.nn.Parameter], dev: torch.device, lr: float, betas=(0.9, 0.99),
          weight_decay: float = 0.01) -> torch.optim.AdamW:
    """AdamW, fused on CUDA."""
    return torch.optim.AdamW(params, lr=lr, betas=betas, weight_decay=weight_decay,
                             **({'fused': True} if dev.type == 'cuda' else {}))


def dims_of_file(dims: Dims, path: str) -> Dims:
    """dims with the word encoder's neighbour tables exactly when the safetensors file has them (as the runtime
    decides), whatever dims says."""
    from model import TEXT_NEIGHBOUR_KEYS
    from safetensors_io import read_header  # noqa: WPS433

    header = read_header(path)
    return dataclasses.replace(dims, text_neighbours=any(k in header for k in TEXT_NEIGHBOUR_KEYS))


def load_model(dims: Dims, path: str, dev) -> WanModel:
    """A model of these dims (dims_of_file) with the weights of a runtime safetensors file, on dev."""
    from model import load_weights

    m = WanModel(dims_of_file(dims, path))
    load_weights(m, path)
    return m.to(dev)


def load_dims(model_json: str, vocab: Sequence[str]) -> Dims:
    """The architecture of model.json with the scenes vocabulary's size; sets scenes' latent layout from it
    (`firstFramesNegated`)."""
    import scenes  # noqa: WPS433

    with open(model_json) as f:
        spec = json.load(f)
    dims = Dims.from_dict({**spec, 'vocab_size': len(vocab)})
    scenes.set_first_frames_negated(dims.first_frames_negated)
    return dims


def freeze(model: WanModel) -> WanModel:
    """The model in eval mode without gradients (a frozen teacher, an EMA)."""
    model.eval()
    for q in model.parameters():
        q.requires_grad_(False)
    return model


def frozen_copy(model: WanModel) -> WanModel:
    """A deep copy of the model, frozen (the EMA of the weights)."""
    return freeze(copy.deepcopy(model))


def freeze_text(model: WanModel) -> List[torch.nn.Parameter]:
    """Freezes the word table (text_encoder.*), so the model keeps the main model's text context;
    returns the parameters left to train."""
    for name, q in model.named_parameters():
        q.requires_grad_(not name.startswith('text_encoder.'))
    return [q for q in model.parameters() if q.requires_grad]


def matching_params(ema: WanModel, model: WanModel) -> List[torch.nn.Parameter]:
    """The parameters of ema (a copy of model) that correspond to model's trainable ones, in order."""
    by_name = dict(ema.named_parameters())
    return [by_name[n] for n, q in model.named_parameters() if q.requires_grad]


def optimizer_step(opt: torch.optim.Optimizer, loss: torch.Tensor, params, clip: float = 1.0) -> torch.Tensor:
    """Backward of loss, gradient norm clipped to `clip`, one optimizer step; returns the norm before clipping."""
    opt.zero_grad(set_to_none=True)
    loss.backward()
    norm = torch.nn.utils.clip_grad_norm_(params, clip)
    opt.step()
    return norm


@torch.no_grad()
def ema_update(ema_params: List[torch.Tensor], params: List[torch.Tensor], step: int, max_decay: float) -> None:
    """ema = decay * ema + (1 - decay) * params, decay = min(max_decay, (1 + step) / (10 + step))."""
    decay = min(max_decay, (1 + step) / (10 + step))
    torch._foreach_mul_(ema_params, decay)
    torch._foreach_add_(ema_params, [q.detach() for q in params], alpha=1 - decay)


# ----------------------------------------------------------------------------------------------
# Outputs
# ----------------------------------------------------------------------------------------------

def save_atomic(model: WanModel, path: str, meta: Dict[str, str]) -> None:
    """float32 safetensors written to path.tmp, then renamed (a reader never sees half a file)."""
    tmp = path + '.tmp'
    save_weights(model, tmp, 'float32', meta)
    os.replace(tmp, path)


def write_model_json(out_dir: str, dims: Dims) -> None:
    """The architecture a run's weights need (with `prediction`), beside them: `--model` of the next run."""
    with open(os.path.join(out_dir, 'model.json'), 'w') as f:
        json.dump(dims.to_dict(), f, indent=2)


def write_png(path: str, rgb: np.ndarray) -> None:
    """An 8-bit RGB PNG from [H, W, 3] uint8 with the standard library only (no PIL on every machine)."""
    h, w, _ = rgb.shape
    raw = b''.join(b'\x00' + rgb[y].tobytes() for y in range(h))  # filter type 0 per row

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack('>I', len(data)) + kind + data + struct.pack('>I', zlib.crc32(kind + data) & 0xffffffff)

    with open(path, 'wb') as f:
        f.write(b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', w, h, 8, 2, 0, 0, 0))
                + chunk(b'IDAT', zlib.compress(raw, 9)) + chunk(b'IEND', b''))


def save_sheet(px: torch.Tensor, cols: Sequence[int], path: str, scale: int = 2) -> None:
    """A contact sheet PNG: one row per clip of px [B, T, H, W, 3] (0..255), the frames `cols` side by
    side, scaled up `scale` times (nearest)."""
    rows = [torch.cat([clip[i] for i in cols], dim=1) for clip in px]
    sheet = torch.cat(rows, dim=0).round().clamp(0, 255).to(torch.uint8).numpy()
    write_png(path, np.ascontiguousarray(sheet.repeat(scale, axis=0).repeat(scale, axis=1)))
