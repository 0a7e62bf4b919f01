#!/usr/bin/env bash
# Measures Hearth on a 7B-shaped model (random weights, real shapes and sizes):
#   1. writing it: `hearth make-test-model --preset P --type T` (time and size),
#   2. its memory plan at a 4096-token context with an f16 KV cache (`hearth inspect`),
#   3. a short `hearth bench` on the chosen device, with the CPU reference beside it.
# Needs ~4–5 GB of free disk under $TMPDIR and about twice that in RAM.
#   scripts/bench-7b.sh                      # llama2-7b, q4_0, GPU vs CPU, pp 16 / tg 8
#   PRESET=qwen2.5-7b TYPE=q4_k PP=64 TG=32 scripts/bench-7b.sh
set -euo pipefail
cd "$(dirname "$0")/.."
preset=${PRESET:-llama2-7b} type=${TYPE:-q4_0} pp=${PP:-16} tg=${TG:-8} reps=${REPS:-1}
source scripts/setup.sh
cargo build --release --locked --bin hearth
hearth=./target/release/hearth
model=$(mktemp -d)/$preset-$type.gguf
trap 'rm -rf "$(dirname "$model")"' EXIT

echo "== write $preset ($type)"
"$hearth" make-test-model --preset "$preset" --type "$type" --out "$model"
ls -l "$model"
echo "== memory plan at 4096 tokens, f16 KV"
"$hearth" inspect "$model" --ctx 4096 --kv-type f16
echo "== bench: pp $pp, tg $tg, $reps rep(s), with the CPU reference"
"$hearth" bench --model "$model" --prompt-tokens "$pp" --gen-tokens "$tg" \
  --reps "$reps" --compare-cpu --json
