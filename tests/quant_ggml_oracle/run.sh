#!/usr/bin/env bash
# Remakes the golden digests in tests/quant_ggml_oracle.rs from ggml's own C code.
# Extracts the reference (de)quantizers of ggml-quants.c from the llama-cpp-python 0.3.36 sdist
# (fetched by scripts/fetch-llama-vendor.sh), compiles them with main.c and prints SHA-256s.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$here/../.."
sdist="$root/.cache/llama-cpp-python-0.3.36/llama_cpp_python-0.3.36.tar.gz"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
tar xzf "$sdist" -C "$work" --wildcards '*/ggml/src/ggml-quants.c'
q="$(find "$work" -name ggml-quants.c)"
# Line ranges of the needed functions in that exact file (0.3.36's vendored llama.cpp).
{ echo '#include "shim.h"'
  sed -n '113,148p;150,300p' "$q"
  sed -n '459,567p;621,998p' "$q" | sed '/^static float make_qkx3_quants/,$d'
  sed -n '1229,1353p;1457,1551p;1644,1756p;1869,1968p' "$q"; } > "$work/ref.c"
cp "$here/shim.h" "$here/main.c" "$work/"
mkdir -p "$work/out"
(cd "$work" && gcc -O2 -std=c11 -w -o oracle main.c -lm && ./oracle && sha256sum out/*)
