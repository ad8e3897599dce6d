"""The Wan2.1 VAE decoder (Wan2.1 `wan/modules/vae.py`, decoder half), written plainly: the numerical
reference for the runtime's Wan VAE decoder (src/decode/wan-vae/, src/decode/wan-vae/graph.ts).

Parameter names are the published checkpoint's (Wan2.1_VAE.pth): `conv2.*` (the 1x1x1 conv before
the decoder) and `decoder.*`; the encoder's keys are not part of this module (load with
strict=False from the full checkpoint, or strict=True from decoder-only files).

Two ways to decode a clip of latent frames, which must agree:
  decode_wan(z)              vae.py's own loop: one latent frame at a time, a cache per causal conv
                             that starts empty (None) and, for the Resample's time_conv, the 'Rep'
                             marker that skips the time doubling on the first frame;
  decode_stream(z, blocks)   the runtime's scheme: the first latent frame alone (no time doubling),
                             then blocks of any number of frames, every causal conv carrying a fixed
                             [2, C, H, W] cache of its last two input frames that starts as zeros.
The first latent frame gives 1 video frame, every later one 4.

    python3 tools/reference/wan_vae.py selftest            # CPU, seconds: decode_wan == decode_stream
    python3 tools/reference/wan_vae.py fixture --weights W.safetensors --out F.safetensors \
        --frames 5 --height 3 --width 4 --seed 0           # latent + decoded frames for npm test
    python3 tools/reference/wan_vae.py pth --weights W.safetensors --out F.pth   # as a torch.save state dict (fp16)
"""
from __future__ import annotations

import argparse
import math
import os
import sys
from dataclasses import dataclass, field, replace
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_io  # noqa: E402

CACHE_T = 2

# Per-channel statistics of the 16 latent channels: constants of the published Wan2.1 VAE
# (WanVAE in vae.py). The diffusion model's latent is (z - mean) / std.
LATENT_MEAN = [-0.7571, -0.7089, -0.9113, 0.1075, -0.1745, 0.9653, -0.1517, 1.5508,
               0.4134, -0.0715, 0.5517, -0.3632, -0.1922, -0.9497, 0.2503, -0.2921]
LATENT_STD = [2.8184, 1.4541, 2.3275, 2.6558, 1.2196, 1.7708, 2.6052, 2.0743,
              3.2687, 2.1526, 2.8652, 1.5579, 1.6382, 1.1253, 2.8251, 1.9160]


@dataclass(frozen=True)
class VaeArch:
    dim: int = 96
    z_dim: int = 16
    dim_mult: Sequence[int] = (1, 2, 4, 4)
    num_res_blocks: int = 2
    # vae.py: temperal_downsample [False, True, True], reversed for the decoder
    temporal_upsample: Sequence[bool] = (True, True, False)


WAN21 = VaeArch()


# ----------------------------------------------------------------------------------------------
# Caches: how a causal conv meets the frames before the current chunk
# ----------------------------------------------------------------------------------------------

class WanCache:
    """vae.py's feat_cache semantics, keyed by module instead of by call order."""

    def __init__(self) -> None:
        self.store: Dict[int, object] = {}

    def conv(self, conv: 'CausalConv3d', x: torch.Tensor) -> torch.Tensor:
        prev = self.store.get(id(conv))
        keep = x[:, :, -CACHE_T:]
        if keep.shape[2] < CACHE_T and prev is not None:
            keep = torch.cat([prev[:, :, -1:], keep], 2)
        out = conv(x, prev)
        self.store[id(conv)] = keep
        return out

    def time_conv(self, conv: 'CausalConv3d', x: torch.Tensor) -> Optional[torch.Tensor]:
        """None: no time doubling (the stream's first chunk)."""
        key = id(conv)
        prev = self.store.get(key)
        if prev is None:
            self.store[key] = 'Rep'
            return None
        keep = x[:, :, -CACHE_T:]
        if keep.shape[2] < CACHE_T:
            pad = torch.zeros_like(keep) if isinstance(prev, str) else prev[:, :, -1:]
            keep = torch.cat([pad, keep], 2)
        out = conv(x) if isinstance(prev, str) else conv(x, prev)
        self.store[key] = keep
        return out


class StreamCache:
    """The runtime's scheme: every cache is [B, C, 2, H, W], zeros at the start of a stream."""

    def __init__(self) -> None:
        self.store: Dict[int, torch.Tensor] = {}
        self.first = True

    def _window(self, conv: 'CausalConv3d', x: torch.Tensor) -> torch.Tensor:
        prev = self.store.get(id(conv))
        if prev is None:
            prev = x.new_zeros(x.shape[0], x.shape[1], CACHE_T, x.shape[3], x.shape[4])
        both = torch.cat([prev, x], 2)
        self.store[id(conv)] = both[:, :, -CACHE_T:]
        return both

    def conv(self, conv: 'CausalConv3d', x: torch.Tensor) -> torch.Tensor:
        both = self._window(conv, x)
        return conv(both[:, :, CACHE_T:], both[:, :, :CACHE_T])

    def time_conv(self, conv: 'CausalConv3d', x: torch.Tensor) -> Optional[torch.Tensor]:
        if self.first:
            return None  # the cache stays absent, i.e. zeros, until the next chunk
        return self.conv(conv, x)


# ----------------------------------------------------------------------------------------------
# Layers (the module tree of vae.py, so that state_dict() keys are the checkpoint's)
# ----------------------------------------------------------------------------------------------

class CausalConv3d(nn.Conv3d):
    """3D conv, zero-padded in space, padded in time only before the frames (2 * p frames)."""

    def __init__(self, cin: int, cout: int, kernel, padding=0):
        super().__init__(cin, cout, kernel, padding=0)
        p = padding if isinstance(padding, tuple) else (padding,) * 3
        self.time_pad = 2 * p[0]
        self.space_pad = (p[2], p[2], p[1], p[1])

    def forward(self, x: torch.Tensor, cache: Optional[torch.Tensor] = None) -> torch.Tensor:  # type: ignore[override]
        front = self.time_pad
        if cache is not None and front > 0:
            x = torch.cat([cache.to(x.dtype), x], 2)
            front -= cache.shape[2]
        x = F.pad(x, self.space_pad + (front, 0))
        return super().forward(x)


class RmsNorm(nn.Module):
    """x / ||x||_channels * sqrt(C) * gamma (F.normalize over dim 1), computed in float32."""

    def __init__(self, dim: int, images: bool):
        super().__init__()
        self.scale = dim ** 0.5
        self.gamma = nn.Parameter(torch.ones((dim, 1, 1) if images else (dim, 1, 1, 1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.normalize(x.float(), dim=1) * self.scale * self.gamma.float()
        return y.to(x.dtype)


class ResidualBlock(nn.Module):
    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.residual = nn.Sequential(
            RmsNorm(cin, images=False), nn.SiLU(), CausalConv3d(cin, cout, 3, padding=1),
            RmsNorm(cout, images=False), nn.SiLU(), nn.Dropout(0.0), CausalConv3d(cout, cout, 3, padding=1))
        self.shortcut = CausalConv3d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x: torch.Tensor, cache) -> torch.Tensor:
        h = self.shortcut(x)
        for layer in self.residual:
            x = cache.conv(layer, x) if isinstance(layer, CausalConv3d) else layer(x)
        return x + h


class AttentionBlock(nn.Module):
    """One-head self-attention among each frame's pixels."""

    def __init__(self, dim: int):
        super().__init__()
        self.norm = RmsNorm(dim, images=True)
        self.to_qkv = nn.Conv2d(dim, dim * 3, 1)
        self.proj = nn.Conv2d(dim, dim, 1)

    def forward(self, x: torch.Tensor, cache=None) -> torch.Tensor:
        b, c, t, h, w = x.shape
        frames = x.permute(0, 2, 1, 3, 4).reshape(b * t, c, h, w)
        qkv = self.to_qkv(self.norm(frames)).reshape(b * t, 3 * c, h * w).transpose(1, 2)  # [bt, hw, 3c]
        q, k, v = qkv.chunk(3, dim=-1)
        attn = torch.softmax((q @ k.transpose(1, 2)).float() / math.sqrt(c), dim=-1).to(v.dtype)
        y = self.proj((attn @ v).transpose(1, 2).reshape(b * t, c, h, w))
        return y.reshape(b, t, c, h, w).permute(0, 2, 1, 3, 4) + x


class Resample(nn.Module):
    """Nearest 2x upsampling + 3x3 conv to half the width; time_conv doubles the frames (upsample3d)."""

    def __init__(self, dim: int, temporal: bool):
        super().__init__()
        self.resample = nn.Sequential(nn.Upsample(scale_factor=(2.0, 2.0), mode='nearest-exact'), nn.Conv2d(dim, dim // 2, 3, padding=1))
        if temporal:
            self.time_conv = CausalConv3d(dim, dim * 2, (3, 1, 1), padding=(1, 0, 0))

    def forward(self, x: torch.Tensor, cache) -> torch.Tensor:
        b, c, t, h, w = x.shape
        if hasattr(self, 'time_conv'):
            y = cache.time_conv(self.time_conv, x)
            if y is not None:  # channels [0, c) are frame 2i, [c, 2c) frame 2i + 1
                x = y.reshape(b, 2, c, t, h, w).permute(0, 2, 3, 1, 4, 5).reshape(b, c, 2 * t, h, w)
                t = 2 * t
        frames = x.permute(0, 2, 1, 3, 4).reshape(b * t, c, h, w)
        up = self.resample[1](self.resample[0](frames.float()).to(x.dtype))
        return up.reshape(b, t, c // 2, 2 * h, 2 * w).permute(0, 2, 1, 3, 4)


class Decoder3d(nn.Module):
    def __init__(self, arch: VaeArch):
        super().__init__()
        mult = list(arch.dim_mult)
        dims = [arch.dim * u for u in [mult[-1]] + mult[::-1]]
        self.conv1 = CausalConv3d(arch.z_dim, dims[0], 3, padding=1)
        self.middle = nn.Sequential(ResidualBlock(dims[0], dims[0]), AttentionBlock(dims[0]), ResidualBlock(dims[0], dims[0]))
        ups: List[nn.Module] = []
        for i, (cin, cout) in enumerate(zip(dims[:-1], dims[1:])):
            if i > 0:
                cin = cin // 2
            for _ in range(arch.num_res_blocks + 1):
                ups.append(ResidualBlock(cin, cout))
                cin = cout
            if i != len(mult) - 1:
                ups.append(Resample(cout, arch.temporal_upsample[i]))
        self.upsamples = nn.Sequential(*ups)
        self.head = nn.Sequential(RmsNorm(dims[-1], images=False), nn.SiLU(), CausalConv3d(dims[-1], 3, 3, padding=1))

    def forward(self, x: torch.Tensor, cache) -> torch.Tensor:
        x = cache.conv(self.conv1, x)
        for layer in list(self.middle) + list(self.upsamples):
            x = layer(x, cache)
        for layer in self.head:
            x = cache.conv(layer, x) if isinstance(layer, CausalConv3d) else layer(x)
        return x


class WanVaeDecoder(nn.Module):
    """conv2 + Decoder3d; the latent is the diffusion model's (normalised) one."""

    def __init__(self, arch: VaeArch = WAN21):
        super().__init__()
        self.arch = arch
        self.conv2 = CausalConv3d(arch.z_dim, arch.z_dim, 1)
        self.decoder = Decoder3d(arch)
        self.register_buffer('latent_mean', torch.tensor(LATENT_MEAN[:arch.z_dim]).view(1, -1, 1, 1, 1), persistent=False)
        self.register_buffer('latent_std', torch.tensor(LATENT_STD[:arch.z_dim]).view(1, -1, 1, 1, 1), persistent=False)

    def prepare(self, z: torch.Tensor) -> torch.Tensor:
        """[B, z, F, h, w] normalised latent -> conv2's output."""
        w = next(self.parameters())
        z = z.to(w.dtype) * self.latent_std.to(w.dtype) + self.latent_mean.to(w.dtype)
        return self.conv2(z)

    def decode_wan(self, z: torch.Tensor) -> torch.Tensor:
        """vae.py's WanVAE_.decode: frame by frame. -> [B, 3, 1 + 4 (F - 1), H, W]."""
        x = self.prepare(z)
        cache = WanCache()
        return torch.cat([self.decoder(x[:, :, i:i + 1], cache) for i in range(x.shape[2])], 2)

    def new_stream(self) -> StreamCache:
        return StreamCache()

    def decode_block(self, z: torch.Tensor, cache: StreamCache) -> torch.Tensor:
        """The next block of a stream (any number of latent frames)."""
        x = self.prepare(z)
        outs = []
        if cache.first:
            outs.append(self.decoder(x[:, :, :1], cache))
            cache.first = False
            x = x[:, :, 1:]
        if x.shape[2] > 0:
            outs.append(self.decoder(x, cache))
        return torch.cat(outs, 2)

    def decode_stream(self, z: torch.Tensor, blocks: Sequence[int]) -> torch.Tensor:
        assert sum(blocks) == z.shape[2], f'blocks {blocks} do not cover {z.shape[2]} frames'
        cache = self.new_stream()
        outs, at = [], 0
        for n in blocks:
            outs.append(self.decode_block(z[:, :, at:at + n], cache))
            at += n
        return torch.cat(outs, 2)


def decoder_flops_per_latent_frame(arch: VaeArch, height: int, width: int) -> Dict[str, float]:
    """Multiply-adds x 2 of one latent frame after the first (4 video frames), from the layer shapes.
    height, width: the video frame's. Convolutions count every tap (the causal window is full)."""
    mult = list(arch.dim_mult)
    dims = [arch.dim * u for u in [mult[-1]] + mult[::-1]]
    s = 2 ** (len(mult) - 1)
    h, w, t = height // s, width // s, 1
    out = {'conv': 0.0, 'attention': 0.0}

    def conv(cin, cout, k, hh, ww, frames):
        out['conv'] += 2.0 * cin * cout * k * hh * ww * frames

    conv(arch.z_dim, arch.z_dim, 1, h, w, t)              # conv2
    conv(arch.z_dim, dims[0], 27, h, w, t)                # conv1
    for _ in range(2):                                    # middle residual blocks
        conv(dims[0], dims[0], 27, h, w, t)
        conv(dims[0], dims[0], 27, h, w, t)
    n = h * w                                             # middle attention (per frame)
    out['attention'] += t * (2.0 * n * dims[0] * 3 * dims[0] + 4.0 * n * n * dims[0] + 2.0 * n * dims[0] * dims[0])
    for i, (cin, cout) in enumerate(zip(dims[:-1], dims[1:])):
        if i > 0:
            cin //= 2
        for _ in range(arch.num_res_blocks + 1):
            conv(cin, cout, 27, h, w, t)
            conv(cout, cout, 27, h, w, t)
            if cin != cout:
                conv(cin, cout, 1, h, w, t)
            cin = cout
        if i != len(mult) - 1:
            if arch.temporal_upsample[i]:
                conv(cout, 2 * cout, 3, h, w, t)
                t *= 2
            h, w = 2 * h, 2 * w
            conv(cout, cout // 2, 9, h, w, t)
    conv(dims[-1], 3, 27, h, w, t)                        # head
    out['total'] = out['conv'] + out['attention']
    return out


# ----------------------------------------------------------------------------------------------
# Weights
# ----------------------------------------------------------------------------------------------

def load_weights(model: WanVaeDecoder, path: str) -> None:
    """A .safetensors (decoder keys, or the whole VAE) or the published .pth."""
    if path.endswith('.safetensors'):
        state = {k: torch.from_numpy(v) for k, v in safetensors_io.load_file(path).items()}
    else:
        state = torch.load(path, map_location='cpu')
    wanted = set(model.state_dict().keys())
    state = {k: v for k, v in state.items() if k in wanted}
    missing = wanted - set(state)
    if missing:
        raise KeyError(f'{path}: missing {sorted(missing)[:5]}')
    model.load_state_dict(state, strict=True)


def arch_of_weights(path: str) -> VaeArch:
    state = safetensors_io.load_file(path)
    return replace(WAN21, dim=int(state['decoder.head.2.weight'].shape[1]), z_dim=int(state['conv2.weight'].shape[0]))


def random_init(model: nn.Module, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith('gamma'):
                p.copy_(1 + 0.05 * torch.randn(p.shape, generator=g))
            elif name.endswith('bias'):
                p.copy_(0.02 * torch.randn(p.shape, generator=g))
            else:
                p.copy_(torch.randn(p.shape, generator=g) / math.sqrt(p[0].numel()))


# ----------------------------------------------------------------------------------------------
# Commands
# ----------------------------------------------------------------------------------------------

def selftest() -> None:
    torch.manual_seed(0)
    arch = replace(WAN21, dim=8)
    model = WanVaeDecoder(arch).eval()
    random_init(model, 1)
    z = torch.randn(1, 16, 6, 3, 4)
    with torch.no_grad():
        whole = model.decode_wan(z)
        assert whole.shape == (1, 3, 1 + 4 * 5, 24, 32), whole.shape
        for blocks in ([6], [1, 5], [3, 3], [1, 1, 1, 1, 1, 1], [2, 4]):
            err = (model.decode_stream(z, blocks) - whole).abs().max().item()
            print(f'[selftest] blocks {blocks}: max |stream - wan| = {err:.2e}')
            assert err < 1e-5, err
    # the published key layout (spot checks from Wan2.1_VAE.pth)
    real = WanVaeDecoder(WAN21).state_dict()
    for key, shape in [('conv2.weight', (16, 16, 1, 1, 1)), ('decoder.conv1.weight', (384, 16, 3, 3, 3)),
                       ('decoder.middle.0.residual.0.gamma', (384, 1, 1, 1)), ('decoder.middle.1.to_qkv.weight', (1152, 384, 1, 1)),
                       ('decoder.upsamples.3.time_conv.weight', (768, 384, 3, 1, 1)), ('decoder.upsamples.4.shortcut.weight', (384, 192, 1, 1, 1)),
                       ('decoder.upsamples.11.resample.1.weight', (96, 192, 3, 3)), ('decoder.head.2.weight', (3, 96, 3, 3, 3))]:
        assert tuple(real[key].shape) == shape, (key, real[key].shape)
    print(f'[selftest] {len(real)} decoder tensors, {sum(v.numel() for v in real.values()) / 1e6:.1f} M parameters; ok')


def fixture(args) -> None:
    arch = arch_of_weights(args.weights)
    model = WanVaeDecoder(arch).eval()
    load_weights(model, args.weights)
    g = torch.Generator().manual_seed(args.seed)
    z = torch.randn((1, arch.z_dim, args.frames, args.height, args.width), generator=g)
    with torch.no_grad():
        frames = model.decode_wan(z)[0]  # [3, F', H, W]
    out = {'latent': z[0].numpy().astype(np.float32), 'frames': frames.permute(1, 0, 2, 3).contiguous().numpy().astype(np.float32)}
    safetensors_io.save_file(out, args.out, metadata={'dim': arch.dim, 'seed': args.seed, 'weights': os.path.basename(args.weights)})
    print(f'[fixture] {args.out}: latent {list(out["latent"].shape)} -> frames {list(out["frames"].shape)}, '
          f'range [{frames.min().item():.3f}, {frames.max().item():.3f}]')


def to_pth(args) -> None:
    """A decoder safetensors as a Wan2.1_VAE.pth-like torch.save state dict (float16), with two of the
    encoder's keys beside the decoder's, as in the published file."""
    state = {k: torch.from_numpy(v).half() for k, v in safetensors_io.load_file(args.weights).items()}
    z = state['conv2.weight'].shape[0]
    state['conv1.weight'] = torch.zeros(2 * z, 2 * z, 1, 1, 1, dtype=torch.half)
    state['encoder.conv1.weight'] = torch.zeros(4, 3, 3, 3, 3, dtype=torch.half)
    torch.save(state, args.out)
    print(f'[pth] {args.out}: {len(state)} tensors (float16)')


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest='cmd', required=True)
    sub.add_parser('selftest')
    f = sub.add_parser('fixture')
    f.add_argument('--weights', required=True)
    f.add_argument('--out', required=True)
    f.add_argument('--frames', type=int, default=5)
    f.add_argument('--height', type=int, default=3)
    f.add_argument('--width', type=int, default=4)
    f.add_argument('--seed', type=int, default=0)
    t = sub.add_parser('pth')
    t.add_argument('--weights', required=True)
    t.add_argument('--out', required=True)
    a = p.parse_args()
    if a.cmd == 'selftest':
        selftest()
    elif a.cmd == 'pth':
        to_pth(a)
    else:
        fixture(a)


if __name__ == '__main__':
    main()
