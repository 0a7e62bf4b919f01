#!/usr/bin/env bash
# Runs every test: installs what is missing, fetches llama.cpp's vendored tokenizer vectors and
# chat templates (sha256-checked), then the Rust test suite. Fixture tests read
# ../shared/fixtures (or $HEARTH_FIXTURES); with CI set they fail instead of skipping.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
./scripts/fetch-llama-vendor.sh >/dev/null
# The Tauri shell (src-tauri) needs WebKitGTK to build; scripts/build-app.sh and scripts/e2e.sh
# build and drive it. Here: the core and everything it is tested with.
cargo test --workspace --exclude hearth-desktop --all-targets --locked "$@"
echo "== ui: svelte-check and Vitest"
(cd ui && npm ci --ignore-scripts --no-audit --no-fund && npm run check && npm test)
