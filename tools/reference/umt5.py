"""The umT5 encoder of Wan2.1 (`models_t5_umt5-xxl-enc-bf16.pth`) in plain PyTorch: the numerical
reference for the ONNX graph the runtime builds (src/text/umt5-graph.ts).

Architecture (T5 v1.1 encoder, umT5 flavour): token embedding; per layer
  x = x + Attn(RMS(x) * norm1)     no 1/sqrt(head_dim) scaling; each layer its own relative
                                   position bias (32 buckets, bidirectional, max distance 128)
  x = x + FFN(RMS(x) * norm2)      fc2(fc1(h) * gelu_tanh(gate(h))), no biases anywhere
then a final RMS norm. RMS(x) = x / sqrt(mean(x^2) + 1e-6), computed in float32.
Parameter names are the checkpoint's: token_embedding.weight, blocks.N.norm1.weight,
blocks.N.attn.{q,k,v,o}.weight, blocks.N.norm2.weight, blocks.N.ffn.gate.0.weight,
blocks.N.ffn.fc1.weight, blocks.N.ffn.fc2.weight, blocks.N.pos_embedding.embedding.weight, norm.weight.

Wan's context for a prompt: ids = tokenizer(prompt) + </s> (mask 1), padded to text_len with 0;
context = encoder(ids, mask)[:seq_len], then zero rows up to text_len (WanModel pads with zeros).
Rows of real tokens never see padded keys (their scores are masked), so running the encoder on the
real tokens alone gives the same rows: `context()` does that.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Dict, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class Umt5Arch:
    dim: int = 4096
    layers: int = 24
    heads: int = 64
    ffn_dim: int = 10240
    vocab: int = 256384
    buckets: int = 32
    max_distance: int = 128
    eps: float = 1e-6

    @staticmethod
    def from_dict(d: Dict) -> 'Umt5Arch':
        names = {'ffnDim': 'ffn_dim', 'maxDistance': 'max_distance'}
        return Umt5Arch(**{names.get(k, k): v for k, v in d.items()})


def relative_buckets(length: int, buckets: int = 32, max_distance: int = 128) -> torch.Tensor:
    """[length, length] bucket of key j for query i (bidirectional), as Wan's T5RelativeEmbedding."""
    rel = torch.arange(length).unsqueeze(0) - torch.arange(length).unsqueeze(1)
    half = buckets // 2
    out = (rel > 0).long() * half
    rel = rel.abs()
    exact = half // 2
    large = exact + (torch.log(rel.float() / exact) / math.log(max_distance / exact) * (half - exact)).long()
    large = torch.clamp(large, max=half - 1)
    return out + torch.where(rel < exact, rel, large)


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x * torch.rsqrt(x.float().pow(2).mean(dim=-1, keepdim=True) + self.eps)
        if self.weight.dtype in (torch.float16, torch.bfloat16):
            y = y.type_as(self.weight)
        return self.weight * y


class Attention(nn.Module):
    def __init__(self, a: Umt5Arch):
        super().__init__()
        self.heads = a.heads
        self.q = nn.Linear(a.dim, a.dim, bias=False)
        self.k = nn.Linear(a.dim, a.dim, bias=False)
        self.v = nn.Linear(a.dim, a.dim, bias=False)
        self.o = nn.Linear(a.dim, a.dim, bias=False)

    def forward(self, x: torch.Tensor, bias: torch.Tensor, mask: Optional[torch.Tensor]) -> torch.Tensor:
        b, n = x.size(0), self.heads
        q = self.q(x).view(b, -1, n, x.size(-1) // n)
        k = self.k(x).view(b, -1, n, x.size(-1) // n)
        v = self.v(x).view(b, -1, n, x.size(-1) // n)
        scores = torch.einsum('binc,bjnc->bnij', q, k) + bias
        if mask is not None:
            scores = scores.masked_fill(mask.view(b, 1, 1, -1) == 0, torch.finfo(scores.dtype).min)
        p = F.softmax(scores.float(), dim=-1).type_as(scores)
        return self.o(torch.einsum('bnij,bjnc->binc', p, v).reshape(b, -1, x.size(-1)))


class GeluTanh(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))


class FeedForward(nn.Module):
    def __init__(self, a: Umt5Arch):
        super().__init__()
        self.gate = nn.Sequential(nn.Linear(a.dim, a.ffn_dim, bias=False), GeluTanh())
        self.fc1 = nn.Linear(a.dim, a.ffn_dim, bias=False)
        self.fc2 = nn.Linear(a.ffn_dim, a.dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.fc1(x) * self.gate(x))


class RelativeBias(nn.Module):
    def __init__(self, a: Umt5Arch):
        super().__init__()
        self.a = a
        self.embedding = nn.Embedding(a.buckets, a.heads)

    def forward(self, length: int) -> torch.Tensor:
        idx = relative_buckets(length, self.a.buckets, self.a.max_distance).to(self.embedding.weight.device)
        return self.embedding(idx).permute(2, 0, 1).unsqueeze(0)  # [1, heads, L, L]


class Block(nn.Module):
    def __init__(self, a: Umt5Arch):
        super().__init__()
        self.norm1 = RMSNorm(a.dim, a.eps)
        self.attn = Attention(a)
        self.norm2 = RMSNorm(a.dim, a.eps)
        self.ffn = FeedForward(a)
        self.pos_embedding = RelativeBias(a)

    def forward(self, x: torch.Tensor, mask: Optional[torch.Tensor]) -> torch.Tensor:
        x = x + self.attn(self.norm1(x), self.pos_embedding(x.size(1)).to(x.dtype), mask)
        return x + self.ffn(self.norm2(x))


class Umt5Encoder(nn.Module):
    def __init__(self, a: Umt5Arch):
        super().__init__()
        self.arch = a
        self.token_embedding = nn.Embedding(a.vocab, a.dim)
        self.blocks = nn.ModuleList([Block(a) for _ in range(a.layers)])
        self.norm = RMSNorm(a.dim, a.eps)

    def forward(self, ids: torch.Tensor, mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        x = self.token_embedding(ids)
        for block in self.blocks:
            x = block(x, mask)
        return self.norm(x)

    @torch.no_grad()
    def context(self, ids: torch.Tensor, text_len: int) -> torch.Tensor:
        """Wan's context of one prompt's ids (EOS included): [text_len, dim], rows past the ids zero."""
        x = self.forward(ids.view(1, -1))[0]
        out = x.new_zeros(text_len, x.size(-1))
        out[: x.size(0)] = x
        return out


def _splitmix32(state: int):
    nxt = (state + 0x9E3779B9) & 0xFFFFFFFF
    z = nxt
    z = ((z ^ (z >> 16)) * 0x85EBCA6B) & 0xFFFFFFFF
    z = ((z ^ (z >> 13)) * 0xC2B2AE35) & 0xFFFFFFFF
    return (z ^ (z >> 16)) & 0xFFFFFFFF, nxt


def _fnv1a32(text: str) -> int:
    h = 0x811C9DC5
    for ch in text:
        h ^= ord(ch) & 0xFF
        h = (h * 0x01000193) & 0xFFFFFFFF
    return h


def _fill_normal(count: int, stream_seed: int, mean: float, std: float) -> torch.Tensor:
    """src/model/synthetic.ts fillNormal: xoshiro128** bytes summed to a bell (exact, slow: small shapes)."""
    state, words = stream_seed & 0xFFFFFFFF, []
    for _ in range(4):
        z, state = _splitmix32(state)
        words.append(z)
    s0, s1, s2, s3 = words
    if (s0 | s1 | s2 | s3) == 0:
        s0 = 1
    k = std / math.sqrt(4 * (256 * 256 - 1) / 12)
    c = mean - k * 510
    out = [0.0] * count
    M = 0xFFFFFFFF
    for i in range(count):
        t = (s1 * 5) & M
        r = ((((t << 7) | (t >> 25)) & M) * 9) & M
        t = (s1 << 9) & M
        s2 ^= s0
        s3 ^= s1
        s1 ^= s2
        s0 ^= s3
        s2 ^= t
        s3 = ((s3 << 11) | (s3 >> 21)) & M
        out[i] = c + k * ((r & 0xFF) + ((r >> 8) & 0xFF) + ((r >> 16) & 0xFF) + (r >> 24))
    return torch.tensor(out, dtype=torch.float64).float()


def synthetic_distribution(key: str, shape, a: Umt5Arch):
    """(mean, std) of a synthetic tensor, as src/text/umt5-weights.ts."""
    head_dim = a.dim // a.heads
    if key == 'token_embedding.weight':
        return 0.0, 1.0
    if key.endswith('norm1.weight') or key.endswith('norm2.weight') or key == 'norm.weight':
        return 1.0, 0.05
    if key.endswith('pos_embedding.embedding.weight'):
        return 0.0, 0.5
    if key.endswith('attn.q.weight') or key.endswith('attn.k.weight'):
        return 0.0, 1.0 / math.sqrt(a.dim) / head_dim ** 0.25
    return 0.0, 1.0 / math.sqrt(shape[1])


def synthetic_state_dict(a: Umt5Arch, seed: int) -> Dict[str, torch.Tensor]:
    model = Umt5Encoder(a)
    out = {}
    for key, p in model.state_dict().items():
        mean, std = synthetic_distribution(key, list(p.shape), a)
        out[key] = _fill_normal(p.numel(), (_fnv1a32(key) ^ seed) & 0xFFFFFFFF, mean, std).view(p.shape)
    return out
