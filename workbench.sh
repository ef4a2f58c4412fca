#!/usr/bin/env bash
# Set up Workbench on a fresh Linux machine (once), then launch it or run its tests.
#   ./workbench.sh            set up and launch the app
#   ./workbench.sh test       set up and run the whole test suite
#   ./workbench.sh cli ARGS   set up and run the headless CLI (workbench train/scan ...)
# Set-up: Qt's system libraries (apt-get, when missing), a virtual environment in .venv,
# and the package with its test extras. Later calls skip what is already done.
set -euo pipefail
cd "$(dirname "$0")"

PYTHON=${PYTHON:-python3}
VENV=.venv
QT_PACKAGES="libegl1 libgl1 libxkbcommon0 libxkbcommon-x11-0 libfontconfig1 libdbus-1-3 \
libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxcb-shape0 libxcb-xinerama0 libxcb-randr0 \
libxcb-render-util0 libxcb-image0 libglib2.0-0 xvfb xauth"
# For the tests only: the run report is rendered in a real headless browser (tests/core/test_report.py).
TEST_PACKAGES="chromium"

install_system_packages() {
    command -v dpkg-query >/dev/null 2>&1 || return 0
    local missing=()
    for pkg in $QT_PACKAGES "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    echo "Installing system packages: ${missing[*]}"
    local sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
}

install_python_packages() {
    if [ ! -x "$VENV/bin/python" ]; then
        echo "Creating the virtual environment in $VENV"
        "$PYTHON" -m venv "$VENV"
    fi
    # Reinstall only when pyproject.toml changed since the last install.
    local stamp="$VENV/.workbench-installed"
    local want
    want=$(sha256sum pyproject.toml | cut -d' ' -f1)
    if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
        echo "Installing Workbench and its dependencies (TensorFlow is large: a few minutes the first time)"
        "$VENV/bin/python" -m pip install -q --upgrade pip
        "$VENV/bin/python" -m pip install -q -e ".[test]"
        echo "$want" > "$stamp"
    fi
}

if [ "${1:-app}" = "test" ]; then install_system_packages $TEST_PACKAGES; else install_system_packages; fi
install_python_packages

case "${1:-app}" in
    app)
        shift || true
        exec "$VENV/bin/python" -m workbench "$@" ;;
    test)
        shift
        "$VENV/bin/python" -m ruff check workbench tests benchmarks
        "$VENV/bin/lint-imports"  # the layering contracts in pyproject.toml (docs/architecture.md)
        # One test process per core, at most 4 (each loads TensorFlow); a file's tests stay together
        # so that its shared fixtures (a trained run) are built once.
        workers=$(nproc 2>/dev/null || echo 2)
        [ "$workers" -gt 4 ] && workers=4
        exec env QT_QPA_PLATFORM=offscreen "$VENV/bin/python" -m pytest -n "$workers" --dist loadfile "$@" ;;
    cli)
        shift
        exec "$VENV/bin/python" -m workbench "$@" ;;
    *)
        echo "usage: ./workbench.sh [app|test|cli ARGS]" >&2
        exit 2 ;;
esac
