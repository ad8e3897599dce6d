#!/usr/bin/env bash
# GPU call 2: render 832x480 H.264 files with both decoders on the native engine; bench with the encoder
set -u
source .device/boot.sh > $OUT/boot2.log 2>&1   # .device from: bash scripts/pack-device.sh --render


[ -f native/build/sinkstream_native.node ] || bash scripts/build-native.sh > $OUT/build2.log 2>&1
R="node bin/sinkstream.js render --config configs/wan-1.3b.yaml --set engine.name=native --set engine.dtype=float16 --set cache.policy=sink --set cache.sink=3 --no-progress --json"
t=$(date +%s); timeout 150 $R --set decoder.kind=taehv --set decoder.dtype=float16 --frames 21 --out $OUT/taehv-832x480.mp4 > $OUT/render-taehv.json 2> $OUT/render-taehv.err; echo "render taehv rc=$? $(( $(date +%s) - t )) s"
t=$(date +%s); timeout 150 $R --set decoder.kind=wan-vae --set decoder.dtype=float16 --frames 21 --out $OUT/wanvae-832x480.mp4 > $OUT/render-wanvae.json 2> $OUT/render-wanvae.err; echo "render wanvae rc=$? $(( $(date +%s) - t )) s"
B="node bin/sinkstream.js bench --config configs/wan-1.3b.yaml --set engine.name=native --set engine.dtype=float16 --set cache.policy=sink --set cache.sink=3 --json --encode"
t=$(date +%s); timeout 200 $B --set decoder.kind=taehv --set decoder.dtype=float16 --blocks 30 > $OUT/bench-taehv-encode.json 2> $OUT/bench-taehv-encode.err; echo "bench encode rc=$? $(( $(date +%s) - t )) s"
ls -la $OUT
