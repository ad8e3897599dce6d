"""Self-checks of the reference model (CPU, seconds): python3 tools/reference/test_model.py

1. block-by-block inference with a KV cache == the teacher-forcing pass over [clean ‖ noisy]
   (the training forward is exactly the inference computation);
2. RoPE is relative: shifting every temporal position (queries and cache) leaves the flow unchanged;
3. re-placing a cached frame = changing its positions only (keys are stored un-rotated);
4. safetensors save/load round trip with Wan key names.
"""
import os
import sys
import tempfile

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from model import Dims, KVCache, WanModel, load_weights, save_weights  # noqa: E402


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm().clamp_min(1e-30))


def make_model(seed: int = 0) -> WanModel:
    torch.manual_seed(seed)
    dims = Dims(dim=64, layers=2, heads=2, ffn_dim=128, latent_channels=12, text_dim=16, text_len=6,
                latent_height=8, latent_width=8, vocab_size=10)
    m = WanModel(dims).double().float()
    # the zero-initialised head would make every check trivially pass
    torch.nn.init.normal_(m.head.head.weight, std=0.1)
    return m.eval()


def test_cache_equals_teacher_forcing() -> None:
    m = make_model()
    d = m.dims
    bf, nblk = 2, 3
    nf = bf * nblk
    clean = torch.randn(1, d.latent_channels, nf, d.latent_height, d.latent_width)
    noisy = torch.randn_like(clean)
    t = torch.tensor([[900.0] * bf + [500.0] * bf + [250.0] * bf])
    ctx = m.encode_text([1, 2, 3])[None]
    xkv = m.cross_kv(ctx)
    with torch.no_grad():
        full = m.forward_teacher_forcing(clean, noisy, t, xkv, bf)
        cache = KVCache.empty(d)
        outs = []
        for b in range(nblk):
            sl = slice(b * bf, (b + 1) * bf)
            fpos = torch.arange(b * bf, (b + 1) * bf)
            outs.append(m(noisy[:, :, sl], t[:, sl], fpos, cross_kv=xkv, cache=cache).flow)
            o = m(clean[:, :, sl], torch.zeros(1, bf), fpos, cross_kv=xkv, cache=cache, return_kv=True)
            cache = cache.append(o.block_k, o.block_v, o.block_positions)
    err = rel(torch.cat(outs, dim=2), full)
    print(f'cache vs teacher forcing: rel err {err:.2e}')
    assert err < 1e-5, err


def test_rope_relative_and_replacement() -> None:
    m = make_model(1)
    d = m.dims
    ctx = m.encode_text([4, 5])[None]
    xkv = m.cross_kv(ctx)
    a = torch.randn(1, d.latent_channels, 2, d.latent_height, d.latent_width)
    x = torch.randn_like(a)
    with torch.no_grad():
        o = m(a, torch.zeros(1, 2), torch.tensor([0, 1]), cross_kv=xkv, cache=KVCache.empty(d), return_kv=True)
        cache = KVCache.empty(d).append(o.block_k, o.block_v, o.block_positions)
        f1 = m(x, torch.full((1, 2), 700.0), torch.tensor([2, 3]), cross_kv=xkv, cache=cache).flow
        shifted = cache.positions.clone()
        shifted[:, 0] += 37
        cache2 = KVCache(cache.keys, cache.values, shifted)
        f2 = m(x, torch.full((1, 2), 700.0), torch.tensor([39, 40]), cross_kv=xkv, cache=cache2).flow
        # moving the cached frames farther back changes the result
        far = cache.positions.clone()
        far[:, 0] -= 20
        f3 = m(x, torch.full((1, 2), 700.0), torch.tensor([2, 3]), cross_kv=xkv, cache=KVCache(cache.keys, cache.values, far)).flow
    e_shift = rel(f2, f1)
    e_far = rel(f3, f1)
    print(f'rope shift invariance: {e_shift:.2e}; re-placed cache changes flow by {e_far:.2e}')
    assert e_shift < 1e-5 and e_far > 1e-4


def test_safetensors_round_trip() -> None:
    m = make_model(2)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, 'm.safetensors')
        save_weights(m, path)
        m2 = WanModel(m.dims)
        load_weights(m2, path)
    for k, v in m.state_dict().items():
        assert torch.equal(v, m2.state_dict()[k]), k
    keys = set(m.state_dict())
    for k in ['patch_embedding.weight', 'text_embedding.0.weight', 'time_projection.1.bias',
              'blocks.0.self_attn.norm_q.weight', 'blocks.1.cross_attn.norm_k.weight', 'blocks.0.norm3.bias',
              'blocks.0.ffn.2.weight', 'blocks.0.modulation', 'head.head.weight', 'head.modulation',
              'text_encoder.embedding.weight']:
        assert k in keys, k
    print(f'safetensors round trip: {len(keys)} keys ok')


if __name__ == '__main__':
    test_cache_equals_teacher_forcing()
    test_rope_relative_and_replacement()
    test_safetensors_round_trip()
    print('reference ok')
