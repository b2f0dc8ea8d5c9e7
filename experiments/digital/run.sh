#!/usr/bin/env bash
# Measure the digital method's profiles on the 4 held-out photos (256x256, image i hides image i+1).
# Usage (from the repository root): bash experiments/digital/run.sh [OUT]   (OUT default: /tmp/digital-run)
set -euo pipefail
OUT=${1:-/tmp/digital-run}
mkdir -p "$OUT"
steg() { python -m steg "$@"; }
[ -d "$OUT/heldout" ] || steg samples "$OUT/heldout"
for p in default capacity stealth; do
  steg eval --model digital --profile $p --key bench-key --covers "$OUT/heldout" --size 256 \
    --json "$OUT/eval-$p.json" --force | tee "$OUT/eval-$p.txt"
done
steg eval --model digital --profile robust --key bench-key --covers "$OUT/heldout" --size 256 \
  --attack jpeg:90,jpeg:75 --json "$OUT/eval-robust.json" --force | tee "$OUT/eval-robust.txt"
for p in default capacity stealth robust; do
  steg analyze --model digital --profile $p --key bench-key --out "$OUT/analyze-$p" --size 256 \
    --thief-steps 0 --detector-steps 0 --force | tee "$OUT/analyze-$p.txt"
done
