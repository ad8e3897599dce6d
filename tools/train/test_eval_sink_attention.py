"""python3 tools/train/test_eval_sink_attention.py: the attention recorder of eval_sink_attention.py adds each layer's
self-attention mass per kind of key (sink, history, the block), its uniform share, and ignores cross-attention."""
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from eval_sink_attention import AttentionRecorder  # noqa: E402


def main():
    layers, h, d = 2, 2, 8
    rec = AttentionRecorder(layers)
    rec.kinds = torch.tensor([0, 0, 1, 1, 2, 2])
    k = torch.zeros(1, 6, h, d)
    k[:, 0, :, 0] = 50.0  # the first sink row: every query's attention goes there
    q = torch.zeros(1, 3, h, d)
    q[..., 0] = 1.0
    v = torch.randn(1, 6, h, d)
    out = rec(q, k, v)
    assert out.shape == (1, 3, h * d) and torch.allclose(out, rec.inner(q, k, v)), 'the wrapped attention is returned unchanged'
    # cross-attention (keys: the prompt's, another length) is not recorded and does not advance the layer
    rec(q, torch.randn(1, 16, h, d), torch.randn(1, 16, h, d))
    assert rec.layer == 1 and rec.samples == 0
    k2 = torch.zeros(1, 6, h, d)  # equal logits: the mass spreads uniformly
    rec(q, k2, v)
    assert rec.layer == 0 and rec.samples == 1
    assert abs(float(rec.mass[0, 0]) - 1.0) < 1e-6 and float(rec.mass[0, 1:].sum()) < 1e-6, rec.mass[0]
    assert torch.allclose(rec.mass[1], torch.full((3,), 1 / 3, dtype=torch.float64)), rec.mass[1]
    assert torch.allclose(rec.uniform, torch.full((2, 3), 1 / 3, dtype=torch.float64)), rec.uniform
    rec.kinds = None
    rec(q, k, v)
    assert rec.samples == 1, 'nothing recorded while kinds is unset'
    print('ok')


if __name__ == '__main__':
    main()
