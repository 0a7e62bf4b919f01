#!/usr/bin/env bash
# Builds the Hearth desktop app and its Linux installers (.deb, .rpm) with the Tauri CLI.
# Installs the system packages Tauri needs on Debian/Ubuntu when they are missing.
# Output: target/release/bundle/{deb,rpm}/ (and the binary target/release/hearth-desktop), with
# the built-in model bundled (scripts/fetch-builtin-model.sh).
#   scripts/build-app.sh            # deb + rpm
#   scripts/build-app.sh deb        # only the .deb
#   scripts/build-app.sh none       # only the binary
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

packages=(libwebkit2gtk-4.1-dev libgtk-3-dev librsvg2-dev libayatana-appindicator3-dev
  build-essential pkg-config libssl-dev file patchelf)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "build-app: installing ${missing[*]}" >&2
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# The UI's dependencies (tauri build runs `npm run build` in ui/ itself) and the Tauri CLI.
(cd ui && npm ci --ignore-scripts --no-audit --no-fund)
(cd src-tauri && npm ci --ignore-scripts --no-audit --no-fund)

bundles=${*:-deb rpm}
# Never AppImage: it downloads AppRun and linuxdeploy at build time.
if [ "$bundles" = none ]; then
  bundle_args=(--no-bundle)
else
  bundle_args=(--bundles "${bundles// /,}")
fi
# The built-in model (SmolLM2-135M-Instruct, sha256-checked) and its licence, bundled as
# resources under builtin/ by the extra config; `cargo build` alone makes an app without it.
./scripts/fetch-builtin-model.sh
# The Tauri CLI reads CI as its --ci flag and accepts only true/false there.
(cd src-tauri && { [ -z "${CI:-}" ] || export CI=true; } &&
  npx tauri build --config tauri.builtin.conf.json "${bundle_args[@]}" -- --locked)

# cargo (and so tauri) builds under CARGO_TARGET_DIR when it is set.
target_dir=${CARGO_TARGET_DIR:-$root/target}
echo "build-app: binary  $target_dir/release/hearth-desktop"
for f in "$target_dir"/release/bundle/deb/*.deb "$target_dir"/release/bundle/rpm/*.rpm; do
  if [ -e "$f" ]; then echo "build-app: package $f"; fi
done
