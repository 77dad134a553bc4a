//! SLOWLOG and COMMANDLOG against valkey-server 8.1.8: with every threshold at zero both
//! servers log the same commands with the same ids, arguments (trimmed, counted, redacted),
//! client names and, for large requests and replies, the same byte sizes; timestamps,
//! durations and client ports are the only fields allowed to differ. Then the replies of
//! LEN, RESET, HELP and the argument errors, byte for byte.

use anyhow::{ensure, Result};
use redis::Value;

use crate::harness::{assert_same_reply, node_and_valkey, Node, RedisServer};

/// An entry with what may differ between servers blanked: the time, the peer's port and,
/// for the slow log, the duration.
fn normalise(v: Value, keep_value: bool) -> Value {
    let Value::Array(entries) = v else { return v };
    Value::Array(
        entries
            .into_iter()
            .map(|e| match e {
                Value::Array(mut f) if f.len() == 6 => {
                    f[1] = Value::Nil;
                    // A log read's reply carries times and ports: its size may differ too.
                    let log_read = matches!(&f[3], Value::Array(a)
                        if matches!(a.first(), Some(Value::BulkString(c)) if c.ends_with(b"LOG")));
                    if !keep_value || log_read {
                        f[2] = Value::Nil;
                    }
                    if let Value::BulkString(peer) = &f[4] {
                        let host = peer.split(|&c| c == b':').next().unwrap_or(&[]).to_vec();
                        f[4] = Value::BulkString(host);
                    }
                    Value::Array(f)
                }
                other => other,
            })
            .collect(),
    )
}

fn workload(c: &mut redis::Connection) -> Result<()> {
    redis::cmd("CLIENT").arg("SETNAME").arg("logged").exec(c)?;
    redis::cmd("SET").arg("k").arg("x".repeat(300)).exec(c)?;
    let _: Value = redis::cmd("GET").arg("k").query(c)?;
    let mut many = redis::cmd("RPUSH");
    many.arg("l");
    for i in 0..40 {
        many.arg(i);
    }
    many.exec(c)?;
    // Refused, and logged with its arguments hidden.
    let _ = redis::cmd("AUTH")
        .arg("nobody")
        .arg("wrong")
        .query::<Value>(c);
    let _: Value = redis::cmd("ACL")
        .arg("SETUSER")
        .arg("u")
        .arg("on")
        .arg(">secret")
        .arg("~*")
        .query(c)?;
    let mut tx = redis::pipe();
    tx.atomic().cmd("INCR").arg("n").cmd("INCR").arg("n");
    let _: Value = tx.query(c)?;
    let _: Value = redis::cmd("EVAL")
        .arg("return redis.call('INCR', KEYS[1])")
        .arg(1)
        .arg("n")
        .query(c)?;
    Ok(())
}

#[test]
fn logs_match_valkey_except_times_and_ports() -> Result<()> {
    let node = Node::start()?;
    let valkey = RedisServer::start_valkey()?;
    let mut logs = Vec::new();
    for mut c in [node.conn()?, valkey.conn()?] {
        for (name, value) in [
            ("slowlog-log-slower-than", "0"),
            ("commandlog-request-larger-than", "200"),
            ("commandlog-reply-larger-than", "250"),
        ] {
            redis::cmd("CONFIG")
                .arg("SET")
                .arg(name)
                .arg(value)
                .exec(&mut c)?;
        }
        workload(&mut c)?;
        let slow: Value = redis::cmd("SLOWLOG").arg("GET").arg(-1).query(&mut c)?;
        let req: Value = redis::cmd("COMMANDLOG")
            .arg("GET")
            .arg(-1)
            .arg("large-request")
            .query(&mut c)?;
        let rep: Value = redis::cmd("COMMANDLOG")
            .arg("GET")
            .arg(-1)
            .arg("large-reply")
            .query(&mut c)?;
        let len: i64 = redis::cmd("SLOWLOG").arg("LEN").query(&mut c)?;
        logs.push((
            normalise(slow, false),
            normalise(req, true),
            normalise(rep, true),
            len,
        ));
    }
    let (ours, theirs) = (&logs[0], &logs[1]);
    ensure!(
        ours.0 == theirs.0,
        "slow logs differ:\n ours   {:?}\n valkey {:?}",
        ours.0,
        theirs.0
    );
    ensure!(
        ours.1 == theirs.1,
        "large-request logs differ:\n ours   {:?}\n valkey {:?}",
        ours.1,
        theirs.1
    );
    ensure!(
        ours.2 == theirs.2,
        "large-reply logs differ:\n ours   {:?}\n valkey {:?}",
        ours.2,
        theirs.2
    );
    ensure!(
        ours.3 == theirs.3 && ours.3 > 8,
        "SLOWLOG LEN {} vs {}",
        ours.3,
        theirs.3
    );
    Ok(())
}

const CASES: &[&[&str]] = &[
    &["SLOWLOG", "HELP"],
    &["COMMANDLOG", "HELP"],
    &["SLOWLOG", "GET", "-2"],
    &["SLOWLOG", "GET", "x"],
    &["SLOWLOG", "GET", "1", "2"],
    &["SLOWLOG", "LEN", "x"],
    &["SLOWLOG", "FOO"],
    &["COMMANDLOG", "GET", "1"],
    &["COMMANDLOG", "GET", "x", "foo"],
    &["COMMANDLOG", "GET", "1", "foo"],
    &["COMMANDLOG", "LEN", "Large-Reply"],
    &["COMMANDLOG", "RESET", "slow"],
    &["COMMANDLOG", "RESET", "nope"],
    &["SLOWLOG", "RESET"],
    &["SLOWLOG", "LEN"],
    &["SLOWLOG", "GET"],
    &["CONFIG", "GET", "slowlog-max-len"],
    &["CONFIG", "GET", "slowlog-log-slower-than"],
    &["CONFIG", "GET", "commandlog-execution-slower-than"],
    &["CONFIG", "SET", "slowlog-log-slower-than", "-2"],
    &["CONFIG", "SET", "slowlog-max-len", "-1"],
    &["CONFIG", "SET", "commandlog-request-larger-than", "1mb"],
    &["CONFIG", "GET", "commandlog-large-reply-max-len"],
];

#[test]
fn commandlog_commands_match_valkey_byte_for_byte() -> Result<()> {
    let (_node, _valkey, mut ours, mut theirs) = node_and_valkey()?;
    for (i, cmd) in CASES.iter().enumerate() {
        assert_same_reply(&mut ours, &mut theirs, cmd, &format!("case {i}"))?;
    }
    Ok(())
}

/// The log keeps only the newest `slowlog-max-len` entries, and -1 turns it off.
#[test]
fn slowlog_is_bounded_and_can_be_turned_off() -> Result<()> {
    let node = Node::start()?;
    let mut c = node.conn()?;
    redis::cmd("CONFIG")
        .arg("SET")
        .arg("slowlog-log-slower-than")
        .arg(0)
        .exec(&mut c)?;
    redis::cmd("CONFIG")
        .arg("SET")
        .arg("slowlog-max-len")
        .arg(5)
        .exec(&mut c)?;
    for i in 0..20 {
        redis::cmd("SET").arg("k").arg(i).exec(&mut c)?;
    }
    let len: i64 = redis::cmd("SLOWLOG").arg("LEN").query(&mut c)?;
    ensure!(len == 5, "{len} entries kept");
    // The newest entry is the SLOWLOG LEN just sent, with its arguments.
    let newest: Vec<Vec<Value>> = redis::cmd("SLOWLOG").arg("GET").arg(1).query(&mut c)?;
    let args = newest.first().and_then(|e| e.get(3)).cloned();
    let want = Value::Array(vec![
        Value::BulkString(b"SLOWLOG".to_vec()),
        Value::BulkString(b"LEN".to_vec()),
    ]);
    ensure!(newest.len() == 1 && args == Some(want), "{newest:?}");
    redis::cmd("CONFIG")
        .arg("SET")
        .arg("slowlog-log-slower-than")
        .arg(-1)
        .exec(&mut c)?;
    redis::cmd("SLOWLOG").arg("RESET").exec(&mut c)?;
    redis::cmd("SET").arg("k").arg(1).exec(&mut c)?;
    let len: i64 = redis::cmd("SLOWLOG").arg("LEN").query(&mut c)?;
    ensure!(len == 0, "{len} entries while off");
    Ok(())
}
