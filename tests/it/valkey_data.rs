//! Data moving between valkey-server 8.1.8 and rockslot in Valkey's own formats: DUMP/RESTORE
//! payloads both ways, MIGRATE from a running Valkey, `valkey-cli --cluster import`, and
//! dump.rdb files loaded with `rockslot-cli --cluster import-rdb`.

use anyhow::Result;
use redis::{Connection, Value};

use crate::harness::{Node, RedisServer};

/// What a key holds, read with the type's own commands and put in a comparable order.
pub(crate) fn content(c: &mut Connection, key: &[u8]) -> Result<(String, Vec<Vec<u8>>)> {
    let ty: String = redis::cmd("TYPE").arg(key).query(c)?;
    let mut items: Vec<Vec<u8>> = match ty.as_str() {
        "string" => vec![redis::cmd("GET").arg(key).query(c)?],
        "list" => redis::cmd("LRANGE").arg(key).arg(0).arg(-1).query(c)?,
        "set" => redis::cmd("SMEMBERS").arg(key).query(c)?,
        "hash" => {
            let v: Vec<(Vec<u8>, Vec<u8>)> = redis::cmd("HGETALL").arg(key).query(c)?;
            v.into_iter()
                .map(|(f, v)| [f, b"=".to_vec(), v].concat())
                .collect()
        }
        "zset" => redis::cmd("ZRANGE")
            .arg(key)
            .arg(0)
            .arg(-1)
            .arg("WITHSCORES")
            .query(c)?,
        "none" => Vec::new(),
        other => anyhow::bail!("unexpected type {other}"),
    };
    if matches!(ty.as_str(), "set" | "hash") {
        items.sort();
    }
    Ok((ty, items))
}

/// Asserts `key` holds the same in both, naming the first difference (not the whole value).
pub(crate) fn assert_same_content(
    ours: &mut Connection,
    theirs: &mut Connection,
    key: &[u8],
    what: &str,
) -> Result<()> {
    let (a, b) = (content(ours, key)?, content(theirs, key)?);
    if a != b {
        let at = a.1.iter().zip(&b.1).position(|(x, y)| x != y);
        let show = |v: &Vec<Vec<u8>>| {
            at.and_then(|i| v.get(i)).map(|x| {
                String::from_utf8_lossy(x)
                    .chars()
                    .take(80)
                    .collect::<String>()
            })
        };
        panic!(
            "{what}: rockslot {} of {} items, valkey {} of {}; first difference at {at:?}: {:?} vs {:?}",
            a.0,
            a.1.len(),
            b.0,
            b.1.len(),
            show(&a.1),
            show(&b.1)
        );
    }
    Ok(())
}

fn cmd(c: &mut Connection, args: &[&str]) -> Result<Value> {
    let mut cmd = redis::cmd(args[0]);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    Ok(cmd.query(c)?)
}

/// Keys of every type in every encoding valkey-server chooses, including LZF-compressed
/// strings, multi-node quicklists, intsets and the hashtable/skiplist forms.
pub(crate) fn fill_every_encoding(c: &mut Connection) -> Result<Vec<String>> {
    cmd(c, &["CONFIG", "SET", "list-max-listpack-size", "4"])?;
    let mut keys = Vec::new();
    let mut set = |k: &str, args: Vec<String>| -> Result<()> {
        let mut cmd = redis::cmd(&args[0]);
        cmd.arg(k);
        for a in &args[1..] {
            cmd.arg(a);
        }
        cmd.exec(c)?;
        keys.push(k.to_string());
        Ok(())
    };
    let words = |n: usize, f: &dyn Fn(usize) -> String| -> Vec<String> { (0..n).map(f).collect() };
    set("s:int", vec!["SET".into(), "-123456789".into()])?;
    set("s:short", vec!["SET".into(), "hello".into()])?;
    set("s:lzf", vec!["SET".into(), "abc".repeat(400)])?;
    let noise: String = (0..3000u64)
        .map(|i| char::from(b'!' + ((i * 2654435761) % 90) as u8))
        .collect();
    set("s:raw", vec!["SET".into(), noise])?;
    set("s:empty", vec!["SET".into(), String::new()])?;
    let mut l = vec!["RPUSH".to_string()];
    l.extend(words(3, &|i| format!("e{i}")));
    set("l:small", l)?;
    let mut l = vec!["RPUSH".to_string()];
    l.extend(words(300, &|i| {
        if i % 3 == 0 {
            i.to_string()
        } else {
            format!("elem-{i}")
        }
    }));
    l.push("x".repeat(5000));
    set("l:quick", l)?;
    let mut s = vec!["SADD".to_string()];
    s.extend(words(5, &|i| (i as i64 * 1_000_000_007 - 3).to_string()));
    set("set:intset", s)?;
    let mut s = vec!["SADD".to_string()];
    s.extend(words(5, &|i| format!("m{i}")));
    set("set:lp", s)?;
    let mut s = vec!["SADD".to_string()];
    s.extend(words(600, &|i| format!("member:{i}")));
    set("set:ht", s)?;
    set(
        "h:lp",
        vec![
            "HSET".into(),
            "f1".into(),
            "1".into(),
            "f2".into(),
            "v".into(),
        ],
    )?;
    let mut h = vec!["HSET".to_string()];
    for i in 0..300 {
        h.push(format!("field{i}"));
        h.push(if i % 2 == 0 {
            i.to_string()
        } else {
            "v".repeat(i)
        });
    }
    set("h:ht", h)?;
    set(
        "z:lp",
        vec![
            "ZADD".into(),
            "1.5".into(),
            "a".into(),
            "-2".into(),
            "b".into(),
            "inf".into(),
            "c".into(),
        ],
    )?;
    let mut z = vec!["ZADD".to_string()];
    for i in 0..400 {
        z.push(format!("{}", (i as f64) * 0.37 - 50.0));
        z.push(format!("zm{i}"));
    }
    set("z:skip", z)?;
    Ok(keys)
}

/// Every encoding valkey-server 8.1.8 writes restores in rockslot with the same content and
/// TTL; rockslot's DUMP restores in valkey-server the same way; damaged payloads get Valkey's
/// two errors.
#[test]
fn dump_payloads_move_both_ways_between_valkey_and_rockslot() -> Result<()> {
    let valkey = RedisServer::start_valkey()?;
    let node = Node::start()?;
    let mut v = valkey.conn()?;
    let mut r = node.conn()?;
    let keys = fill_every_encoding(&mut v)?;
    for (i, key) in keys.iter().enumerate() {
        let enc: String = redis::cmd("OBJECT")
            .arg("ENCODING")
            .arg(key)
            .query(&mut v)?;
        let payload: Vec<u8> = redis::cmd("DUMP").arg(key).query(&mut v)?;
        let ttl = if i % 2 == 0 { 0 } else { 100_000 };
        redis::cmd("RESTORE")
            .arg(key)
            .arg(ttl)
            .arg(&payload)
            .exec(&mut r)
            .map_err(|e| anyhow::anyhow!("{key} ({enc}): {e}"))?;
        assert_same_content(&mut r, &mut v, key.as_bytes(), &format!("{key} ({enc})"))?;
        let pttl: i64 = redis::cmd("PTTL").arg(key).query(&mut r)?;
        if ttl == 0 {
            assert_eq!(pttl, -1, "{key}");
        } else {
            assert!(pttl > 90_000 && pttl <= 100_000, "{key}: {pttl}");
        }
        // And back: rockslot's payload restores in valkey-server under another name.
        let ours: Vec<u8> = redis::cmd("DUMP").arg(key).query(&mut r)?;
        let back = format!("back:{key}");
        redis::cmd("RESTORE")
            .arg(&back)
            .arg(0)
            .arg(&ours)
            .exec(&mut v)
            .map_err(|e| anyhow::anyhow!("valkey RESTORE of our {key}: {e}"))?;
        let (a, b) = (
            content(&mut v, back.as_bytes())?,
            content(&mut v, key.as_bytes())?,
        );
        assert!(a == b, "valkey RESTORE of our DUMP of {key} differs");
    }
    // Valkey's two refusals, byte for byte: a damaged footer, and a sound footer around a
    // damaged object.
    let mut ours = node.raw()?;
    let mut theirs = crate::harness::RawConn::connect(valkey.addr())?;
    let good: Vec<u8> = redis::cmd("DUMP").arg("h:lp").query(&mut v)?;
    let mut flipped = good.clone();
    flipped[3] ^= 1;
    let mut body = vec![4u8, 2, 1, b'a'];
    body.extend_from_slice(&11u16.to_le_bytes());
    let crc = rockslot::rdb::crc64(0, &body);
    body.extend_from_slice(&crc.to_le_bytes());
    for (name, p) in [
        ("flipped", flipped),
        ("short", good[..5].to_vec()),
        ("bad object", body),
    ] {
        let cmd: Vec<&[u8]> = vec![b"RESTORE", b"bad", b"0", &p];
        crate::harness::assert_same_reply(&mut ours, &mut theirs, &cmd, name)?;
    }
    Ok(())
}

/// MIGRATE run on valkey-server moves keys of every type into rockslot (valkey sends SELECT 0
/// and RESTORE with its own payloads), with COPY, REPLACE and the KEYS form.
#[test]
fn migrate_from_valkey_server_lands_every_type() -> Result<()> {
    let valkey = RedisServer::start_valkey()?;
    let node = Node::start()?;
    let mut v = valkey.conn()?;
    let mut r = node.conn()?;
    let keys = fill_every_encoding(&mut v)?;
    let port = node.port().to_string();
    for key in &keys[..3] {
        let ok: String = redis::cmd("MIGRATE")
            .arg("127.0.0.1")
            .arg(&port)
            .arg(key)
            .arg(0)
            .arg(5000)
            .arg("COPY")
            .query(&mut v)?;
        assert_eq!(ok, "OK");
    }
    let mut m = redis::cmd("MIGRATE");
    m.arg("127.0.0.1")
        .arg(&port)
        .arg("")
        .arg(0)
        .arg(5000)
        .arg("COPY")
        .arg("REPLACE")
        .arg("KEYS");
    for key in &keys {
        m.arg(key);
    }
    let ok: String = m.query(&mut v)?;
    assert_eq!(ok, "OK");
    for key in &keys {
        assert_same_content(&mut r, &mut v, key.as_bytes(), key)?;
    }
    // Without COPY the source's keys are gone once rockslot has them.
    redis::cmd("SET")
        .arg("moved")
        .arg("v")
        .arg("EX")
        .arg(1000)
        .exec(&mut v)?;
    let ok: String = redis::cmd("MIGRATE")
        .arg("127.0.0.1")
        .arg(&port)
        .arg("moved")
        .arg(0)
        .arg(5000)
        .query(&mut v)?;
    assert_eq!(ok, "OK");
    let left: i64 = redis::cmd("EXISTS").arg("moved").query(&mut v)?;
    assert_eq!(left, 0);
    let ttl: i64 = redis::cmd("TTL").arg("moved").query(&mut r)?;
    assert!((990..=1000).contains(&ttl), "{ttl}");
    Ok(())
}

/// How many keys the import tests move (`ROCKSLOT_IMPORT_KEYS`, default one million).
fn import_keys() -> usize {
    std::env::var("ROCKSLOT_IMPORT_KEYS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000)
}

/// `valkey-cli --cluster import <rockslot node> --cluster-from <valkey-server> --cluster-copy`
/// (the unmodified tool: SCAN on the source, one MIGRATE per key with AUTH, which valkey-server
/// sends to rockslot as RESTORE with its own payloads) moves a dataset of every type with
/// expiries into a 3×2 rockslot cluster; every key, value and expiry (to the second) arrives.
#[test]
fn valkey_cli_cluster_import_moves_a_live_valkey_dataset_in() -> Result<()> {
    let c = crate::harness::Cluster::start(6)?;
    c.create_and_wait(1)?;
    let valkey = RedisServer::start_valkey()?;
    let data = crate::harness::Dataset::new(import_keys());
    let started = std::time::Instant::now();
    data.load(&mut valkey.conn()?)?;
    println!(
        "import: {} keys written to valkey-server in {:?}",
        data.n,
        started.elapsed()
    );
    let mut cli = std::process::Command::new(crate::harness::valkey_bin("valkey-cli")?);
    cli.args(["-a", "valkey", "--no-auth-warning", "--cluster", "import"])
        .arg(&c.host_ports()[0])
        .arg("--cluster-from")
        .arg(valkey.addr().to_string())
        .arg("--cluster-copy");
    let started = std::time::Instant::now();
    let run = crate::harness::ToolRun::run(&mut cli, std::time::Duration::from_secs(1800))?
        .ensure_success()?;
    let took = started.elapsed();
    let failed = run
        .stdout_lines()
        .into_iter()
        .filter(|l| l.starts_with("Migrating ") && !l.ends_with("OK"))
        .take(3)
        .collect::<Vec<_>>();
    assert!(failed.is_empty(), "MIGRATE failures: {failed:?}");
    let counts = data.verify_cluster(&c)?;
    println!(
        "import: valkey-cli --cluster import moved {} keys in {took:?} ({:.0} keys/s); per type {counts:?}",
        data.n,
        data.n as f64 / took.as_secs_f64()
    );
    Ok(())
}

/// `rockslot-cli --cluster import-rdb` of dump.rdb files that valkey-server 8.1.8 and Debian's
/// redis-server 7.0 wrote with SAVE (every type and encoding, LZF strings, expiries, a second
/// database merged into db 0) into a 3×2 cluster, every key and expiry checked. Truncated and
/// damaged copies are refused with a byte offset before any node is touched; importing again
/// without `--cluster-replace` keeps what is there.
#[test]
fn import_rdb_loads_valkey_and_redis_dump_files_into_a_cluster() -> Result<()> {
    let c = crate::harness::Cluster::start(6)?;
    c.create_and_wait(1)?;
    let seed = c.host_ports()[0].clone();
    let n = (import_keys() / 5).max(1000);
    for (name, server) in [
        ("valkey-server 8.1.8", RedisServer::start_valkey()?),
        ("redis-server 7.0", RedisServer::start()?),
    ] {
        let data = crate::harness::Dataset::new(n);
        let mut conn = server.conn()?;
        data.load(&mut conn)?;
        let extra = 50;
        redis::cmd("SELECT").arg(1).exec(&mut conn)?;
        for i in 0..extra {
            redis::cmd("SET")
                .arg(format!("db1:{i}"))
                .arg(i)
                .exec(&mut conn)?;
        }
        redis::cmd("SAVE").exec(&mut conn)?;
        let rdb = server.dir().join("dump.rdb");
        let bytes = std::fs::read(&rdb)?;
        println!(
            "import-rdb: {name} wrote {} bytes for {} keys",
            bytes.len(),
            n + extra
        );

        let bad = server.dir().join("bad.rdb");
        for (what, damaged) in [
            ("truncated", bytes[..bytes.len() / 2].to_vec()),
            ("flipped byte", {
                let mut b = bytes.clone();
                let at = b.len() / 3;
                b[at] ^= 0x5a;
                b
            }),
        ] {
            std::fs::write(&bad, &damaged)?;
            let run = c.rockslot_cli_cluster(&["import-rdb", &seed, &bad.to_string_lossy()])?;
            let out = run.describe();
            assert!(!run.status.success(), "{name} {what}: accepted\n{out}");
            assert!(
                out.contains("at byte") && out.contains("nothing was imported"),
                "{name} {what}: {out}"
            );
            for i in c.masters(0)? {
                assert_eq!(
                    c.query(i, &["DBSIZE"])?,
                    "0",
                    "{name} {what}: node {i} changed"
                );
            }
        }

        let started = std::time::Instant::now();
        let run = c
            .rockslot_cli_cluster(&["import-rdb", &seed, &rdb.to_string_lossy()])?
            .ensure_success()?;
        let took = started.elapsed();
        let counts = data.verify_cluster_with(&c, extra)?;
        println!(
            "import-rdb: {name}: {} keys in {took:?}; per type {counts:?}; {}",
            n + extra,
            run.stdout_lines().last().cloned().unwrap_or_default()
        );
        let mut any = c.client()?.get_connection()?;
        let v: String = redis::cmd("GET").arg("db1:7").query(&mut any)?;
        assert_eq!(v, "7");

        // Again without --cluster-replace: every key already exists and is kept.
        let run = c
            .rockslot_cli_cluster(&["import-rdb", &seed, &rdb.to_string_lossy()])?
            .ensure_success()?;
        let summary = run.describe();
        assert!(
            summary.contains(&format!("{} already existed", n + extra)),
            "{summary}"
        );
        for i in c.masters(0)? {
            c.query(i, &["FLUSHALL"])?;
        }
    }
    Ok(())
}
