"""Averages checkpoints of one architecture, tensor by tensor (a "model soup" of runs along one training lineage).

    python3 tools/train/average_weights.py OUT.safetensors A.safetensors B.safetensors [...]
        [--weights 0.75,0.25] [--first-only REGEX] [--extrapolate]

Every input must hold the same float32 tensors (names, shapes), except that tensors whose names match --first-only
are taken from the first input alone, and only the first input needs them (e.g. a student's text encoder neighbour
tables, which an older model lacks). --weights gives each input's share (default: equal; normalised to sum 1). The
output's metadata names the recipe, the shares, the first-only pattern and keeps each input's metadata (a JSON list
under "inputs"). --extrapolate lets shares be negative (still normalised to sum 1): `--weights 2,-1 --extrapolate` of a
½/½ mix and one of its inputs gives back the other input.
"""
import argparse
import json
import os
import re
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'reference'))
from safetensors_io import load_file, read_header, save_file  # noqa: E402


def parse_shares(text, count, extrapolate=False):
    if text is None:
        return [1.0 / count] * count
    try:
        shares = [float(v) for v in text.split(',')]
    except ValueError:
        sys.exit(f'average_weights: --weights {text!r}: expected {count} comma-separated numbers')
    if len(shares) != count or not all(np.isfinite(shares)) or sum(shares) <= 0 or (min(shares) < 0 and not extrapolate):
        what = 'with a positive sum' if extrapolate else 'non-negative, not all zero (negative ones need --extrapolate)'
        sys.exit(f'average_weights: --weights {text!r}: expected {count} numbers (one per input), {what}')
    total = sum(shares)
    return [s / total for s in shares]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('out')
    ap.add_argument('inputs', nargs='+')
    ap.add_argument('--weights', default=None, help='each input\'s share, comma-separated (default: equal)')
    ap.add_argument('--first-only', default=None, metavar='REGEX', help='tensors taken from the first input alone')
    ap.add_argument('--extrapolate', action='store_true', help='allow negative shares (e.g. 2,-1: a mix minus one input)')
    args = ap.parse_args(argv)
    paths = args.inputs
    if len(paths) < 2:
        sys.exit('average_weights: give the output and at least two checkpoints')
    shares = parse_shares(args.weights, len(paths), args.extrapolate)
    first_only = re.compile(args.first_only) if args.first_only else None

    def mixed_of(header):
        """The tensors of a file that are averaged: all but those --first-only names."""
        return sorted(k for k in header if k != '__metadata__' and not (first_only and first_only.search(k)))

    headers = [read_header(p) for p in paths]
    first = headers[0]
    names = sorted(k for k in first if k != '__metadata__')
    mixed = mixed_of(first)
    if first_only and len(mixed) == len(names):
        sys.exit(f'average_weights: --first-only {args.first_only!r} matches no tensor of {paths[0]}')
    for path, h in zip(paths, headers):
        if mixed_of(h) != mixed:
            sys.exit(f'average_weights: {path} holds other tensors than {paths[0]}')
        for name in mixed:
            if h[name]['dtype'] != 'F32' or h[name]['shape'] != first[name]['shape']:
                sys.exit(f'average_weights: {path}: {name} is {h[name]["dtype"]} {h[name]["shape"]}; expected F32 {first[name]["shape"]}')
    checkpoints = [load_file(p) for p in paths]
    out = {name: checkpoints[0][name] for name in names}  # the --first-only tensors as the first input has them
    for name in mixed:
        out[name] = sum(s * c[name].astype(np.float64) for s, c in zip(shares, checkpoints)).astype(np.float32)
    meta = {'recipe': 'tools/train/average_weights.py', 'inputs': json.dumps([h.get('__metadata__', {}) for h in headers])}
    if args.weights is not None:
        meta['shares'] = json.dumps([round(s, 6) for s in shares])
    if first_only:
        meta['first_only'] = args.first_only
    save_file(out, args.out, meta)


if __name__ == '__main__':
    main()
