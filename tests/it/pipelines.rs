//! The collection generators of the differential tests again, sent as pipelines and as
//! MULTI/EXEC blocks of random length. A pipeline or a transaction stages its writes and reads
//! them back before they reach storage (members, score index, list positions), so every reply
//! must still match redis-server's exactly.

use anyhow::Result;
use redis::Value;

use crate::commands::{
    normalise_hash, normalise_set, random_hash_command, random_list_command, random_set_command,
    Rng,
};
use crate::harness::{Node, RedisServer};
use crate::zsets::{normalise_zset, random_zset_command};

/// Sends `cmds` as one pipeline (or one MULTI/EXEC); one value per command, or the error
/// that refused the whole block.
fn run_block(conn: &mut redis::Connection, cmds: &[Vec<String>], atomic: bool) -> Vec<Value> {
    let mut p = redis::pipe();
    if atomic {
        p.atomic();
    }
    for c in cmds {
        let mut cmd = redis::cmd(&c[0]);
        for a in &c[1..] {
            cmd.arg(a);
        }
        p.add_command(cmd);
    }
    p.ignore_errors();
    match p.query::<Vec<Value>>(conn) {
        Ok(v) => v,
        Err(e) => vec![Value::SimpleString(format!("block refused: {e}"))],
    }
}

type Gen = fn(&mut Rng) -> Vec<String>;
type Norm = fn(&[String], Value) -> Value;

#[test]
fn collection_pipelines_and_transactions_match_redis_server() -> Result<()> {
    let node = Node::start()?;
    let reference = RedisServer::start()?;
    let mut ours = node.conn()?;
    let mut theirs = reference.conn()?;
    let kinds: [(&str, Gen, Norm); 4] = [
        ("hash", random_hash_command, normalise_hash),
        ("set", random_set_command, normalise_set),
        ("list", random_list_command, crate::commands::normalise),
        ("zset", random_zset_command, normalise_zset),
    ];
    let mut total = 0;
    for (name, gen, norm) in kinds {
        for seed in [7u64, 1234] {
            redis::cmd("FLUSHALL").exec(&mut ours)?;
            redis::cmd("FLUSHALL").exec(&mut theirs)?;
            let mut r = Rng(seed.wrapping_mul(0x9E3779B97F4A7C15) | 1);
            for block in 0..60 {
                let n = 1 + r.below(48) as usize;
                let cmds: Vec<Vec<String>> = (0..n).map(|_| gen(&mut r)).collect();
                let atomic = r.below(3) == 0;
                let a = run_block(&mut ours, &cmds, atomic);
                let b = run_block(&mut theirs, &cmds, atomic);
                assert_eq!(
                    a.len(),
                    b.len(),
                    "{name} seed {seed} block {block}: {a:?} vs {b:?}"
                );
                for (i, (x, y)) in a.into_iter().zip(b).enumerate() {
                    let c = &cmds[i.min(cmds.len() - 1)];
                    assert_eq!(
                        norm(c, x),
                        norm(c, y),
                        "{name} seed {seed} block {block} (atomic {atomic}) command {i}: {c:?}\nblock: {cmds:?}"
                    );
                }
                total += n;
            }
        }
    }
    println!("pipelined and transactional collection commands compared: {total}");
    Ok(())
}
