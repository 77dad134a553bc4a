#!/usr/bin/env bash
# Regenerates src/command/valkey-8.1-commands.txt from a running valkey-server 8.1.8's COMMAND
# reply (the unit test `table_matches_valkey_metadata` compares the command table with it).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$(bash scripts/valkey-bin.sh)
port=${PORT:-17999}
dir=$(mktemp -d)
"$bin/valkey-server" --port "$port" --bind 127.0.0.1 --save '' --dir "$dir" --daemonize yes \
    --pidfile "$dir/pid" --logfile "$dir/log"
trap 'kill "$(cat "$dir/pid")" 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 50); do "$bin/valkey-cli" -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
out=src/command/valkey-8.1-commands.txt
{
    echo "# COMMAND of valkey-server 8.1.8: name arity first last step flags (sorted), one command or"
    echo "# subcommand a line. Regenerate with scripts/valkey-command-table.sh."
    python3 - "$port" <<'PY'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"*1\r\n$7\r\nCOMMAND\r\n")
f = s.makefile("rb")
def parse():
    l = f.readline()[:-2]
    t, v = l[:1], l[1:]
    if t in (b"*", b"~", b"%"):
        n = int(v) * (2 if t == b"%" else 1)
        return [parse() for _ in range(n)]
    if t == b"$":
        d = f.read(int(v) + 2)[:-2]
        return d.decode()
    if t == b":":
        return int(v)
    return v.decode()
lines = []
def emit(e):
    lines.append(f"{e[0]} {e[1]} {e[3]} {e[4]} {e[5]} {' '.join(sorted(e[2]))}".rstrip())
    for sub in e[9]:
        emit(sub)
for e in parse():
    emit(e)
print("\n".join(sorted(lines)))
PY
} > "$out"
echo "wrote $(grep -vc '^#' "$out") commands to $out"
