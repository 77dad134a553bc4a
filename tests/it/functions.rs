//! Functions (FUNCTION, FCALL) against valkey-server 8.1.8 byte for byte: tables of libraries
//! covering FUNCTION LOAD's checks in Valkey's order, `server.register_function`'s forms, the
//! load-time globals, run-time errors and positions, LIST/STATS/DUMP/RESTORE and its policies,
//! BUSY and FUNCTION KILL; then generated libraries whose functions call into every type.
//! Then what operators rely on: libraries survive SIGKILL, reach replicas by the stream and by
//! full sync, are copied by `redis-cli --cluster add-node` and by slot backups, and FCALL
//! follows the cluster's slot rules, from redis-py's cluster client too.

use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use rand::{Rng, SeedableRng};

use crate::harness::{
    assert_same_reply, raw_query, show, wait_until, Node, NodeBuilder, RawConn, RedisServer,
    ToolRun, CLUSTER_PASSWORD,
};

/// A library whose FUNCTION DUMP Valkey does not compress (so the payloads are equal).
const LIB: &str =
    "#!lua name=mylib\nserver.register_function('f1', function(keys, args) return 1 end)";

/// FUNCTION LOAD arguments, each answered as Valkey does.
const LOADS: &[&str] = &[
    "return 1",
    "#!lua\nreturn 1",
    "#!lua name=x",
    "#!lua foo=bar\n",
    "#!lua name=a name=b\n",
    "#!lua name=a-b\n",
    "#!py name=a\n",
    "#! name=a\n",
    "#!lua name=a\nlocal x = ",
    "#!lua name=a\nlocal x = nil + 1",
    "#!lua name=a\nserver.call('set','x','y')",
    "#!lua name=a\nx = 5",
    "#!lua name=a\nserver.x = 5",
    "#!lua name=a\nlocal t = string.len('x')",
    "#!lua name=a\n",
    "#!lua name=a\nserver.register_function('a-b', function() end)",
    "#!lua name=a\nserver.register_function('ab', function() end)\nserver.register_function('ab', function() end)",
    "#!lua name=a\nserver.register_function('F1', function() end)",
    "#!lua name=a\nserver.register_function()",
    "#!lua name=a\nserver.register_function(5)",
    "#!lua name=a\nserver.register_function({})",
    "#!lua name=a\nserver.register_function({function_name='x'})",
    "#!lua name=a\nserver.register_function({callback=function() end})",
    "#!lua name=a\nserver.register_function({function_name='x', callback=5})",
    "#!lua name=a\nserver.register_function({function_name='x', callback=function() end, flags='no-writes'})",
    "#!lua name=a\nserver.register_function({function_name='x', callback=function() end, flags={'bogus'}})",
    "#!lua name=a\nserver.register_function({function_name='x', callback=function() end, foo=1})",
    "#!lua name=a\nserver.register_function({function_name={}, callback=function() end})",
    "#!lua name=a\nserver.register_function({function_name='x', callback=function() end, description={}})",
    "#!lua name=a\nserver.register_function(1, function() end)",
    "#!lua name=a\nserver.register_function({}, function() end)",
    "#!lua name=a\nserver.register_function('x', 5)",
    "#!lua name=a\nserver.register_function('x', function() end, 3)",
    "#!lua name=a\nserver.log(server.LOG_WARNING, 'hi')\nserver.register_function('x', function() end)",
    "#!lua name=mylib\nserver.register_function('other', function() end)",
    "#!lua name=b\nlocal v = server.REDIS_VERSION .. server.SERVER_NAME\nserver.register_function{function_name='v', callback=function() return v end, flags={'no-writes','allow-oom','allow-stale','no-cluster','allow-cross-slot-keys'}, description='all'}",
];

/// Functions whose replies and errors (positions included) must equal Valkey's.
const RUNTIME: &str = r#"#!lua name=rt
local function helper(x) return x .. "!" end
server.register_function('e1', function(keys, args) error('boom') end)
server.register_function('e2', function(keys, args) error({err='MYERR custom'}) end)
server.register_function('e3', function(keys, args) return nil + 1 end)
server.register_function('e4', function(keys, args) return server.call('nosuchcmd') end)
server.register_function('e5', function(keys, args) return server.call('set','k') end)
server.register_function('e6', function(keys, args) return server.error_reply('E3 reply') end)
server.register_function('e7', function(keys, args) return {err='raw table err'} end)
server.register_function('e8', function(keys, args) return KEYS end)
server.register_function('e9', function(keys, args) return server.call('fcall','e1','0') end)
server.register_function('e10', function(keys, args) error({}) end)
server.register_function('e11', function(keys, args) error(123) end)
server.register_function('e12', function(keys, args) return server.pcall('incr', keys[1]) end)
server.register_function('e13', function(keys, args) return server.register_function end)
server.register_function{function_name='ro', callback=function(keys, args) return server.call('set', keys[1], 'v') end, flags={'no-writes'}}
server.register_function('w', function(keys, args) server.call('set', keys[1], args[1]); return server.call('get', keys[1]) end)
server.register_function('h', function(keys, args) return helper(args[1]) end)
server.register_function('types', function(keys, args) server.setresp(3); return {server.call('hgetall', keys[1]), server.call('smembers', keys[2]), 3.5, true, false} end)
server.register_function('g', function(keys, args) x = 1 end)
server.register_function('s', function(keys, args) return {string.rep('a', 3), cjson.encode({1,2}), math.floor(2.5), type(loadstring), tostring(os.clock() >= 0)} end)
server.register_function('echo', function(keys, args) return {#keys, #args, keys, args} end)
"#;

type Cmd = Vec<Vec<u8>>;

fn cmd(parts: &[&str]) -> Cmd {
    parts.iter().map(|p| p.as_bytes().to_vec()).collect()
}

/// The bytes of a bulk string reply.
fn bulk(reply: &[u8]) -> Result<Vec<u8>> {
    let end = reply
        .windows(2)
        .position(|w| w == b"\r\n")
        .context("no CRLF")?;
    ensure!(
        reply.first() == Some(&b'$'),
        "not a bulk reply: {}",
        show(reply)
    );
    let n: usize = std::str::from_utf8(&reply[1..end])?.parse()?;
    Ok(reply[end + 2..end + 2 + n].to_vec())
}

/// FUNCTION RESTORE cases: payloads made by valkey's own FUNCTION DUMP, under each policy.
fn restore_cases(theirs: &mut RawConn) -> Result<Vec<Cmd>> {
    let lib = |name: &str, f: &str| {
        format!(
            "#!lua name={name}\nserver.register_function('{f}', function() return '{name}{f}' end)"
        )
    };
    let mut dump = |libs: &[String]| -> Result<Vec<u8>> {
        theirs.cmd(&["FUNCTION", "FLUSH"])?;
        for l in libs {
            theirs.cmd(&["FUNCTION", "LOAD", l])?;
        }
        bulk(&theirs.cmd(&["FUNCTION", "DUMP"])?)
    };
    let a = lib("a", "fa");
    let payloads = [
        dump(&[lib("a", "fa2")])?,
        dump(&[lib("b", "fb")])?,
        dump(&[lib("b", "fa2")])?,
        dump(std::slice::from_ref(&a))?,
        dump(&[a.clone(), lib("b", "fb")])?,
    ];
    let mut out = Vec::new();
    for policy in [
        None,
        Some("APPEND"),
        Some("REPLACE"),
        Some("FLUSH"),
        Some("replace"),
    ] {
        for p in &payloads {
            out.push(cmd(&["FUNCTION", "FLUSH"]));
            out.push(cmd(&["FUNCTION", "LOAD", &a]));
            let mut restore = cmd(&["FUNCTION", "RESTORE"]);
            restore.push(p.clone());
            restore.extend(policy.map(|s| s.as_bytes().to_vec()));
            out.push(restore);
            for c in [
                &["FUNCTION", "LIST", "LIBRARYNAME", "a"][..],
                &["FUNCTION", "LIST", "LIBRARYNAME", "b"],
                &["FCALL", "fa", "0"],
                &["FCALL", "fa2", "0"],
                &["FCALL", "fb", "0"],
            ] {
                out.push(cmd(c));
            }
        }
    }
    let good = &payloads[3];
    let mut damaged = vec![good[..good.len() - 1].to_vec()];
    for first in [0xf6u8, 0x05] {
        let mut p = good.clone();
        p[0] = first;
        damaged.push(p);
    }
    for p in damaged {
        out.push(vec![b"FUNCTION".to_vec(), b"RESTORE".to_vec(), p]);
    }
    theirs.cmd(&["FUNCTION", "FLUSH"])?;
    Ok(out)
}

#[test]
fn functions_match_valkey_byte_for_byte_in_resp2_and_resp3() -> Result<()> {
    let (_node, _reference, mut ours, mut theirs) = crate::harness::node_and_valkey()?;
    // A node that never had a library dumps the bare footer, which RESTORE takes.
    let footer = bulk(&theirs.cmd(&["FUNCTION", "DUMP"])?)?;
    for c in [
        cmd(&["FUNCTION", "DUMP"]),
        vec![b"FUNCTION".to_vec(), b"RESTORE".to_vec(), footer],
        cmd(&["FUNCTION", "LIST"]),
    ] {
        assert_same_reply(&mut ours, &mut theirs, &c, "a fresh node")?;
    }
    let restores = restore_cases(&mut theirs)?;
    for proto in ["2", "3"] {
        ours.cmd(&["HELLO", proto])?;
        theirs.cmd(&["HELLO", proto])?;
        let mut cases: Vec<Cmd> = vec![
            cmd(&["FUNCTION", "FLUSH"]),
            cmd(&["FUNCTION", "LOAD", LIB]),
            cmd(&["FUNCTION", "DUMP"]),
            cmd(&["FCALL", "f1", "0"]),
            cmd(&["FCALL", "F1", "0"]),
            cmd(&["FCALL", "nope", "0"]),
            cmd(&["FCALL", "f1", "x"]),
            cmd(&["FCALL", "f1", "5"]),
            cmd(&["FCALL", "f1", "-1"]),
            cmd(&["FCALL_RO", "f1", "0"]),
            cmd(&["FUNCTION", "LIST"]),
            cmd(&["FUNCTION", "LIST", "WITHCODE"]),
            cmd(&["FUNCTION", "LIST", "LIBRARYNAME", "MY*"]),
            cmd(&["FUNCTION", "LIST", "LIBRARYNAME", "my"]),
            cmd(&["FUNCTION", "LIST", "LIBRARYNAME"]),
            cmd(&["FUNCTION", "LIST", "LIBRARYNAME", "a", "LIBRARYNAME", "b"]),
            cmd(&["FUNCTION", "LIST", "WITHCODE", "WITHCODE"]),
            cmd(&["FUNCTION", "LIST", "foo"]),
            cmd(&["FUNCTION", "STATS"]),
            cmd(&["FUNCTION", "LOAD", LIB]),
            cmd(&["FUNCTION", "LOAD", "foo", LIB]),
            cmd(&["FUNCTION", "LOAD", "REPLACE", "replace", LIB]),
        ];
        cases.extend(LOADS.iter().map(|code| cmd(&["FUNCTION", "LOAD", code])));
        cases.extend([
            cmd(&["FCALL", "v", "0"]),
            cmd(&["FUNCTION", "LIST", "LIBRARYNAME", "b", "WITHCODE"]),
            cmd(&["FUNCTION", "DELETE", "nope"]),
            cmd(&["FUNCTION", "DELETE", "b"]),
            cmd(&["FUNCTION", "FLUSH", "x"]),
            cmd(&["FUNCTION", "FLUSH", "sync", "x"]),
            cmd(&["FUNCTION", "KILL"]),
            cmd(&["FUNCTION", "FOO"]),
            cmd(&["FUNCTION", "RESTORE", "xx", "BAD"]),
            cmd(&["FUNCTION", "RESTORE", "xx", "append", "y"]),
            cmd(&["FUNCTION", "HELP"]),
            cmd(&["FUNCTION", "FLUSH", "ASYNC"]),
            cmd(&["DEL", "k", "h", "l"]),
            cmd(&["FUNCTION", "LOAD", RUNTIME]),
        ]);
        for f in [
            "e1", "e2", "e3", "e4", "e5", "e6", "e7", "e8", "e9", "e10", "e11", "e13",
        ] {
            cases.push(cmd(&["FCALL", f, "0"]));
        }
        for c in [
            &["FCALL", "g", "0"][..],
            &["FCALL", "s", "0"],
            &["SET", "k", "notint"],
            &["FCALL", "e12", "1", "k"],
            &["FCALL", "ro", "1", "k"],
            &["FCALL_RO", "ro", "1", "k"],
            &["FCALL_RO", "w", "1", "k", "v"],
            &["FCALL", "w", "1", "k", "v2"],
            &["FCALL", "h", "0", "x"],
            &["HSET", "h", "a", "1", "b", "2"],
            &["SADD", "l", "m"],
            &["FCALL", "types", "2", "h", "l"],
            &["FCALL", "TYPES", "2", "h", "l"],
            &["FCALL", "echo", "2", "k1", "k2", "a1", "a2", "a3"],
            &["MULTI"],
            &["FCALL", "w", "1", "k", "in-multi"],
            &["FCALL", "echo", "0"],
            &["EXEC"],
        ] {
            cases.push(cmd(c));
        }
        cases.extend(restores.iter().cloned());
        for (i, c) in cases.iter().enumerate() {
            assert_same_reply(&mut ours, &mut theirs, c, &format!("RESP{proto} case {i}"))?;
        }
    }
    Ok(())
}

/// A random library of 1-3 functions (some `no-writes`) with generated bodies.
fn random_library(r: &mut impl Rng) -> (String, Vec<String>) {
    let mut code = "#!lua name=gen\n".to_string();
    let mut names = Vec::new();
    for i in 0..r.random_range(1..4) {
        let name = format!("g{i}");
        let flags = if r.random_bool(0.3) {
            ", flags={'no-writes'}"
        } else {
            ""
        };
        let body = crate::scripting::random_script(r, "keys", "args");
        code.push_str(&format!(
            "server.register_function{{function_name='{name}', callback=function(keys, args)\n{body}end{flags}}}\n"
        ));
        names.push(name);
    }
    (code, names)
}

#[test]
fn generated_functions_over_mixed_types_match_valkey() -> Result<()> {
    let seeds: Vec<u64> = match std::env::var("ROCKSLOT_FUNCTION_SEED") {
        Ok(s) => vec![s.parse().context("ROCKSLOT_FUNCTION_SEED")?],
        Err(_) => vec![21, 22],
    };
    let per_seed = 300;
    let (_node, _reference, mut ours, mut theirs) = crate::harness::node_and_valkey()?;
    let t0 = Instant::now();
    let mut calls = 0;
    for (i, seed) in seeds.iter().enumerate() {
        let proto = if i % 2 == 0 { "2" } else { "3" };
        ours.cmd(&["HELLO", proto])?;
        theirs.cmd(&["HELLO", proto])?;
        let mut r = rand::rngs::StdRng::seed_from_u64(*seed);
        for step in 0..per_seed {
            let (code, names) = random_library(&mut r);
            let ctx = format!("seed {seed} RESP{proto} step {step}:\n{code}");
            assert_same_reply(
                &mut ours,
                &mut theirs,
                &["FUNCTION", "LOAD", "REPLACE", &code],
                &ctx,
            )?;
            if names.len() == 1 {
                // With one function the listing's order is Valkey's too.
                assert_same_reply(
                    &mut ours,
                    &mut theirs,
                    &["FUNCTION", "LIST", "WITHCODE"],
                    &ctx,
                )?;
            }
            for _ in 0..r.random_range(1..4) {
                let f = &names[r.random_range(0..names.len())];
                let call = if r.random_bool(0.2) {
                    "FCALL_RO"
                } else {
                    "FCALL"
                };
                let arg = ["x", "3", "2.5"][r.random_range(0..3)];
                let c = [call, f, "2", "{s}a", "{s}b", arg];
                assert_same_reply(&mut ours, &mut theirs, &c, &ctx)?;
                calls += 1;
            }
        }
    }
    println!(
        "functions: {} generated libraries, {calls} calls matched valkey in {:?}",
        seeds.len() * per_seed,
        t0.elapsed()
    );
    Ok(())
}

/// While a function runs past `busy-reply-threshold`: BUSY names FUNCTION KILL, FUNCTION
/// STATS shows the function and its command, SCRIPT KILL is refused, FUNCTION KILL stops a
/// function that has not written and not one that has; an EVAL's BUSY names SCRIPT KILL.
#[test]
fn busy_functions_answer_as_valkey_and_function_kill_stops_them() -> Result<()> {
    let spin = "#!lua name=spin\n\
        server.register_function('spin', function(keys, args) local t = os.clock() while os.clock() - t < tonumber(args[1]) do end return 1 end)\n\
        server.register_function('spinw', function(keys, args) server.call('set', keys[1], '1') local t = os.clock() while os.clock() - t < tonumber(args[1]) do end return 1 end)";
    let (node, reference) = (Node::start()?, RedisServer::start_valkey()?);
    let mut transcripts = Vec::new();
    for addr in [node.addr(), reference.addr()] {
        let mut a = RawConn::connect_with_timeout(addr, Duration::from_secs(20))?;
        let mut b = RawConn::connect_with_timeout(addr, Duration::from_secs(20))?;
        a.cmd(&["CONFIG", "SET", "busy-reply-threshold", "100"])?;
        a.cmd(&["FUNCTION", "LOAD", spin])?;
        let mut out = Vec::new();
        let busy = |b: &mut RawConn| -> Result<()> {
            wait_until(Duration::from_secs(10), "BUSY", || {
                b.cmd(&["PING"]).is_ok_and(|r| r.starts_with(b"-BUSY"))
            })
        };
        a.send(&crate::harness::encode_cmd(&[
            "FCALL", "spin", "1", "key1", "20",
        ]))?;
        busy(&mut b)?;
        out.push(b.cmd(&["PING"])?);
        let stats = String::from_utf8_lossy(&b.cmd(&["FUNCTION", "STATS"])?).into_owned();
        // The running time is the one part that differs.
        let masked = match stats.find("duration_ms\r\n:") {
            Some(i) => {
                let from = i + "duration_ms\r\n:".len();
                let to = stats[from..].find("\r\n").map_or(from, |e| from + e);
                format!("{}N{}", &stats[..from], &stats[to..])
            }
            None => stats,
        };
        out.push(masked.into_bytes());
        out.push(b.cmd(&["SCRIPT", "KILL"])?);
        out.push(b.cmd(&["FUNCTION", "KILL"])?);
        out.push(a.read_frame()?);
        out.push(b.cmd(&["FUNCTION", "KILL"])?);
        // A kill does not outlive its script: the next library loads.
        out.push(b.cmd(&["FUNCTION", "LOAD", "REPLACE", spin])?);
        a.send(&crate::harness::encode_cmd(&[
            "FCALL", "spinw", "1", "key1", "3",
        ]))?;
        busy(&mut b)?;
        out.push(b.cmd(&["SCRIPT", "KILL"])?);
        out.push(b.cmd(&["FUNCTION", "KILL"])?);
        out.push(a.read_frame()?);
        a.send(&crate::harness::encode_cmd(&[
            "EVAL",
            "local t = os.clock() while os.clock() - t < 20 do end return 1",
            "0",
        ]))?;
        busy(&mut b)?;
        out.push(b.cmd(&["FUNCTION", "STATS"])?);
        out.push(b.cmd(&["FUNCTION", "KILL"])?);
        out.push(b.cmd(&["SCRIPT", "KILL"])?);
        out.push(a.read_frame()?);
        out.push(b.cmd(&["FUNCTION", "LOAD", "REPLACE", spin])?);
        transcripts.push(out.iter().map(|r| show(r)).collect::<Vec<_>>());
    }
    ensure!(
        transcripts[0] == transcripts[1],
        "rockslot {:#?}\nvalkey {:#?}",
        transcripts[0],
        transcripts[1]
    );
    ensure!(
        transcripts[0][1].contains("spin"),
        "{:?}",
        transcripts[0][1]
    );
    Ok(())
}

/// The library the operator tests load: a writing function and a read-only one.
const OPS_LIB: &str = "#!lua name=ops\n\
    server.register_function('put', function(keys, args) return server.call('set', keys[1], args[1]) end)\n\
    server.register_function{function_name='peek', callback=function(keys, args) return server.call('get', keys[1]) end, flags={'no-writes'}}\n\
    server.register_function{function_name='peekarg', callback=function(keys, args) return server.call('get', args[1]) end, flags={'no-writes'}}";

const OTHER_LIB: &str = "#!lua name=other\n\
    server.register_function{function_name='twice', callback=function(keys, args) return args[1] .. args[1] end, flags={'no-writes'}}";

/// The libraries node `n` lists, by name.
fn libraries(n: &Node) -> Result<Vec<String>> {
    let mut c = n.conn()?;
    let list: Vec<redis::Value> = redis::cmd("FUNCTION").arg("LIST").query(&mut c)?;
    let mut names = Vec::new();
    for lib in list {
        let fields = match lib {
            redis::Value::Map(m) => m,
            redis::Value::Array(a) => a
                .chunks(2)
                .map(|p| (p[0].clone(), p.get(1).cloned().unwrap_or(redis::Value::Nil)))
                .collect(),
            other => anyhow::bail!("FUNCTION LIST entry {other:?}"),
        };
        for (k, v) in fields {
            if redis::from_redis_value::<String>(k)? == "library_name" {
                names.push(redis::from_redis_value::<String>(v)?);
            }
        }
    }
    names.sort();
    Ok(names)
}

fn wait_libraries(n: &Node, want: &[&str], what: &str) -> Result<()> {
    wait_until(Duration::from_secs(30), what, || {
        libraries(n).is_ok_and(|l| l == want)
    })
    .with_context(|| format!("{what}: lists {:?}", libraries(n)))
}

/// Libraries are stored with the data: they survive SIGKILL of a primary and a replica, reach
/// a replica by full sync (loaded before it attached) and by the stream (LOAD, DELETE, FLUSH
/// after), where read-only functions run and writing ones are refused.
#[test]
fn libraries_survive_sigkill_and_replicate_by_stream_and_full_sync() -> Result<()> {
    let mut primary = NodeBuilder::new().appendfsync("always").start()?;
    let mut replica = NodeBuilder::new().appendfsync("always").start()?;
    let mut p = primary.conn()?;
    let loaded: String = redis::cmd("FUNCTION")
        .arg("LOAD")
        .arg(OPS_LIB)
        .query(&mut p)?;
    ensure!(loaded == "ops", "{loaded}");
    let _: () = redis::cmd("FCALL")
        .arg("put")
        .arg(1)
        .arg("k")
        .arg("v1")
        .query(&mut p)?;
    primary.kill9()?;
    primary.restart()?;
    ensure!(
        libraries(&primary)? == ["ops"],
        "after SIGKILL: {:?}",
        libraries(&primary)?
    );
    let mut p = primary.conn()?;
    let v: String = redis::cmd("FCALL")
        .arg("peek")
        .arg(1)
        .arg("k")
        .query(&mut p)?;
    ensure!(v == "v1", "{v}");

    // Full sync: the replica gets the libraries with the data.
    let mut r = replica.conn()?;
    let _: () = redis::cmd("REPLICAOF")
        .arg("127.0.0.1")
        .arg(primary.port())
        .query(&mut r)?;
    wait_libraries(&replica, &["ops"], "libraries by full sync")?;
    wait_until(Duration::from_secs(30), "data by full sync", || {
        redis::cmd("FCALL_RO")
            .arg("peek")
            .arg(1)
            .arg("k")
            .query::<String>(&mut r)
            .is_ok_and(|v| v == "v1")
    })?;
    let refused = redis::cmd("FCALL")
        .arg("put")
        .arg(1)
        .arg("k")
        .arg("x")
        .query::<String>(&mut r)
        .unwrap_err();
    ensure!(
        refused
            .to_string()
            .contains("You can't write against a read only replica"),
        "{refused}"
    );

    // The stream: a second library, then the first deleted.
    let _: String = redis::cmd("FUNCTION")
        .arg("LOAD")
        .arg(OTHER_LIB)
        .query(&mut p)?;
    wait_libraries(&replica, &["ops", "other"], "LOAD by the stream")?;
    let _: () = redis::cmd("FUNCTION")
        .arg("DELETE")
        .arg("ops")
        .query(&mut p)?;
    wait_libraries(&replica, &["other"], "DELETE by the stream")?;
    let mut r = replica.conn()?;
    let twice: String = redis::cmd("FCALL_RO")
        .arg("twice")
        .arg(0)
        .arg("ab")
        .query(&mut r)?;
    ensure!(twice == "abab", "{twice}");

    // A replica killed keeps what it had, and catches up with what it missed.
    replica.kill9()?;
    let _: String = redis::cmd("FUNCTION")
        .arg("LOAD")
        .arg(OPS_LIB)
        .query(&mut p)?;
    replica.restart()?;
    ensure!(
        libraries(&replica)? == ["other"],
        "the replica after SIGKILL: {:?}",
        libraries(&replica)?
    );
    let mut r = replica.conn()?;
    let _: () = redis::cmd("REPLICAOF")
        .arg("127.0.0.1")
        .arg(primary.port())
        .query(&mut r)?;
    wait_libraries(&replica, &["ops", "other"], "after the replica's restart")?;
    let _: () = redis::cmd("FUNCTION").arg("FLUSH").query(&mut p)?;
    wait_libraries(&replica, &[], "FLUSH by the stream")?;
    // A replica promoted keeps its (empty) set and takes new libraries itself.
    let _: () = redis::cmd("REPLICAOF").arg("NO").arg("ONE").query(&mut r)?;
    let _: String = redis::cmd("FUNCTION")
        .arg("LOAD")
        .arg(OTHER_LIB)
        .query(&mut r)?;
    ensure!(libraries(&replica)? == ["other"]);
    Ok(())
}

/// In a cluster: FCALL follows the slot rules (MOVED, CROSSSLOT, undeclared keys elsewhere),
/// a writing function is redirected from a READONLY replica while a `no-writes` one is served
/// there; redis-py's cluster client loads a library on every primary and calls it;
/// `redis-cli --cluster add-node` copies the libraries to the new primary; a slot backup
/// carries them into another cluster.
#[test]
fn functions_in_a_cluster_follow_slots_and_travel_with_add_node_and_backups() -> Result<()> {
    let mut c = crate::failover::seed_cluster(&[])?;
    let q = |n: &Node, args: &[&str]| -> Result<String> { Ok(show(&raw_query(n, args)?)) };
    let masters = c.masters(0)?;
    for &m in &masters {
        let r = q(c.node(m), &["FUNCTION", "LOAD", OPS_LIB])?;
        ensure!(r == "$3\\r\\nops\\r\\n", "{r}");
    }
    let owner = c.key_owner("{t}a")?;
    let other = *masters
        .iter()
        .find(|&&m| m != owner)
        .context("another primary")?;
    let ok = q(c.node(owner), &["FCALL", "put", "1", "{t}a", "v"])?;
    ensure!(ok == "+OK\\r\\n", "{ok}");
    let moved = q(c.node(other), &["FCALL", "put", "1", "{t}a", "v"])?;
    ensure!(moved.starts_with("-MOVED "), "{moved}");
    let cross = q(c.node(owner), &["FCALL", "put", "2", "{t}a", "{u}b", "v"])?;
    ensure!(cross.starts_with("-CROSSSLOT"), "{cross}");
    let far = (0..)
        .map(|i| format!("far{i}"))
        .find(|k| c.key_owner(k).is_ok_and(|o| o != owner))
        .context("a key elsewhere")?;
    let r = q(c.node(owner), &["FCALL", "peekarg", "1", "{t}a", &far])?;
    ensure!(r.contains("non local key"), "{r}");
    // The replica: READONLY serves the no-writes function, redirects the writing one.
    let replica = c.replica_of(0, owner)?;
    c.wait_same_dbsize(owner, replica, Duration::from_secs(30))?;
    let mut rc = c.node(replica).raw_authed()?;
    rc.cmd(&["READONLY"])?;
    let peek = show(&rc.cmd(&["FCALL_RO", "peek", "1", "{t}a"])?);
    ensure!(peek == "$1\\r\\nv\\r\\n", "{peek}");
    let put = show(&rc.cmd(&["FCALL", "put", "1", "{t}a", "w"])?);
    ensure!(put.starts_with("-MOVED "), "{put}");

    // redis-py's cluster client: function_load goes to every primary, fcall to the key's.
    let py = r#"
import os, redis
from redis.cluster import RedisCluster
rc = RedisCluster(host="127.0.0.1", port=int(os.environ["PORT"]), password=os.environ["PW"])
rc.function_load(os.environ["LIB"])
print("calls", rc.fcall("twice", 1, "{t}a", "xy"), rc.fcall_ro("twice", 1, "{t}a", "z"))
"#;
    let mut cmd = std::process::Command::new("python3");
    cmd.args(["-c", py])
        .env("PORT", c.node(0).port().to_string())
        .env("PW", CLUSTER_PASSWORD)
        .env("LIB", OTHER_LIB);
    let run = ToolRun::run(&mut cmd, Duration::from_secs(60))?.ensure_success()?;
    ensure!(
        run.stdout.contains("calls b'xyxy' b'zz'"),
        "redis-py: {}",
        run.stdout
    );
    for &m in &masters {
        ensure!(libraries(c.node(m))? == ["ops", "other"], "primary {m}");
    }

    // add-node: the new primary gets the cluster's libraries.
    let new = c.add_empty_node()?;
    c.redis_cli_cluster(&["add-node", &c.node(new).host_port(), &c.node(0).host_port()])?
        .ensure_success()?;
    ensure!(
        libraries(c.node(new))? == ["ops", "other"],
        "after add-node: {:?}",
        libraries(c.node(new))?
    );
    c.wait_converged(Duration::from_secs(30))?;

    // A backup carries the libraries; restoring it loads them on every primary.
    let dir = std::env::temp_dir().join(format!(
        "rockslot-it-fn-backup-{}-{}",
        std::process::id(),
        crate::harness::unix_ms()
    ));
    let seed = c.node(0).host_port();
    let out = dir.display().to_string();
    c.rockslot_cli_cluster(&["backup", &seed, "--out", &out])?
        .ensure_success()?;
    ensure!(
        dir.join("functions.rdb").exists(),
        "no functions.rdb in the backup"
    );
    let dst = crate::harness::Cluster::builder(3).start()?;
    dst.create_and_wait(0)?;
    dst.rockslot_cli_cluster(&["restore", &dst.node(0).host_port(), "--from", &out])?
        .ensure_success()?;
    for m in dst.masters(0)? {
        ensure!(
            libraries(dst.node(m))? == ["ops", "other"],
            "restored primary {m}"
        );
    }
    let owner = dst.key_owner("{t}a")?;
    let v = show(&raw_query(
        dst.node(owner),
        &["FCALL_RO", "peek", "1", "{t}a"],
    )?);
    ensure!(
        v == "$1\\r\\nv\\r\\n",
        "restored data through a restored function: {v}"
    );
    // A tampered functions file is refused before anything changes.
    std::fs::write(dir.join("functions.rdb"), b"tampered")?;
    let run = dst.rockslot_cli_cluster(&[
        "restore",
        &dst.node(0).host_port(),
        "--from",
        &out,
        "--replace",
    ])?;
    ensure!(
        !run.status.success() && format!("{}{}", run.stdout, run.stderr).contains("functions.rdb"),
        "tampered functions file: {}{}",
        run.stdout,
        run.stderr
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
