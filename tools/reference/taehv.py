#!/usr/bin/env python3
"""TAEHV's decoder (the tiny video autoencoder of madebyollin/taehv) for Wan2.1 latents: the reference
for sinkstream's streaming `decoder.kind: taehv`.

Architecture (taew2_1: 16 latent channels, channels (256, 128, 64, 64), time upscale (off, x2, x2), space
upscale x2 three times, so a latent frame of HxW becomes 4 frames of 8H x 8W). The layer indices are the
checkpoint's (`decoder.<index>...` keys; encoder keys in the same file are ignored):

   0 Clamp (tanh(x / 3) * 3)       1 conv3x3 latent -> c0 (+bias)   2 ReLU
   3-5   MemBlock(c0)  6 Upsample x2 (nearest)  7 TGrow(c0, 1)  8 conv3x3 c0 -> c1 (no bias)
   9-11  MemBlock(c1) 12 Upsample x2           13 TGrow(c1, 2) 14 conv3x3 c1 -> c2 (no bias)
  15-17  MemBlock(c2) 18 Upsample x2           19 TGrow(c2, 2) 20 conv3x3 c2 -> c3 (no bias)
  21 ReLU  22 conv3x3 c3 -> 3 (+bias); frames clamped to [0, 1]

  MemBlock(c): y = ReLU(conv(ReLU(conv(ReLU(conv(cat(x_t, x_{t-1}))))) + x_t), x_{t-1} being the block's
    own input one time step earlier (zeros before the first): the decoder's only memory.
    keys decoder.i.conv.{0,2,4}.{weight,bias}: [c, 2c, 3, 3], [c, c, 3, 3], [c, c, 3, 3].
  TGrow(c, s): a 1x1 conv c -> s*c (no bias, key decoder.i.conv.weight [s*c, c, 1, 1]); output channels
    [k*c, (k+1)*c) are time step k of the s steps the input step grows into. A checkpoint trained with a
    larger stride stores more rows: the last s*c are used (as upstream does).

No latent scale or shift: TAEHV decodes the diffusion model's latents as they are. The first
t_upscale - 1 = 3 decoded frames are dropped (alignment with the Wan VAE, whose first latent frame stands
for one video frame), so T latent frames give 4T - 3 video frames.

Streaming: decoding block by block carries one tensor per MemBlock (its last input time step); the first
block gives 4F - 3 frames, later ones 4F. `decode_clip` runs every time step at once (each MemBlock sees its
input shifted by one step), `StreamingTaehv.decode` one block at a time; they agree to float rounding.

    python3 tools/reference/taehv.py check                 # streaming == whole clip, key names, frame counts
    python3 tools/reference/taehv.py fixtures              # writes test/decode/fixtures/taehv-small.{safetensors,pth}
"""
from __future__ import annotations

import math
import os
import sys
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from safetensors_io import load_file, save_file  # noqa: E402

WAN_CHANNELS = (256, 128, 64, 64)
MEMBLOCKS = (3, 4, 5, 9, 10, 11, 15, 16, 17)
TGROWS = {7: 1, 13: 2, 19: 2}
FRAMES_TO_TRIM = 3
TIME_UPSCALE = 4


def conv3x3(n_in: int, n_out: int, bias: bool = True) -> nn.Conv2d:
    return nn.Conv2d(n_in, n_out, 3, padding=1, bias=bias)


class Clamp(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(x / 3) * 3


class MemBlock(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.conv = nn.Sequential(conv3x3(2 * c, c), nn.ReLU(), conv3x3(c, c), nn.ReLU(), conv3x3(c, c))

    def forward(self, x: torch.Tensor, past: torch.Tensor) -> torch.Tensor:
        return F.relu(self.conv(torch.cat([x, past], 1)) + x)


class TGrow(nn.Module):
    def __init__(self, c: int, stride: int):
        super().__init__()
        self.stride = stride
        self.conv = nn.Conv2d(c, c * stride, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nt, c, h, w = x.shape
        return self.conv(x).reshape(nt * self.stride, c, h, w)


class TaehvDecoder(nn.Module):
    """The decoder half of TAEHV; `decoder.<i>` parameter names as in the published checkpoints."""

    def __init__(self, latent_channels: int = 16, channels: Sequence[int] = WAN_CHANNELS):
        super().__init__()
        c0, c1, c2, c3 = channels
        self.latent_channels = latent_channels
        self.channels = tuple(channels)
        self.decoder = nn.Sequential(
            Clamp(), conv3x3(latent_channels, c0), nn.ReLU(),
            MemBlock(c0), MemBlock(c0), MemBlock(c0), nn.Upsample(scale_factor=2), TGrow(c0, 1), conv3x3(c0, c1, bias=False),
            MemBlock(c1), MemBlock(c1), MemBlock(c1), nn.Upsample(scale_factor=2), TGrow(c1, 2), conv3x3(c1, c2, bias=False),
            MemBlock(c2), MemBlock(c2), MemBlock(c2), nn.Upsample(scale_factor=2), TGrow(c2, 2), conv3x3(c2, c3, bias=False),
            nn.ReLU(), conv3x3(c3, 3),
        )

    def state_shapes(self, height: int, width: int) -> List[Tuple[int, int, int]]:
        """[C, h, w] of each MemBlock's carried input, in MEMBLOCKS order."""
        out = []
        for i in MEMBLOCKS:
            level = 0 if i < 6 else 1 if i < 12 else 2
            out.append((self.channels[level], height << level, width << level))
        return out

    def run(self, x: torch.Tensor, state: Optional[List[torch.Tensor]]) -> Tuple[torch.Tensor, List[torch.Tensor]]:
        """x [T, C, H, W] latent frames in time order; state: each MemBlock's input at the step before x[0]
        ([1, c, h, w], zeros at the start of a stream). Returns the 4T raw frames [4T, 3, 8H, 8W] (not
        trimmed, not clamped) and the new state."""
        new_state: List[torch.Tensor] = []
        m = 0
        for i, layer in enumerate(self.decoder):
            if isinstance(layer, MemBlock):
                before = state[m] if state is not None else torch.zeros_like(x[:1])
                past = torch.cat([before, x[:-1]], 0)
                new_state.append(x[-1:].clone())
                x = layer(x, past)
                m += 1
            else:
                x = layer(x)
        return x, new_state

    def decode_clip(self, latents: torch.Tensor) -> torch.Tensor:
        """Whole clip at once: latents [T, C, H, W] -> frames [4T - 3, 3, 8H, 8W] in [0, 1]."""
        frames, _ = self.run(latents, None)
        return frames[FRAMES_TO_TRIM:].clamp(0, 1)


class StreamingTaehv:
    """Block by block, the MemBlocks' memory carried between calls."""

    def __init__(self, model: TaehvDecoder):
        self.model = model
        self.reset()

    def reset(self) -> None:
        self.state: Optional[List[torch.Tensor]] = None

    def decode(self, block: torch.Tensor) -> torch.Tensor:
        """block [F, C, H, W] -> frames [4F (- 3 for a stream's first block), 3, 8H, 8W] in [0, 1]."""
        first = self.state is None
        frames, self.state = self.model.run(block, self.state)
        return (frames[FRAMES_TO_TRIM:] if first else frames).clamp(0, 1)


# ---- weights --------------------------------------------------------------------------------------------


def expected_shapes(latent_channels: int = 16, channels: Sequence[int] = WAN_CHANNELS) -> Dict[str, Tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in TaehvDecoder(latent_channels, channels).state_dict().items()}


def load_checkpoint(model: TaehvDecoder, path: str) -> None:
    """A .pth (torch state dict) or .safetensors of the published key names; encoder keys are ignored."""
    if path.endswith('.safetensors'):
        raw = {k: torch.from_numpy(np.asarray(v, dtype=np.float32)) for k, v in load_file(path).items()}
    else:
        raw = torch.load(path, map_location='cpu')
    sd = {k: v.float() for k, v in raw.items() if k.startswith('decoder.')}
    want = model.state_dict()
    for i, stride in TGROWS.items():
        key = f'decoder.{i}.conv.weight'
        if key in sd and sd[key].shape[0] > want[key].shape[0]:
            sd[key] = sd[key][-want[key].shape[0]:]
    model.load_state_dict(sd, strict=True)


@torch.no_grad()
def randomize(model: TaehvDecoder, seed: int) -> None:
    """Synthetic weights with the runtime's distributions (src/decode/taehv/weights.ts), drawn with torch:
    conv weights N(0, (gain / sqrt(fan_in))^2) with gain sqrt(2) before a ReLU, 1 otherwise; biases N(0, 0.02^2),
    the last conv's bias 0.5 (frames centred in [0, 1])."""
    g = torch.Generator().manual_seed(seed)
    for name, p in model.named_parameters():
        mean, std = synthetic_distribution(name, tuple(p.shape))
        p.copy_(mean + std * torch.randn(p.shape, generator=g))


def synthetic_distribution(key: str, shape: Tuple[int, ...]) -> Tuple[float, float]:
    if key == 'decoder.22.bias':
        return 0.5, 0.02
    if key.endswith('.bias'):
        return 0.0, 0.02
    fan_in = int(np.prod(shape[1:]))
    # ReLU follows decoder.1 and the first two convs of every MemBlock; the rest are linear.
    relu_after = key == 'decoder.1.weight' or key.endswith('.conv.0.weight') or key.endswith('.conv.2.weight')
    gain = math.sqrt(2) if relu_after else 1.0
    if key.endswith('.conv.4.weight'):
        gain = 0.5  # the residual branch of a MemBlock starts small, as trained ones do
    return 0.0, gain / math.sqrt(fan_in)


# ---- self-checks and fixtures ---------------------------------------------------------------------------


def check() -> None:
    torch.manual_seed(0)
    model = TaehvDecoder(16, (32, 16, 8, 8)).eval()
    randomize(model, 1)
    keys = list(model.state_dict().keys())
    assert len(keys) == 64, len(keys)
    assert expected_shapes()['decoder.3.conv.0.weight'] == (256, 512, 3, 3)
    assert expected_shapes()['decoder.7.conv.weight'] == (256, 256, 1, 1)
    assert expected_shapes()['decoder.13.conv.weight'] == (256, 128, 1, 1)
    assert expected_shapes()['decoder.22.weight'] == (3, 64, 3, 3)
    lat = torch.randn(9, 16, 5, 7)
    with torch.no_grad():
        whole = model.decode_clip(lat)
        s = StreamingTaehv(model)
        blocks = [s.decode(lat[i:i + 3]) for i in range(0, 9, 3)]
    assert [b.shape[0] for b in blocks] == [9, 12, 12], [b.shape for b in blocks]
    assert whole.shape == (33, 3, 40, 56), whole.shape
    err = (torch.cat(blocks, 0) - whole).abs().max().item()
    print(f'streaming vs whole clip: max abs diff {err:.3g} (frames {whole.shape[0]}, blocks 9/12/12)')
    assert err < 1e-5
    frac = ((whole > 0) & (whole < 1)).float().mean().item()
    print(f'synthetic frames: mean {whole.mean():.3f}, std {whole.std():.3f}, {100 * frac:.0f}% of values inside (0, 1)')


FIXTURE = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), 'test', 'decode', 'fixtures', 'taehv-small.safetensors')
FIXTURE_CHANNELS = (8, 8, 4, 4)
FIXTURE_LATENT = (16, 6, 3, 4)  # C, T (two blocks of 3), H, W


def fixtures(path: str = FIXTURE) -> None:
    """A tiny TAEHV (channels 8, 8, 4, 4) with its weights under the checkpoint's key names, two blocks of
    latents and the frames the reference decodes from them (whole clip), all in one safetensors file."""
    C, T, H, W = FIXTURE_LATENT
    model = TaehvDecoder(C, FIXTURE_CHANNELS).eval()
    randomize(model, 7)
    g = torch.Generator().manual_seed(11)
    latents = torch.randn(T, C, H, W, generator=g) * 1.5
    with torch.no_grad():
        whole = model.decode_clip(latents)
        s = StreamingTaehv(model)
        stream = torch.cat([s.decode(latents[:3]), s.decode(latents[3:])], 0)
    assert (stream - whole).abs().max().item() < 1e-5
    tensors = {k: v.numpy().astype(np.float32) for k, v in model.state_dict().items()}
    tensors['test.latents'] = latents.permute(1, 0, 2, 3).contiguous().numpy()  # [C, T, H, W], the runtime's layout
    tensors['test.frames'] = whole.numpy().astype(np.float32)  # [4T - 3, 3, 8H, 8W] in [0, 1]
    os.makedirs(os.path.dirname(path), exist_ok=True)
    save_file(tensors, path, metadata={'channels': ','.join(map(str, FIXTURE_CHANNELS)), 'made_by': 'tools/reference/taehv.py fixtures'})
    print(f'wrote {path}: {whole.shape[0]} frames of {whole.shape[3]}x{whole.shape[2]}, {os.path.getsize(path)} bytes')
    # the same weights as torch.save writes a published checkpoint (with an encoder key beside them)
    pth = path.replace('.safetensors', '.pth')
    state = {k: v.clone() for k, v in model.state_dict().items()}
    state['encoder.0.weight'] = torch.zeros(4, 3, 3, 3)
    torch.save(state, pth)
    print(f'wrote {pth}: {os.path.getsize(pth)} bytes')


if __name__ == '__main__':
    what = sys.argv[1] if len(sys.argv) > 1 else 'check'
    if what == 'check':
        check()
    elif what == 'fixtures':
        fixtures()
    else:
        sys.exit(f'usage: {sys.argv[0]} check|fixtures')
