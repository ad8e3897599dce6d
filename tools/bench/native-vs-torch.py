#!/usr/bin/env python3
"""The native CUDA engine against PyTorch, on the GPU machine (issue 5).

  python3 tools/bench/native-vs-torch.py check   # correctness vs tools/reference/model.py (fp32, TF32 off)
  python3 tools/bench/native-vs-torch.py bench   # 1.3B shape, synthetic weights: native vs PyTorch eager bf16 + SDPA

check: one block with a filled, re-placed cache at a small size and at the 1.3B shape (relative error of
the flow, the cached keys and the participative scores; bf16 must stay under 1e-2), the fp32 mode at a small
size, and the cache operations (per-layer gathers, EMA blends, new positions) bit for bit against numpy.
bench: forward time of one 3-frame block (4680 tokens) with 3, 12 and 21 frames of keys, TFLOP/s, the same
forwards in PyTorch eager (bf16, SDPA, cached keys stored rotated, preallocated cache), the ratio; then whole
blocks (4 steps + clean pass) under a sink policy (absolute positions, window 21, sink 3), native and PyTorch,
and per-block time over many blocks. Needs native/build/libsinkstream_native.so (scripts/build-native.sh).
Writes JSON next to the table when OUT is set.
"""
from __future__ import annotations

import json
import math
import os
import queue
import statistics
import sys
import threading
import time

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), 'reference'))
sys.path.insert(0, HERE)
from model import Dims, KVCache, WanModel, rope_apply, rope_cos_sin, score_cache, sinusoidal_embedding  # noqa: E402
from native_lib import PROFILE_PHASES, NativeEngine  # noqa: E402
from native_lib import attention as native_attention  # noqa: E402
from native_lib import attention_backend  # noqa: E402

DEV = 'cuda'
RESULTS: dict = {}


def rel(a, b) -> float:
    a = torch.as_tensor(np.asarray(a), dtype=torch.float64).flatten()
    b = torch.as_tensor(np.asarray(b.detach().cpu() if torch.is_tensor(b) else b), dtype=torch.float64).flatten()
    return float((a - b).norm() / b.norm().clamp_min(1e-30))


@torch.no_grad()
def randomize(model: WanModel, seed: int, scale: float = 1.0) -> None:
    """The synthetic generator's distributions (src/model/synthetic.ts), drawn with torch."""
    g = torch.Generator(device=DEV).manual_seed(seed)
    for name, p in model.named_parameters():
        if name.endswith('modulation'):
            mean, std = 0.0, 0.02 * scale
        elif name.endswith(('norm_q.weight', 'norm_k.weight', 'norm3.weight')):
            mean, std = 1.0, 0.05
        elif name.endswith('norm3.bias'):
            mean, std = 0.0, 0.02
        elif name.endswith('.bias'):
            mean, std = 0.0, 0.02 * scale
        else:
            mean, std = 0.0, scale / math.sqrt(p[0].numel())
        p.copy_(mean + std * torch.randn(p.shape, generator=g, device=DEV, dtype=torch.float32))


def make_model(dims: Dims, seed: int) -> WanModel:
    with torch.device(DEV):
        model = WanModel(dims)
    randomize(model, seed)
    return model.eval()


def make_context(dims: Dims, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    ctx = torch.randn(dims.text_len, dims.text_dim, generator=g)
    ctx[max(1, dims.text_len * 3 // 4):] = 0  # zero padding past the prompt, as the text encoder gives
    return ctx


def bf16_round(a: np.ndarray) -> np.ndarray:
    u = np.ascontiguousarray(a, dtype=np.float32).view(np.uint32).astype(np.uint64)
    r = ((u + 0x7FFF + ((u >> 16) & 1)) & 0xFFFF0000).astype(np.uint32)
    return r.view(np.float32)


# ------------------------------------------------------------------------------------------------
# check
# ------------------------------------------------------------------------------------------------

@torch.no_grad()
def check_block(label: str, dims: Dims, precision: int, tol: float, seed: int = 1, exact_cache_ops: bool = False) -> bool:
    t0 = time.time()
    model = make_model(dims, seed)
    eng = NativeEngine(dims, 0, precision)
    eng.set_weights(model.state_dict())
    ctx = make_context(dims, seed)
    eng.set_prompt(ctx.numpy())
    xkv = model.cross_kv(ctx.to(DEV)[None])
    C, H, W, T, Fr = dims.latent_channels, dims.latent_height, dims.latent_width, dims.tokens_per_frame, 3
    g = torch.Generator().manual_seed(seed + 100)
    lat = [torch.randn(1, C, Fr, H, W, generator=g) for _ in range(3)]
    ok = True
    res = {}

    # clean pass of block 0 -> pending rows
    ref0 = model(lat[0].to(DEV), torch.zeros(1, Fr, device=DEV), torch.arange(Fr, device=DEV), cross_kv=xkv, return_kv=True)
    f0, _ = eng.forward(lat[0][0].numpy(), [0] * Fr, list(range(Fr)), keep_kv=True)
    res['clean_pass_flow'] = rel(f0, ref0.flow[0])
    # keep it, re-placed 2 frames later (a temporal re-phase of every cached key)
    rows = Fr * T
    pos = ref0.block_positions.clone().to(DEV)
    pos[:, 0] += 2
    eng.update_cache(rows, 1, False, np.arange(rows), np.ones(rows), pos.cpu().numpy())
    cache = KVCache(ref0.block_k, ref0.block_v, pos)
    kc, vc, pc = eng.read_cache()
    res['cached_keys'] = max(rel(kc[l], ref0.block_k[l][0]) for l in range(dims.layers))
    res['cached_values'] = max(rel(vc[l], ref0.block_v[l][0]) for l in range(dims.layers))
    # one block at t = 750 attending to [cache || block]
    fpos = [5, 6, 7]
    ref1 = model(lat[1].to(DEV), torch.full((1, Fr), 750.0, device=DEV), torch.tensor(fpos, device=DEV), cross_kv=xkv,
                 cache=cache, return_queries=True)
    f1, qid = eng.forward(lat[1][0].numpy(), [750.0] * Fr, fpos, keep_queries=2)
    res['flow_with_cache'] = rel(f1, ref1.flow[0])
    for reduce in ('sum', 'max'):
        got = eng.score_cache([(qid, 1, 3)], reduce)
        want = score_cache(model, [q[:, T:] for q in ref1.queries], cache, reduce)
        res[f'scores_{reduce}'] = rel(got, want)
    eng.release_queries(qid)
    for k in ('clean_pass_flow', 'cached_keys', 'cached_values', 'flow_with_cache'):
        ok &= res[k] < tol
    ok &= res['scores_sum'] < 3 * tol and res['scores_max'] < 3 * tol

    if exact_cache_ops:
        # pending rows from a clean pass, exposed by an identity gather, then per-layer gathers + EMA blends
        N = eng.cache_info()[0]
        eng.forward(lat[2][0].numpy(), [0] * Fr, [8, 9, 10], keep_kv=True)
        P = Fr * T
        eng.update_cache(N + P, 1, False, np.arange(N + P), np.ones(N + P), np.zeros((N + P, 3)))
        K, V, _ = eng.read_cache()
        Ly = dims.layers
        src = np.zeros((Ly, N, 2), np.int32)
        w = np.zeros((Ly, N, 2), np.float32)
        alpha = np.float32(0.99)
        for l in range(Ly):
            perm = np.random.default_rng(l).permutation(N)
            src[l, :, 0] = perm
            src[l, :, 1] = N + (np.arange(N) * 7 + l) % P
            w[l, :, 0], w[l, :, 1] = alpha, np.float32(1) - alpha
        # per-layer tables; the same new positions in every layer so the reference can attend to the result
        newpos = np.broadcast_to(np.random.default_rng(7).integers(0, 40, size=(N, 3)).astype(np.float32), (Ly, N, 3)).copy()
        eng.update_cache(N, 2, True, src, w, newpos)
        K2, V2, P2 = eng.read_cache()
        exact = True
        for l in range(Ly):
            for A, A2 in ((K, K2), (V, V2)):
                a0 = (w[l, :, 0:1] * A[l][src[l, :, 0]]).astype(np.float32)
                a1 = (w[l, :, 1:2] * A[l][src[l, :, 1]]).astype(np.float32)
                want = bf16_round((np.float32(0) + a0).astype(np.float32) + a1) if precision == 0 else (a0 + a1)
                exact &= bool(np.array_equal(A2[l], want))
            exact &= bool(np.array_equal(P2[l], newpos[l]))
        res['cache_ops_exact'] = exact
        ok &= exact
        # a forward over the blended, re-positioned cache against the reference on the same cache
        cache2 = KVCache([torch.from_numpy(K2[l])[None].to(DEV) for l in range(Ly)],
                         [torch.from_numpy(V2[l])[None].to(DEV) for l in range(Ly)], torch.from_numpy(P2[0]).to(DEV))
        if all(np.array_equal(P2[l], P2[0]) for l in range(Ly)):
            ref2 = model(lat[2].to(DEV), torch.full((1, Fr), 500.0, device=DEV), torch.tensor([41, 42, 43], device=DEV),
                         cross_kv=xkv, cache=cache2)
            f2, _ = eng.forward(lat[2][0].numpy(), [500.0] * Fr, [41, 42, 43])
            res['flow_after_blend'] = rel(f2, ref2.flow[0])
            ok &= res['flow_after_blend'] < tol
    eng.close()
    del model
    torch.cuda.empty_cache()
    res['ok'] = bool(ok)
    res['seconds'] = round(time.time() - t0, 1)
    RESULTS[label] = res
    print(f'[check] {label}: ' + ', '.join(f'{k} {v:.2e}' if isinstance(v, float) else f'{k} {v}' for k, v in res.items()), flush=True)
    return ok


def small_dims(**kw) -> Dims:
    base = dict(dim=256, layers=3, heads=2, ffn_dim=512, latent_channels=16, text_dim=64, text_len=32,
                latent_height=8, latent_width=12)
    base.update(kw)
    return Dims(**base)


def wan13b_dims(layers: int = 30) -> Dims:
    return Dims(dim=1536, layers=layers, heads=12, ffn_dim=8960, freq_dim=256, latent_channels=16, text_dim=4096,
                text_len=512, latent_height=60, latent_width=104)


def run_check() -> bool:
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    ok = True
    ok &= check_block('small hd128 bf16', small_dims(), 0, 1e-2, exact_cache_ops=True)
    ok &= check_block('small hd64 bf16', small_dims(dim=128, heads=2, latent_channels=8), 0, 1e-2)
    ok &= check_block('small hd16 fp32', small_dims(dim=32, heads=2, ffn_dim=64), 1, 1e-4, exact_cache_ops=True)
    ok &= check_block('small hd128 fp32', small_dims(), 1, 1e-4)
    ok &= check_block('1.3B shape bf16', wan13b_dims(), 0, 1e-2)
    print(f'[check] {"PASS" if ok else "FAIL"}', flush=True)
    return ok


# ------------------------------------------------------------------------------------------------
# PyTorch eager baseline (bf16, SDPA): Wan's math with the cached keys stored rotated (Self-Forcing's
# layout) in preallocated buffers, norms and the residual stream in fp32.
# ------------------------------------------------------------------------------------------------

class TorchEager:
    def __init__(self, model: WanModel, ctx: torch.Tensor, cap_rows: int):
        self.dims = dims = model.dims
        sd = model.state_dict()
        keep32 = ('modulation', 'time_embedding', 'time_projection', 'norm3')
        self.W = {k: (v if any(s in k for s in keep32) else v.to(torch.bfloat16)) for k, v in sd.items()}
        hd = dims.head_dim
        self.k = [torch.empty(1, cap_rows, dims.heads, hd, device=DEV, dtype=torch.bfloat16) for _ in range(dims.layers)]
        self.v = [torch.empty_like(self.k[0]) for _ in range(dims.layers)]
        self.rows = 0
        with torch.no_grad():
            W = self.W
            c = F.linear(F.gelu(F.linear(ctx.to(DEV, torch.bfloat16)[None], W['text_embedding.0.weight'], W['text_embedding.0.bias']),
                                approximate='tanh'), W['text_embedding.2.weight'], W['text_embedding.2.bias'])
            self.ckv = []
            for i in range(dims.layers):
                p = f'blocks.{i}.cross_attn.'
                k = self.rms(F.linear(c, W[p + 'k.weight'], W[p + 'k.bias']), W[p + 'norm_k.weight'])
                v = F.linear(c, W[p + 'v.weight'], W[p + 'v.bias'])
                sh = (1, -1, dims.heads, hd)
                self.ckv.append((k.view(sh).transpose(1, 2), v.view(sh).transpose(1, 2)))

    def rms(self, x, w):
        xf = x.float()
        return (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.dims.eps)).type_as(x) * w

    @torch.no_grad()
    def forward(self, lat: torch.Tensor, t: float, fpos, positions: torch.Tensor) -> torch.Tensor:
        """lat [1, C, F, H, W] on the GPU; writes this block's rotated K/V at rows [rows, rows + L)."""
        dims, W = self.dims, self.W
        d, H, hd, eps = dims.dim, dims.heads, dims.head_dim, dims.eps
        Fr = lat.shape[2]
        T = dims.tokens_per_frame
        L = Fr * T
        x = F.conv3d(lat.to(torch.bfloat16), W['patch_embedding.weight'], W['patch_embedding.bias'], stride=dims.patch)
        x = x.flatten(2).transpose(1, 2).float()
        tt = torch.full((1, Fr), float(t), device=DEV)
        e = F.linear(F.silu(F.linear(sinusoidal_embedding(dims.freq_dim, tt), W['time_embedding.0.weight'], W['time_embedding.0.bias'])),
                     W['time_embedding.2.weight'], W['time_embedding.2.bias'])
        e0 = F.linear(F.silu(e), W['time_projection.1.weight'], W['time_projection.1.bias']).unflatten(-1, (6, d))
        e_tok = e.repeat_interleave(T, dim=1)
        e0_tok = e0.repeat_interleave(T, dim=1)
        cos, sin = rope_cos_sin(positions, dims)
        r0, r1 = self.rows, self.rows + L
        for i in range(dims.layers):
            p = f'blocks.{i}.'
            m = W[p + 'modulation'][:, None] + e0_tok
            y = (F.layer_norm(x, (d,), eps=eps) * (1 + m[:, :, 1]) + m[:, :, 0]).to(torch.bfloat16)
            q = self.rms(F.linear(y, W[p + 'self_attn.q.weight'], W[p + 'self_attn.q.bias']), W[p + 'self_attn.norm_q.weight'])
            k = self.rms(F.linear(y, W[p + 'self_attn.k.weight'], W[p + 'self_attn.k.bias']), W[p + 'self_attn.norm_k.weight'])
            v = F.linear(y, W[p + 'self_attn.v.weight'], W[p + 'self_attn.v.bias'])
            q = rope_apply(q.view(1, L, H, hd), cos, sin)
            self.k[i][:, r0:r1] = rope_apply(k.view(1, L, H, hd), cos, sin)
            self.v[i][:, r0:r1] = v.view(1, L, H, hd)
            o = F.scaled_dot_product_attention(q.transpose(1, 2), self.k[i][:, :r1].transpose(1, 2), self.v[i][:, :r1].transpose(1, 2))
            x = x + F.linear(o.transpose(1, 2).reshape(1, L, d), W[p + 'self_attn.o.weight'], W[p + 'self_attn.o.bias']).float() * m[:, :, 2]
            y = F.layer_norm(x, (d,), W[p + 'norm3.weight'], W[p + 'norm3.bias'], eps).to(torch.bfloat16)
            qc = self.rms(F.linear(y, W[p + 'cross_attn.q.weight'], W[p + 'cross_attn.q.bias']), W[p + 'cross_attn.norm_q.weight'])
            ck, cv = self.ckv[i]
            o = F.scaled_dot_product_attention(qc.view(1, L, H, hd).transpose(1, 2), ck, cv)
            x = x + F.linear(o.transpose(1, 2).reshape(1, L, d), W[p + 'cross_attn.o.weight'], W[p + 'cross_attn.o.bias']).float()
            y = (F.layer_norm(x, (d,), eps=eps) * (1 + m[:, :, 4]) + m[:, :, 3]).to(torch.bfloat16)
            h = F.gelu(F.linear(y, W[p + 'ffn.0.weight'], W[p + 'ffn.0.bias']), approximate='tanh')
            x = x + F.linear(h, W[p + 'ffn.2.weight'], W[p + 'ffn.2.bias']).float() * m[:, :, 5]
        hm = W['head.modulation'][:, None] + e_tok[:, :, None]
        y = (F.layer_norm(x, (d,), eps=eps) * (1 + hm[:, :, 1]) + hm[:, :, 0]).to(torch.bfloat16)
        out = F.linear(y, W['head.head.weight'], W['head.head.bias']).float()
        pt, ph, pw = dims.patch
        gh, gw = dims.grid
        u = out.reshape(1, Fr // pt, gh, gw, pt, ph, pw, dims.latent_channels)
        return torch.einsum('bfhwpqrc->bcfphqwr', u).reshape(1, dims.latent_channels, Fr, gh * ph, gw * pw)

    def keep(self, index: torch.Tensor) -> None:
        """Cache rows := rows `index` of [cache || the last forward's block]."""
        n = index.numel()
        for i in range(self.dims.layers):
            self.k[i][:, :n] = self.k[i][:, index]
            self.v[i][:, :n] = self.v[i][:, index]
        self.rows = n


# ------------------------------------------------------------------------------------------------
# bench
# ------------------------------------------------------------------------------------------------

def forward_flops(dims: Dims, L: int, Lk: int) -> float:
    d = dims.dim
    per_layer = 2 * L * d * 6 * d + 4 * L * d * dims.ffn_dim + 4 * L * Lk * d + 4 * L * dims.text_len * d
    return dims.layers * per_layer + 4 * L * dims.patch_features * d


def token_positions(dims: Dims, fpos) -> np.ndarray:
    gh, gw = dims.grid
    f, r, c = np.meshgrid(np.asarray(fpos, np.float32), np.arange(gh, dtype=np.float32), np.arange(gw, dtype=np.float32), indexing='ij')
    return np.stack([f, r, c], -1).reshape(-1, 3)


def fill_cache(dims: Dims, engines, latent: np.ndarray, blocks: int, frames: int = 3) -> None:
    """Clean passes of `blocks` earlier blocks, each kept whole at absolute positions, into every engine's cache
    (what the forward timings start from). engines: NativeEngine-like (forward(latent, t, fpos, keep_kv), update_cache)."""
    T = dims.tokens_per_frame
    for b in range(blocks):
        fpos = list(range(b * frames, (b + 1) * frames))
        n = (b + 1) * frames * T
        for e in engines:
            e.forward(latent, [0.0] * frames, fpos, keep_kv=True)
            e.update_cache(n, 1, False, np.arange(n), np.ones(n), token_positions(dims, range((b + 1) * frames)))


def timed(fn, reps: int, warmup: int = 2) -> list:
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    out = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        out.append((time.perf_counter() - t0) * 1e3)
    return out


def shifted(steps, shift=5.0):
    return [1000.0 * shift * (t / 1000) / (1 + (shift - 1) * (t / 1000)) for t in steps]


VARIANTS = {4: '4 warps x 16 rows', 8: '8 warps x 16 rows', 2: '4 warps x 32 rows, 64-key tiles', 3: '4 warps x 32 rows, 32-key tiles',
            9: 'cuDNN fused attention', 10: 'cuDNN FP8 attention with quantisation', 11: 'cuDNN FP8 attention alone'}
CUDNN_VARIANTS = (9, 10, 11)


@torch.no_grad()
def run_attention_bench() -> int:
    """The attention kernel alone at the 1.3B shape (12 heads x 128, 4680 queries): each variant's time and its
    error against PyTorch SDPA (fp32 math on the same bf16 inputs), and SDPA's own time. Returns the variant
    fastest at 21 frames among the correct ones."""
    L, H, D = 4680, 12, 128
    rows = []
    for key_frames in (3, 12, 21):
        lk = key_frames * 1560
        fl = 4 * L * lk * H * D
        q = torch.randn(L, H, D, device=DEV, dtype=torch.bfloat16)
        k = torch.randn(lk, H, D, device=DEV, dtype=torch.bfloat16)
        v = torch.randn_like(k)
        qt, kt, vt = (t.transpose(0, 1)[None] for t in (q, k, v))
        ts = timed(lambda: F.scaled_dot_product_attention(qt, kt, vt), 10)
        ref = F.scaled_dot_product_attention(qt.float(), kt.float(), vt.float())[0].transpose(0, 1)
        row = dict(keys=lk, sdpa_ms=statistics.median(ts), sdpa_tflops=fl / statistics.median(ts) / 1e9)
        for var in VARIANTS:
            o = torch.full_like(q, float('nan'))
            try:
                ms = native_attention(q, k, v, o, var, 10)
            except RuntimeError as ex:  # cuDNN missing or without a plan: reported, the kernels still compared
                print(f'[attention] variant {var} ({VARIANTS[var]}) failed: {ex}', flush=True)
                ms = float('nan')
            row[f'v{var}_ms'] = ms
            row[f'v{var}_tflops'] = fl / ms / 1e9
            row[f'v{var}_err'] = rel(o.float().cpu(), ref)
        rows.append(row)
        print('[attention] ' + ', '.join(f'{k2} {v2:.3g}' for k2, v2 in row.items()), flush=True)
    RESULTS['attention'] = rows
    last = rows[-1]
    print(f'[attention] the engine uses: {attention_backend()}', flush=True)
    good = [v for v in VARIANTS if v not in CUDNN_VARIANTS and last[f'v{v}_err'] < 1e-2]
    best = min(good, key=lambda v: last[f'v{v}_ms']) if good else 4
    print(f'[attention] fastest correct own kernel at 21 frames: {best} ({VARIANTS[best]})', flush=True)
    return best


@torch.no_grad()
def run_bench(blocks_native: int, blocks_torch: int, reps: int) -> None:
    dims = wan13b_dims()
    T, C, H, W, Fr = dims.tokens_per_frame, dims.latent_channels, dims.latent_height, dims.latent_width, 3
    L = Fr * T
    dev_name = torch.cuda.get_device_name(0)
    print(f'[bench] device {dev_name}; 1.3B shape, synthetic weights, block {Fr} frames = {L} tokens', flush=True)
    model = make_model(dims, 3)
    ctx = make_context(dims, 3)
    eng = NativeEngine(dims, 0, 0)
    eng.set_weights(model.state_dict())
    eng.set_prompt(ctx.numpy())
    # the same engine with its own attention kernel instead of cuDNN's, for the before/after in one run
    saved = os.environ.get('SSN_ATTENTION')
    os.environ['SSN_ATTENTION'] = 'kernel'
    eng_k = NativeEngine(dims, 0, 0)
    if saved is None:
        del os.environ['SSN_ATTENTION']
    else:
        os.environ['SSN_ATTENTION'] = saved
    eng_k.set_weights(model.state_dict())
    eng_k.set_prompt(ctx.numpy())
    print(f'[bench] attention: {attention_backend()}', flush=True)
    te = TorchEager(model, ctx, 21 * T)
    del model
    torch.cuda.empty_cache()
    g = torch.Generator().manual_seed(9)
    lat = torch.randn(1, C, Fr, H, W, generator=g)
    lat_np, lat_dev = lat[0].numpy(), lat.to(DEV)

    rows_table = []
    same_input_diff = None
    for key_frames in (3, 12, 21):
        cache_frames = key_frames - Fr
        # fill both caches with clean passes of earlier blocks (absolute positions)
        eng.reset_cache()
        eng_k.reset_cache()
        fill_cache(dims, (eng, eng_k), lat_np, cache_frames // Fr, Fr)
        te.rows = 0
        for b in range(cache_frames // Fr):
            fpos = list(range(b * Fr, (b + 1) * Fr))
            te.forward(lat_dev, 0.0, fpos, torch.from_numpy(token_positions(dims, fpos)).to(DEV))
            te.rows += L
        fpos = list(range(cache_frames, cache_frames + Fr))
        pos_dev = torch.from_numpy(token_positions(dims, fpos)).to(DEV)
        tn = timed(lambda: eng.forward(lat_np, [937.5] * Fr, fpos), reps)
        tk = timed(lambda: eng_k.forward(lat_np, [937.5] * Fr, fpos), reps)
        tt = timed(lambda: te.forward(lat_dev, 937.5, fpos, pos_dev), reps)
        if key_frames == 21:
            fn_, _ = eng.forward(lat_np, [937.5] * Fr, fpos)
            same_input_diff = rel(fn_, te.forward(lat_dev, 937.5, fpos, pos_dev)[0])
            fk_, _ = eng_k.forward(lat_np, [937.5] * Fr, fpos)
            kernel_vs_cudnn = rel(fk_, torch.from_numpy(fn_))
            eng.profile(True)
            for _ in range(3):
                eng.forward(lat_np, [937.5] * Fr, fpos)
            prof = eng.profile_read() / 3
            eng.profile(False)
        fl = forward_flops(dims, L, key_frames * T)
        mn, mt, mk = statistics.median(tn), statistics.median(tt), statistics.median(tk)
        rows_table.append(dict(key_frames=key_frames, keys=key_frames * T, tflop=fl / 1e12, native_ms=mn, torch_ms=mt,
                               native_own_kernel_ms=mk,
                               native_tflops=fl / mn / 1e9, torch_tflops=fl / mt / 1e9, speedup=mt / mn,
                               native_spread=[min(tn), max(tn)], torch_spread=[min(tt), max(tt)]))
        print(f'[bench] {key_frames} frames of keys: native {mn:.1f} ms (own attention kernel {mk:.1f}), torch {mt:.1f} ms',
              flush=True)
    eng_k.close()

    # whole blocks: 4 steps + clean pass, sink policy (absolute positions), window 21, sink 3
    steps = shifted([1000, 750, 500, 250])
    sink, window = 3 * T, 21 * T

    def plan(rows_now: int) -> np.ndarray:
        total = rows_now + L
        keep_max = window - L
        if total <= keep_max:
            return np.arange(total)
        return np.concatenate([np.arange(sink), np.arange(total - (keep_max - sink), total)])

    split = {'forwards': [], 'update': []}

    def native_blocks(n: int) -> list:
        """The host draws the noise ahead, on a thread, while the engine computes (the engine call lets go of the
        GIL), as an asynchronous runtime loop can; PyTorch draws it on the GPU, also off the critical path."""
        eng.reset_cache()
        pos_host = np.zeros((0, 3), np.float32)
        noise: queue.Queue = queue.Queue(maxsize=4)

        def draw() -> None:
            rng = np.random.default_rng(1)
            for _ in range(n * len(steps)):
                noise.put(rng.standard_normal(lat_np.shape, dtype=np.float32))

        threading.Thread(target=draw, daemon=True).start()
        times = []
        for b in range(n):
            t0 = time.perf_counter()
            fwd = 0.0
            fpos = list(range(b * Fr, (b + 1) * Fr))
            x = noise.get()
            for k, t in enumerate(steps):
                f0 = time.perf_counter()
                flow, _ = eng.forward(x, [t] * Fr, fpos)
                fwd += time.perf_counter() - f0
                x0 = x - (t / 1000) * flow
                if k + 1 < len(steps):
                    s = steps[k + 1] / 1000
                    x = (1 - s) * x0 + s * noise.get()
            f0 = time.perf_counter()
            eng.forward(x0, [0.0] * Fr, fpos, keep_kv=True)
            fwd += time.perf_counter() - f0
            idx = plan(pos_host.shape[0])
            pos_host = np.concatenate([pos_host, token_positions(dims, fpos)])[idx]
            u0 = time.perf_counter()
            eng.update_cache(idx.size, 1, False, idx, np.ones(idx.size), pos_host)
            split['update'].append((time.perf_counter() - u0) * 1e3)
            split['forwards'].append(fwd * 1e3)
            times.append((time.perf_counter() - t0) * 1e3)
        return times

    def torch_blocks(n: int) -> list:
        te.rows = 0
        pos_host = np.zeros((0, 3), np.float32)
        gen = torch.Generator(device=DEV).manual_seed(1)
        times = []
        for b in range(n):
            torch.cuda.synchronize()
            t0 = time.perf_counter()
            fpos = list(range(b * Fr, (b + 1) * Fr))
            pos_dev = torch.from_numpy(token_positions(dims, fpos)).to(DEV)
            x = torch.randn(lat_dev.shape, generator=gen, device=DEV)
            for k, t in enumerate(steps):
                flow = te.forward(x, t, fpos, pos_dev)
                x0 = x - (t / 1000) * flow
                if k + 1 < len(steps):
                    s = steps[k + 1] / 1000
                    x = (1 - s) * x0 + s * torch.randn(x.shape, generator=gen, device=DEV)
            te.forward(x0, 0.0, fpos, pos_dev)
            idx = plan(pos_host.shape[0])
            pos_host = np.concatenate([pos_host, token_positions(dims, fpos)])[idx]
            te.keep(torch.from_numpy(idx).to(DEV))
            torch.cuda.synchronize()
            times.append((time.perf_counter() - t0) * 1e3)
        return times

    # the window is full (18 cached frames + the block = 21) from block 6 on: steady state from block 7
    full = 7
    blocks_native, blocks_torch = max(blocks_native, full + 3), max(blocks_torch, full + 3)
    nb = native_blocks(blocks_native)
    tb = torch_blocks(blocks_torch)
    steady_n = statistics.median(nb[full:])
    steady_t = statistics.median(tb[full:])
    k = max(3, (len(nb) - full) // 10)
    early, late = statistics.mean(nb[full:full + k]), statistics.mean(nb[-k:])

    print()
    print(f'device: {dev_name}')
    print(f'attention: {attention_backend()}')
    print('| keys (frames) | TFLOP | native ms | native TFLOP/s | PyTorch eager ms | PyTorch TFLOP/s | speed-up | '
          'native, own attention kernel, ms |')
    print('| --- | --- | --- | --- | --- | --- | --- | --- |')
    for r in rows_table:
        print(f"| {r['keys']} ({r['key_frames']}) | {r['tflop']:.1f} | {r['native_ms']:.1f} | {r['native_tflops']:.0f} | "
              f"{r['torch_ms']:.1f} | {r['torch_tflops']:.0f} | {r['speedup']:.2f}x | {r['native_own_kernel_ms']:.1f} |")
    print(f'native with cuDNN attention vs with its own kernel, same input at 21 frames: relative difference {kernel_vs_cudnn:.2e}')
    plans, plan_ms = eng.attention_plans()
    print(f'cuDNN attention plans built by the engine: {plans}, {plan_ms:.0f} ms in all (once per new shape)')
    print(f'native vs PyTorch eager, same input at 21 frames: relative difference {same_input_diff:.2e} (both bf16)')
    print('native phases at 21 frames (ms per forward): ' + ', '.join(f'{n} {v:.1f}' for n, v in zip(PROFILE_PHASES, prof)))
    print(f'whole block (4 steps + clean pass, sink policy window 21 sink 3): native {steady_n:.0f} ms '
          f'({blocks_native} blocks), PyTorch eager {steady_t:.0f} ms ({blocks_torch} blocks): {steady_t / steady_n:.2f}x; '
          f'DiT-only {3 * 4 * 1000 / steady_n:.1f} video frames/s native')
    fw, up = statistics.median(split['forwards'][full:]), statistics.median(split['update'][full:])
    print(f'native block split (median from block {full + 1}): 5 forwards {fw:.1f} ms, cache update {up:.1f} ms, '
          f'host (Euler steps, noise hand-over, plan) {steady_n - fw - up:.1f} ms')
    print(f'native per-block time, blocks {full + 1}-{full + k} vs last {k} of {len(nb)}: {early:.1f} ms vs {late:.1f} ms '
          f'({(late / early - 1) * 100:+.1f}%); steady state = median from block {full + 1} (window full)')
    RESULTS['bench'] = dict(device=dev_name, attention=attention_backend(), forwards=rows_table,
                            same_input_diff=same_input_diff, kernel_vs_cudnn=kernel_vs_cudnn,
                            attention_plans=dict(count=plans, ms=plan_ms),
                            native_phases_ms=dict(zip(PROFILE_PHASES, prof.tolist())), block_native_ms=nb, block_torch_ms=tb,
                            block_native_split_ms=split)
    eng.close()


def main() -> None:
    mode = sys.argv[1] if len(sys.argv) > 1 else 'check'
    ok = True
    if mode in ('check', 'all'):
        ok = run_check()
    if mode in ('bench', 'all', 'attention'):
        best = run_attention_bench()
        if 'SSN_ATTENTION_VARIANT' not in os.environ:
            os.environ['SSN_ATTENTION_VARIANT'] = str(best)  # read by the engine at every attention call
    if mode in ('bench', 'all'):
        run_bench(int(os.environ.get('BLOCKS_NATIVE', '60')), int(os.environ.get('BLOCKS_TORCH', '14')),
                  int(os.environ.get('REPS', '10')))
    out = os.environ.get('OUT')
    if out:
        with open(os.path.join(out, f'native-vs-torch-{mode}.json'), 'w') as f:
            json.dump(RESULTS, f, indent=1, default=float)
    sys.exit(0 if ok else 1)


if __name__ == '__main__':
    main()
