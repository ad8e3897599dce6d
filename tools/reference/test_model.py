"""Self-checks of the reference model (CPU, seconds): python3 tools/reference/test_model.py

1. block-by-block inference with a KV cache == the teacher-forcing pass over [clean ‖ noisy]
   (the training forward is exactly the inference computation);
2. RoPE is relative: shifting every temporal position (queries and cache) leaves the flow unchanged;
3. re-placing a cached frame = changing its positions only (keys are stored un-rotated);
4. safetensors save/load round trip with Wan key names;
5. a 'sample' model: x0 = x - s * flow is the head's output above the noise floor, the teacher-forcing
   pass converts the same way, and flow_target matches noise - x0 above the floor.
"""
import os
import sys
import tempfile

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from model import SAMPLE_SIGMA_FLOOR, Dims, KVCache, WanModel, flow_target, load_weights, save_weights  # noqa: E402


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


def test_sample_prediction() -> None:
    m = make_model(3)
    m.dims.prediction = 'sample'
    ctx = torch.randn(6, 16)
    xkv = m.cross_kv(ctx[None])
    x = torch.randn(1, 12, 3, 8, 8)
    s = torch.tensor([0.9, 0.3, 0.02])  # the last frame below the floor
    with torch.no_grad():
        out = m(x, (s * 1000)[None], torch.arange(3), cross_kv=xkv)
        x0 = x - s[None, None, :, None, None] * out.flow
        assert rel(x0[:, :, :2], out.output[:, :, :2]) < 1e-5, 'x0 = the head output above the floor'
        below = x[:, :, 2:] - 0.02 * (x[:, :, 2:] - out.output[:, :, 2:]) / SAMPLE_SIGMA_FLOOR
        assert rel(x0[:, :, 2:], below) < 1e-5, 'below the floor the flow divides by the floor'
        tf = m.forward_teacher_forcing(torch.randn_like(x), x, (s * 1000)[None], xkv, 3)
        assert torch.isfinite(tf).all()
    clean, noise = torch.randn_like(x), torch.randn_like(x)
    sv = s[None, None, :, None, None]
    noisy = (1 - sv) * clean + sv * noise
    t = flow_target(noisy, clean, noise, s[None], 'sample')
    assert rel(t[:, :, :2], (noise - clean)[:, :, :2]) < 1e-5
    assert rel(flow_target(noisy, clean, noise, s[None], 'flow'), noise - clean) == 0.0


if __name__ == '__main__':
    test_sample_prediction()
    test_cache_equals_teacher_forcing()
    test_rope_relative_and_replacement()
    test_safetensors_round_trip()
    print('reference ok')
