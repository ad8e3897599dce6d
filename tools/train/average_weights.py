"""Averages checkpoints of one architecture, tensor by tensor (a "model soup" of runs along one training lineage).

    python3 tools/train/average_weights.py OUT.safetensors A.safetensors B.safetensors [...]

Every input must hold the same float32 tensors (names, shapes); the output's metadata names the recipe and keeps each
input's metadata (a JSON list under "inputs").
"""
import json
import struct
import sys

import numpy as np


def read(path):
    with open(path, 'rb') as f:
        raw = f.read()
    n = struct.unpack('<Q', raw[:8])[0]
    return json.loads(raw[8:8 + n]), raw[8 + n:]


def tensor(header, data, name):
    a, b = header[name]['data_offsets']
    return np.frombuffer(data[a:b], dtype=np.float32)


def main(out, paths):
    if len(paths) < 2:
        sys.exit('average_weights: give the output and at least two checkpoints')
    loaded = [read(p) for p in paths]
    header, data = loaded[0]
    names = sorted(k for k in header if k != '__metadata__')
    for path, (h, _) in zip(paths[1:], loaded[1:]):
        other = sorted(k for k in h if k != '__metadata__')
        if other != names:
            sys.exit(f'average_weights: {path} holds other tensors than {paths[0]}')
    result = bytearray(data)
    for name in names:
        for path, (h, _) in zip(paths, loaded):
            if h[name]['dtype'] != 'F32' or h[name]['shape'] != header[name]['shape']:
                sys.exit(f'average_weights: {path}: {name} is {h[name]["dtype"]} {h[name]["shape"]}; expected F32 {header[name]["shape"]}')
        mean = sum(tensor(h, d, name).astype(np.float64) for h, d in loaded) / len(loaded)
        a, b = header[name]['data_offsets']
        result[a:b] = mean.astype(np.float32).tobytes()
    header = dict(header)
    header['__metadata__'] = {'recipe': 'tools/train/average_weights.py',
                              'inputs': json.dumps([h.get('__metadata__', {}) for h, _ in loaded])}
    head = json.dumps(header, separators=(',', ':')).encode()
    head += b' ' * (-len(head) % 8)
    with open(out, 'wb') as f:
        f.write(struct.pack('<Q', len(head)) + head + bytes(result))


if __name__ == '__main__':
    main(sys.argv[1], sys.argv[2:])
