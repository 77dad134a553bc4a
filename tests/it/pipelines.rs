//! The collection generators of the differential tests again, sent as pipelines and as
//! MULTI/EXEC blocks of random length. A pipeline or a transaction stages its writes and reads
//! them back before they reach storage (members, score index, list positions), so every reply
//! must still match redis-server's exactly. Then pipelines of scripts: one storage write for a
//! whole pipeline, and no lost update when connections pipeline scripts over shared keys.

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

/// A pipeline of scripts and functions commits once, as a pipeline of plain commands does
/// (before, each script was its own storage write), and connections that pipeline scripts
/// over the same keys at once still lose no increment.
#[test]
fn pipelined_scripts_commit_together_and_lose_nothing_under_contention() -> Result<()> {
    use crate::harness::RawConn;
    let node = Node::start()?;
    let mut c = node.raw()?;
    let lib = "#!lua name=p\nserver.register_function('add', \
               function(keys, args) return server.call('INCRBY', keys[1], args[1]) end)";
    c.cmd(&["FUNCTION", "LOAD", lib])?;
    let sha = c.cmd(&[
        "SCRIPT",
        "LOAD",
        "return redis.call('INCRBY', KEYS[1], ARGV[1])",
    ])?;
    let sha = String::from_utf8(sha)?;
    let sha = sha.trim_start_matches(|ch| ch != '\n').trim().to_string();
    let batches = |c: &mut RawConn| -> Result<u64> {
        let info = String::from_utf8(c.cmd(&["INFO", "memory"])?)?;
        let line = info
            .lines()
            .find_map(|l| l.strip_prefix("storage_write_batches:"))
            .ok_or_else(|| anyhow::anyhow!("no storage_write_batches in INFO: {info}"))?;
        Ok(line.trim().parse()?)
    };

    const N: usize = 300;
    let mut pipeline = Vec::new();
    let mut expected = Vec::new();
    let mut totals = [0i64; 10];
    for i in 0..N {
        let k = i % 10;
        let key = format!("k{k}");
        totals[k] += 1;
        let cmd: Vec<String> = match i % 3 {
            0 => vec!["FCALL".into(), "add".into(), "1".into(), key, "1".into()],
            1 => vec!["EVALSHA".into(), sha.clone(), "1".into(), key, "1".into()],
            _ => vec!["INCRBY".into(), key, "1".into()],
        };
        pipeline.extend(crate::harness::encode_cmd(&cmd));
        expected.push(format!(":{}\r\n", totals[k]).into_bytes());
    }
    let before = batches(&mut c)?;
    c.send(&pipeline)?;
    let replies = c.read_frames(N)?;
    let after = batches(&mut c)?;
    for (i, (got, want)) in replies.iter().zip(&expected).enumerate() {
        anyhow::ensure!(
            got == want,
            "reply {i}: {} instead of {}",
            crate::harness::show(got),
            crate::harness::show(want)
        );
    }
    // The pipeline may arrive in a few reads; one write per script would be 200.
    anyhow::ensure!(
        after - before <= 6,
        "{N} pipelined scripts and commands took {} storage writes",
        after - before
    );

    // Four connections pipeline FCALLs and EVALSHAs over the same five keys at once.
    const CLIENTS: usize = 4;
    const ROUNDS: usize = 40;
    const DEPTH: usize = 25;
    let addr = node.addr();
    let workers: Vec<_> = (0..CLIENTS)
        .map(|w| {
            let sha = sha.clone();
            std::thread::spawn(move || -> Result<()> {
                let mut c = RawConn::connect(addr)?;
                for round in 0..ROUNDS {
                    let mut p = Vec::new();
                    for d in 0..DEPTH {
                        let key = format!("shared{}", (w + round + d) % 5);
                        let head: [&str; 2] = if d % 2 == 0 {
                            ["FCALL", "add"]
                        } else {
                            ["EVALSHA", &sha]
                        };
                        p.extend(crate::harness::encode_cmd(&[
                            head[0], head[1], "1", &key, "1",
                        ]));
                    }
                    c.send(&p)?;
                    for r in c.read_frames(DEPTH)? {
                        anyhow::ensure!(r.starts_with(b":"), "{}", crate::harness::show(&r));
                    }
                }
                Ok(())
            })
        })
        .collect();
    for w in workers {
        w.join().map_err(|_| anyhow::anyhow!("worker panicked"))??;
    }
    let mut sum = 0i64;
    for k in 0..5 {
        let r = c.cmd(&["GET", &format!("shared{k}")])?;
        let text = String::from_utf8(r)?;
        let v = text.lines().nth(1).unwrap_or("0").trim().parse::<i64>()?;
        sum += v;
    }
    anyhow::ensure!(
        sum == (CLIENTS * ROUNDS * DEPTH) as i64,
        "the shared counters add up to {sum}, not {}",
        CLIENTS * ROUNDS * DEPTH
    );
    Ok(())
}
