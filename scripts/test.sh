#!/usr/bin/env bash
# Runs every test: installs what is missing, fetches llama.cpp's vendored tokenizer vectors and
# chat templates (sha256-checked), then the Rust test suite. Fixture tests read
# ../shared/fixtures (or $HEARTH_FIXTURES); with CI set they fail instead of skipping.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
./scripts/fetch-llama-vendor.sh >/dev/null
cargo test --workspace --all-targets --locked "$@"
