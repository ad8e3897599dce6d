"""Writes test/text/fixtures/umt5-tiny-encoder.json: the umT5 encoder reference (umt5.py) at a small
shape with the synthetic weights of src/text/umt5-weights.ts (same seeded generator), for the ONNX
graph's parity test. Also checks here that running the real tokens alone gives the rows of Wan's
padded, masked run (what the runtime relies on), and records the relative-position buckets.

Also writes umt5-micro-enc-bf16.pth: a 1-layer encoder (dim 16) saved the way Wan's checkpoint is.

Run: /usr/bin/python3 tools/reference/make_umt5_encoder_fixture.py
"""
import json
import os
import sys

import sentencepiece as spm
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from umt5 import Umt5Arch, Umt5Encoder, relative_buckets, synthetic_state_dict  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIXTURES = os.path.join(ROOT, 'test', 'text', 'fixtures')
ARCH = Umt5Arch(dim=64, layers=2, heads=4, ffn_dim=160, vocab=420, buckets=32, max_distance=128)
SEED = 7
TEXT_LEN = 256
PROMPT = 'A red fox jumps over the lazy dog.'
# A very small encoder saved as Wan saves models_t5_umt5-xxl-enc-bf16.pth (a bf16 state dict, torch.save).
PTH_ARCH = Umt5Arch(dim=16, layers=1, heads=2, ffn_dim=32, vocab=40, buckets=32, max_distance=128)


def rounded(t: torch.Tensor):
    return [float(f'{v:.9g}') for v in t.flatten().tolist()]


def main() -> None:
    torch.manual_seed(0)
    model = Umt5Encoder(ARCH)
    model.load_state_dict(synthetic_state_dict(ARCH, SEED))
    model.eval()
    sp = spm.SentencePieceProcessor(model_file=os.path.join(FIXTURES, 'umt5-tiny-bytefallback.model'))
    prompt_ids = sp.encode(PROMPT, out_type=int) + [1]
    long_ids = [(i * 7919 + 13) % ARCH.vocab for i in range(199)] + [1]

    with torch.no_grad():
        # Wan's way: padded to text_len, masked; the runtime's way: the real tokens alone.
        ids = torch.zeros(1, TEXT_LEN, dtype=torch.long)
        ids[0, : len(long_ids)] = torch.tensor(long_ids)
        mask = (torch.arange(TEXT_LEN) < len(long_ids)).long().view(1, -1)
        padded = model(ids, mask)[0, : len(long_ids)]
        alone = model.context(torch.tensor(long_ids), TEXT_LEN)[: len(long_ids)]
        print('masked padded run vs real tokens alone: max |diff|', (padded - alone).abs().max().item())
        prompt_ctx = model.context(torch.tensor(prompt_ids), TEXT_LEN)[: len(prompt_ids)]
        long_ctx = alone

    rows = [0, 99, 199]
    table = relative_buckets(300, ARCH.buckets, ARCH.max_distance)
    fixture = {
        'arch': {'dim': ARCH.dim, 'layers': ARCH.layers, 'heads': ARCH.heads, 'ffnDim': ARCH.ffn_dim, 'vocab': ARCH.vocab,
                 'buckets': ARCH.buckets, 'maxDistance': ARCH.max_distance},
        'seed': SEED,
        'textLen': TEXT_LEN,
        'bucketsByOffset': {'from': -299, 'buckets': table[299].tolist() + table[0, 1:].tolist()},
        'cases': [
            {'prompt': PROMPT, 'ids': prompt_ids, 'rows': list(range(len(prompt_ids))), 'context': rounded(prompt_ctx)},
            {'ids': long_ids, 'rows': rows, 'context': rounded(long_ctx[rows])},
        ],
    }
    with open(os.path.join(FIXTURES, 'umt5-tiny-encoder.json'), 'w') as f:
        json.dump(fixture, f, separators=(',', ':'))
        f.write('\n')
    pth = Umt5Encoder(PTH_ARCH)
    pth.load_state_dict(synthetic_state_dict(PTH_ARCH, SEED))
    torch.save(pth.to(torch.bfloat16).state_dict(), os.path.join(FIXTURES, 'umt5-micro-enc-bf16.pth'))
    print('rms of the prompt context', prompt_ctx.pow(2).mean().sqrt().item(), 'ids', len(prompt_ids))


if __name__ == '__main__':
    main()
