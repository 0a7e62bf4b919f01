#!/usr/bin/env bash
# Fetches llama.cpp's vocab-only GGUFs, tokenizer test vectors and chat templates, which ship
# inside the PyPI sdist of llama-cpp-python 0.3.36, into .cache/ (ignored by git).
# Checks the sdist's sha256; prints the folder holding `models/` on success.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cache="$root/.cache/llama-cpp-python-0.3.36"
want=832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e
sdist="$cache/llama_cpp_python-0.3.36.tar.gz"
out="$cache/models"

if [ -f "$out/.complete" ]; then echo "$out"; exit 0; fi
mkdir -p "$cache"
if [ ! -f "$sdist" ] || [ "$(sha256sum "$sdist" | cut -d' ' -f1)" != "$want" ]; then
  rm -f "$sdist"
  python3 "$root/scripts/fetch_sdist.py" llama-cpp-python 0.3.36 \
    llama_cpp_python-0.3.36.tar.gz "$sdist"
fi
got=$(sha256sum "$sdist" | cut -d' ' -f1)
if [ "$got" != "$want" ]; then
  echo "sha256 mismatch for $sdist: got $got, want $want" >&2
  exit 1
fi
rm -rf "$out" && mkdir -p "$out"
tar -xzf "$sdist" -C "$out" --strip-components=4 \
  "llama_cpp_python-0.3.36/vendor/llama.cpp/models"
touch "$out/.complete"
echo "$out"
