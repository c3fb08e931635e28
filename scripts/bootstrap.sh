#!/usr/bin/env bash
# Installs what VoxRelay's local stack and tests need on Debian/Ubuntu, idempotently:
# Debian packages (when root; otherwise prints the one command to run) and the project venv.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(redis-server redis-tools janus espeak-ng iproute2 python3-venv)
VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}

# aws-cdk-lib runs on Node.js (jsii): any node >= 18 on PATH will do, else Debian's.
command -v node >/dev/null 2>&1 || APT_PACKAGES+=(nodejs)

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  if [ "$(id -u)" -eq 0 ]; then
    echo "bootstrap: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    # Debian starts a system redis-server on 6379; the stack runs its own cluster instead.
    systemctl disable --now redis-server >/dev/null 2>&1 || true
  else
    echo "bootstrap: missing Debian packages. Run:" >&2
    echo "  sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
fi

if [ ! -x "$VENV/bin/python" ]; then
  echo "bootstrap: creating $VENV"
  "$PYTHON" -m venv "$VENV"
fi
stamp="$VENV/.voxrelay-installed"
want=$(cat pyproject.toml | sha256sum | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "bootstrap: installing Python packages into $VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip 2>&1 | grep -v "^WARNING: Location" || true
  "$VENV/bin/python" -m pip install -q -e '.[dev]' 2>&1 | grep -v "^WARNING: Location" || true
  "$VENV/bin/python" -c "import faster_whisper, aiortc, redis, mangum, aws_lambda_powertools" \
    || { echo "bootstrap: Python install failed" >&2; exit 1; }
  echo "$want" > "$stamp"
fi
