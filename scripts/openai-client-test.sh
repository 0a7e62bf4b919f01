#!/usr/bin/env bash
# Runs the official `openai` Python client (from PyPI, in a venv of its own) against a running
# `hearth serve`: models, a chat completion (plain, repeated for cached tokens, streamed), a
# completion, and typed errors. Called by tests/server.rs, which starts the server.
#   scripts/openai-client-test.sh BASE_URL MODEL_ID     (OPENAI_API_KEY set if the server wants one)
# The venv lives in $HEARTH_OPENAI_VENV (default .cache/openai-venv) and is reused.
set -euo pipefail
cd "$(dirname "$0")/.."
base_url=${1:?usage: $0 BASE_URL MODEL_ID}
model=${2:?usage: $0 BASE_URL MODEL_ID}
venv=${HEARTH_OPENAI_VENV:-.cache/openai-venv}
export OPENAI_API_KEY=${OPENAI_API_KEY:-unused}
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import openai" 2>/dev/null; then
  python3 -m venv "$venv"
  if ! "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "openai>=1.40,<3" >&2; then
    echo "cannot install openai from PyPI into $venv" >&2
    exit 1
  fi
fi
"$venv/bin/python" -c "import openai; print('openai', openai.__version__)" >&2
exec "$venv/bin/python" tests/openai_client/check.py "$base_url" "$model"
