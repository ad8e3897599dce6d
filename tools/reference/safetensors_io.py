"""Minimal safetensors reader/writer (JSON header + raw little-endian tensors).

Written by hand so the reference runs wherever numpy does, with or without the `safetensors` package.
Format: 8-byte little-endian header length N, N bytes of JSON {name: {dtype, shape, data_offsets}},
then the tensor bytes; offsets are relative to the end of the header.
"""
from __future__ import annotations

import json
import struct
from typing import Dict

import numpy as np

_DTYPES = {
    'F32': np.dtype('<f4'),
    'F16': np.dtype('<f2'),
    'F64': np.dtype('<f8'),
    'I32': np.dtype('<i4'),
    'I64': np.dtype('<i8'),
}
_NAMES = {v: k for k, v in _DTYPES.items()}


def read_header(path: str) -> dict:
    """The JSON header of a .safetensors file: {name: {dtype, shape, data_offsets}} and '__metadata__' if written."""
    with open(path, 'rb') as f:
        (n,) = struct.unpack('<Q', f.read(8))
        return json.loads(f.read(n).decode('utf-8'))


def load_file(path: str) -> Dict[str, np.ndarray]:
    """Reads every tensor of a .safetensors file as numpy arrays (BF16 is widened to float32)."""
    with open(path, 'rb') as f:
        raw = f.read()
    (n,) = struct.unpack('<Q', raw[:8])
    header = json.loads(raw[8:8 + n].decode('utf-8'))
    base = 8 + n
    out: Dict[str, np.ndarray] = {}
    for name, info in header.items():
        if name == '__metadata__':
            continue
        start, end = info['data_offsets']
        buf = raw[base + start:base + end]
        if info['dtype'] == 'BF16':
            bits = np.frombuffer(buf, dtype='<u2').astype(np.uint32) << 16
            arr = bits.view(np.float32)
        else:
            arr = np.frombuffer(buf, dtype=_DTYPES[info['dtype']])
        out[name] = arr.reshape(info['shape']).copy()
    return out


def save_file(tensors: Dict[str, np.ndarray], path: str, metadata: Dict[str, str] | None = None) -> None:
    """Writes numpy arrays (float32/float16/int) to a .safetensors file, keys sorted."""
    header: Dict[str, object] = {}
    if metadata:
        header['__metadata__'] = {k: str(v) for k, v in metadata.items()}
    offset = 0
    blobs = []
    for name in sorted(tensors):
        arr = np.ascontiguousarray(tensors[name])
        dt = arr.dtype.newbyteorder('<') if arr.dtype.byteorder == '>' else arr.dtype
        if dt not in _NAMES:
            raise ValueError(f'{name}: unsupported dtype {arr.dtype}')
        data = arr.astype(dt, copy=False).tobytes()
        header[name] = {'dtype': _NAMES[dt], 'shape': list(arr.shape), 'data_offsets': [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    text = json.dumps(header, separators=(',', ':')).encode('utf-8')
    text += b' ' * ((8 - len(text) % 8) % 8)  # keep tensor data 8-byte aligned
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(text)))
        f.write(text)
        for blob in blobs:
            f.write(blob)
