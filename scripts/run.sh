#!/usr/bin/env bash
# The main job: builds the release `hearth` binary and runs it. With no arguments it generates
# a story from the trained fixture model; otherwise the arguments go to `hearth`
# (e.g. `./scripts/run.sh generate --model M.gguf --prompt "Hi" --chat`).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
cargo build --release --locked --bin hearth
if [ $# -eq 0 ]; then
  model="${HEARTH_FIXTURES:-../shared/fixtures}/models/stories260K-f32.gguf"
  set -- generate --model "$model" --prompt "Once upon a time" --max-tokens 64 --temperature 0
fi
exec ./target/release/hearth "$@"
