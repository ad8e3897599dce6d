#!/usr/bin/env bash
# The packed package, as a user gets it: `npm pack` (from a copy of the working tree, so the
# checkout's dist/ is left alone), the tarball's contents checked (what a user needs and nothing
# else), the tarball installed into a fresh folder as the README says (ONNXRUNTIME_NODE_INSTALL=skip:
# no CUDA download; ffmpeg-static's download made to fail at once, which must not fail the install),
# then `npx sinkstream render --frames 8` there, without network where a network namespace can be
# made (unshare), and the clip checked.
#
#   bash scripts/pack-smoke.sh       # or: npm run test:pack   (after `npm ci`)
#   env: SINKSTREAM_PACK_KEEP=1       keep the temporary folder (its path is printed)
#        SINKSTREAM_PACK_OFFLINE=1    install with --offline only (npm's cache must hold every package
#                                     and its metadata, e.g. after an earlier install of the tarball)
# The install tries `npm install --offline` first and, when npm's cache lacks something (`npm ci`
# caches the tarballs but not the registry's metadata that a fresh install resolves against), installs
# with --prefer-offline: metadata from the registry, tarballs from the cache.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
[[ -x node_modules/.bin/tsc ]] || { echo "pack-smoke: node_modules is missing: run npm ci first" >&2; exit 2; }

work=$(mktemp -d "${TMPDIR:-/tmp}/sinkstream-pack-XXXXXX")
cleanup() {
  if [[ "${SINKSTREAM_PACK_KEEP:-0}" == 1 ]]; then echo "pack-smoke: kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
step_started=$SECONDS
step() {
  echo "pack-smoke: $1 ($((SECONDS - step_started)) s so far)"
}

# 1. pack from a copy: tracked and untracked-but-not-ignored files, the checkout's node_modules linked
step "copying the working tree"
mkdir "$work/tree"
git ls-files -z --cached --others --exclude-standard \
  | while IFS= read -r -d '' f; do [[ -e $f ]] && printf '%s\0' "$f"; done \
  | tar --null -T - -cf - | tar -xf - -C "$work/tree"
ln -s "$root/node_modules" "$work/tree/node_modules"
step "npm pack (prepack: clean dist/, prepare: tsc)"
if ! (cd "$work/tree" && npm pack --silent --pack-destination "$work" > "$work/pack.out" 2> "$work/pack.log"); then
  cat "$work/pack.log" "$work/pack.out" >&2
  echo "pack-smoke: npm pack failed" >&2
  exit 1
fi
tarball="$work/$(tail -1 "$work/pack.out")"
[[ -f $tarball ]] || { echo "pack-smoke: npm pack made no tarball" >&2; exit 1; }
echo "pack-smoke: $(basename "$tarball"): $(du -h "$tarball" | cut -f1)"

# 2. what it holds
tar -tzf "$tarball" | sed 's|^package/||' | sort > "$work/contents.txt"
fail=0
problem() { echo "pack-smoke: $1" >&2; fail=1; }
for need in package.json LICENSE README.md bin/sinkstream.js dist/src/cli/run.js dist/src/index.js dist/src/index.d.ts \
  configs/default.yaml models/demo/model.safetensors src/serve/public/index.html scripts/build-native.sh native/src/addon.cc; do
  grep -qx "$need" "$work/contents.txt" || problem "missing from the tarball: $need"
done
unwanted=$(grep -P '\.map$|^test/|^tools/|^docs/|^src/.*\.ts$|^scheduler/|^scripts/(?!build-native\.sh$)|^\.' "$work/contents.txt" || true)
[[ -z $unwanted ]] || problem "not for users, yet in the tarball: $(echo "$unwanted" | head -5 | tr '\n' ' ')"
# every compiled module comes from a source that exists (no stale output of a deleted file)
while read -r js; do
  src=${js#dist/}; src=${src%.js}.ts
  [[ -f "$work/tree/$src" ]] || problem "dist/ holds $js, whose source $src does not exist"
done < <(grep -E '^dist/.*\.js$' "$work/contents.txt")
(( fail == 0 )) || exit 1

# 3. a fresh folder; ONNX Runtime's CUDA download skipped (the README's setting); ffmpeg-static's
# download pointed at a closed local port, so it fails at once: an optional dependency, it must not
# fail the install
mkdir "$work/app"
cd "$work/app"
printf '{ "name": "sinkstream-pack-smoke", "private": true }\n' > package.json
install() {
  ONNXRUNTIME_NODE_INSTALL=skip FFMPEG_BINARIES_URL=http://127.0.0.1:9 \
    npm install "$1" --no-audit --no-fund --loglevel=error "$tarball" > "$work/install.log" 2>&1
}
step "npm install --offline of the tarball into a fresh folder"
if ! install --offline; then
  if [[ "${SINKSTREAM_PACK_OFFLINE:-0}" == 1 ]] || ! grep -q ENOTCACHED "$work/install.log"; then
    cat "$work/install.log" >&2
    echo "pack-smoke: npm install --offline of the tarball failed" >&2
    exit 1
  fi
  step "npm's cache lacks the registry's metadata ($(grep -o 'request to [^ ]*' "$work/install.log" | head -1)): npm install --prefer-offline"
  rm -rf node_modules package-lock.json
  install --prefer-offline || { cat "$work/install.log" >&2; echo "pack-smoke: npm install of the tarball failed" >&2; exit 1; }
fi
[[ -e node_modules/typescript ]] && problem "the install pulled typescript (a dev dependency)"
[[ -e node_modules/ffmpeg-static/ffmpeg ]] && problem "ffmpeg-static downloaded its binary although its download URL was a closed port"
[[ -f node_modules/sinkstream/dist/src/cli/run.js ]] || problem "the installed package has no dist/"

# 4. render, as the README shows; without any network when this user may make a network namespace
no_network=()
if command -v unshare > /dev/null && unshare -rn true 2> /dev/null; then no_network=(unshare -rn); fi
step "npx sinkstream render --frames 8${no_network:+ (no network: ${no_network[*]})}"
"${no_network[@]}" npx --no-install sinkstream render --frames 8 --out x.mp4 --json > render.json 2> render.err || {
  cat render.err >&2
  echo "pack-smoke: npx sinkstream render failed" >&2
  exit 1
}
node -e '
  const fs = require("fs");
  const s = JSON.parse(fs.readFileSync("render.json", "utf8"));
  const file = fs.readFileSync("x.mp4");
  const problems = [];
  if (s.status !== "finished" || s.framesWritten !== 8) problems.push(`summary: ${JSON.stringify(s)}`);
  if (s.output !== require("path").resolve("x.mp4")) problems.push(`output ${s.output}`);
  if (file.subarray(4, 8).toString("latin1") !== "ftyp") problems.push("x.mp4 does not start with an ftyp box");
  if (!file.includes(Buffer.from("moof"))) problems.push("x.mp4 holds no fragment (moof)");
  if (problems.length) { console.error("pack-smoke: " + problems.join("; ")); process.exit(1); }
' || exit 1
(( fail == 0 )) || exit 1
step "ok: x.mp4, $(stat -c %s x.mp4) bytes, 8 frames"
