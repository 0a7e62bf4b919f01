#!/usr/bin/env bash
# Runs every test: installs what is missing, fetches llama.cpp's vendored tokenizer vectors and
# chat templates (sha256-checked), then
#   1. the core's Rust test suite (fixture tests read ../shared/fixtures or $HEARTH_FIXTURES; with
#      CI set they fail instead of skipping),
#   2. the UI's svelte-check and Vitest,
#   3. the desktop app: release build with its .deb/.rpm, end-to-end tests under Xvfb
#      (scripts/e2e.sh: WebDriver tests + the installed .deb), then the shell crate's own tests.
# HEARTH_TEST_CORE_ONLY=1 stops after step 2 (for quick local runs; CI runs everything).
# Extra arguments go to the core's `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/.."
started=$SECONDS
step() { echo "== $1 (at $((SECONDS - started)) s)"; }
source scripts/setup.sh
./scripts/fetch-llama-vendor.sh >/dev/null
HEARTH_REAL_MODELS=$(./scripts/fetch-real-models.sh); export HEARTH_REAL_MODELS

step "core: cargo test"
cargo test --workspace --exclude hearth-desktop --all-targets --locked "$@"

step "ui: svelte-check and Vitest"
(cd ui && npm ci --ignore-scripts --no-audit --no-fund && npm run check && npm test)

if [ -n "${HEARTH_TEST_CORE_ONLY:-}" ]; then
  echo "== HEARTH_TEST_CORE_ONLY set: desktop build and end-to-end tests skipped"
  exit 0
fi

step "desktop: release build, .deb/.rpm, end-to-end tests"
./scripts/e2e.sh

# Release profile with the features `tauri build` used, so the app's compiled dependencies are
# reused instead of building the whole graph again in the test profile.
step "desktop: shell crate tests"
cargo test --release --locked -p hearth-desktop --features tauri/custom-protocol
step "all tests passed"
