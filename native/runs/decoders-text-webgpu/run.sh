#!/usr/bin/env bash
# GPU call 3: ORT WebGPU decoders against PyTorch at 832x480; umT5-XXL ms per prompt (ORT CPU, ORT WebGPU, PyTorch CUDA)
set -u
source .device/boot.sh > $OUT/boot3.log 2>&1
t0=$(date +%s)
t=$(date +%s); timeout 130 python3 tools/bench/taehv-bench.py --blocks 6 --out /tmp/taehv-bench > $OUT/taehv-webgpu.log 2>&1; echo "taehv rc=$? $(( $(date +%s) - t )) s"; tail -12 $OUT/taehv-webgpu.log
D=/tmp/wan-vae
t=$(date +%s); timeout 120 node --import tsx tools/bench/wan-vae-ort.ts run --dir $D --provider webgpu --dtype float16 > $OUT/wanvae-webgpu.log 2>&1; echo "wanvae ort rc=$? $(( $(date +%s) - t )) s"
t=$(date +%s); timeout 60 python3 tools/bench/wan-vae-bench.py --dir $D --dtypes bf16 --reps 2 >> $OUT/wanvae-webgpu.log 2>&1; echo "wanvae torch rc=$? $(( $(date +%s) - t )) s"; tail -12 $OUT/wanvae-webgpu.log
U=/tmp/umt5; mkdir -p $U
t=$(date +%s); timeout 90 python3 tools/bench/umt5_torch.py make-weights --out $U/w.safetensors > $OUT/umt5.log 2>&1; echo "umt5 weights rc=$? $(( $(date +%s) - t )) s"
t=$(date +%s); timeout 170 node --import tsx tools/bench/umt5-encode.ts --weights $U/w.safetensors --provider cpu --threads 16 --lengths 16,128,512 --reps 3 --out $U/ort >> $OUT/umt5.log 2>&1; echo "umt5 ort cpu rc=$? $(( $(date +%s) - t )) s"
t=$(date +%s); timeout 80 python3 tools/bench/umt5_torch.py run --weights $U/w.safetensors --ort $U/ort --device cuda --dtype bf16 --reps 3 >> $OUT/umt5.log 2>&1; echo "umt5 torch rc=$? $(( $(date +%s) - t )) s"
left=$(( 575 - ($(date +%s) - t0) ))
if (( left > 60 )); then t=$(date +%s); timeout $left node --import tsx tools/bench/umt5-encode.ts --weights $U/w.safetensors --provider webgpu --lengths 16,128,512 --reps 3 > $OUT/umt5-webgpu.log 2>&1; echo "umt5 ort webgpu rc=$? $(( $(date +%s) - t )) s"; tail -8 $OUT/umt5-webgpu.log; fi
tail -25 $OUT/umt5.log
echo "total $(( $(date +%s) - t0 )) s"
