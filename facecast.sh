#!/usr/bin/env bash
# facecast on a fresh Debian/Ubuntu machine, in one command:
#   ./facecast.sh serve      set everything up (once), then serve the default avatar
#   ./facecast.sh test       set everything up (once), then run the test suite
#   ./facecast.sh setup      only set up
#   ./facecast.sh <cmd> ...  any `facecast` command inside the project's venv
set -euo pipefail
cd "$(dirname "$0")"
ROOT=$(pwd)
VENV="$ROOT/.venv"
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null 2>&1 || PY=python3

APT_PACKAGES=(chromium espeak-ng libespeak-ng1 flite festival festvox-us-slt-hts festvox-kallpc16k
              festlex-cmu sox ffmpeg libgl1 libglib2.0-0 coturn libportaudio2 xvfb)

install_system() {
  local missing=()
  for p in "${APT_PACKAGES[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "[facecast] installing system packages: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "[facecast] please install these system packages first (as root): ${missing[*]}" >&2
    exit 1
  fi
}

# The VR client's three.js (clients/vr/package.json, pinned by its package-lock.json) from npm,
# into clients/vr/node_modules (not committed; served at /vr/node_modules/three/).
setup_vr_client() {
  local lock="clients/vr/package-lock.json" stamp="clients/vr/node_modules/.facecast-lock"
  if [ -f "$stamp" ] && cmp -s "$lock" "$stamp"; then return 0; fi
  if ! command -v npm >/dev/null 2>&1; then   # (any Node.js with npm will do, e.g. NodeSource's)
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      echo "[facecast] installing nodejs and npm (the VR client's three.js comes from npm)"
      apt-get update -qq
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
    else
      echo "[facecast] please install Node.js with npm first: the VR client's three.js comes from npm" >&2
      exit 1
    fi
  fi
  echo "[facecast] installing three.js for the VR client (npm ci in clients/vr)"
  npm ci --prefix clients/vr --no-audit --no-fund --loglevel=error
  cp "$lock" "$stamp"
}

setup() {
  install_system
  setup_vr_client
  local stamp="$VENV/.facecast-setup" want
  want=$(cat pyproject.toml facecast.sh | sha256sum | cut -d' ' -f1)
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then return 0; fi
  echo "[facecast] creating the Python environment in .venv (first time takes a few minutes)"
  [ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
  "$VENV/bin/pip" install -q --upgrade pip
  # torch first, pinned exactly: this version has a local CPU build; anything else pulls CUDA wheels.
  "$VENV/bin/pip" install -q torch==2.13.0
  "$VENV/bin/pip" install -q -e ".[dev]"
  # pipecat-ai 0.0.49 (the last on protobuf 4) pins aiohttp/pydantic/Pillow of 2024 for its service
  # plugins; its core needs none of them at those versions: install it alone (deps are in `dev`).
  "$VENV/bin/pip" install -q --no-deps pipecat-ai==0.0.49
  echo "$want" > "$stamp"
}

cmd=${1:-serve}
[ $# -gt 0 ] && shift
case "$cmd" in
  setup) setup ;;
  serve) setup; exec "$VENV/bin/facecast" serve "$@" ;;
  test)  setup; exec "$VENV/bin/python" -m pytest -q "$@" ;;
  *)     setup; exec "$VENV/bin/facecast" "$cmd" "$@" ;;
esac
