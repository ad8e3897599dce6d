"""python3 tools/train/test_average_weights.py: the average of checkpoints is their tensor-wise mean (or weighted by
--weights; --first-only tensors from the first input alone); mismatches are refused."""
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'reference'))
from safetensors_io import load_file, read_header, save_file  # noqa: E402

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'average_weights.py')


def main():
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as d:
        xs = [{'w': rng.standard_normal((3, 4)).astype(np.float32), 'b': rng.standard_normal(5).astype(np.float32)} for _ in range(3)]
        paths = []
        for i, x in enumerate(xs):
            paths.append(os.path.join(d, f'{i}.safetensors'))
            save_file(x, paths[-1], {'run': str(i)})
        out = os.path.join(d, 'out.safetensors')
        subprocess.run([sys.executable, SCRIPT, out, *paths], check=True)
        got = load_file(out)
        for name in ('w', 'b'):
            want = np.mean([x[name] for x in xs], axis=0)
            assert got[name].shape == want.shape and np.abs(got[name] - want).max() < 1e-6, name
        assert [m['run'] for m in json.loads(read_header(out)['__metadata__']['inputs'])] == ['0', '1', '2']
        subprocess.run([sys.executable, SCRIPT, out, paths[0], paths[1], '--weights', '3,1'], check=True)
        got = load_file(out)
        assert np.abs(got['w'] - (0.75 * xs[0]['w'] + 0.25 * xs[1]['w'])).max() < 1e-6
        assert json.loads(read_header(out)['__metadata__']['shares']) == [0.75, 0.25]
        r = subprocess.run([sys.executable, SCRIPT, out, paths[0], paths[1], '--weights', '1'], capture_output=True, text=True)
        assert r.returncode != 0 and 'one per input' in r.stderr, r.stderr
        # a ½/½ mix, extrapolated 2,-1 against one of its inputs, gives back the other; negative shares need the flag
        half = os.path.join(d, 'half.safetensors')
        subprocess.run([sys.executable, SCRIPT, half, paths[0], paths[1]], check=True)
        r = subprocess.run([sys.executable, SCRIPT, out, half, paths[1], '--weights', '2,-1'], capture_output=True, text=True)
        assert r.returncode != 0 and '--extrapolate' in r.stderr, r.stderr
        subprocess.run([sys.executable, SCRIPT, out, half, paths[1], '--weights', '2,-1', '--extrapolate'], check=True)
        got = load_file(out)
        assert np.abs(got['w'] - xs[0]['w']).max() < 1e-6 and np.abs(got['b'] - xs[0]['b']).max() < 1e-6
        assert json.loads(read_header(out)['__metadata__']['shares']) == [2.0, -1.0]
        r = subprocess.run([sys.executable, SCRIPT, out, half, paths[1], '--weights', '1,-1', '--extrapolate'], capture_output=True, text=True)
        assert r.returncode != 0 and 'positive sum' in r.stderr, r.stderr
        # a tensor only the first input holds (a student's neighbour table): refused, unless --first-only names it
        table = rng.standard_normal((2, 2)).astype(np.float32)
        with_table = os.path.join(d, 'table.safetensors')
        save_file({**xs[0], 'text_encoder.previous.weight': table}, with_table, {})
        r = subprocess.run([sys.executable, SCRIPT, out, with_table, paths[1]], capture_output=True, text=True)
        assert r.returncode != 0 and 'other tensors' in r.stderr, r.stderr
        subprocess.run([sys.executable, SCRIPT, out, with_table, paths[1], '--weights', '3,1', '--first-only', '^text_encoder\\.|^b$'], check=True)
        got = load_file(out)
        assert np.array_equal(got['text_encoder.previous.weight'], table) and np.array_equal(got['b'], xs[0]['b'])
        assert np.abs(got['w'] - (0.75 * xs[0]['w'] + 0.25 * xs[1]['w'])).max() < 1e-6
        r = subprocess.run([sys.executable, SCRIPT, out, with_table, paths[1], '--first-only', '^nothing$'], capture_output=True, text=True)
        assert r.returncode != 0 and 'matches no tensor' in r.stderr, r.stderr
        save_file({'w': xs[2]['w']}, paths[2], {})
        r = subprocess.run([sys.executable, SCRIPT, out, *paths], capture_output=True, text=True)
        assert r.returncode != 0 and 'other tensors' in r.stderr, r.stderr
        save_file({'w': xs[2]['w'], 'b': xs[2]['b'].astype(np.float16)}, paths[2], {})
        r = subprocess.run([sys.executable, SCRIPT, out, *paths], capture_output=True, text=True)
        assert r.returncode != 0 and 'expected F32' in r.stderr, r.stderr
    print('test_average_weights: ok')


if __name__ == '__main__':
    main()
