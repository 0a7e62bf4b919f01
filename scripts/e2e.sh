#!/usr/bin/env bash
# End-to-end tests of the desktop app as a user meets it:
#  1. the release app under Xvfb, driven through tauri-driver + WebKitWebDriver (WebdriverIO),
#     by e2e/*.test.mjs with `node --test` (first run, load the stories260K fixture, streaming,
#     KV reuse on the second turn, restart, broken GGUF, the built-in model);
#  2. the .deb installed with apt (the built-in model and its licence in it), the installed
#     binary launched under Xvfb, then driven to start the built-in model and answer a question
#     (e2e/installed.mjs).
# Screenshots go to target/e2e-shots/ and their paths are printed.
#   scripts/e2e.sh            # both
#   HEARTH_E2E_SKIP_DEB=1 scripts/e2e.sh   # only the WebDriver tests
# It builds the app and its installers first (scripts/build-app.sh deb rpm).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
# Where cargo (and so `tauri build`) puts the app and its bundles: CARGO_TARGET_DIR when set.
target_dir=${CARGO_TARGET_DIR:-$root/target}
shots=$root/target/e2e-shots
export HEARTH_SHOTS=$shots
export HEARTH_FIXTURES=${HEARTH_FIXTURES:-$root/../shared/fixtures}
mkdir -p "$shots" && rm -f "$shots"/*.png

sudo_cmd=""
[ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
packages=(xvfb xauth webkit2gtk-driver imagemagick mesa-vulkan-drivers)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "e2e: installing ${missing[*]}" >&2
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
export PATH="$HOME/.cargo/bin:$PATH"
if ! command -v tauri-driver >/dev/null 2>&1; then
  cargo install tauri-driver --version 2.1.0 --locked
fi

# Always (re)build: cargo makes it a no-op when nothing changed, and a stale app or .deb would
# test old code. HEARTH_E2E_NO_BUILD=1 tests what target/release holds.
app=$target_dir/release/hearth-desktop
[ -n "${HEARTH_E2E_NO_BUILD:-}" ] || ./scripts/build-app.sh deb rpm
(cd e2e && npm ci --ignore-scripts --no-audit --no-fund)

# A private home for the app's data (XDG_DATA_HOME/app.hearth.desktop/hearth.db).
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
export XDG_DATA_HOME=$scratch/data XDG_CONFIG_HOME=$scratch/config XDG_CACHE_HOME=$scratch/cache
export XDG_RUNTIME_DIR=$scratch/run
mkdir -p "$XDG_DATA_HOME" "$XDG_RUNTIME_DIR" && chmod 700 "$XDG_RUNTIME_DIR"
export HEARTH_APP=$app
# Where a test queues the path the app's "Open a GGUF model…" returns (the native dialog cannot
# be driven through WebDriver; see e2e/helpers.mjs).
export HEARTH_TEST_PICK_FILE=$scratch/next-pick

status=0
xvfb-run -a -s "-screen 0 1280x900x24" bash -c '
  tauri-driver --port 4444 > "$HEARTH_SHOTS/tauri-driver.log" 2>&1 &
  driver=$!
  for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/4444) 2>/dev/null && break; sleep 0.2; done
  cd e2e && node --test --test-concurrency=1 ./*.test.mjs
  rc=$?
  kill $driver 2>/dev/null; wait $driver 2>/dev/null
  exit $rc
' || status=$?

if [ -z "${HEARTH_E2E_SKIP_DEB:-}" ]; then
  deb=$(ls -t "$target_dir"/release/bundle/deb/*.deb | head -1)
  echo "e2e: installing $deb with apt"
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --reinstall "$deb"
  installed=$(dpkg -L hearth | grep -E '^/usr/bin/' | head -1)
  echo "e2e: installed binary $installed; desktop entry $(dpkg -L hearth | grep '\.desktop$' | head -1)"
  # The built-in model and its licence are in the package, byte for byte.
  builtin=$(dpkg -L hearth | grep '/builtin/SmolLM2-135M-Instruct.Q4_1.gguf$' | head -1)
  licence=$(dpkg -L hearth | grep '/builtin/LICENSE-SmolLM2.txt$' | head -1)
  if [ -n "$builtin" ] && [ -n "$licence" ] && grep -q "Apache License" "$licence" &&
    [ "$(sha256sum "$builtin" | cut -d' ' -f1)" = b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53 ]; then
    echo "# pass installed-deb-builtin-model ($builtin)"
  else
    echo "# fail installed-deb-builtin-model (model '${builtin:-missing}', licence '${licence:-missing}')"
    status=1
  fi
  rm -rf "$XDG_DATA_HOME"/*
  unset HEARTH_TEST_PICK_FILE
  xvfb-run -a -s "-screen 0 1280x900x24" bash -c '
    "$0" > "$XDG_RUNTIME_DIR/installed.log" 2>&1 &
    pid=$!
    sleep 12
    if ! kill -0 $pid 2>/dev/null; then echo "e2e: the installed app exited early:"; cat "$XDG_RUNTIME_DIR/installed.log"; exit 1; fi
    import -window root "$1/07-installed-deb.png"
    kill $pid; wait $pid 2>/dev/null
    # A window that rendered has text, icons and a theme: many colours. A blank or black
    # screen has one or two.
    colours=$(identify -format "%k" "$1/07-installed-deb.png")
    echo "e2e: the screenshot of the installed app has $colours colours"
    [ "$colours" -ge 64 ] || { echo "e2e: the installed app did not render"; exit 1; }
    exit 0
  ' "$installed" "$shots" && echo "# pass installed-deb-launch" || { echo "# fail installed-deb-launch"; status=1; }

  # The installed app, driven like the build tree's: start the built-in model, ask one question.
  rm -rf "$XDG_DATA_HOME"/*
  HEARTH_APP=$installed xvfb-run -a -s "-screen 0 1280x900x24" bash -c '
    tauri-driver --port 4444 > "$HEARTH_SHOTS/tauri-driver-installed.log" 2>&1 &
    driver=$!
    for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/4444) 2>/dev/null && break; sleep 0.2; done
    cd e2e && node --test installed.mjs
    rc=$?
    kill $driver 2>/dev/null; wait $driver 2>/dev/null
    exit $rc
  ' || status=$?
fi

echo "e2e: app and driver log: $shots/tauri-driver.log"
echo "e2e: screenshots:"
ls -1 "$shots"/*.png 2>/dev/null | sed 's/^/  /'
exit $status
