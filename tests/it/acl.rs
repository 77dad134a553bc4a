//! ACL users against valkey-server 8.1.8 byte for byte: ACL SETUSER's rules and errors, how
//! ACL LIST and GETUSER render them, DELUSER/USERS/WHOAMI/CAT/GENPASS/DRYRUN/HELP, AUTH and
//! HELLO AUTH, NOPERM at top level, in MULTI and in scripts, `requirepass` as the default
//! user's password; then a seeded generator of rule sequences and dry runs. Then what
//! operators rely on: the aclfile (SAVE, LOAD, start), `user` lines in the config, a deleted
//! user's connections closed, redis-py with a username.

use std::time::Duration;

use anyhow::{ensure, Context, Result};
use rand::{Rng, SeedableRng};

use crate::harness::{assert_same_reply, wait_until, Node, RawConn, RedisServer, ToolRun};

/// Rule lists applied to fresh users (each then read back with ACL GETUSER).
const RULES: &[&str] = &[
    "+@read -get +set",
    "+@all -@dangerous",
    "+get +get +set -get",
    "+@read +@write -@read",
    "+@READ -@Read",
    "+@all -@all +GET",
    "allcommands -set nocommands +set",
    "+@all -config|set +config|set",
    "+@all -@dangerous +flushall",
    "+get +@read",
    "+@hash -hset -@hash",
    "+config|get +config|set -config",
    "-config +config|get",
    "+client|list +client +client|kill",
    "+acl|whoami +acl -acl|setuser",
    "+select|0 +select|1",
    "+select|ABC +Config|GET -select",
    "+debug|object +debug",
    "+set|foo",
    "+geTex +get -getex",
    "-@all +@read -@write ~k* %R~r* &ch* &ch2 ~k*",
    "%RW~foo %R~bar %W~baz %WR~qux",
    "%RW~* ~foo",
    "~foo allkeys",
    "~foo resetkeys ~bar",
    "&a &b &a resetchannels &c",
    "&a allchannels",
    "on >p nopass",
    "nopass >p",
    "on >p1 >p2 >p1 <p2",
    "skip-sanitize-payload",
    "on nopass ~* +@all reset",
    "+get (~a +set) clearselectors",
    "on >pw ~key* +get (~sel* +set &c1) (%R~r* +@read)",
    "(+get ~a) (+get ~a)",
    "()",
    "ON NOPASS ALLKEYS ALLCHANNELS ALLCOMMANDS",
    "%R",
    "~",
    "+@scripting +@pubsub -publish +@keyspace +@connection +@transaction +@blocking",
    "+@admin +@fast +@slow +@string +@list +@set +@sortedset +@geo +@stream +@bitmap",
];

/// Rules ACL SETUSER refuses.
const BAD: &[&str] = &[
    "foo",
    "~* ~foo",
    "+nosuch",
    "+@nosuch",
    "-select|0",
    "+config|get|x",
    "+config|nosuch",
    "+select|",
    "+",
    "+@",
    "+|get",
    "+@all|x",
    "#abc",
    "!0000000000000000000000000000000000000000000000000000000000000000",
    "<nopw",
    "%X~a",
    "%~foo",
    "%RR~foo",
    "%Rfoo",
    "&* &x",
    "(foo)",
    "(on)",
    "(+get",
];

fn words(s: &str) -> Vec<String> {
    s.split(' ').map(str::to_string).collect()
}

fn cmd(parts: &[&str]) -> Vec<String> {
    parts.iter().map(|s| s.to_string()).collect()
}

fn cases() -> Vec<Vec<String>> {
    let mut c = Vec::new();
    for (i, rules) in RULES.iter().enumerate() {
        let user = format!("u{i}");
        let mut set = cmd(&["ACL", "SETUSER", &user]);
        set.extend(words(rules));
        c.push(set);
        c.push(cmd(&["ACL", "GETUSER", &user]));
    }
    for rules in BAD {
        let mut set = cmd(&["ACL", "SETUSER", "bad"]);
        set.extend(words(rules));
        c.push(set);
    }
    for parts in [
        &["ACL", "SETUSER", "sp ace"][..],
        &["ACL", "LIST"],
        &["ACL", "USERS"],
        &["ACL", "WHOAMI"],
        &["ACL", "GETUSER", "nosuch"],
        &["ACL", "DELUSER", "u1", "u2", "u1", "nobody"],
        &["ACL", "DELUSER", "default"],
        &["ACL", "DELUSER", "u3", "default"],
        &["ACL", "USERS"],
        &["ACL", "CAT"],
        &["ACL", "CAT", "nosuch"],
        &["ACL", "CAT", "read", "x"],
        &["ACL", "GENPASS", "0"],
        &["ACL", "GENPASS", "x"],
        &["ACL", "GENPASS", "5000"],
        &["ACL", "HELP"],
        &["ACL", "FOO"],
        &["ACL", "SAVE"],
        &["ACL", "LOAD"],
        &["ACL", "LOG", "x"],
        &["ACL", "LOG", "-1"],
        &["ACL", "DRYRUN", "nobody", "get", "x"],
        &["ACL", "DRYRUN", "u5", "nosuch"],
        &["ACL", "DRYRUN", "u5", "get"],
        &["ACL", "DRYRUN", "u5", "config", "nosuch"],
        &[
            "ACL",
            "SETUSER",
            "dr",
            "on",
            "~k*",
            "+get",
            "&ch",
            "+publish",
            "+config|get",
        ],
        &["ACL", "DRYRUN", "dr", "get", "k1"],
        &["ACL", "DRYRUN", "dr", "get", "x1"],
        &["ACL", "DRYRUN", "dr", "del", "k1"],
        &["ACL", "DRYRUN", "dr", "publish", "ch", "m"],
        &["ACL", "DRYRUN", "dr", "publish", "other", "m"],
        &["ACL", "DRYRUN", "dr", "config", "set", "a", "b"],
        &["ACL", "DRYRUN", "dr", "config", "get", "a"],
        // requirepass is the default user's password.
        &["CONFIG", "SET", "requirepass", "secret"],
        &["ACL", "GETUSER", "default"],
        &["AUTH", "secret"],
        &["ACL", "LIST"],
        &["CONFIG", "SET", "requirepass", ""],
        &["ACL", "GETUSER", "default"],
        &["AUTH", "x"],
        &["AUTH", "default", "anything"],
        &["AUTH", "nobody", "x"],
        &["AUTH", "a", "b", "c"],
        &["AUTH", "dr", "x"],
        // Running as a restricted user: top level, MULTI, scripts.
        &["ACL", "SETUSER", "dr", ">drpw"],
        &["AUTH", "dr", "drpw"],
        &["ACL", "WHOAMI"],
        &["GET", "k1"],
        &["GET", "x1"],
        &["SET", "k1", "v"],
        &["PUBLISH", "ch", "m"],
        &["PUBLISH", "nope", "m"],
        &["CONFIG", "GET", "maxclients"],
        &["CONFIG", "SET", "maxclients", "100"],
        &["MULTI"],
        &["GET", "k1"],
        &["EXEC"],
        &["PING"],
        &["AUTH", "default", "x"],
        &["ACL", "SETUSER", "dr", "+eval", "+del", "+multi", "+exec"],
        &["AUTH", "dr", "drpw"],
        &["MULTI"],
        &["GET", "k1"],
        &["DEL", "k1"],
        &["GET", "x1"],
        &["EXEC"],
        &["EVAL", "return redis.call('get','x1')", "0"],
        &["EVAL", "return redis.pcall('get','x1')", "0"],
        &["EVAL", "return redis.call('del','k1')", "1", "x1"],
        &["EVAL", "return redis.call('del','k1')", "1", "k1"],
        &["EVAL", "return redis.call('set','k1','x')", "0"],
        &["EVAL", "return server.acl_check_cmd('set','k1','x')", "0"],
        &["EVAL", "return server.acl_check_cmd('get','k1')", "0"],
        &["AUTH", "default", "x"],
        &["ACL", "SETUSER", "off1", "off", ">pw", "+@all"],
        &["AUTH", "off1", "pw"],
        &["RESET"],
        &["ACL", "WHOAMI"],
        &["ACL", "SETUSER", "default", "resetpass"],
        &["ACL", "WHOAMI"],
        &["RESET"],
        &["GET", "k1"],
        &["AUTH", "default", "x"],
    ] {
        c.push(cmd(parts));
    }
    c
}

#[test]
fn acl_commands_match_valkey_byte_for_byte_in_resp2_and_resp3() -> Result<()> {
    for proto in ["2", "3"] {
        // Fresh servers per protocol: the cases change users and passwords.
        let (_node, _reference, mut ours, mut theirs) = crate::harness::node_and_valkey()?;
        // HELLO's server fields differ by design: both only switch protocol here.
        ours.cmd(&["HELLO", proto])?;
        theirs.cmd(&["HELLO", proto])?;
        for (i, c) in cases().iter().enumerate() {
            assert_same_reply(&mut ours, &mut theirs, c, &format!("RESP{proto} case {i}"))?;
        }
    }
    Ok(())
}

const POOL: &[&str] = &[
    "+@read",
    "-@read",
    "+@write",
    "-@write",
    "+get",
    "-get",
    "+set",
    "-set",
    "+config|get",
    "-config|get",
    "+config",
    "-config",
    "+@all",
    "-@all",
    "~k*",
    "%R~r*",
    "%W~w*",
    "resetkeys",
    "allkeys",
    "&ch*",
    "resetchannels",
    "allchannels",
    "+select|0",
    "+client|list",
    "-client",
    "+@dangerous",
    "-@dangerous",
    "+@hash",
    "-hset",
    "(+get ~s*)",
    "(%W~w* +@write)",
    "clearselectors",
    "+publish",
    "+subscribe",
    "+psubscribe",
    "+del",
    "+@keyspace",
    "-@keyspace",
    "on",
    "off",
    ">pw",
    "nopass",
    "resetpass",
    "+mget",
    "+hset",
    "+@pubsub",
];

const CALLS: &[&str] = &[
    "get k1",
    "get r1",
    "get s1",
    "get w1",
    "set w1 v",
    "set k1 v",
    "set r1 v",
    "del k1",
    "config get x",
    "config set x y",
    "publish ch1 m",
    "publish other m",
    "subscribe ch1 x",
    "psubscribe ch* ch1",
    "hset k1 f v",
    "hset w2 f v",
    "select 0",
    "select 1",
    "client list",
    "client id",
    "mget k1 r1",
    "mget k1 w1",
    "keys *",
    "flushall",
];

#[test]
fn generated_rule_sequences_and_dry_runs_match_valkey() -> Result<()> {
    let (_node, _reference, mut ours, mut theirs) = crate::harness::node_and_valkey()?;
    let mut r = rand::rngs::StdRng::seed_from_u64(31);
    for step in 0..400 {
        let user = format!("g{}", r.random_range(0..6));
        let mut set = cmd(&["ACL", "SETUSER", &user]);
        for _ in 0..r.random_range(1..6) {
            set.push(POOL[r.random_range(0..POOL.len())].to_string());
        }
        let ctx = format!("step {step}");
        assert_same_reply(&mut ours, &mut theirs, &set, &ctx)?;
        assert_same_reply(
            &mut ours,
            &mut theirs,
            &cmd(&["ACL", "GETUSER", &user]),
            &ctx,
        )?;
        for _ in 0..3 {
            let call = CALLS[r.random_range(0..CALLS.len())];
            let mut dry = cmd(&["ACL", "DRYRUN", &user]);
            dry.extend(words(call));
            assert_same_reply(&mut ours, &mut theirs, &dry, &ctx)?;
        }
    }
    assert_same_reply(&mut ours, &mut theirs, &["ACL", "LIST"], "final list")?;
    Ok(())
}

/// A Python script run against `port`; its last line.
fn python(script: &str, port: u16) -> Result<String> {
    let mut py = std::process::Command::new("python3");
    py.args(["-c", script]).env("PORT", port.to_string());
    let run = ToolRun::run(&mut py, Duration::from_secs(60))?.ensure_success()?;
    Ok(run.stdout.lines().last().unwrap_or_default().to_string())
}

/// redis-py as an ACL user: reads and writes its keys, is refused others with NOPERM, may
/// publish only to its channels.
const REDIS_PY_USER: &str = r#"
import os, redis
port = int(os.environ["PORT"])
admin = redis.Redis(port=port, password="adminpw")
admin.acl_setuser("app", enabled=True, passwords=["+apppw"], keys=["app:*"], channels=["app.*"],
                  commands=["+@read", "+@write", "+publish", "-flushall"])
r = redis.Redis(port=port, username="app", password="apppw")
out = [r.set("app:1", "v"), r.get("app:1")]
for f in (lambda: r.get("other"), lambda: r.flushall(), lambda: r.publish("news", "x")):
    try:
        f()
        out.append("allowed")
    except redis.exceptions.NoPermissionError as e:
        out.append(str(e))
out.append(r.publish("app.events", "x"))
try:
    redis.Redis(port=port, username="app", password="wrong").ping()
except redis.exceptions.AuthenticationError as e:
    out.append("auth refused")
print(out)
"#;

#[test]
fn acl_users_gate_clients_persist_in_the_aclfile_and_lose_connections_when_deleted() -> Result<()> {
    let mut node = Node::builder().password("adminpw").start()?;
    let last = python(REDIS_PY_USER, node.port())?;
    ensure!(
        last == "[True, b'v', 'No permissions to access a key', \"User app has no permissions to \
                 run the 'flushall' command\", 'No permissions to access a channel', 0, 'auth refused']",
        "redis-py as an ACL user: {last}"
    );
    // A deleted user's connections are closed.
    let mut app = node.raw()?;
    ensure!(app.cmd(&["AUTH", "app", "apppw"])? == b"+OK\r\n");
    let mut admin = node.raw_authed()?;
    ensure!(admin.cmd(&["ACL", "DELUSER", "app"])? == b":1\r\n");
    wait_until(
        Duration::from_secs(10),
        "the deleted user's connection closes",
        || app.cmd(&["PING"]).is_err(),
    )?;

    // The aclfile: saved, read at start, reloaded; a broken file changes nothing.
    let aclfile = node.root().join("users.acl");
    let path = aclfile.display().to_string();
    node.stop()?;
    std::fs::write(&aclfile, "user default on nopass ~* &* +@all\n")?;
    let mut node = Node::builder()
        .root(node.root().to_path_buf())
        .directive("aclfile", &path)
        .start()?;
    let mut c = node.raw()?;
    ensure!(c.cmd(&["ACL", "SETUSER", "ops", "on", ">opspw", "+@all", "~*"])? == b"+OK\r\n");
    ensure!(c.cmd(&["ACL", "SAVE"])? == b"+OK\r\n");
    let saved = std::fs::read_to_string(&aclfile)?;
    ensure!(saved.starts_with("user default on nopass sanitize-payload ~* &* +@all\nuser ops on "));
    node.restart()?;
    let mut c = node.raw()?;
    ensure!(
        c.cmd(&["AUTH", "ops", "opspw"])? == b"+OK\r\n",
        "ops after restart"
    );
    std::fs::write(
        &aclfile,
        "user default on nopass ~* &* +@all\nuser broken +nosuch\n",
    )?;
    let refused = String::from_utf8_lossy(&c.cmd(&["ACL", "LOAD"])?).into_owned();
    ensure!(
        refused.contains("Error in applying operation '+nosuch'")
            && refused.contains("no change to the previously active ACL rules was performed"),
        "{refused}"
    );
    ensure!(c.cmd(&["ACL", "WHOAMI"])? == b"$3\r\nops\r\n", "still ops");
    std::fs::write(&aclfile, saved.replace("user ops on", "user ops off"))?;
    ensure!(c.cmd(&["ACL", "LOAD"])? == b"+OK\r\n");
    ensure!(
        c.cmd(&["AUTH", "ops", "opspw"])?.starts_with(b"-WRONGPASS"),
        "ops is off now"
    );

    // `user` lines in the config; with an aclfile too the start is refused, as Valkey does.
    let node2 = Node::builder()
        .directive_raw("user", "reader on >rpw ~* +@read")
        .start()?;
    let mut c = node2.raw()?;
    ensure!(c.cmd(&["AUTH", "reader", "rpw"])? == b"+OK\r\n");
    let w = String::from_utf8_lossy(&c.cmd(&["SET", "k", "v"])?).into_owned();
    ensure!(
        w.starts_with("-NOPERM User reader has no permissions to run the 'set' command"),
        "{w}"
    );
    let (status, log) = Node::builder()
        .directive_raw("user", "reader on >rpw ~* +@read")
        .directive("aclfile", &path)
        .run_to_exit(Duration::from_secs(20))?;
    ensure!(
        !status.success(),
        "started with both user lines and an aclfile"
    );
    ensure!(
        log.contains("please define either an ACL file or declare users"),
        "{log}"
    );
    let _ = node.stop();
    Ok(())
}

#[test]
fn acl_log_records_refusals_and_groups_repeats() -> Result<()> {
    let node = Node::start()?;
    let mut c = node.raw()?;
    c.cmd(&["ACL", "SETUSER", "lim", "on", ">p", "+get", "~a*"])?;
    let mut u = node.raw()?;
    u.cmd(&["AUTH", "lim", "p"])?;
    for _ in 0..3 {
        u.cmd(&["SET", "a1", "v"])?;
    }
    u.cmd(&["GET", "b1"])?;
    u.cmd(&["AUTH", "lim", "wrong"])?;
    let mut r = node.client()?.get_connection().context("connect")?;
    let log: Vec<Vec<redis::Value>> = redis::cmd("ACL").arg("LOG").query(&mut r)?;
    ensure!(log.len() == 3, "{log:?}");
    let field = |e: &Vec<redis::Value>, name: &str| -> String {
        e.chunks(2)
            .find(|p| matches!(&p[0], redis::Value::BulkString(b) if b == name.as_bytes()))
            .map(|p| format!("{:?}", p[1]).to_lowercase())
            .unwrap_or_default()
    };
    ensure!(field(&log[0], "reason").contains("auth"), "{:?}", log[0]);
    ensure!(field(&log[1], "reason").contains("key"), "{:?}", log[1]);
    ensure!(field(&log[2], "count") == "int(3)", "{:?}", log[2]);
    ensure!(field(&log[2], "object").contains("set"), "{:?}", log[2]);
    let reset: String = redis::cmd("ACL").arg("LOG").arg("RESET").query(&mut r)?;
    ensure!(reset == "OK");
    let empty: Vec<redis::Value> = redis::cmd("ACL").arg("LOG").query(&mut r)?;
    ensure!(empty.is_empty());
    Ok(())
}

/// Permissions through the real command path, against Valkey: a write-only key pattern does
/// not let a user read through commands that return or copy a value; a read-only one does
/// not let it write; a queued command loses its right when the user does before EXEC; a
/// HELLO that fails leaves the user as it was; the aclfile and users cannot be set at run
/// time.
#[test]
fn permissions_hold_through_every_command_path_as_in_valkey() -> Result<()> {
    let (node, reference) = (Node::start()?, RedisServer::start_valkey()?);
    let mut admin = (node.raw()?, RawConn::connect(reference.addr())?);
    let mut user = (node.raw()?, RawConn::connect(reference.addr())?);
    let same = |which: &mut (RawConn, RawConn), c: &[&str]| -> Result<()> {
        assert_same_reply(&mut which.0, &mut which.1, c, &format!("{c:?}"))
    };
    for c in [
        &[
            "ACL", "SETUSER", "w", "on", ">pw", "%W~sec*", "~mine*", "+@all",
        ][..],
        &[
            "ACL", "SETUSER", "r", "on", ">pw", "%R~src*", "~dst*", "+@all",
        ],
        &["SET", "sec1", "5"],
        &["SET", "src1", "v"],
        &["SADD", "secset", "a"],
        &["HSET", "sech", "n", "1"],
        &["RPUSH", "seclist", "a", "b"],
        &["CONFIG", "SET", "aclfile", "/tmp/x.acl"],
        &["CONFIG", "SET", "user", "x on >pw ~* +@all"],
    ] {
        same(&mut admin, c)?;
    }
    same(&mut user, &["AUTH", "w", "pw"])?;
    for c in [
        &["GET", "sec1"][..],
        &["GETSET", "sec1", "x"],
        &["INCR", "sec1"],
        &["SET", "sec1", "y", "GET"],
        &["SET", "sec1", "y"],
        &["EXPIRE", "sec1", "100"],
        &["SUNIONSTORE", "mine1", "secset"],
        &["COPY", "sec1", "mine2"],
        &["RENAME", "sec1", "mine3"],
        &["LPOP", "seclist"],
        &["LPUSH", "seclist", "c"],
        &["HINCRBY", "sech", "n", "1"],
        &["HSET", "sech", "f", "v"],
        &["SADD", "secset", "b"],
        &["DEL", "sec1"],
        &["SET", "mine4", "v"],
        &["GET", "mine4"],
        // A failed HELLO does not switch the user.
        &["HELLO", "2", "AUTH", "r", "pw", "BOGUS"],
        &["ACL", "WHOAMI"],
        &["AUTH", "r", "pw"],
        &["COPY", "src1", "dst1"],
        &["GET", "src1"],
        &["GET", "dst1"],
        &["SET", "src1", "x"],
        &["DEL", "src1"],
        &["SUNIONSTORE", "src2", "dst1"],
        // A right taken away between queueing and EXEC.
        &["MULTI"],
        &["GET", "src1"],
        &["SET", "dst2", "v"],
    ] {
        same(&mut user, c)?;
    }
    same(
        &mut admin,
        &["ACL", "SETUSER", "r", "-set", "resetkeys", "~dst*"],
    )?;
    for c in [&["EXEC"][..], &["GET", "dst2"]] {
        same(&mut user, c)?;
    }
    Ok(())
}

/// A subscriber whose user loses the channel is disconnected, as Valkey does; one whose
/// user keeps it stays.
#[test]
fn a_subscriber_that_loses_its_channel_is_disconnected() -> Result<()> {
    let node = Node::start()?;
    let mut admin = node.raw()?;
    admin.cmd(&["ACL", "SETUSER", "sub", "on", ">pw", "&news.*", "+@all"])?;
    let mut kept = node.raw()?;
    let mut lost = node.raw()?;
    for c in [&mut kept, &mut lost] {
        ensure!(c.cmd(&["AUTH", "sub", "pw"])? == b"+OK\r\n");
        c.cmd(&["SUBSCRIBE", "news.a"])?;
    }
    // Adding a channel keeps every subscriber.
    admin.cmd(&["ACL", "SETUSER", "sub", "&sport.*"])?;
    ensure!(admin.cmd(&["PUBLISH", "news.a", "m1"])? == b":2\r\n");
    admin.cmd(&["ACL", "SETUSER", "sub", "resetchannels", "&sport.*"])?;
    wait_until(Duration::from_secs(10), "subscribers dropped", || {
        admin
            .cmd(&["PUBSUB", "NUMSUB", "news.a"])
            .is_ok_and(|r| r.ends_with(b":0\r\n"))
    })?;
    Ok(())
}

/// ACL users replicate as configuration: a replica gets its primary's users with a full sync
/// and each change after it, so clients keep their credentials after a failover.
#[test]
fn acl_users_reach_replicas_by_full_sync_and_stream() -> Result<()> {
    let primary = Node::start()?;
    let replica = Node::start()?;
    let mut p = primary.raw()?;
    ensure!(p.cmd(&["ACL", "SETUSER", "app", "on", ">apppw", "~app:*", "+@all"])? == b"+OK\r\n");
    let mut r = replica.raw()?;
    let port = primary.port().to_string();
    ensure!(r.cmd(&["REPLICAOF", "127.0.0.1", &port])? == b"+OK\r\n");
    let can_auth = |n: &Node, user: &str, pw: &str| -> bool {
        n.raw()
            .and_then(|mut c| c.cmd(&["AUTH", user, pw]))
            .is_ok_and(|reply| reply == b"+OK\r\n")
    };
    wait_until(Duration::from_secs(30), "the user by full sync", || {
        can_auth(&replica, "app", "apppw")
    })?;
    p.cmd(&["ACL", "SETUSER", "ops", "on", ">opspw", "+@read", "~*"])?;
    p.cmd(&["ACL", "DELUSER", "app"])?;
    wait_until(Duration::from_secs(30), "the changes by the stream", || {
        can_auth(&replica, "ops", "opspw") && !can_auth(&replica, "app", "apppw")
    })?;
    let list = |c: &mut RawConn| c.cmd(&["ACL", "LIST"]);
    ensure!(
        list(&mut p)? == list(&mut r)?,
        "the replica's users differ from its primary's"
    );
    Ok(())
}
