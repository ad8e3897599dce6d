"""python3 tools/train/test_average_weights.py: the average of checkpoints is their tensor-wise mean; mismatches are refused."""
import json
import os
import struct
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from average_weights import read, tensor  # noqa: E402

SCRIPT = os.path.join(os.path.dirname(__file__), 'average_weights.py')


def write(path, tensors, meta):
    header, blobs, at = {'__metadata__': meta}, [], 0
    for name, a in tensors.items():
        b = a.astype(np.float32).tobytes()
        header[name] = {'dtype': 'F32', 'shape': list(a.shape), 'data_offsets': [at, at + len(b)]}
        blobs.append(b)
        at += len(b)
    head = json.dumps(header).encode()
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(head)) + head + b''.join(blobs))


def main():
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as d:
        xs = [{'w': rng.standard_normal((3, 4)), 'b': rng.standard_normal(5)} for _ in range(3)]
        paths = []
        for i, x in enumerate(xs):
            paths.append(os.path.join(d, f'{i}.safetensors'))
            write(paths[-1], x, {'run': str(i)})
        out = os.path.join(d, 'out.safetensors')
        subprocess.run([sys.executable, SCRIPT, out, *paths], check=True)
        h, data = read(out)
        for name in ('w', 'b'):
            want = np.mean([x[name].astype(np.float32) for x in xs], axis=0).reshape(-1)
            got = tensor(h, data, name)
            assert np.abs(got - want).max() < 1e-6, name
        assert [m['run'] for m in json.loads(h['__metadata__']['inputs'])] == ['0', '1', '2']
        write(paths[2], {'w': xs[2]['w']}, {})
        r = subprocess.run([sys.executable, SCRIPT, out, *paths], capture_output=True, text=True)
        assert r.returncode != 0 and 'other tensors' in r.stderr, r.stderr
    print('test_average_weights: ok')


if __name__ == '__main__':
    main()
