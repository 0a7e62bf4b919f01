#!/usr/bin/env bash
# Hearth beside llama.cpp on the same GGUF files, the same prompt and generation lengths, the
# same machine, in one run: llama.cpp's `llama-bench` built from the llama.cpp vendored in the
# llama-cpp-python 0.3.36 sdist (the one the tests fetch; sha256-checked), on its CPU backend,
# or Vulkan when `glslc` and the Vulkan headers exist, or CUDA when `nvcc` does; Hearth's
# `hearth bench` (release build) on the adapter it picks. Prints, per model: pp and tg tok/s of
# each, the ratios, and Hearth's weight-read GB/s during decode.
#
#   scripts/bench-compare.sh                       # SmolLM2-135M and Qwen2.5-Coder-0.5B, pp512/tg128
#   PP=512 TG=128 scripts/bench-compare.sh A.gguf B.gguf
#   BACKEND=cpu scripts/bench-compare.sh ...       # force llama.cpp's CPU backend
#
# Hearth's adapter is printed as Hearth reports it; a software adapter (lavapipe, llvmpipe,
# WARP) is labelled "software, not a GPU", whatever the llama.cpp backend is.
# Needs: a C/C++ compiler and cmake (installed through apt, or pip when apt is unavailable),
# network for the first sdist download (cached under .cache/ afterwards).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
pp=${PP:-512} tg=${TG:-128} reps=${REPS:-1}
jobs=$(nproc)

# --- llama.cpp source, from the sdist the tests already fetch --------------------------------
cache="$root/.cache/llama-cpp-python-0.3.36"
sdist="$cache/llama_cpp_python-0.3.36.tar.gz"
want=832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e
src="$cache/llama.cpp"
if [ ! -f "$src/.complete" ]; then
  mkdir -p "$cache"
  if [ ! -f "$sdist" ] || [ "$(sha256sum "$sdist" | cut -d' ' -f1)" != "$want" ]; then
    rm -f "$sdist"
    python3 scripts/fetch_sdist.py llama-cpp-python 0.3.36 llama_cpp_python-0.3.36.tar.gz "$sdist"
  fi
  got=$(sha256sum "$sdist" | cut -d' ' -f1)
  [ "$got" = "$want" ] || { echo "sha256 mismatch for $sdist: $got" >&2; exit 1; }
  rm -rf "$src" && mkdir -p "$src"
  tar -xzf "$sdist" -C "$src" --strip-components=3 "llama_cpp_python-0.3.36/vendor/llama.cpp"
  touch "$src/.complete"
fi

# --- cmake ----------------------------------------------------------------------------------
if ! command -v cmake >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1; then
    sudo_cmd=""; [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
    $sudo_cmd apt-get install -y -qq --no-install-recommends cmake >&2 ||
      python3 -m pip install --quiet --user cmake >&2
  else
    python3 -m pip install --quiet --user cmake >&2
  fi
  export PATH="$HOME/.local/bin:$PATH"
fi

# --- llama-bench, one build per backend ------------------------------------------------------
backend=${BACKEND:-}
if [ -z "$backend" ]; then
  if command -v nvcc >/dev/null 2>&1; then backend=cuda
  elif command -v glslc >/dev/null 2>&1 && [ -e /usr/include/vulkan/vulkan.h ]; then backend=vulkan
  else backend=cpu
  fi
fi
case "$backend" in
  cpu) flags=() ;;
  vulkan) flags=(-DGGML_VULKAN=ON) ;;
  cuda) flags=(-DGGML_CUDA=ON) ;;
  *) echo "BACKEND must be cpu, vulkan or cuda" >&2; exit 2 ;;
esac
build="$src/build-$backend"
if [ ! -x "$build/bin/llama-bench" ]; then
  echo "== building llama-bench ($backend, $jobs jobs)" >&2
  cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=Release -DLLAMA_CURL=OFF \
    -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF \
    -DLLAMA_BUILD_TOOLS=ON "${flags[@]}" >&2
  cmake --build "$build" --target llama-bench -j "$jobs" >&2
fi
llama_bench="$build/bin/llama-bench"

# --- Hearth ---------------------------------------------------------------------------------
cargo build --release --locked --bin hearth >&2
hearth="$root/target/release/hearth"

if [ $# -eq 0 ]; then
  models_dir=$(scripts/fetch-real-models.sh | tail -1)
  set -- "$models_dir/SmolLM2-135M-Instruct.Q4_1.gguf" "$models_dir/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"
fi

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
i=0
for m in "$@"; do
  i=$((i + 1))
  echo "== $(basename "$m"): llama.cpp ($backend)" >&2
  "$llama_bench" -m "$m" -p "$pp" -n "$tg" -r "$reps" -t "$jobs" -o json > "$out/llama-$i.json"
  echo "== $(basename "$m"): hearth" >&2
  "$hearth" bench --model "$m" --prompt-tokens "$pp" --gen-tokens "$tg" --reps "$reps" --json \
    > "$out/hearth-$i.json"
done

python3 - "$out" "$backend" "$pp" "$tg" "$@" <<'EOF'
import json, os, sys
out, backend, pp, tg, models = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5:]
SOFTWARE = ("llvmpipe", "lavapipe", "swiftshader", "warp", "microsoft basic render")
rows = []
for i, m in enumerate(models, 1):
    ll = json.load(open(os.path.join(out, f"llama-{i}.json")))
    h = json.load(open(os.path.join(out, f"hearth-{i}.json")))
    l_pp = next(r["avg_ts"] for r in ll if r.get("n_prompt", 0) > 0 and r.get("n_gen", 0) == 0)
    l_tg = next(r["avg_ts"] for r in ll if r.get("n_gen", 0) > 0 and r.get("n_prompt", 0) == 0)
    adapter = h.get("adapter", "?")
    software = any(s in adapter.lower() for s in SOFTWARE)
    rows.append((os.path.basename(m), l_pp, l_tg, h["pp_tok_s"], h["tg_tok_s"],
                 h.get("tg_weight_read_gb_s", 0.0), adapter, software))
print(f"llama.cpp backend: {backend}; pp{pp} / tg{tg}")
for r in rows[:1]:
    kind = "software, not a GPU" if r[7] else "GPU"
    print(f"Hearth adapter: {r[6]} ({kind})")
print(f"{'model':44} {'llama pp':>9} {'llama tg':>9} {'hearth pp':>10} {'hearth tg':>10} {'pp ratio':>9} {'tg ratio':>9} {'hearth GB/s':>11}")
for name, lpp, ltg, hpp, htg, gbs, _, _ in rows:
    print(f"{name[:44]:44} {lpp:9.1f} {ltg:9.1f} {hpp:10.1f} {htg:10.2f} {hpp / lpp:9.3f} {htg / ltg:9.3f} {gbs:11.2f}")
print("ratios: Hearth ÷ llama.cpp (1.0 = as fast). GB/s: Hearth's weight bytes read per second of decode.")
EOF
