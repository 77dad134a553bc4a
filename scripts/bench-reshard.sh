#!/usr/bin/env bash
# Resharding benchmark: moves 1000 hash slots (0-999) holding KEYS keys (default 2M, about
# 1 GB of values) from one primary to another, on two clusters of 3 primaries side by side:
#
#   peer      valkey-server 8.1.8 (PEER=valkey, the default) or Debian's redis-server 7.0
#             (PEER=redis), moved with its own `valkey-cli|redis-cli --cluster reshard`
#             (MIGRATE, the legacy path; the CLI takes the source's first 1000 slots, 0-999)
#   rockslot  rockslot-server, moved with `CLUSTER MIGRATESLOTS SLOTSRANGE 0 999 NODE <dst>`
#             (atomic slot migration), polled with CLUSTER GETSLOTMIGRATIONS every 50 ms;
#             ROCKSLOT_MOVE=cli uses `rockslot-cli --cluster reshard` instead, and
#             ROCKSLOT_MOVE=legacy the peer's own CLI reshard (the same legacy path as the peer)
#
# Each move is timed from its start until the target owns slots 0-999 (in its own and the
# source's view) and the move reports done. Then: CLUSTER COUNTKEYSINSLOT over 0-999 sums to
# KEYS on the target and to 0 on the source, and a sample of keys reads back the same value
# from both targets. Prints seconds, keys/s, MB/s (value bytes / s, MB = 10^6 bytes), the
# rockslot/peer speed ratio and the RSS of every server process.
#
# Both servers persist with appendfsync everysec (redis: AOF on, RDB snapshots off), password
# "valkey", loopback ports from a random free base in 20000-29000, data in a temporary
# directory that is removed on exit (KEEP=1 keeps it, with the server logs).
#
# Environment:
#   KEYS           keys to load and move (default 2000000)
#   VALUE_SIZE     bytes per value, random base64 text (default 500)
#   PEER           valkey (default) or redis
#   ROCKSLOT_MOVE  native (default), cli or legacy
#   MOVE_TIMEOUT   seconds one move may take (default 1800)
#   KEEP           1 = keep the temporary directory
#   CARGO_TARGET_DIR  where the release binaries are (default ~/.cache/rockslot-target);
#                  this script does not build
#
# Afterwards the moved slots are backed up from the rockslot target with `rockslot-cli --cluster
# backup`, the target is emptied and the backup restored (`--cluster restore`): MB/s of both.
#
# Quick smoke test:  KEYS=100000 scripts/bench-reshard.sh
set -euo pipefail
cd "$(dirname "$0")/.."

usage() {
    # The header comment above, without its "# ".
    awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"
}
case "${1:-}" in
    -h | --help | help) usage; exit 0 ;;
    "") ;;
    *) echo "bench-reshard.sh: no arguments expected (see --help)" >&2; exit 2 ;;
esac

die() { echo "bench-reshard.sh: $*" >&2; exit 1; }
say() { echo "bench-reshard.sh: $*" >&2; }

KEYS="${KEYS:-2000000}"
VALUE_SIZE="${VALUE_SIZE:-500}"
ROCKSLOT_MOVE="${ROCKSLOT_MOVE:-native}"
MOVE_TIMEOUT="${MOVE_TIMEOUT:-1800}"
SLOTS=1000          # slots 0..SLOTS-1 hold the data and are moved
PASS=valkey
START_TIMEOUT=30    # seconds for a node to answer PING
FORM_TIMEOUT=60     # seconds for cluster_state:ok on all nodes
LOAD_TIMEOUT=1200   # seconds for loading one cluster
SETTLE_TIMEOUT=60   # seconds to wait for the servers to go idle after loading
STOP_TIMEOUT=20     # seconds for a server to exit after SIGTERM

[[ "$KEYS" =~ ^[0-9]+$ ]] && [ "$KEYS" -ge "$SLOTS" ] || die "KEYS must be a number >= $SLOTS"
[[ "$VALUE_SIZE" =~ ^[0-9]+$ ]] && [ "$VALUE_SIZE" -ge 1 ] || die "VALUE_SIZE must be >= 1"
[[ "$MOVE_TIMEOUT" =~ ^[0-9]+$ ]] || die "MOVE_TIMEOUT must be a number of seconds"
case "$ROCKSLOT_MOVE" in native | cli | legacy) ;; *) die "ROCKSLOT_MOVE must be native, cli or legacy" ;; esac
PEER="${PEER:-valkey}"
case "$PEER" in valkey | redis) ;; *) die "PEER must be valkey or redis" ;; esac

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/rockslot-target}"
BIN="$CARGO_TARGET_DIR/release"
[ -x "$BIN/rockslot-server" ] || die "no $BIN/rockslot-server; build it (cargo build --release --bins)"
if [ "$ROCKSLOT_MOVE" = cli ]; then
    [ -x "$BIN/rockslot-cli" ] || die "no $BIN/rockslot-cli; build it (cargo build --release --bins)"
fi
if [ "$PEER" = valkey ]; then
    VK_DIR="$(bash scripts/valkey-bin.sh)" || die "needs valkey-server 8.1.8 (scripts/setup.sh)"
    REDIS_SERVER="$VK_DIR/valkey-server"
    REDIS_CLI="$VK_DIR/valkey-cli"
else
    REDIS_SERVER=/usr/bin/redis-server
    REDIS_CLI=/usr/bin/redis-cli
fi
[ -x "$REDIS_SERVER" ] && [ -x "$REDIS_CLI" ] || die "needs $REDIS_SERVER and $REDIS_CLI"
command -v python3 >/dev/null || die "needs python3"
python3 -c 'import redis' 2>/dev/null || die "needs the python3 redis module (redis-py)"
command -v ss >/dev/null || die "needs ss (iproute2)"

TMP="$(mktemp -d "${TMPDIR:-/tmp}/rockslot-bench-reshard.XXXXXX")"
PIDS=()
cleanup() {
    local rc=$? pid deadline
    trap - EXIT INT TERM
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    deadline=$((SECONDS + STOP_TIMEOUT))
    for pid in "${PIDS[@]}"; do
        while kill -0 "$pid" 2>/dev/null; do
            if [ "$SECONDS" -ge "$deadline" ]; then
                kill -KILL "$pid" 2>/dev/null || true
                break
            fi
            sleep 0.1
        done
        wait "$pid" 2>/dev/null || true
    done
    if [ "${KEEP:-0}" = 1 ]; then
        say "kept $TMP (logs: */server.log, *-reshard.log)"
    else
        rm -rf "$TMP"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------------------------------------
# Python helper: key/tag generation, cluster polling, timed moves, verification.
cat >"$TMP/helper.py" <<'PY'
import base64, itertools, os, random, subprocess, sys, time
import redis

PASS = "valkey"
SLOTS = int(os.environ["SLOTS"])
NSLOTS = 16384

def fail(msg):
    print(f"bench-reshard.sh: {msg}", file=sys.stderr)
    sys.exit(1)

def conn(port, timeout=30):
    return redis.Redis(host="127.0.0.1", port=int(port), password=PASS,
                       socket_timeout=timeout, socket_connect_timeout=5)

# CRC16-XMODEM (poly 0x1021, init 0), the cluster key hash.
_T = []
for i in range(256):
    c = i << 8
    for _ in range(8):
        c = ((c << 1) ^ 0x1021) if c & 0x8000 else (c << 1)
    _T.append(c & 0xFFFF)

def crc16(b):
    c = 0
    for x in b:
        c = ((c << 8) & 0xFFFF) ^ _T[((c >> 8) ^ x) & 0xFF]
    return c

assert crc16(b"123456789") == 0x31C3

def tags():
    """tags()[s] is a short string whose hash slot is s, for s in 0..SLOTS-1."""
    out = {}
    alpha = b"abcdefghijklmnopqrstuvwxyz0123456789"
    n = 0
    while len(out) < SLOTS:
        n += 1
        for t in itertools.product(alpha, repeat=n):
            t = bytes(t)
            s = crc16(t) % NSLOTS
            if s < SLOTS and s not in out:
                out[s] = t
                if len(out) == SLOTS:
                    break
    return [out[s] for s in range(SLOTS)]

def key(tg, i):
    return b"{" + tg[i % SLOTS] + b"}:" + str(i).encode()

def gen(path, n, size):
    """Writes SET commands (RESP) for keys 0..n-1 with random base64 values to path."""
    tg = tags()
    raw = (size * 3 + 3) // 4 + 3
    hdr = b"$%d\r\n" % size
    batch = 20000
    with open(path, "wb", buffering=1 << 22) as f:
        for start in range(0, n, batch):
            m = min(batch, n - start)
            blob = base64.b64encode(os.urandom(raw * m))
            step = len(blob) // m
            parts = []
            for j in range(m):
                k = key(tg, start + j)
                v = blob[j * step: j * step + size]
                parts.append(b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n%s%s\r\n" % (len(k), k, hdr, v))
            f.write(b"".join(parts))

def nodes_view(port):
    """{node id: set of owned slots} and the own id, from CLUSTER NODES on port."""
    text = conn(port).execute_command("CLUSTER", "NODES")
    if isinstance(text, bytes):
        text = text.decode()
    owners, me = {}, None
    for line in text.splitlines():
        f = line.split()
        if len(f) < 8:
            continue
        if "myself" in f[2].split(","):
            me = f[0]
        owned = set()
        for r in f[8:]:
            if r.startswith("["):
                continue
            a, _, b = r.partition("-")
            owned.update(range(int(a), int(b or a) + 1))
        owners[f[0]] = owned
    return owners, me

MOVED = set(range(SLOTS))

def owned_by_target(src, dst):
    """True when dst owns every moved slot in its own view and in the source's view."""
    d, did = nodes_view(dst)
    s, sid = nodes_view(src)
    return MOVED <= d.get(did, set()) and MOVED <= s.get(did, set()) and not (MOVED & s.get(sid, set()))

def wait_ok(ports, timeout):
    deadline = time.monotonic() + timeout
    pending = list(ports)
    while pending:
        p = pending[0]
        try:
            info = conn(p).execute_command("CLUSTER", "INFO")
            if isinstance(info, bytes):
                info = info.decode()
            if "cluster_state:ok" in info:
                pending.pop(0)
                continue
        except redis.RedisError:
            pass
        if time.monotonic() > deadline:
            fail(f"cluster_state is not ok on port {p} after {timeout}s")
        time.sleep(0.1)

def jobs(port):
    rows = conn(port).execute_command("CLUSTER", "GETSLOTMIGRATIONS")
    out = []
    for row in rows or []:
        if isinstance(row, dict):
            items = list(row.items())
        else:
            items = list(zip(row[0::2], row[1::2]))
        d = {}
        for k, v in items:
            k = k.decode() if isinstance(k, bytes) else str(k)
            d[k] = v.decode() if isinstance(v, bytes) else v
        out.append(d)
    return out

def wait_owned(src, dst, deadline):
    while True:
        try:
            if owned_by_target(src, dst):
                return
        except redis.RedisError:
            pass
        if time.monotonic() > deadline:
            fail(f"node {dst} does not own slots 0-{SLOTS - 1} (timeout)")
        time.sleep(0.05)

def move(src, dst, dst_id, timeout, log, cmd):
    """Runs one move and prints its seconds. cmd: the argv of a CLI move, or [] for the native
    CLUSTER MIGRATESLOTS + GETSLOTMIGRATIONS polling."""
    timeout = float(timeout)
    c = conn(src)
    before = {j.get("name") for j in jobs(src)} if not cmd else set()
    with open(log, "ab") as out:
        t0 = time.monotonic()
        deadline = t0 + timeout
        if cmd:
            try:
                r = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, timeout=timeout)
            except subprocess.TimeoutExpired:
                fail(f"move did not finish within {timeout:.0f}s: {' '.join(cmd)}")
            if r.returncode != 0:
                fail(f"move failed (exit {r.returncode}), see {log}: {' '.join(cmd)}")
        else:
            r = c.execute_command("CLUSTER", "MIGRATESLOTS", "SLOTSRANGE", 0, SLOTS - 1,
                                  "NODE", dst_id)
            if r not in (True, b"OK", "OK"):
                fail(f"CLUSTER MIGRATESLOTS replied {r!r}")
            job, polls = None, 0
            while True:
                polls += 1
                mine = [j for j in jobs(src)
                        if j.get("name") not in before and j.get("operation") == "EXPORT"]
                if mine:
                    job = max(mine, key=lambda j: j.get("create_time", 0))
                    st = job.get("state")
                    if st == "success":
                        break
                    if st in ("failed", "cancelled"):
                        fail(f"migration {job.get('name')} {st}: {job.get('message')!r}")
                if time.monotonic() > deadline:
                    fail(f"migration not done after {timeout:.0f}s; last GETSLOTMIGRATIONS "
                         f"entry: {job!r}")
                time.sleep(0.05)
            out.write(f"{job!r}\npolls: {polls}\n".encode())
        done = time.monotonic() - t0
        wait_owned(src, dst, deadline)
        secs = time.monotonic() - t0
        out.write(f"move reported done after {done:.3f} s, target owns the slots after "
                  f"{secs:.3f} s\n".encode())
    print(f"{secs:.3f}")

def countkeys(port):
    p = conn(port, 120).pipeline(transaction=False)
    for s in range(SLOTS):
        p.execute_command("CLUSTER", "COUNTKEYSINSLOT", s)
    return sum(int(x) for x in p.execute())

def verify(src, dst, n):
    n = int(n)
    on_dst, on_src = countkeys(dst), countkeys(src)
    if on_dst != n or on_src != 0:
        fail(f"after the move: {on_dst} keys in slots 0-{SLOTS - 1} on the target "
             f"(want {n}), {on_src} on the source (want 0)")
    print(on_dst)

def crosscheck(rd_dst, rs_dst, rs_src, n, size, samples=500):
    """The same sampled keys read back identical values of the right size from both
    targets, and the rockslot source answers MOVED for them."""
    n, size = int(n), int(size)
    tg = tags()
    rnd = random.Random(42)
    idx = [rnd.randrange(n) for _ in range(samples)] + [0, n - 1]
    ks = [key(tg, i) for i in idx]
    rd, rs = conn(rd_dst).pipeline(False), conn(rs_dst).pipeline(False)
    for k in ks:
        rd.get(k)
        rs.get(k)
    va, vb = rd.execute(), rs.execute()
    for k, x, y in zip(ks, va, vb):
        if x is None or y is None or x != y or len(x) != size:
            fail(f"key {k!r}: redis target has {None if x is None else len(x)} bytes, "
                 f"rockslot target {None if y is None else len(y)} bytes, equal: {x == y}")
    try:
        conn(rs_src).get(ks[0])
        fail(f"rockslot source still serves {ks[0]!r} after the move")
    except redis.ResponseError as e:
        # redis-py raises MovedError for "MOVED <slot> <addr>" and strips the word
        moved = isinstance(e, redis.exceptions.MovedError) or str(e).startswith("MOVED")
        if not moved or not str(e).endswith(f":{rs_dst}"):
            fail(f"rockslot source: GET {ks[0]!r} -> {type(e).__name__} {e}")
    print(len(ks))

cmd, args = sys.argv[1], sys.argv[2:]
if cmd == "gen":
    gen(args[0], int(args[1]), int(args[2]))
elif cmd == "wait-ok":
    wait_ok(args[1:], float(args[0]))
elif cmd == "owns":
    # port: exits 0 when the node on port owns slots 0..SLOTS-1 in its own view
    v, me = nodes_view(args[0])
    sys.exit(0 if MOVED <= v.get(me, set()) else 1)
elif cmd == "move":
    sep = args.index("--")
    move(*args[:sep], args[sep + 1:])
elif cmd == "verify":
    verify(*args)
elif cmd == "crosscheck":
    crosscheck(*args)
else:
    fail(f"helper: unknown command {cmd}")
PY
export SLOTS
helper() { python3 "$TMP/helper.py" "$@"; }

# ---------------------------------------------------------------------------------------------
# Ports: 6 consecutive free client ports with free cluster bus ports (+10000).
ports_in_use="$(ss -ltnH 2>/dev/null | awk '{ n = split($4, a, ":"); print a[n] }' | sort -un)"
port_used() { grep -qx "$1" <<<"$ports_in_use" || (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
BASE=""
for _ in $(seq 200); do
    b=$((20000 + RANDOM % 8990))
    ok=1
    for ((i = 0; i < 6; i++)); do
        if port_used $((b + i)) || port_used $((b + i + 10000)); then ok=0; break; fi
    done
    if [ "$ok" = 1 ]; then BASE=$b; break; fi
done
[ -n "$BASE" ] || die "no 6 free consecutive ports (and bus ports) in 20000-29000"
RD_PORTS=($BASE $((BASE + 1)) $((BASE + 2)))
RS_PORTS=($((BASE + 3)) $((BASE + 4)) $((BASE + 5)))

# ---------------------------------------------------------------------------------------------
# Servers.
declare -A PID_OF
start_redis() {
    local port="$1" dir="$TMP/redis-$1"
    mkdir -p "$dir"
    "$REDIS_SERVER" --port "$port" --bind 127.0.0.1 --daemonize no \
        --cluster-enabled yes --cluster-config-file nodes.conf --cluster-node-timeout 5000 \
        --appendonly yes --appendfsync everysec --save "" --dir "$dir" \
        --requirepass "$PASS" --masterauth "$PASS" --logfile "" \
        >"$dir/server.log" 2>&1 </dev/null &
    PIDS+=($!)
    PID_OF[$port]=$!
}
start_rockslot() {
    local port="$1" dir="$TMP/rockslot-$1"
    mkdir -p "$dir"
    # conf/rockslot.conf's storage sizes; one node per port.
    cat >"$dir/rockslot.conf" <<EOF
bind 127.0.0.1
port $port
dir $dir
cluster-enabled yes
cluster-config-file nodes.conf
cluster-node-timeout 5000
requirepass $PASS
masterauth $PASS
appendfsync everysec
storage-block-cache-size 256mb
storage-write-buffer-size 128mb
logfile ""
EOF
    "$BIN/rockslot-server" "$dir/rockslot.conf" >"$dir/server.log" 2>&1 </dev/null &
    PIDS+=($!)
    PID_OF[$port]=$!
}
log_of() { # port
    if [ -d "$TMP/redis-$1" ]; then echo "$TMP/redis-$1/server.log"; else echo "$TMP/rockslot-$1/server.log"; fi
}
rcli() { "$REDIS_CLI" -h 127.0.0.1 -a "$PASS" --no-auth-warning "$@"; }
wait_ping() {
    local port deadline=$((SECONDS + START_TIMEOUT))
    for port in "$@"; do
        until [ "$(rcli -p "$port" PING 2>/dev/null)" = PONG ]; do
            if ! kill -0 "${PID_OF[$port]}" 2>/dev/null; then
                say "server on port $port exited; log tail:"
                tail -n 20 "$(log_of "$port")" >&2
                exit 1
            fi
            [ "$SECONDS" -lt "$deadline" ] || die "port $port does not answer PING after ${START_TIMEOUT}s"
            sleep 0.1
        done
    done
}
alive() { # ports...: fail with the log tail of any server that died
    local port
    for port in "$@"; do
        if ! kill -0 "${PID_OF[$port]}" 2>/dev/null; then
            say "server on port $port died; log tail:"
            tail -n 30 "$(log_of "$port")" >&2
            exit 1
        fi
    done
}
rss_mib() { awk '/^VmRSS:/ { printf "%.0f", $2 / 1024 }' "/proc/$1/status" 2>/dev/null || echo "?"; }

form() { # name ports...
    local name="$1" p addrs=()
    shift
    for p in "$@"; do addrs+=("127.0.0.1:$p"); done
    rcli --cluster create "${addrs[@]}" --cluster-yes >"$TMP/$name-create.log" 2>&1 \
        || { tail -n 20 "$TMP/$name-create.log" >&2; die "$name: redis-cli --cluster create failed"; }
    helper wait-ok "$FORM_TIMEOUT" "$@"
    helper owns "$1" || die "$name: node $1 does not own slots 0-$((SLOTS - 1)) after create"
}

say "redis :${RD_PORTS[*]}  rockslot :${RS_PORTS[*]}  (temp dir $TMP)"
for p in "${RD_PORTS[@]}"; do start_redis "$p"; done
for p in "${RS_PORTS[@]}"; do start_rockslot "$p"; done
wait_ping "${RD_PORTS[@]}" "${RS_PORTS[@]}"
form redis "${RD_PORTS[@]}"
form rockslot "${RS_PORTS[@]}"
RD_SRC_ID="$(rcli -p "${RD_PORTS[0]}" CLUSTER MYID)"
RD_DST_ID="$(rcli -p "${RD_PORTS[1]}" CLUSTER MYID)"
RS_SRC_ID="$(rcli -p "${RS_PORTS[0]}" CLUSTER MYID)"
RS_DST_ID="$(rcli -p "${RS_PORTS[1]}" CLUSTER MYID)"
for id in "$RD_SRC_ID" "$RD_DST_ID" "$RS_SRC_ID" "$RS_DST_ID"; do
    [[ "$id" =~ ^[0-9a-f]{40}$ ]] || die "CLUSTER MYID replied '$id'"
done
say "both clusters formed (3 primaries each)"

# ---------------------------------------------------------------------------------------------
# Data: the same RESP file into both sources.
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.3f", b - a }'; }
t="$(now)"
helper gen "$TMP/load.resp" "$KEYS" "$VALUE_SIZE"
say "generated $KEYS SET commands ($(du -m "$TMP/load.resp" | cut -f1) MiB of RESP) in $(since "$t") s"

load() { # name port → seconds
    local name="$1" port="$2" t out
    t="$(now)"
    out="$(timeout "$LOAD_TIMEOUT" "$REDIS_CLI" -h 127.0.0.1 -p "$port" -a "$PASS" --no-auth-warning \
        --pipe <"$TMP/load.resp" 2>&1)" || { echo "$out" >&2; alive "$port"; die "$name: loading failed"; }
    LOAD_SECS="$(since "$t")"
    grep -q "errors: 0, replies: $KEYS\$" <<<"$out" || { echo "$out" >&2; die "$name: loading failed"; }
    local n
    n="$(rcli -p "$port" DBSIZE)"
    [ "$n" = "$KEYS" ] || die "$name: DBSIZE is '$n' after loading, want $KEYS"
}
load redis "${RD_PORTS[0]}"
RD_LOAD="$LOAD_SECS"
say "redis: loaded in $RD_LOAD s"
load rockslot "${RS_PORTS[0]}"
RS_LOAD="$LOAD_SECS"
say "rockslot: loaded in $RS_LOAD s"
rm -f "$TMP/load.resp"

# Settle: redis finishes any AOF rewrite the load triggered, and no server burns more than
# 5% of a core for a second (RocksDB flushes and compactions done), so neither move competes
# with leftovers of the load.
cpu_ticks() { # pids... → sum of utime+stime of the processes and their children
    local pid sum=0
    for pid in "$@"; do
        sum=$((sum + $(awk '{ print $14 + $15 + $16 + $17 }' "/proc/$pid/stat" 2>/dev/null || echo 0)))
    done
    echo "$sum"
}
settle() {
    local deadline=$((SECONDS + SETTLE_TIMEOUT)) p a b hz pids=()
    hz="$(getconf CLK_TCK)"
    for p in "${RD_PORTS[@]}" "${RS_PORTS[@]}"; do pids+=("${PID_OF[$p]}"); done
    while [ "$SECONDS" -lt "$deadline" ]; do
        local busy=0
        for p in "${RD_PORTS[@]}"; do
            rcli -p "$p" INFO persistence | grep -Eq '^aof_rewrite_(in_progress|scheduled):1' && busy=1
        done
        a="$(cpu_ticks "${pids[@]}")"
        sleep 1
        b="$(cpu_ticks "${pids[@]}")"
        # 5% of a core per server, over one second
        [ "$busy" = 0 ] && [ $((b - a)) -le $((hz * 5 * ${#pids[@]} / 100)) ] && return 0
    done
    say "servers still busy after ${SETTLE_TIMEOUT}s; measuring anyway"
}
settle
alive "${RD_PORTS[@]}" "${RS_PORTS[@]}"
declare -A RSS_LOAD RSS_MOVE
for p in "${RD_PORTS[@]}" "${RS_PORTS[@]}"; do RSS_LOAD[$p]="$(rss_mib "${PID_OF[$p]}")"; done

# ---------------------------------------------------------------------------------------------
# Moves.
say "$PEER: $(basename "$REDIS_CLI") --cluster reshard, $SLOTS slots ${RD_PORTS[0]} -> ${RD_PORTS[1]} ..."
RD_SECS="$(helper move "${RD_PORTS[0]}" "${RD_PORTS[1]}" "$RD_DST_ID" "$MOVE_TIMEOUT" \
    "$TMP/redis-reshard.log" -- \
    "$REDIS_CLI" -a "$PASS" --no-auth-warning --cluster reshard "127.0.0.1:${RD_PORTS[0]}" \
    --cluster-from "$RD_SRC_ID" --cluster-to "$RD_DST_ID" --cluster-slots "$SLOTS" --cluster-yes)" \
    || { tail -n 20 "$TMP/redis-reshard.log" >&2; alive "${RD_PORTS[@]}"; die "$PEER: move failed"; }
say "$PEER: moved in $RD_SECS s"

if [ "$ROCKSLOT_MOVE" = cli ]; then
    RS_HOW="rockslot-cli reshard"
    RS_CMD=("$BIN/rockslot-cli" -a "$PASS" --no-auth-warning --cluster reshard
        "127.0.0.1:${RS_PORTS[0]}" --cluster-from "$RS_SRC_ID" --cluster-to "$RS_DST_ID"
        --cluster-slots "$SLOTS" --cluster-yes)
elif [ "$ROCKSLOT_MOVE" = legacy ]; then
    RS_HOW="$(basename "$REDIS_CLI") reshard"
    RS_CMD=("$REDIS_CLI" -a "$PASS" --no-auth-warning --cluster reshard
        "127.0.0.1:${RS_PORTS[0]}" --cluster-from "$RS_SRC_ID" --cluster-to "$RS_DST_ID"
        --cluster-slots "$SLOTS" --cluster-yes)
else
    RS_HOW="MIGRATESLOTS"
    RS_CMD=()
fi
say "rockslot: $RS_HOW, $SLOTS slots ${RS_PORTS[0]} -> ${RS_PORTS[1]} ..."
RS_SECS="$(helper move "${RS_PORTS[0]}" "${RS_PORTS[1]}" "$RS_DST_ID" "$MOVE_TIMEOUT" \
    "$TMP/rockslot-reshard.log" -- "${RS_CMD[@]}")" \
    || { tail -n 20 "$TMP/rockslot-reshard.log" >&2; alive "${RS_PORTS[@]}"; die "rockslot: move failed"; }
say "rockslot: moved in $RS_SECS s"

alive "${RD_PORTS[@]}" "${RS_PORTS[@]}"
for p in "${RD_PORTS[@]}" "${RS_PORTS[@]}"; do RSS_MOVE[$p]="$(rss_mib "${PID_OF[$p]}")"; done

# ---------------------------------------------------------------------------------------------
# Verification.
helper verify "${RD_PORTS[0]}" "${RD_PORTS[1]}" "$KEYS" >/dev/null || die "redis: verification failed"
helper verify "${RS_PORTS[0]}" "${RS_PORTS[1]}" "$KEYS" >/dev/null || die "rockslot: verification failed"
n="$(helper crosscheck "${RD_PORTS[1]}" "${RS_PORTS[1]}" "${RS_PORTS[0]}" "$KEYS" "$VALUE_SIZE")" \
    || die "value cross-check failed"
say "verified: $KEYS keys in slots 0-$((SLOTS - 1)) on both targets, 0 on both sources, $n sampled values equal"

# ---------------------------------------------------------------------------------------------
# Summary.
rate() { awk -v n="$1" -v s="$2" 'BEGIN { printf "%.0f", n / s }'; }
mbps() { awk -v n="$1" -v v="$VALUE_SIZE" -v s="$2" 'BEGIN { printf "%.1f", n * v / 1e6 / s }'; }
RATIO="$(awk -v a="$RD_SECS" -v b="$RS_SECS" 'BEGIN { printf "%.2f", a / b }')"
MB="$(awk -v n="$KEYS" -v v="$VALUE_SIZE" 'BEGIN { printf "%.0f", n * v / 1e6 }')"
RD_VER="$PEER $("$REDIS_SERVER" --version | awk '{ sub(/^v=/, "", $3); print $3 }')"

ROW='| %-33s | %9s | %9s | %7s | %7s | %10s |\n'
row() { # label secs load-secs
    printf "$ROW" "$1" "$2" "$(rate "$KEYS" "$2")" "$(mbps "$KEYS" "$2")" "$3" "$(mbps "$KEYS" "$3")"
}
echo
echo "Moving $SLOTS slots: $KEYS keys, ${VALUE_SIZE}-byte values ($MB MB of values), appendfsync everysec"
printf "$ROW" server seconds keys/s MB/s "load s" "load MB/s"
printf '|%s|%s|%s|%s|%s|%s|\n' ----------------------------------- ----------- ----------- \
    --------- --------- ------------
row "$RD_VER ($(basename "$REDIS_CLI") reshard)" "$RD_SECS" "$RD_LOAD"
row "rockslot ($RS_HOW)" "$RS_SECS" "$RS_LOAD"
echo "speed ratio rockslot / $PEER: ${RATIO}x"
echo
echo "RSS (MiB, VmRSS)     after load  after move"
ROLES=(source target other)
for i in 0 1 2; do
    p="${RD_PORTS[$i]}"
    printf '  %-8s %-8s  %10s  %10s\n' "$PEER" "${ROLES[$i]}" "${RSS_LOAD[$p]}" "${RSS_MOVE[$p]}"
done
for i in 0 1 2; do
    p="${RS_PORTS[$i]}"
    printf '  rockslot %-8s  %10s  %10s\n' "${ROLES[$i]}" "${RSS_LOAD[$p]}" "${RSS_MOVE[$p]}"
done

# ---------------------------------------------------------------------------------------------
# Slot backup and restore of the moved slots (rockslot only): back up slots 0-(SLOTS-1) from
# the rockslot target, empty it, restore the backup, and check the keys came back.
say "rockslot: backup of slots 0-$((SLOTS - 1)) ..."
BK="$TMP/backup"
t0="$(date +%s.%N)"
"$BIN/rockslot-cli" -a "$PASS" --no-auth-warning --cluster backup "127.0.0.1:${RS_PORTS[1]}" \
    --out "$BK" --slots "0-$((SLOTS - 1))" >"$TMP/backup.log" 2>&1 \
    || { tail -n 20 "$TMP/backup.log" >&2; die "rockslot: backup failed"; }
BK_SECS="$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.3f", b - a }')"
BK_BYTES="$(du -sb "$BK" | awk '{ print $1 }')"
redis-cli -p "${RS_PORTS[1]}" -a "$PASS" --no-auth-warning FLUSHALL >/dev/null
t0="$(date +%s.%N)"
"$BIN/rockslot-cli" -a "$PASS" --no-auth-warning --cluster restore "127.0.0.1:${RS_PORTS[1]}" \
    --from "$BK" >"$TMP/restore.log" 2>&1 \
    || { tail -n 20 "$TMP/restore.log" >&2; die "rockslot: restore failed"; }
RE_SECS="$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.3f", b - a }')"
helper verify "${RS_PORTS[0]}" "${RS_PORTS[1]}" "$KEYS" >/dev/null || die "rockslot: keys missing after restore"
echo
echo "Slot backup / restore (rockslot-cli, $SLOTS slots, $KEYS keys, $MB MB of values, $((BK_BYTES / 1000000)) MB on disk):"
echo "  backup   $BK_SECS s  $(mbps "$KEYS" "$BK_SECS") MB/s of values"
echo "  restore  $RE_SECS s  $(mbps "$KEYS" "$RE_SECS") MB/s of values (verify, stage, collision check, ingest)"
