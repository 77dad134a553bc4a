//! A data directory that fills up (issue 13, path 4): the writes that did not reach the disk
//! get an error, never +OK; the node keeps serving reads and refuses writes (and PING) with
//! Valkey's MISCONF error; after a restart with room again, every acknowledged write is there.
//! The data directory is a small tmpfs this test mounts (the suite runs as root).

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{bail, ensure, Context, Result};

use crate::harness::{parse_info, Node, Tmpfs};

fn misconf(reply: &redis::RedisResult<redis::Value>) -> bool {
    // The redis crate shows the error code apart from its text.
    matches!(reply, Err(e) if e.code() == Some("MISCONF")
        && e.to_string().contains("Errors writing to the AOF file: No space left on device"))
}

#[test]
fn filling_disk_refuses_writes_and_loses_no_acknowledged_one() -> Result<()> {
    let root = tempfile::Builder::new().prefix("rockslot-it-").tempdir()?;
    // Declared before the node: dropped (unmounted) after the node is gone.
    let fs = Tmpfs::mount(&root.path().join("data"), "40m")?;
    let mut node = Node::builder()
        .root(root.path())
        .appendfsync("always")
        .start()?;
    let mut con = node.conn()?;
    let value = vec![b'v'; 256 << 10];
    let mut acked: BTreeMap<String, usize> = BTreeMap::new();
    let mut refusal = None;
    for i in 0..400 {
        let key = format!("fill:{i}");
        // Pipelined pairs: the error must cover every reply of the failed write scope.
        let r: redis::RedisResult<(String, String)> = redis::pipe()
            .cmd("SET")
            .arg(&key)
            .arg(&value[..])
            .cmd("SET")
            .arg(format!("{key}:b"))
            .arg(i)
            .query(&mut con);
        match r {
            Ok((a, b)) if a == "OK" && b == "OK" => {
                acked.insert(key, i);
            }
            Ok(other) => bail!("unexpected replies {other:?}"),
            Err(e) => {
                refusal = Some(e.to_string());
                break;
            }
        }
    }
    let refusal = refusal.context("the 40 MB disk never filled")?;
    ensure!(
        refusal.contains("MISCONF") && refusal.contains("No space left on device"),
        "the failed write got {refusal:?}"
    );
    ensure!(acked.len() > 10, "only {} writes fit", acked.len());
    println!(
        "disk full after {} acknowledged writes: {refusal}",
        acked.len()
    );

    // The same connection and a new one: reads work, writes and PING are refused.
    let (first, _) = acked.iter().next().context("no acked key")?;
    let got: Vec<u8> = redis::cmd("GET").arg(first).query(&mut con)?;
    ensure!(got == value, "an acknowledged value read back wrong");
    let mut other = node.conn()?;
    for c in [
        redis::cmd("SET").arg("after").arg("x").clone(),
        redis::cmd("PING").clone(),
    ] {
        let r: redis::RedisResult<redis::Value> = c.query(&mut other);
        ensure!(misconf(&r), "a write on a full disk got {r:?}");
    }
    let small: Option<String> = redis::cmd("GET")
        .arg(format!("{first}:b"))
        .query(&mut other)?;
    ensure!(small.is_some(), "a read on a full disk failed");
    let info: String = redis::cmd("INFO").arg("persistence").query(&mut other)?;
    let info = parse_info(&info)?;
    ensure!(
        info.get("aof_last_write_status").map(String::as_str) == Some("err"),
        "INFO persistence: {info:?}"
    );

    // Room again and a restart: every acknowledged write is there and writes work.
    fs.resize("400m")?;
    node.kill9()?;
    node.restart()?;
    let mut con = node.conn()?;
    for (key, i) in &acked {
        let (big, small): (Vec<u8>, Option<String>) = redis::pipe()
            .cmd("GET")
            .arg(key)
            .cmd("GET")
            .arg(format!("{key}:b"))
            .query(&mut con)?;
        ensure!(big == value, "{key} lost after the restart");
        ensure!(
            small.as_deref() == Some(i.to_string().as_str()),
            "{key}:b lost after the restart: {small:?}"
        );
    }
    let r: String = redis::cmd("SET").arg("after").arg("x").query(&mut con)?;
    ensure!(r == "OK");
    node.stop_within(Duration::from_secs(30))?;
    Ok(())
}
