//! Lua scripting against valkey-server 8.1.8, byte for byte: a table of scripts covering the
//! conversions, the error texts and positions, the sandbox and SCRIPT; then a seeded generator
//! of scripts that call into every type with errors and pcall, in RESP2 and RESP3 (and with
//! `redis.setresp(3)` inside). Then what users rely on: atomicity under SIGKILL, redis-py's
//! `Lock` and `register_script`, the redis crate's `Script`, and cluster key rules.

use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use rand::{Rng, SeedableRng};

use crate::harness::{assert_same_reply, key_slot, show, Node, RawConn, ToolRun};

/// Scripts whose replies must equal Valkey's (the key `x` holds "a" before each).
const CASES: &[&str] = &[
    "return redis.call('incr','x')",
    "return foo",
    "return redis.call()",
    "return redis.call('nosuch')",
    "x = 1",
    "return 1 +",
    "return redis.pcall('incr','x')",
    "error('boom')",
    "return redis.error_reply('MY bad')",
    "return redis.error_reply('oops')",
    "return redis.error_reply('')",
    "return redis.error_reply('-X y')",
    "return redis.error_reply()",
    "return redis.status_reply('FINE')",
    "return redis.status_reply('')",
    "return {err='x'}",
    "return {err=''}",
    "return {err=1}",
    "return {ok=1, 5}",
    "return {err='a\\r\\nb'}",
    "return {1,2,{3,'a'},nil,5}",
    "return 3.99",
    "return -3.7",
    "return 1e20",
    "return true",
    "return false",
    "return nil",
    "return",
    "return 1, 2",
    "return redis.sha1hex('')",
    "return redis.sha1hex()",
    "return redis.call('get','nokey')",
    "return redis.call('set', 'x')",
    "return redis.call('set', 'x', {})",
    "return redis.call('set', 'y', 1.5)",
    "return redis.call('set', 'y', 2^53)",
    "return redis.pcall('nosuch')",
    "local r = redis.pcall('incr', 'x'); return type(r) .. ':' .. tostring(r.err)",
    "local ok, e = pcall(redis.call, 'incr', 'x'); return {tostring(ok), e}",
    "local ok, e = pcall(function() error({err='X y'}) end); return {type(e), e}",
    "local ok, e = pcall(error, 'zz'); return {type(e), tostring(e)}",
    "local ok, e = pcall(function() error({x=1}) end); return type(e)",
    "redis.call('set','w','1'); error('half')",
    "return redis.call('ping')",
    "local t = redis.call('ping'); return t.ok",
    "return {1, 'two', false, true}",
    "return {double=3.5}",
    "return {map={a=1}}",
    "return {set={a=true}}",
    "return {big_number='123456789012345678901234567890'}",
    "return redis.call('hgetall', 'nohash')",
    "print('x'); return 1",
    "return loadstring('return 1')()",
    "return dofile('/etc/passwd')",
    "return tostring(require)",
    "return type(os.time)",
    "return os.clock() >= 0",
    "return cjson.encode({1,2,'a'})",
    "return cjson.encode({[1]=1,[3]=3})",
    "return cjson.encode({})",
    "return cjson.encode({a={b='x/y\"'}})",
    "return cjson.encode(0.1)",
    "return cjson.encode(1e300)",
    "return cjson.encode('\\1\\127')",
    "local t = cjson.decode('{\"a\":[1,2,{\"b\":null}],\"c\":\"\\\\u00e9x\"}') return {t.a[1], t.a[2], tostring(t.a[3].b), t.c}",
    "return cjson.decode('[1,2')",
    "return cjson.decode('nope')",
    "return {bit.tohex(255), bit.tohex(-1), bit.tohex(255, -4), bit.lshift(1, 40), bit.tobit(2^32+5), bit.bnot(0), bit.arshift(-256, 4), bit.rol(1, 33)}",
    "return bit.band(7, 3)",
    "rawset(_G, 'x', 1)",
    "string.upper = nil",
    "redis.call = nil",
    "return type(getmetatable(_G))",
    "return tostring(cjson.null)",
    "return redis.setresp(3)",
    "redis.setresp(3); return redis.call('hgetall','nohash')",
    "redis.setresp(4)",
    "return redis.log(redis.LOG_WARNING, 'hello')",
    "return redis.breakpoint()",
    "return server.call('ping')",
    "return {redis.REDIS_VERSION, redis.REDIS_VERSION_NUM}",
    "return redis.set_repl(redis.REPL_ALL)",
    "return _G.x",
    "local a = {} ; a[1]=1; a[3]=3; return a",
    "return 'a' .. nil",
    "return redis.call('eval', 'return 1', '0')",
    "return redis.call('multi')",
    "return redis.call('subscribe', 'x')",
    "error({err='CUSTOM thing'})",
    "error({x=1})",
    "error()",
    "error(42)",
    "local function f() return redis.call('incr', 'x') end\nreturn f()",
    "\n\nredis.call('incr','x')",
    "return redis.call('blpop', 'nolist', 0)",
    "return redis.acl_check_cmd('get', 'x')",
    "return redis.acl_check_cmd('nosuch')",
    "local t = {} for k in pairs(os) do t[#t+1] = k end return t",
    "return #KEYS + #ARGV",
    "#!lua\nreturn redis.call('incr','x')",
    "#!lua flags=no-writes\nreturn redis.call('set','x','1')",
    "#!lua flags=no-writes\nreturn redis.call('get','x')",
    "#!lua flags=bogus\nreturn 1",
    "#!python\nreturn 1",
    "#!lua flags=no-writes,allow-oom\nreturn 2",
    "#!lua name=x\nreturn 2",
    "#!lua flags=\nreturn 3",
    "#!lua   flags=no-writes  \nreturn 4",
    "#!lua\n#!lua\nreturn 6",
    "#!luaflags=no-writes\nreturn 7",
    "#!lua",
    "local _,g = pairs(_G) return type(g)",
    "local _,g = pairs(_G) g.x = 1 return 1",
    "local _,g = pairs(redis) return g.call",
    "for _, v in ipairs(KEYS) do end return rawset(redis, 'call', 1)",
    "return rawset(redis, 'call', 1)",
    "getmetatable('').__index.format = nil",
    "return type(getmetatable('').__index)",
    "return ('x'):upper() .. string.format('%d', 2)",
    "redis.call('set','a','1') return redis.call('dbsize')",
    "redis.call('set','a','1') return redis.call('flushall')",
    "return cmsgpack.pack({1,2,3})",
    "return cmsgpack.pack({a=1})",
    "return cmsgpack.pack(1, 'a', true, false, nil, 1.5, -1, -33, 200, 70000, 5000000000, -5000000000, 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx')",
    "return cmsgpack.pack({})",
    "return {cmsgpack.unpack(cmsgpack.pack(1, 'a', {1,2}, 2.5))}",
    "local t = cmsgpack.unpack(cmsgpack.pack({a=1,b={2,3}})) return {t.a, t.b[1], t.b[2]}",
    "return cmsgpack.unpack('\\193')",
    "return cmsgpack.unpack('')",
    "return {cmsgpack.unpack_one(cmsgpack.pack(1,2,3))}",
    "return {cmsgpack.unpack_limit(cmsgpack.pack(1,2,3), 2)}",
    "return cmsgpack.pack()",
    "return cmsgpack.pack(0.1)",
    "return cmsgpack.pack({1,nil,3})",
    "return cmsgpack.pack(string.rep('x', 40))",
    "return cmsgpack.pack(string.rep('x', 300))",
    "return struct.pack('>I2', 258)",
    "return struct.pack('<i4d', -2, 1.5)",
    "return {struct.unpack('>I2', struct.pack('>I2', 258))}",
    "return struct.size('>I2i4bBhHlLd')",
    "return {struct.unpack('s', 'ab\\0cd')}",
    "return struct.pack('c3', 'abcdef')",
    "return {struct.unpack('c2c1', 'abc')}",
    "return struct.pack('q', 1)",
    "return struct.pack('!4 b i', 1, 2)",
    "return struct.pack('z', 'hi')",
    "return {struct.unpack('>i4', 'ab')}",
    "return struct.pack('y', 1)",
    "return {struct.unpack('>b B', '\\255\\255')}",
    "return struct.pack('x', 1)",
    "return {struct.unpack('f', struct.pack('f', 0.5))}",
    "return {struct.unpack('>I2', 'abcd', 3)}",
];

fn eval(script: &str, keys: &[&str], argv: &[&str]) -> Vec<String> {
    let mut v = vec![
        "EVAL".to_string(),
        script.to_string(),
        keys.len().to_string(),
    ];
    v.extend(keys.iter().map(|s| s.to_string()));
    v.extend(argv.iter().map(|s| s.to_string()));
    v
}

#[test]
fn scripts_match_valkey_byte_for_byte_in_resp2_and_resp3() -> Result<()> {
    let (_node, _reference, mut ours, mut theirs) = crate::harness::node_and_valkey()?;
    for proto in ["2", "3"] {
        // HELLO's server fields differ by design: both only switch protocol here.
        ours.cmd(&["HELLO", proto])?;
        theirs.cmd(&["HELLO", proto])?;
        for (i, script) in CASES.iter().enumerate() {
            for c in [&mut ours, &mut theirs] {
                c.cmd(&["SET", "x", "a"])?;
            }
            let cmd = eval(script, &[], &[]);
            assert_same_reply(
                &mut ours,
                &mut theirs,
                &cmd,
                &format!("RESP{proto} case {i}"),
            )?;
        }
        // A script inside a transaction: queued, then run in EXEC's one batch.
        for cmd in [
            vec!["MULTI"],
            vec!["SET", "t1", "1"],
            vec!["EVAL", "return redis.call('incr', KEYS[1])", "1", "t1"],
            vec!["EVAL", "return redis.call('incr', 'x')", "0"],
            vec!["SET", "t2", "2"],
            vec!["EXEC"],
            vec!["MGET", "t1", "t2"],
        ] {
            assert_same_reply(
                &mut ours,
                &mut theirs,
                &cmd,
                &format!("RESP{proto} in MULTI"),
            )?;
        }
        // EVALSHA, SCRIPT LOAD/EXISTS/SHOW/FLUSH, numkeys checks, KEYS/ARGV.
        let sha = "e0e1f9fabfc9d4800c877a703b823ac0578ff8db";
        for cmd in [
            vec!["SCRIPT", "FLUSH"],
            vec!["EVALSHA", sha, "0"],
            vec!["SCRIPT", "LOAD", "return {KEYS[1], ARGV[1], #KEYS, #ARGV}"],
            vec!["SCRIPT", "EXISTS", sha, "ffff"],
            vec![
                "EVALSHA",
                "E0E1F9FABFC9D4800C877A703B823AC0578FF8DB",
                "1",
                "k",
                "a",
                "b",
            ],
            vec!["EVALSHA_RO", sha, "1", "k", "a"],
            vec!["SCRIPT", "SHOW", sha],
            vec!["SCRIPT", "SHOW", "nosuch"],
            vec!["EVAL", "return 1", "-1"],
            vec!["EVAL", "return 1", "3", "a"],
            vec!["EVAL", "return 1", "x"],
            vec!["EVAL_RO", "return redis.call('set','ro','1')", "0"],
            vec!["EVAL_RO", "return redis.call('get','x')", "0"],
            vec!["SCRIPT", "FLUSH", "ASYNC"],
            vec!["SCRIPT", "FLUSH", "bad"],
            vec!["SCRIPT", "EXISTS", sha],
            vec!["SCRIPT", "KILL"],
            vec!["SCRIPT", "NOSUCH"],
            vec!["SCRIPT", "LOAD", "return +"],
        ] {
            assert_same_reply(&mut ours, &mut theirs, &cmd, &format!("RESP{proto}"))?;
        }
    }
    Ok(())
}

/// One random `redis.call`/`redis.pcall` expression over keys of changing types; `keys` and
/// `argv` name the tables holding the script's keys and arguments.
fn random_call(r: &mut impl Rng, keys: &str, argv: &str) -> String {
    let k = [format!("{keys}[1]"), format!("{keys}[2]")][r.random_range(0..2)].clone();
    let arg = format!("{argv}[1]");
    let v = ["'1'", "'v'", &arg, "'-2.5'", "7"][r.random_range(0..5)];
    let form = match r.random_range(0..28) {
        0 => format!("'set', {k}, {v}"),
        1 => format!("'get', {k}"),
        2 => format!("'incr', {k}"),
        3 => format!("'incrbyfloat', {k}, '1.5'"),
        4 => format!("'del', {k}"),
        5 => format!("'exists', {k}"),
        6 => format!("'type', {k}"),
        7 => format!("'hset', {k}, 'f', {v}"),
        8 => format!("'hget', {k}, 'f'"),
        9 => format!("'hincrby', {k}, 'n', 3"),
        10 => format!("'hgetall', {k}"),
        11 => format!("'lpush', {k}, {v}"),
        12 => format!("'lrange', {k}, 0, -1"),
        13 => format!("'lpop', {k}"),
        14 => format!("'sadd', {k}, {v}"),
        15 => format!("'scard', {k}"),
        16 => format!("'sismember', {k}, {v}"),
        17 => format!("'zadd', {k}, {v}, 'm'"),
        18 => format!("'zrange', {k}, 0, -1, 'withscores'"),
        19 => format!("'zscore', {k}, 'm'"),
        20 => format!("'zincrby', {k}, 2, 'm'"),
        21 => format!("'expire', {k}, 100"),
        22 => format!("'ttl', {k}"),
        23 => format!("'append', {k}, {v}"),
        24 => format!("'strlen', {k}"),
        25 => "'nosuch'".to_string(),
        26 => "'get'".to_string(),
        _ => format!("'getrange', {k}, 0, 1"),
    };
    let call = if r.random_bool(0.7) { "pcall" } else { "call" };
    format!("redis.{call}({form})")
}

/// A random script body (`keys`/`argv` as for [`random_call`]).
pub fn random_script(r: &mut impl Rng, keys: &str, argv: &str) -> String {
    let mut s = String::new();
    if r.random_bool(0.2) {
        s.push_str("redis.setresp(3)\n");
    }
    s.push_str("local out = {}\n");
    for _ in 0..r.random_range(1..5) {
        s.push_str(&format!("out[#out+1] = {}\n", random_call(r, keys, argv)));
    }
    match r.random_range(0..5) {
        0 => s.push_str(&format!("return {}\n", random_call(r, keys, argv))),
        1 => s.push_str("return out[1]\n"),
        2 => s.push_str("return #out\n"),
        3 => s.push_str("return type(out[#out])\n"),
        _ => s.push_str("return out\n"),
    }
    s
}

#[test]
fn generated_scripts_over_mixed_types_match_valkey() -> Result<()> {
    let seeds: Vec<u64> = match std::env::var("ROCKSLOT_SCRIPT_SEED") {
        Ok(s) => vec![s.parse().context("ROCKSLOT_SCRIPT_SEED")?],
        Err(_) => vec![11, 12, 13, 14],
    };
    let per_seed = 600;
    let (_node, _reference, mut ours, mut theirs) = crate::harness::node_and_valkey()?;
    let t0 = Instant::now();
    for (i, seed) in seeds.iter().enumerate() {
        let proto = if i % 2 == 0 { "2" } else { "3" };
        ours.cmd(&["HELLO", proto])?;
        theirs.cmd(&["HELLO", proto])?;
        let mut r = rand::rngs::StdRng::seed_from_u64(*seed);
        for step in 0..per_seed {
            let script = random_script(&mut r, "KEYS", "ARGV");
            let keys = ["{s}a", "{s}b"];
            let arg = ["x", "3", "2.5"][r.random_range(0..3)];
            let cmd = eval(&script, &keys, &[arg]);
            assert_same_reply(
                &mut ours,
                &mut theirs,
                &cmd,
                &format!("seed {seed} RESP{proto} step {step}:\n{script}"),
            )?;
        }
    }
    println!(
        "scripting: {} generated scripts matched valkey in {:?}",
        seeds.len() * per_seed,
        t0.elapsed()
    );
    Ok(())
}

/// A script's writes reach storage together: after SIGKILL during a stream of scripts that
/// each write 3000 keys (about three times what a write scope stages before committing on its
/// own, so without the script's atomic scope most kills would split one), every script's keys
/// are all there or all absent, and every acknowledged script is whole.
#[test]
fn sigkill_while_scripts_write_leaves_each_script_whole() -> Result<()> {
    const WRITES: usize = 3000;
    let mut node = Node::builder().appendfsync("always").start()?;
    let script = format!(
        "for i = 1, {WRITES} do redis.call('set', KEYS[1] .. ':' .. i, ARGV[1]) end \
         return redis.call('incr', KEYS[1] .. ':n')"
    );
    let addr = node.addr();
    let writer = std::thread::spawn(move || -> Result<u64> {
        let mut c = RawConn::connect(addr)?;
        let mut acked = 0;
        for n in 0..100_000u64 {
            let key = format!("{{g}}s{n}");
            match c.cmd(&["EVAL", &script, "1", &key, &n.to_string()]) {
                Ok(r) if r == b":1\r\n" => acked = n + 1,
                _ => break,
            }
        }
        Ok(acked)
    });
    std::thread::sleep(Duration::from_millis(1500));
    node.kill9()?;
    let acked = writer
        .join()
        .map_err(|_| anyhow::anyhow!("writer panicked"))??;
    node.restart()?;
    let mut c = node.raw()?;
    let mut whole = 0;
    for n in 0..acked + 5 {
        let mut cmd = vec!["EXISTS".to_string()];
        cmd.extend((1..=WRITES).map(|i| format!("{{g}}s{n}:{i}")));
        let r = c.cmd(&cmd)?;
        let present: usize = std::str::from_utf8(&r)?
            .trim_start_matches(':')
            .trim_end()
            .parse()?;
        ensure!(
            present == 0 || present == WRITES,
            "script {n}: {present} of {WRITES} keys"
        );
        if n < acked {
            ensure!(present == WRITES, "acknowledged script {n} lost its writes");
        }
        whole += (present == WRITES) as usize;
    }
    println!("scripting: {acked} acknowledged scripts before SIGKILL, {whole} whole after restart");
    ensure!(acked > 0, "no script ran before the kill");
    Ok(())
}

const REDIS_PY_LOCK: &str = r#"
import os, time, redis
from redis.cluster import RedisCluster
if os.environ.get("PW"):
    r = RedisCluster(host="127.0.0.1", port=int(os.environ["PORT"]),
                     password=os.environ["PW"], socket_timeout=10)
else:
    r = redis.Redis(port=int(os.environ["PORT"]), socket_timeout=10)
out = []
lock = r.lock("res", timeout=5, blocking_timeout=0.2)
out.append(lock.acquire())
other = r.lock("res", timeout=5, blocking_timeout=0.2)
out.append(other.acquire())
out.append(lock.extend(5))
out.append(r.pttl("res") > 5000)
out.append(lock.reacquire())
lock.release()
out.append(other.acquire())
r.set("res", "someone else")
try:
    other.release()
    out.append("released a lock it did not own")
except redis.exceptions.LockNotOwnedError:
    out.append("not owned")
out.append(r.get("res"))
short = r.lock("short", timeout=0.3)
out.append(short.acquire())
time.sleep(0.5)
out.append(r.lock("short", timeout=1).acquire(blocking=False))
incr = r.register_script("return redis.call('incrby', KEYS[1], ARGV[1])")
out.append(incr(keys=["n"], args=[5]))
r.script_flush()
out.append(incr(keys=["n"], args=[5]))
print(out)
"#;

/// Runs [`REDIS_PY_LOCK`] against `port` (a cluster when `password` is given).
fn redis_py_lock(port: u16, password: Option<&str>) -> Result<()> {
    let mut py = std::process::Command::new("python3");
    py.args(["-c", REDIS_PY_LOCK]).env("PORT", port.to_string());
    if let Some(pw) = password {
        py.env("PW", pw);
    }
    let run = ToolRun::run(&mut py, Duration::from_secs(60))?.ensure_success()?;
    let last = run.stdout.lines().last().unwrap_or_default().to_string();
    ensure!(
        last == "[True, False, True, True, True, True, 'not owned', b'someone else', True, True, 5, 10]",
        "redis-py (cluster: {}): {last}",
        password.is_some()
    );
    Ok(())
}

#[test]
fn redis_py_lock_and_register_script_work() -> Result<()> {
    let node = Node::start()?;
    redis_py_lock(node.port(), None)?;
    let c = crate::failover::seed_cluster(&[])?;
    redis_py_lock(c.node(0).port(), Some(crate::harness::CLUSTER_PASSWORD))
}

#[test]
fn redis_crate_script_loads_on_noscript_and_runs() -> Result<()> {
    let node = Node::start()?;
    let mut con = node.conn()?;
    let script = redis::Script::new("return {KEYS[1], tonumber(ARGV[1]) * 2}");
    let (k, n): (String, i64) = script.key("key").arg(21).invoke(&mut con)?;
    ensure!(k == "key" && n == 42, "{k} {n}");
    let _: () = redis::cmd("SCRIPT").arg("FLUSH").query(&mut con)?;
    let (_, n): (String, i64) = script.key("key").arg(5).invoke(&mut con)?;
    ensure!(n == 10);
    Ok(())
}

#[test]
fn scripts_in_a_cluster_follow_the_slot_rules() -> Result<()> {
    let c = crate::failover::seed_cluster(&[])?;
    let owner = c.key_owner("{t}a")?;
    let other = (0..c.len())
        .find(|&i| c.masters(0).is_ok_and(|m| m.contains(&i)) && i != owner)
        .context("another primary")?;
    let node = c.node(owner);
    let q = |n: &Node, args: &[&str]| -> Result<String> {
        Ok(show(&crate::harness::raw_query(n, args)?))
    };
    let set = "return redis.call('set', KEYS[1], ARGV[1])";
    let ok = q(node, &["EVAL", set, "1", "{t}a", "v"])?;
    ensure!(ok.starts_with("+OK"), "{ok}");
    let moved = q(c.node(other), &["EVAL", set, "1", "{t}a", "v"])?;
    ensure!(moved.starts_with("-MOVED "), "{moved}");
    let cross = q(node, &["EVAL", set, "2", "{t}a", "{u}b", "v"])?;
    ensure!(cross.starts_with("-CROSSSLOT"), "{cross}");
    // An undeclared key in another slot: refused with Valkey's words.
    let far = (0..)
        .map(|i| format!("far{i}"))
        .find(|k| c.key_owner(k).is_ok_and(|o| o != owner))
        .context("a key elsewhere")?;
    let r = q(
        node,
        &[
            "EVAL",
            "return redis.call('get', ARGV[1])",
            "1",
            "{t}a",
            &far,
        ],
    )?;
    ensure!(
        r.contains("Script attempted to access a non local key in a cluster node"),
        "{r}"
    );
    let no_cluster = q(node, &["EVAL", "#!lua flags=no-cluster\nreturn 1", "0"])?;
    ensure!(
        no_cluster.starts_with("-ERR Can not run script on cluster, "),
        "{no_cluster}"
    );
    // allow-cross-slot-keys: undeclared keys of other local slots are reachable.
    let local_other = (0..)
        .map(|i| format!("near{i}"))
        .find(|k| {
            c.key_owner(k).is_ok_and(|o| o == owner) && key_slot(k.as_bytes()) != key_slot(b"{t}a")
        })
        .context("another local slot")?;
    let cross = "#!lua flags=allow-cross-slot-keys\nreturn redis.call('set', ARGV[1], 'v')";
    let r = q(node, &["EVAL", cross, "1", "{t}a", &local_other])?;
    ensure!(r.starts_with("+OK"), "{r}");
    let plain = "return redis.call('set', ARGV[1], 'v')";
    let r = q(node, &["EVAL", plain, "1", "{t}a", &local_other])?;
    ensure!(
        r.contains("Script attempted to access keys that do not hash to the same slot"),
        "{r}"
    );
    // The replica has the script's writes.
    let replica = c.replica_of(0, owner)?;
    c.wait_same_dbsize(owner, replica, Duration::from_secs(30))?;
    Ok(())
}

/// A script busy for longer than the node timeout: other clients get BUSY, the cluster does
/// not fail the node over (its bus keeps answering), and SCRIPT KILL stops it; a script that
/// wrote cannot be killed.
#[test]
fn a_busy_script_gets_busy_replies_no_failover_and_script_kill() -> Result<()> {
    let c = crate::failover::seed_cluster(&[("busy-reply-threshold", "500")])?;
    let p = c.slot_owner(0, 0)?;
    let replica = c.replica_of(0, p)?;
    let port = c.node(p).port();
    let addr = c.node(p).addr();
    let busy = std::thread::spawn(move || -> Result<Vec<u8>> {
        let mut conn = RawConn::connect_with_timeout(addr, Duration::from_secs(30))?;
        conn.cmd(&["AUTH", crate::harness::CLUSTER_PASSWORD])?;
        conn.cmd(&[
            "EVAL",
            "local t = os.clock() while os.clock() - t < 20 do end return 'done'",
            "0",
        ])
    });
    let t0 = Instant::now();
    let mut saw_busy = false;
    while t0.elapsed() < Duration::from_secs(5) {
        let r = show(&crate::harness::raw_query(c.node(p), &["PING"])?);
        if r.starts_with("-BUSY Valkey is busy running a script.") {
            saw_busy = true;
        }
        // The other nodes never mark it failing: its bus still answers.
        for v in (0..c.len()).filter(|&v| v != p) {
            let line = c
                .cluster_nodes(v)?
                .into_iter()
                .find(|l| l.port == port)
                .context("the busy node's line")?;
            ensure!(
                !line.flags.iter().any(|f| f == "fail" || f == "fail?"),
                "node {v} flags the busy node {:?} after {:?}",
                line.flags,
                t0.elapsed()
            );
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    ensure!(saw_busy, "PING never got BUSY during the script");
    let killed = show(&crate::harness::raw_query(c.node(p), &["SCRIPT", "KILL"])?);
    ensure!(killed.starts_with("+OK"), "SCRIPT KILL: {killed}");
    let reply = show(
        &busy
            .join()
            .map_err(|_| anyhow::anyhow!("script thread panicked"))??,
    );
    ensure!(
        reply.starts_with("-ERR Script killed by user with SCRIPT KILL. script: "),
        "{reply}"
    );
    ensure!(show(&crate::harness::raw_query(c.node(p), &["PING"])?).starts_with("+PONG"));
    ensure!(c.slot_owner(replica, 0)? == p, "a failover happened");
    ensure!(c.replica_of(0, p)? == replica);

    // A script that wrote is not killable.
    let writer = std::thread::spawn(move || -> Result<Vec<u8>> {
        let mut conn = RawConn::connect_with_timeout(addr, Duration::from_secs(30))?;
        conn.cmd(&["AUTH", crate::harness::CLUSTER_PASSWORD])?;
        conn.cmd(&[
            "EVAL",
            "redis.call('set', KEYS[1], 'x') local t = os.clock() while os.clock() - t < 4 do end return 'done'",
            "1",
            &c_key_on(0),
        ])
    });
    std::thread::sleep(Duration::from_millis(700));
    let refused = show(&crate::harness::raw_query(c.node(p), &["SCRIPT", "KILL"])?);
    ensure!(
        refused.starts_with("-UNKILLABLE Sorry the script already executed write commands"),
        "{refused}"
    );
    let done = show(
        &writer
            .join()
            .map_err(|_| anyhow::anyhow!("script thread panicked"))??,
    );
    ensure!(done.contains("done"), "{done}");
    Ok(())
}

/// A key that hashes to `slot`.
fn c_key_on(slot: u16) -> String {
    (0..)
        .map(|i| format!("k{i}"))
        .find(|k| key_slot(k.as_bytes()) == slot)
        .unwrap_or_default()
}

/// dramatiq 1.17.1's Redis broker (its queue operations are one Lua script, `dispatch.lua`),
/// unmodified: 100 messages sent, a worker processes them all, one fails and is dead-lettered.
const DRAMATIQ: &str = r#"
import os, time, redis, dramatiq
from dramatiq import Worker
from dramatiq.brokers.redis import RedisBroker
port = int(os.environ["PORT"])
broker = RedisBroker(host="127.0.0.1", port=port)
dramatiq.set_broker(broker)
r = redis.Redis(port=port)

@dramatiq.actor(max_retries=0)
def add(n):
    if n == 13:
        raise ValueError("unlucky")
    r.incrby("total", n)

for i in range(1, 101):
    add.send(i)
worker = Worker(broker, worker_threads=2)
worker.start()
deadline = time.time() + 60
while time.time() < deadline and int(r.get("total") or 0) < 5050 - 13:
    time.sleep(0.05)
time.sleep(0.5)
worker.stop()
dead = r.zcard("dramatiq:default.XQ")
print("total", int(r.get("total") or 0), "dead", dead)
"#;

#[test]
fn dramatiq_job_queue_runs_on_rockslot() -> Result<()> {
    let node = Node::start()?;
    let tools = std::env::var("ROCKSLOT_TOOLS").unwrap_or_else(|_| {
        format!(
            "{}/.cache/rockslot-tools",
            std::env::var("HOME").unwrap_or_default()
        )
    });
    let mut py = std::process::Command::new("python3");
    py.args(["-c", DRAMATIQ])
        .env("PORT", node.port().to_string())
        .env("PYTHONPATH", format!("{tools}/py"));
    let run = ToolRun::run(&mut py, Duration::from_secs(120))?.ensure_success()?;
    let last = run.stdout.lines().last().unwrap_or_default().to_string();
    println!("dramatiq ({:?}): {last}", run.elapsed);
    ensure!(last == "total 5037 dead 1", "dramatiq: {last}");
    Ok(())
}

/// A script inside MULTI/EXEC keeps the transaction one batch: while a later script of the
/// same EXEC still runs, another client does not see the transaction's earlier writes.
#[test]
fn a_script_inside_exec_does_not_publish_the_transaction_early() -> Result<()> {
    let node = Node::start()?;
    let mut tx = node.raw()?;
    for cmd in [
        vec!["MULTI"],
        vec!["SET", "t1", "1"],
        vec!["EVAL", "return 1", "0"],
        vec![
            "EVAL",
            "local t = os.clock() while os.clock() - t < 0.6 do end return 2",
            "0",
        ],
        vec!["SET", "t2", "2"],
    ] {
        tx.cmd(&cmd)?;
    }
    tx.send(&crate::harness::encode_cmd(&["EXEC"]))?;
    let mut reader = node.raw()?;
    let t0 = Instant::now();
    let mut early = None;
    while t0.elapsed() < Duration::from_millis(400) {
        let r = reader.cmd(&["GET", "t1"])?;
        if r != b"$-1\r\n" {
            early = Some((show(&r), t0.elapsed()));
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let exec = show(&tx.read_frame()?);
    ensure!(
        early.is_none(),
        "t1 was visible before EXEC ended: {early:?}"
    );
    ensure!(
        exec == "*4\\r\\n+OK\\r\\n:1\\r\\n:2\\r\\n+OK\\r\\n",
        "{exec}"
    );
    ensure!(show(&reader.cmd(&["MGET", "t1", "t2"])?) == "*2\\r\\n$1\\r\\n1\\r\\n$1\\r\\n2\\r\\n");
    Ok(())
}

/// What a hostile or careless script must not do to the node: return a table that contains
/// itself, deadlock with a script that waits for its keys, escape SCRIPT KILL through pcall, or
/// call a command that needs the connection afterwards.
#[test]
fn scripts_cannot_crash_hang_or_outlive_script_kill() -> Result<()> {
    let node = Node::start()?;
    let mut c = node.raw()?;
    let r = c.cmd(&["EVAL", "local t = {} t[1] = t return t", "0"])?;
    let needle = b"-ERR reached lua stack limit\r\n";
    ensure!(
        r.windows(needle.len()).any(|w| w == needle),
        "{} bytes, ending {}",
        r.len(),
        show(&r[r.len().saturating_sub(80)..])
    );
    ensure!(show(&c.cmd(&["PING"])?) == "+PONG\\r\\n");

    // A waits (busy) then touches `c`; B declares `c` while A holds the VM.
    let addr = node.addr();
    let a = std::thread::spawn(move || -> Result<Vec<u8>> {
        let mut conn = RawConn::connect_with_timeout(addr, Duration::from_secs(10))?;
        conn.cmd(&[
            "EVAL",
            "local t = os.clock() while os.clock() - t < 0.5 do end return redis.call('incr', ARGV[1])",
            "0",
            "c",
        ])
    });
    std::thread::sleep(Duration::from_millis(150));
    let mut b = RawConn::connect_with_timeout(addr, Duration::from_secs(10))?;
    let rb = b.cmd(&["EVAL", "return redis.call('incr', KEYS[1])", "1", "c"])?;
    let ra = a.join().map_err(|_| anyhow::anyhow!("thread panicked"))??;
    ensure!(
        (ra.as_slice(), rb.as_slice()) == (b":1\r\n".as_slice(), b":2\r\n".as_slice()),
        "{} {}",
        show(&ra),
        show(&rb)
    );

    // A script that keeps catching its own kill still ends.
    let killer = std::thread::spawn(move || -> Result<Vec<u8>> {
        let mut conn = RawConn::connect_with_timeout(addr, Duration::from_secs(20))?;
        conn.cmd(&[
            "EVAL",
            "while true do pcall(function() for i = 1, 1e7 do end end) end",
            "0",
        ])
    });
    std::thread::sleep(Duration::from_millis(300));
    let t0 = Instant::now();
    loop {
        let r = c.cmd(&["SCRIPT", "KILL"])?;
        if r == b"+OK\r\n" {
            break;
        }
        ensure!(
            t0.elapsed() < Duration::from_secs(5),
            "SCRIPT KILL: {}",
            show(&r)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let r = show(
        &killer
            .join()
            .map_err(|_| anyhow::anyhow!("thread panicked"))??,
    );
    ensure!(
        r.starts_with("-ERR Script killed by user with SCRIPT KILL."),
        "{r}"
    );

    // MIGRATE needs the connection after the command: refused, not silently skipped.
    c.cmd(&["SET", "a", "1"])?;
    let r = show(&c.cmd(&[
        "EVAL",
        "return redis.call('migrate', '127.0.0.1', '1', 'a', '0', '100')",
        "0",
    ])?);
    ensure!(r.contains("cannot be called from a script"), "{r}");
    Ok(())
}
