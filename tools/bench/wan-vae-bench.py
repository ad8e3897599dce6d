"""The Wan2.1 VAE decoder: PyTorch reference speed (CUDA, fp32 and bf16), parity of the ONNX Runtime
decoder against it, and the decoder's FLOPs per latent frame.

On the GPU machine (PyTorch with CUDA, Node with the repository):
    D=/tmp/wan-vae
    node --import tsx tools/bench/wan-vae-ort.ts run --dir $D --provider webgpu --dtype float16
    node --import tsx tools/bench/wan-vae-ort.ts run --dir $D --provider webgpu --dtype float32
    python3 tools/bench/wan-vae-bench.py --dir $D
The first command writes $D/weights.safetensors (synthetic, the published shape) and
$D/latent.safetensors (16 x (1 + 3) x 60 x 104: a stream's first latent frame and one block of 3); every
`run` adds $D/ort-<provider>-<dtype>.safetensors. Without the ORT runs, this script only times PyTorch
(`--weights-only` writes nothing; the weights and latent must exist: run `wan-vae-ort.ts run` once, any provider).

Timing: a stream's first latent frame, then the block of 3 latent frames, cuda-synchronised wall
clock, median of --reps after one warm-up; the block is decoded both as vae.py does (one latent frame
per decoder call) and as one call of 3 frames. Parity: max |ORT - reference fp32| over every video
frame of the stream (13 frames at 832x480), the reference being vae.py's frame-by-frame loop.
"""
from __future__ import annotations

import argparse
import glob
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'reference'))
import safetensors_io  # noqa: E402
from wan_vae import WanVaeDecoder, arch_of_weights, decoder_flops_per_latent_frame, load_weights  # noqa: E402


def timed(fn, device: torch.device) -> float:
    if device.type == 'cuda':
        torch.cuda.synchronize(device)
    t = time.perf_counter()
    fn()
    if device.type == 'cuda':
        torch.cuda.synchronize(device)
    return (time.perf_counter() - t) * 1000.0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--dir', required=True)
    p.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    p.add_argument('--dtypes', default='fp32,bf16')
    p.add_argument('--reps', type=int, default=3)
    a = p.parse_args()
    dev = torch.device(a.device)
    torch.backends.cudnn.benchmark = True
    weights = os.path.join(a.dir, 'weights.safetensors')
    arch = arch_of_weights(weights)
    latent = torch.from_numpy(safetensors_io.load_file(os.path.join(a.dir, 'latent.safetensors'))['latent'])[None]  # [1, C, F, h, w]
    _, C, F, h, w = latent.shape
    block = F - 1
    H, W = h * 8, w * 8
    name = torch.cuda.get_device_name(dev) if dev.type == 'cuda' else 'cpu'
    print(f'[wan-vae] {name}; dim {arch.dim}, video {W}x{H}, first latent frame + a block of {block}; torch {torch.__version__}', flush=True)

    flops = decoder_flops_per_latent_frame(arch, H, W)
    print(f'[wan-vae] FLOPs per latent frame (4 video frames, from the layer shapes): {flops["total"] / 1e9:.1f} G '
          f'(convolutions {flops["conv"] / 1e9:.1f} G, attention {flops["attention"] / 1e9:.1f} G)', flush=True)

    model = WanVaeDecoder(arch).eval()
    load_weights(model, weights)
    z = latent.to(dev)
    reference = None
    with torch.no_grad():
        for dt_name in a.dtypes.split(','):
            dtype = {'fp32': torch.float32, 'bf16': torch.bfloat16, 'fp16': torch.float16}[dt_name]
            m = model.to(dev, dtype)
            if dtype == torch.float32:
                torch.backends.cuda.matmul.allow_tf32 = False
                torch.backends.cudnn.allow_tf32 = False
            first_ms, per_frame_ms, one_call_ms = [], [], []
            out = None
            for r in range(a.reps + 1):
                cache = m.new_stream()
                parts = []
                t0 = timed(lambda: parts.append(m.decode_block(z[:, :, :1], cache)), dev)
                t1 = timed(lambda: [parts.append(m.decode_block(z[:, :, 1 + i:2 + i], cache)) for i in range(block)], dev)
                cache2 = m.new_stream()
                m.decode_block(z[:, :, :1], cache2)
                t2 = timed(lambda: m.decode_block(z[:, :, 1:], cache2), dev)
                if r > 0:
                    first_ms.append(t0)
                    per_frame_ms.append(t1)
                    one_call_ms.append(t2)
                out = torch.cat(parts, 2)
            med = statistics.median
            rate = flops['total'] * block / (med(per_frame_ms) / 1000.0) / 1e12
            label = f'{dt_name} (TF32 off)' if dtype == torch.float32 and dev.type == 'cuda' else dt_name
            print(f'[wan-vae] torch {label}: first latent frame {med(first_ms):.1f} ms; block of {block}: '
                  f'{med(per_frame_ms):.1f} ms as vae.py (a latent frame per call, {med(per_frame_ms) / block:.1f} ms each, '
                  f'{rate:.1f} TFLOP/s), {med(one_call_ms):.1f} ms in one call; peak memory '
                  f'{(torch.cuda.max_memory_allocated(dev) / 2**30) if dev.type == "cuda" else 0:.1f} GiB', flush=True)
            if dtype == torch.float32:
                reference = m.decode_wan(z).float().cpu()
                err = (out.float().cpu() - reference).abs().max().item()
                print(f'[wan-vae] torch fp32: streaming == vae.py loop, max |diff| {err:.2e}', flush=True)
            elif reference is not None:
                err = (out.float().cpu() - reference).abs()
                print(f'[wan-vae] torch {dt_name} vs fp32: max |diff| {err.max().item():.3e}, mean {err.mean().item():.3e}', flush=True)
            if dev.type == 'cuda':
                torch.cuda.reset_peak_memory_stats(dev)
            model = m.float().cpu()

    if reference is None:
        model = model.float().cpu()
        with torch.no_grad():
            reference = model.decode_wan(latent)
    ref = reference[0].permute(1, 0, 2, 3)  # [frames, 3, H, W]
    print(f'[wan-vae] reference frames {list(ref.shape)}, range [{ref.min().item():.3f}, {ref.max().item():.3f}]', flush=True)
    for path in sorted(glob.glob(os.path.join(a.dir, 'ort-*.safetensors'))):
        frames = torch.from_numpy(safetensors_io.load_file(path)['frames'])
        if frames.shape != ref.shape:
            print(f'[wan-vae] {os.path.basename(path)}: frames {list(frames.shape)}, expected {list(ref.shape)}', flush=True)
            continue
        err = (frames - ref).abs()
        print(f'[wan-vae] {os.path.basename(path)} vs torch fp32: max |diff| {err.max().item():.3e}, mean {err.mean().item():.3e} '
              f'(RGB in [-1, 1]; one 8-bit level is {2 / 255:.3e})', flush=True)


if __name__ == '__main__':
    main()
