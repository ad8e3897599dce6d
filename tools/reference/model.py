"""The reference block-causal Wan2.1-family transformer (docs/model.md), written plainly.

This file is the numerical reference for every engine (the ONNX graph, the CUDA addon) and the
model used for training the bundled demo model. Parameter names are the canonical Wan keys, so
`model.state_dict()` *is* a runtime checkpoint (plus `text_encoder.embedding.weight` for the
built-in word encoder of small demo models).

KV cache contract (src/engine/types.ts): a cached row is one token's self-attention key after
RMSNorm and BEFORE RoPE, its value, and its RoPE position (frame, row, column). Keys are rotated at
attention time from the positions, so re-placing a cached frame on the timeline is a change of its
positions only.

API (batch B, latent channels C, block frames F, latent H x W, tokens per frame T = H/2 * W/2):
    dims  = Dims.from_dict({...})                   # config keys (camelCase or snake_case)
    model = WanModel(dims)                           # fp32; .to(torch.bfloat16) for bf16
    ctx   = model.encode_text(token_ids)             # [textLen, textDim] (built-in encoder)
    xkv   = model.cross_kv(ctx[None])                # per-layer cross-attention K/V, once per prompt
    out   = model(latent, t, frame_positions, cross_kv=xkv, cache=KVCache(...), return_kv=True)
    out.flow                                         # [B, C, F, H, W] (a 'sample' model's x0 made a flow)
    out.output                                       # the head's output as engines return it
    out.block_k[i], out.block_v[i]                   # [B, F*T, dim] (k: normed, un-rotated)
    out.block_positions                              # [F*T, 3] float (frame, row, column)
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

TEXT_EMBEDDING_KEY = 'text_encoder.embedding.weight'


# ----------------------------------------------------------------------------------------------
# Dimensions
# ----------------------------------------------------------------------------------------------

def wan_rope_split(head_dim: int) -> Tuple[int, int, int]:
    """Complex pairs of a head for (frame, row, column): Wan's d - 4*(d//6), 2*(d//6), 2*(d//6) dims."""
    sixth = head_dim // 6
    return ((head_dim - 4 * sixth) // 2, sixth, sixth)


PREDICTIONS = ('flow', 'sample')
# A sample-predicting model's flow divides by the noise level; below this floor it divides by the floor
# (as in "Back to Basics: Let Denoising Generative Models Denoise", Li & He 2025), in training and at runtime.
SAMPLE_SIGMA_FLOOR = 0.05


def _flow_of_sample(noisy: torch.Tensor, x0: torch.Tensor, s_frame: torch.Tensor) -> torch.Tensor:
    """(noisy - x0) / max(s, floor), s_frame [B, F] the noise level of each frame of noisy [B, C, F, H, W]."""
    s = s_frame.float().clamp_min(SAMPLE_SIGMA_FLOOR)[:, None, :, None, None]
    return (noisy.float() - x0.float()) / s


def flow_of_output(raw: torch.Tensor, noisy: torch.Tensor, t: torch.Tensor, prediction: str) -> torch.Tensor:
    """The flow of a head's output: raw itself ('flow'), or (noisy - raw) / max(s, floor) ('sample'), with
    t [B, F] the timesteps (s * 1000) of the frames of noisy [B, C, F, H, W]."""
    return raw if prediction == 'flow' else _flow_of_sample(noisy, raw, t.float() / 1000)


def flow_target(noisy: torch.Tensor, x0: torch.Tensor, noise: torch.Tensor, s_frame: torch.Tensor, prediction: str) -> torch.Tensor:
    """The flow-matching target matching flow_of_output: noise - x0, or for 'sample' (noisy - x0) / max(s, floor)
    (equal to noise - x0 above the floor); s_frame [B, F] the noise level of each frame."""
    return noise - x0 if prediction == 'flow' else _flow_of_sample(noisy, x0, s_frame)


@dataclass
class Dims:
    dim: int = 128
    layers: int = 4
    heads: int = 2
    ffn_dim: int = 512
    freq_dim: int = 256
    latent_channels: int = 48
    patch: Tuple[int, int, int] = (1, 2, 2)
    text_dim: int = 64
    text_len: int = 16
    eps: float = 1e-6
    rope_theta: float = 10000.0
    rope_split: Optional[Tuple[int, int, int]] = None
    rope_max_position: int = 1024
    latent_height: int = 16
    latent_width: int = 16
    vocab_size: Optional[int] = None  # built-in text encoder table rows (None: no table)
    # Built-in text encoder only: each context row also adds its neighbouring words' rows of two more tables
    # (text_encoder.previous / .next), so a word's row says which words stand beside it ("yellow" before "triangle").
    text_neighbours: bool = False
    # What the network's head outputs: 'flow' (v = noise - x0, Wan's) or 'sample' (x0 itself, converted to
    # the flow (x_s - x0) / max(s, SAMPLE_SIGMA_FLOOR) by forward(); the runtime's loop does the same).
    prediction: str = 'flow'
    # The latent layout, not the network: a video's first latent frames stored negated (tools/data/scenes.py).
    first_frames_negated: int = 0

    def __post_init__(self) -> None:
        self.patch = tuple(self.patch)  # type: ignore[assignment]
        if self.rope_split is None:
            self.rope_split = wan_rope_split(self.head_dim)
        self.rope_split = tuple(self.rope_split)  # type: ignore[assignment]
        assert self.dim % self.heads == 0, 'dim must divide by heads'
        assert sum(self.rope_split) * 2 == self.head_dim, 'rope split must cover head_dim / 2 pairs'
        assert self.prediction in PREDICTIONS, f'prediction must be one of {PREDICTIONS}'

    @property
    def head_dim(self) -> int:
        return self.dim // self.heads

    @property
    def grid(self) -> Tuple[int, int]:
        return self.latent_height // self.patch[1], self.latent_width // self.patch[2]

    @property
    def tokens_per_frame(self) -> int:
        gh, gw = self.grid
        return gh * gw

    @property
    def patch_features(self) -> int:
        return self.latent_channels * self.patch[0] * self.patch[1] * self.patch[2]

    _ALIASES = {
        'ffnDim': 'ffn_dim', 'freqDim': 'freq_dim', 'latentChannels': 'latent_channels',
        'textDim': 'text_dim', 'textLen': 'text_len', 'ropeTheta': 'rope_theta',
        'ropeSplit': 'rope_split', 'ropeMaxPosition': 'rope_max_position',
        'latentHeight': 'latent_height', 'latentWidth': 'latent_width', 'vocabSize': 'vocab_size',
        'textNeighbours': 'text_neighbours', 'firstFramesNegated': 'first_frames_negated',
    }

    @classmethod
    def from_dict(cls, d: Dict) -> 'Dims':
        """Accepts a flat dict, or the config's `model` section ({arch: {...}, latentHeight, ...})."""
        flat: Dict = {}
        for k, v in d.items():
            if k == 'arch' and isinstance(v, dict):
                for k2, v2 in v.items():
                    flat[cls._ALIASES.get(k2, k2)] = v2
            else:
                flat[cls._ALIASES.get(k, k)] = v
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in flat.items() if k in known})

    def to_dict(self) -> Dict:
        return {
            'dim': self.dim, 'layers': self.layers, 'heads': self.heads, 'ffnDim': self.ffn_dim,
            'freqDim': self.freq_dim, 'latentChannels': self.latent_channels, 'patch': list(self.patch),
            'textDim': self.text_dim, 'textLen': self.text_len, 'eps': self.eps,
            'ropeTheta': self.rope_theta, 'ropeSplit': list(self.rope_split),
            'ropeMaxPosition': self.rope_max_position,
            'latentHeight': self.latent_height, 'latentWidth': self.latent_width,
            **({'prediction': self.prediction} if self.prediction != 'flow' else {}),
            **({'textNeighbours': True} if self.text_neighbours else {}),
            **({'firstFramesNegated': self.first_frames_negated} if self.first_frames_negated else {}),
        }


# ----------------------------------------------------------------------------------------------
# Building blocks (fp32 where docs/model.md says so)
# ----------------------------------------------------------------------------------------------

class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xf = x.float()
        y = xf * torch.rsqrt(xf.pow(2).mean(dim=-1, keepdim=True) + self.eps)
        return y.type_as(x) * self.weight


class LayerNorm(nn.LayerNorm):
    """LayerNorm computed in fp32 (Wan's WanLayerNorm)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        w = self.weight.float() if self.weight is not None else None
        b = self.bias.float() if self.bias is not None else None
        return F.layer_norm(x.float(), self.normalized_shape, w, b, self.eps).type_as(x)


def sinusoidal_embedding(freq_dim: int, t: torch.Tensor) -> torch.Tensor:
    """concat(cos(t w_i), sin(t w_i)), w_i = 10000^(-i/half), in float64 then float32."""
    half = freq_dim // 2
    w = torch.pow(torch.tensor(10000.0, dtype=torch.float64), -torch.arange(half, dtype=torch.float64) / half)
    ang = t.to(torch.float64)[..., None] * w.to(t.device)
    return torch.cat([torch.cos(ang), torch.sin(ang)], dim=-1).float()


def rope_cos_sin(positions: torch.Tensor, dims: Dims) -> Tuple[torch.Tensor, torch.Tensor]:
    """positions [L, 3] (frame, row, column) -> cos, sin [L, head_dim/2] (float32; angles in float64)."""
    parts = []
    for axis, pairs in enumerate(dims.rope_split):
        j = torch.arange(pairs, dtype=torch.float64, device=positions.device)
        w = torch.pow(torch.tensor(dims.rope_theta, dtype=torch.float64), -2.0 * j / (2 * pairs))
        parts.append(positions[:, axis].to(torch.float64)[:, None] * w[None, :])
    ang = torch.cat(parts, dim=1)
    return torch.cos(ang).float(), torch.sin(ang).float()


def rope_apply(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """x [B, L, H, D]; rotates adjacent pairs (2j, 2j+1) by the angle of pair j (computed in fp32)."""
    b, l, h, d = x.shape
    xf = x.float().reshape(b, l, h, d // 2, 2)
    x0, x1 = xf[..., 0], xf[..., 1]
    c = cos[None, :, None, :]
    s = sin[None, :, None, :]
    out = torch.stack([x0 * c - x1 * s, x0 * s + x1 * c], dim=-1)
    return out.reshape(b, l, h, d).type_as(x)


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: Optional[torch.Tensor] = None) -> torch.Tensor:
    """q [B, Lq, H, D], k/v [B, Lk, H, D] -> [B, Lq, H*D]. mask: bool [Lq, Lk], True = may attend."""
    b, lq, h, d = q.shape
    qt, kt, vt = (t.to(v.dtype).transpose(1, 2) for t in (q, k, v))
    if hasattr(F, 'scaled_dot_product_attention'):
        o = F.scaled_dot_product_attention(qt, kt, vt, attn_mask=mask)
    else:  # torch < 2.0
        logits = (qt @ kt.transpose(-1, -2)) / math.sqrt(d)
        if mask is not None:
            logits = logits.masked_fill(~mask, float('-inf'))
        o = torch.softmax(logits.float(), dim=-1).type_as(vt) @ vt
    return o.transpose(1, 2).reshape(b, lq, h * d)


class SelfAttention(nn.Module):
    def __init__(self, dims: Dims):
        super().__init__()
        d = dims.dim
        self.heads = dims.heads
        self.q, self.k, self.v, self.o = (nn.Linear(d, d) for _ in range(4))
        self.norm_q = RMSNorm(d, dims.eps)
        self.norm_k = RMSNorm(d, dims.eps)

    def project(self, y: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """-> q (normed), k (normed, un-rotated), v; all [B, L, dim]."""
        return self.norm_q(self.q(y)), self.norm_k(self.k(y)), self.v(y)


class CrossAttention(nn.Module):
    def __init__(self, dims: Dims):
        super().__init__()
        d = dims.dim
        self.heads = dims.heads
        self.q, self.k, self.v, self.o = (nn.Linear(d, d) for _ in range(4))
        self.norm_q = RMSNorm(d, dims.eps)
        self.norm_k = RMSNorm(d, dims.eps)

    def kv(self, ctx: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        return self.norm_k(self.k(ctx)), self.v(ctx)

    def forward(self, x: torch.Tensor, kv: Tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        b, l, d = x.shape
        hd = d // self.heads
        q = self.norm_q(self.q(x)).view(b, l, self.heads, hd)
        k, v = kv
        k, v = k.to(q.dtype), v.to(q.dtype)
        k = k.view(b, k.shape[1], self.heads, hd)
        v = v.view(b, v.shape[1], self.heads, hd)
        return self.o(attention(q, k, v).to(self.o.weight.dtype))


class Block(nn.Module):
    def __init__(self, dims: Dims):
        super().__init__()
        d = dims.dim
        self.dims = dims
        self.norm1 = LayerNorm(d, eps=dims.eps, elementwise_affine=False)
        self.self_attn = SelfAttention(dims)
        self.norm3 = LayerNorm(d, eps=dims.eps, elementwise_affine=True)
        self.cross_attn = CrossAttention(dims)
        self.norm2 = LayerNorm(d, eps=dims.eps, elementwise_affine=False)
        self.ffn = nn.Sequential(nn.Linear(d, dims.ffn_dim), nn.GELU(approximate='tanh'), nn.Linear(dims.ffn_dim, d))
        self.modulation = nn.Parameter(torch.randn(1, 6, d) / d ** 0.5)


class Head(nn.Module):
    def __init__(self, dims: Dims):
        super().__init__()
        d = dims.dim
        self.norm = LayerNorm(d, eps=dims.eps, elementwise_affine=False)
        self.head = nn.Linear(d, dims.patch_features)
        self.modulation = nn.Parameter(torch.randn(1, 2, d) / d ** 0.5)


TEXT_NEIGHBOUR_KEYS = ('text_encoder.previous.weight', 'text_encoder.next.weight')


class TextEncoder(nn.Module):
    """The built-in word encoder's tables; context row i = embedding[token_i] + PE(i), and with neighbours
    + previous[token_(i-1)] (i > 0) + next[token_(i+1)] (i + 1 < length). The neighbour tables start at zero, so
    adding them to a trained model changes nothing until they are trained."""

    def __init__(self, vocab_size: int, text_dim: int, neighbours: bool = False):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, text_dim)
        nn.init.normal_(self.embedding.weight, std=1.0)
        if neighbours:
            self.previous = nn.Embedding(vocab_size, text_dim)
            self.next = nn.Embedding(vocab_size, text_dim)
            nn.init.zeros_(self.previous.weight)
            nn.init.zeros_(self.next.weight)

    def rows(self, ids: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        """ids [B, L] (any value where keep is 0), keep [B, L, 1] float: the rows before positions, zero past the prompt."""
        ids = ids.clamp(min=0)
        out = self.embedding.weight[ids] * keep
        if hasattr(self, 'previous'):
            prev = torch.zeros_like(out)
            prev[:, 1:] = self.previous.weight[ids[:, :-1]] * keep[:, 1:]
            nxt = torch.zeros_like(out)
            nxt[:, :-1] = self.next.weight[ids[:, 1:]] * keep[:, 1:]
            out = out + prev + nxt
        return out


def text_positional_encoding(length: int, text_dim: int) -> torch.Tensor:
    """PE(i, 2k) = sin(i / 10000^(2k/textDim)), PE(i, 2k+1) = cos(...); float64 -> float32."""
    i = torch.arange(length, dtype=torch.float64)[:, None]
    k2 = torch.arange(0, text_dim, 2, dtype=torch.float64)[None, :]
    ang = i / torch.pow(torch.tensor(10000.0, dtype=torch.float64), k2 / text_dim)
    pe = torch.zeros(length, text_dim, dtype=torch.float64)
    pe[:, 0::2] = torch.sin(ang)
    pe[:, 1::2] = torch.cos(ang[:, : text_dim // 2])
    return pe.float()


# ----------------------------------------------------------------------------------------------
# Cache and outputs
# ----------------------------------------------------------------------------------------------

@dataclass
class KVCache:
    """Per layer [B, N, dim] keys (normed, un-rotated) and values; positions [N, 3] (frame, row, col)."""
    keys: List[torch.Tensor]
    values: List[torch.Tensor]
    positions: torch.Tensor

    @property
    def rows(self) -> int:
        return int(self.positions.shape[0])

    @staticmethod
    def empty(dims: Dims, batch: int = 1, device=None, dtype=torch.float32) -> 'KVCache':
        z = torch.zeros(batch, 0, dims.dim, device=device, dtype=dtype)
        return KVCache([z] * dims.layers, [z] * dims.layers, torch.zeros(0, 3, device=device))

    def append(self, keys: List[torch.Tensor], values: List[torch.Tensor], positions: torch.Tensor) -> 'KVCache':
        """New rows in the cache's own dtype (a pass under autocast gives bf16 keys; the cache keeps float32)."""
        return KVCache(
            [torch.cat([a, b.to(a.dtype)], dim=1) for a, b in zip(self.keys, keys)],
            [torch.cat([a, b.to(a.dtype)], dim=1) for a, b in zip(self.values, values)],
            torch.cat([self.positions, positions.to(self.positions)], dim=0),
        )

    def select(self, rows: torch.Tensor, positions: Optional[torch.Tensor] = None) -> 'KVCache':
        """Gathers rows (a 1-D index tensor); optional new positions for them."""
        pos = self.positions[rows] if positions is None else positions
        return KVCache([k[:, rows] for k in self.keys], [v[:, rows] for v in self.values], pos)


@dataclass
class ForwardOut:
    flow: torch.Tensor
    block_k: List[torch.Tensor] = field(default_factory=list)
    block_v: List[torch.Tensor] = field(default_factory=list)
    block_positions: Optional[torch.Tensor] = None
    queries: List[torch.Tensor] = field(default_factory=list)  # per layer [B, L, H, D], RoPE'd
    # The head's output as the engines return it (forward() only): the flow itself, or a 'sample' model's x0.
    output: Optional[torch.Tensor] = None


# ----------------------------------------------------------------------------------------------
# The model
# ----------------------------------------------------------------------------------------------

class WanModel(nn.Module):
    def __init__(self, dims: Dims):
        super().__init__()
        self.dims = dims
        d = dims.dim
        self.patch_embedding = nn.Conv3d(dims.latent_channels, d, kernel_size=dims.patch, stride=dims.patch)
        self.text_embedding = nn.Sequential(nn.Linear(dims.text_dim, d), nn.GELU(approximate='tanh'), nn.Linear(d, d))
        self.time_embedding = nn.Sequential(nn.Linear(dims.freq_dim, d), nn.SiLU(), nn.Linear(d, d))
        self.time_projection = nn.Sequential(nn.SiLU(), nn.Linear(d, 6 * d))
        self.blocks = nn.ModuleList([Block(dims) for _ in range(dims.layers)])
        self.head = Head(dims)
        if dims.vocab_size:
            self.text_encoder = TextEncoder(dims.vocab_size, dims.text_dim, dims.text_neighbours)
        self.init_weights()

    def init_weights(self) -> None:
        """Wan's init: xavier linears, zero biases, small embeddings, zero output head."""
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)
        nn.init.xavier_uniform_(self.patch_embedding.weight.flatten(1))
        for seq in (self.text_embedding, self.time_embedding):
            for m in seq.modules():
                if isinstance(m, nn.Linear):
                    nn.init.normal_(m.weight, std=0.02)
        nn.init.zeros_(self.head.head.weight)

    # -- text ------------------------------------------------------------------------------------

    def encode_text(self, token_ids: Sequence[int]) -> torch.Tensor:
        """Built-in encoder: [textLen, textDim], rows past the prompt zero."""
        dims = self.dims
        table = self.text_encoder.embedding.weight
        n = min(len(token_ids), dims.text_len)
        ctx = torch.zeros(dims.text_len, dims.text_dim, device=table.device, dtype=torch.float32)
        if n:
            ids = torch.tensor(list(token_ids[:n]), device=table.device, dtype=torch.long)[None]
            keep = torch.ones(1, n, 1, device=table.device)
            ctx[:n] = self.text_encoder.rows(ids, keep)[0].float() + text_positional_encoding(n, dims.text_dim).to(table.device)
        return ctx

    def encode_text_batch(self, token_ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Differentiable batch version for training: ids [B, textLen] (any value past length), lengths [B]."""
        dims = self.dims
        table = self.text_encoder.embedding.weight
        pe = text_positional_encoding(dims.text_len, dims.text_dim).to(table.device)
        keep = (torch.arange(dims.text_len, device=table.device)[None, :] < lengths[:, None]).float()[..., None]
        return self.text_encoder.rows(token_ids, keep) + pe[None] * keep

    def cross_kv(self, context: torch.Tensor) -> List[Tuple[torch.Tensor, torch.Tensor]]:
        """context [B, textLen, textDim] -> per layer (k normed, v), each [B, textLen, dim]."""
        ctx = self.text_embedding(context.to(self.text_embedding[0].weight.dtype))
        return [blk.cross_attn.kv(ctx) for blk in self.blocks]

    # -- positions -------------------------------------------------------------------------------

    def token_positions(self, frame_positions: torch.Tensor) -> torch.Tensor:
        """[F] temporal positions -> [F*T, 3] (frame, row, column) in token order."""
        gh, gw = self.dims.grid
        fp = frame_positions.to(torch.float32).reshape(-1)
        nf = fp.shape[0]
        rows = torch.arange(gh, dtype=torch.float32, device=fp.device)
        cols = torch.arange(gw, dtype=torch.float32, device=fp.device)
        f = fp[:, None, None].expand(nf, gh, gw)
        r = rows[None, :, None].expand(nf, gh, gw)
        c = cols[None, None, :].expand(nf, gh, gw)
        return torch.stack([f, r, c], dim=-1).reshape(-1, 3)

    # -- the transformer over a token sequence ---------------------------------------------------

    def embed_time(self, t: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """t [B, F] -> e [B, F, d], e0 [B, F, 6, d] (fp32)."""
        e = self.time_embedding(sinusoidal_embedding(self.dims.freq_dim, t).to(self.time_embedding[0].weight.dtype)).float()
        e0 = self.time_projection(e.to(self.time_embedding[0].weight.dtype)).float()
        return e, e0.unflatten(-1, (6, self.dims.dim))

    def patchify(self, latent: torch.Tensor) -> torch.Tensor:
        """[B, C, F, H, W] -> [B, F*T, dim], tokens ordered (frame, row, column)."""
        x = self.patch_embedding(latent.to(self.patch_embedding.weight.dtype))
        return x.flatten(2).transpose(1, 2)

    def unpatchify(self, y: torch.Tensor, frames: int) -> torch.Tensor:
        """[B, F*T, pt*ph*pw*C] (Wan order: patch offsets, then channel) -> [B, C, F, H, W]."""
        dims = self.dims
        pt, ph, pw = dims.patch
        gh, gw = dims.grid
        b = y.shape[0]
        c = dims.latent_channels
        u = y.reshape(b, frames // pt, gh, gw, pt, ph, pw, c)
        u = torch.einsum('bfhwpqrc->bcfphqwr', u)
        return u.reshape(b, c, frames, gh * ph, gw * pw)

    def run_tokens(
        self,
        x: torch.Tensor,
        e_tok: torch.Tensor,
        e0_tok: torch.Tensor,
        positions: torch.Tensor,
        cross_kv: List[Tuple[torch.Tensor, torch.Tensor]],
        cache: Optional[KVCache] = None,
        mask: Optional[torch.Tensor] = None,
        return_kv: bool = False,
        return_queries: bool = False,
    ) -> ForwardOut:
        """The blocks and the head over tokens x [B, L, d] with per-token e [B, L, d], e0 [B, L, 6, d].

        Each query attends to [cache rows ‖ these tokens] (mask, if given, is [L, rows + L])."""
        dims = self.dims
        b, l, d = x.shape
        h, hd = dims.heads, dims.head_dim
        wd = self.patch_embedding.weight.dtype  # linear inputs; the residual stream stays fp32
        x = x.float()
        cos_q, sin_q = rope_cos_sin(positions, dims)
        if cache is not None and cache.rows > 0:
            cos_c, sin_c = rope_cos_sin(cache.positions, dims)
        out = ForwardOut(flow=torch.empty(0), block_positions=positions)
        for i, blk in enumerate(self.blocks):
            m = (blk.modulation.float()[:, None] + e0_tok)  # [B, L, 6, d]
            m0, m1, m2, m3, m4, m5 = (m[:, :, j] for j in range(6))
            y = (blk.norm1(x) * (1 + m1) + m0).to(wd)
            q, k, v = blk.self_attn.project(y)
            if return_kv:
                out.block_k.append(k)
                out.block_v.append(v)
            qh = rope_apply(q.view(b, l, h, hd), cos_q, sin_q)
            kh = rope_apply(k.view(b, l, h, hd), cos_q, sin_q)
            vh = v.view(b, l, h, hd)
            if return_queries:
                out.queries.append(qh)
            if cache is not None and cache.rows > 0:
                n = cache.rows
                ck = rope_apply(cache.keys[i].to(k.dtype).view(b, n, h, hd), cos_c, sin_c)
                kh = torch.cat([ck, kh], dim=1)
                vh = torch.cat([cache.values[i].to(v.dtype).view(b, n, h, hd), vh], dim=1)
            a = blk.self_attn.o(attention(qh, kh, vh, mask).to(wd))
            x = x + a.float() * m2
            x = x + blk.cross_attn(blk.norm3(x).to(wd), cross_kv[i]).float()
            y = (blk.norm2(x) * (1 + m4) + m3).to(wd)
            x = x + blk.ffn(y).float() * m5
        hm = self.head.modulation.float()[:, None] + e_tok[:, :, None]  # [B, L, 2, d]
        y = (self.head.norm(x) * (1 + hm[:, :, 1]) + hm[:, :, 0]).to(wd)
        out.flow = self.head.head(y)
        return out

    # -- one block at one timestep (inference) ---------------------------------------------------

    def forward(
        self,
        latent: torch.Tensor,
        t: torch.Tensor,
        frame_positions: torch.Tensor,
        context: Optional[torch.Tensor] = None,
        cross_kv: Optional[List[Tuple[torch.Tensor, torch.Tensor]]] = None,
        cache: Optional[KVCache] = None,
        return_kv: bool = False,
        return_queries: bool = False,
    ) -> ForwardOut:
        """latent [B, C, F, H, W], t [B, F] (or [F]), frame_positions [F] -> ForwardOut (flow [B, C, F, H, W])."""
        dims = self.dims
        b, _, nf = latent.shape[:3]
        if cross_kv is None:
            assert context is not None, 'give context or cross_kv'
            cross_kv = self.cross_kv(context)
        t = torch.as_tensor(t, device=latent.device, dtype=torch.float32)
        if t.dim() == 1:
            t = t[None].expand(b, nf)
        fpos = torch.as_tensor(frame_positions, device=latent.device)
        x = self.patchify(latent)
        e, e0 = self.embed_time(t)
        per = dims.tokens_per_frame
        e_tok = e.repeat_interleave(per, dim=1)
        e0_tok = e0.repeat_interleave(per, dim=1)
        positions = self.token_positions(fpos)
        out = self.run_tokens(x, e_tok, e0_tok, positions, cross_kv, cache, None, return_kv, return_queries)
        out.output = self.unpatchify(out.flow, nf).float()
        out.flow = flow_of_output(out.output, latent, t, dims.prediction)
        return out

    def cache_clean_block(self, x0: torch.Tensor, frame_positions: torch.Tensor,
                          cross_kv: List[Tuple[torch.Tensor, torch.Tensor]], cache: KVCache) -> KVCache:
        """The cache with a finished block appended: x0 [B, C, F, H, W]'s keys and values from a pass at t = 0, as the
        loop writes a block once it is denoised."""
        out = self(x0, torch.zeros(x0.shape[0], x0.shape[2], device=x0.device), frame_positions, cross_kv=cross_kv,
                   cache=cache, return_kv=True)
        return cache.append(out.block_k, out.block_v, out.block_positions)

    # -- training: teacher forcing on clean previous blocks --------------------------------------

    def forward_teacher_forcing(
        self,
        clean: torch.Tensor,
        noisy: torch.Tensor,
        t_noisy: torch.Tensor,
        cross_kv: List[Tuple[torch.Tensor, torch.Tensor]],
        block_frames: int,
        frame_offset: int = 0,
    ) -> torch.Tensor:
        """One pass over the sequence [clean ‖ noisy] of a clip, [B, C, N, H, W] each.

        Block-causal mask, exactly the attention pattern of inference with a full cache: a noisy
        block attends to the clean blocks before it and to itself; a clean block (t = 0, the clean
        pass) attends to the clean blocks up to and including itself. Returns the flow of the noisy
        half, [B, C, N, H, W]."""
        dims = self.dims
        b, _, nf = clean.shape[:3]
        per = dims.tokens_per_frame
        x = torch.cat([self.patchify(clean), self.patchify(noisy)], dim=1)
        t_all = torch.cat([torch.zeros_like(t_noisy), t_noisy], dim=1)
        e, e0 = self.embed_time(t_all)
        e_tok = e.repeat_interleave(per, dim=1)
        e0_tok = e0.repeat_interleave(per, dim=1)
        fpos = torch.arange(nf, device=clean.device) + frame_offset
        pos = self.token_positions(fpos)
        positions = torch.cat([pos, pos], dim=0)
        mask = block_causal_mask(nf, per, block_frames, clean.device)
        out = self.run_tokens(x, e_tok, e0_tok, positions, cross_kv, None, mask)
        return flow_of_output(self.unpatchify(out.flow[:, nf * per:], nf).float(), noisy, t_noisy, dims.prediction)


def block_causal_mask(frames: int, tokens_per_frame: int, block_frames: int, device=None) -> torch.Tensor:
    """bool [2L, 2L] over [clean ‖ noisy], True = may attend (see forward_teacher_forcing)."""
    blk = torch.arange(frames, device=device).div(block_frames, rounding_mode='floor').repeat_interleave(tokens_per_frame)
    bq, bk = blk[:, None], blk[None, :]
    clean_clean = bk <= bq
    noisy_clean = bk < bq
    noisy_noisy = bk == bq
    clean_noisy = torch.zeros_like(clean_clean)
    top = torch.cat([clean_clean, clean_noisy], dim=1)
    bottom = torch.cat([noisy_clean, noisy_noisy], dim=1)
    return torch.cat([top, bottom], dim=0)


def score_cache(model: WanModel, queries: List[torch.Tensor], cache: KVCache, reduce: str = 'sum') -> torch.Tensor:
    """Participative-compression scores [layers, rows]: phi_j = sum_h q.k_j / (H sqrt(D)), k_j rotated.

    queries: per layer [B=1, Lq, H, D] RoPE'd queries."""
    dims = model.dims
    cos_c, sin_c = rope_cos_sin(cache.positions, dims)
    scores = []
    for i in range(dims.layers):
        k = rope_apply(cache.keys[i].view(1, cache.rows, dims.heads, dims.head_dim), cos_c, sin_c)[0].float()  # [N, H, D]
        q = queries[i][0].float()  # [Lq, H, D]
        if reduce == 'sum':
            s = torch.einsum('hd,nhd->n', q.sum(0), k)
        else:
            s = torch.einsum('qhd,nhd->qn', q, k).max(dim=0).values
        scores.append(s / (dims.heads * math.sqrt(dims.head_dim)))
    return torch.stack(scores)


# ----------------------------------------------------------------------------------------------
# Weights: the runtime's safetensors with Wan key names
# ----------------------------------------------------------------------------------------------

def load_weights(model: WanModel, path: str, missing_ok: Sequence[str] = ()) -> List[str]:
    """Loads a runtime safetensors file (canonical Wan keys); refuses a wrong shape, a key the model does not have (as
    the runtime does: e.g. neighbour tables in a file for a model built without them) or a missing key, except the keys
    in missing_ok, which keep the model's own values (e.g. zero neighbour tables added to a trained model). Returns
    the keys so kept."""
    from safetensors_io import load_file  # noqa: WPS433 (sibling module; tools/reference on sys.path)

    tensors = load_file(path)
    state = model.state_dict()
    extra = sorted(k for k in tensors if k not in state)
    if extra:
        raise KeyError(f'{path}: keys the model does not have: {", ".join(extra)} (build the model with the dims the file '
                       'was saved with, e.g. tools/train/common.dims_of_file)')
    kept = [key for key in state if key not in tensors and key in missing_ok]
    for key, ref in state.items():
        if key not in tensors and key not in missing_ok:
            raise KeyError(f'{path}: missing key {key}')
        if key in tensors and tuple(tensors[key].shape) != tuple(ref.shape):
            raise ValueError(f'{path}: {key} has shape {tuple(tensors[key].shape)}, expected {tuple(ref.shape)}')
    model.load_state_dict({k: torch.from_numpy(np.asarray(tensors[k], dtype=np.float32)) if k in tensors else state[k]
                           for k in state}, strict=True)
    return kept


def save_weights(model: WanModel, path: str, dtype: str = 'float32', metadata: Optional[Dict[str, str]] = None) -> None:
    from safetensors_io import save_file  # noqa: WPS433

    np_dtype = np.float16 if dtype == 'float16' else np.float32
    tensors = {k: v.detach().float().cpu().numpy().astype(np_dtype) for k, v in model.state_dict().items()}
    save_file(tensors, path, metadata)


# ----------------------------------------------------------------------------------------------
# The sampling loop (docs/model.md), with a sliding window of whole frames
# ----------------------------------------------------------------------------------------------

def shifted_steps(steps: Sequence[float], shift: float) -> List[float]:
    """t -> 1000 * shift*s / (1 + (shift-1)*s), s = t/1000."""
    out = []
    for t in steps:
        s = t / 1000.0
        out.append(1000.0 * shift * s / (1 + (shift - 1) * s))
    return out


def keep_last_frames(cache: KVCache, frames: int, dims: Dims) -> KVCache:
    """The sliding window of generate: only the newest `frames` frames stay in the cache."""
    keep = frames * dims.tokens_per_frame
    if cache.rows <= keep:
        return cache
    return cache.select(torch.arange(cache.rows - keep, cache.rows, device=cache.positions.device))


@torch.no_grad()
def generate(
    model: WanModel,
    context: torch.Tensor,
    blocks: int,
    block_frames: int = 3,
    steps: Sequence[float] = (1000, 750, 500, 250),
    shift: float = 5.0,
    window: int = 12,
    seed: int = 0,
) -> torch.Tensor:
    """Self-Forcing loop; the cache keeps the last window - block_frames frames. Returns [C, blocks*F, H, W]."""
    dims = model.dims
    dev = next(model.parameters()).device
    gen = torch.Generator(device='cpu').manual_seed(seed)
    xkv = model.cross_kv(context.to(dev)[None].float())
    ts = shifted_steps(steps, shift)
    cache = KVCache.empty(dims, 1, dev, next(model.parameters()).dtype)
    shape = (1, dims.latent_channels, block_frames, dims.latent_height, dims.latent_width)
    frames = []
    for bi in range(blocks):
        fpos = torch.arange(bi * block_frames, (bi + 1) * block_frames, device=dev)
        x = torch.randn(shape, generator=gen).to(dev)
        x0 = x
        for k, t in enumerate(ts):
            s = t / 1000.0
            tt = torch.full((1, block_frames), t, device=dev)
            flow = model(x, tt, fpos, cross_kv=xkv, cache=cache).flow
            x0 = x - s * flow
            if k < len(ts) - 1:
                s_next = ts[k + 1] / 1000.0
                x = (1 - s_next) * x0 + s_next * torch.randn(shape, generator=gen).to(dev)
        frames.append(x0[0])
        cache = keep_last_frames(model.cache_clean_block(x0, fpos, xkv, cache), window - block_frames, dims)
    return torch.cat(frames, dim=1)
