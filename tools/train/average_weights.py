"""Averages checkpoints of one architecture, tensor by tensor (a "model soup" of runs along one training lineage).

    python3 tools/train/average_weights.py OUT.safetensors A.safetensors B.safetensors [...]

Every input must hold the same float32 tensors (names, shapes); the output's metadata names the recipe and keeps each
input's metadata (a JSON list under "inputs").
"""
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'reference'))
from safetensors_io import load_file, read_header, save_file  # noqa: E402


def main(out, paths):
    if len(paths) < 2:
        sys.exit('average_weights: give the output and at least two checkpoints')
    headers = [read_header(p) for p in paths]
    first = headers[0]
    names = sorted(k for k in first if k != '__metadata__')
    for path, h in zip(paths, headers):
        if sorted(k for k in h if k != '__metadata__') != names:
            sys.exit(f'average_weights: {path} holds other tensors than {paths[0]}')
        for name in names:
            if h[name]['dtype'] != 'F32' or h[name]['shape'] != first[name]['shape']:
                sys.exit(f'average_weights: {path}: {name} is {h[name]["dtype"]} {h[name]["shape"]}; expected F32 {first[name]["shape"]}')
    checkpoints = [load_file(p) for p in paths]
    mean = {name: (sum(c[name].astype(np.float64) for c in checkpoints) / len(checkpoints)).astype(np.float32) for name in names}
    save_file(mean, out, {'recipe': 'tools/train/average_weights.py',
                          'inputs': json.dumps([h.get('__metadata__', {}) for h in headers])})


if __name__ == '__main__':
    main(sys.argv[1], sys.argv[2:])
