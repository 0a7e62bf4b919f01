#!/usr/bin/env bash
# The main job: opens the Hearth desktop app, building it first when needed (release build
# through scripts/build-app.sh, which installs Tauri's system packages on Debian/Ubuntu).
# With arguments, runs the `hearth` CLI instead, e.g.
#   ./scripts/run.sh generate --model M.gguf --prompt "Hi" --chat
#   ./scripts/run.sh story      # a greedy story from the trained fixture model, in the terminal
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh

if [ $# -gt 0 ]; then
  cargo build --release --locked --bin hearth
  if [ "$1" = story ]; then
    model="${HEARTH_FIXTURES:-../shared/fixtures}/models/stories260K-f32.gguf"
    set -- generate --model "$model" --prompt "Once upon a time" --max-tokens 64 --temperature 0
  fi
  exec ./target/release/hearth "$@"
fi

./scripts/build-app.sh none
if [ -z "${DISPLAY:-}" ] && [ -z "${WAYLAND_DISPLAY:-}" ]; then
  echo "run: no display (DISPLAY and WAYLAND_DISPLAY are unset), so the window cannot open." >&2
  echo "     Run it under a desktop session, or headless: xvfb-run -a ./target/release/hearth-desktop" >&2
  echo "     The terminal version: ./scripts/run.sh story" >&2
  exit 1
fi
exec ./target/release/hearth-desktop
