//! Real cluster clients, unmodified, against the seed's 6-node cluster: redis-benchmark
//! `--cluster`, the Rust `redis` crate's ClusterClient (sync and async), redis-py's
//! `RedisCluster` (RESP3, HELLO 3), and the routing errors every client depends on (CROSSSLOT,
//! MOVED, CLUSTERDOWN; bytes as in client-surface §10.2/§13).

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use redis::Commands;

use crate::harness::{key_slot, raw_query, show, wait_until, Cluster, ToolRun, CLUSTER_PASSWORD};

const HEALTHY_TIMEOUT: Duration = Duration::from_secs(60);

fn seed_cluster() -> Result<Cluster> {
    let c = Cluster::start(6)?;
    c.create_and_wait(1)?;
    Ok(c)
}

/// DBSIZE of every master (index → keys).
fn dbsize_per_master(c: &Cluster) -> Result<BTreeMap<usize, u64>> {
    let mut out = BTreeMap::new();
    for m in c.masters(0)? {
        out.insert(m, c.query(m, &["DBSIZE"])?.parse()?);
    }
    Ok(out)
}

#[test]
fn redis_benchmark_cluster_runs_clean() -> Result<()> {
    let c = seed_cluster()?;
    let mut cmd = Command::new("redis-benchmark");
    cmd.args(["-h", "127.0.0.1", "-p", &c.node(0).port().to_string()])
        .args(["-a", CLUSTER_PASSWORD, "--cluster"])
        // redis-benchmark's whole default test list (no -t), as a user runs it.
        .args(["-n", "5000", "-q"]);
    let run = ToolRun::run(&mut cmd, Duration::from_secs(240))?;
    println!("redis-benchmark --cluster ({:?}):", run.elapsed);
    let lines = run.stdout_lines();
    for l in lines.iter().filter(|l| l.contains("requests per second")) {
        println!("  {l}");
    }
    ensure!(run.status.success(), "{}", run.describe());
    let all = format!("{}\n{}", run.stdout, run.stderr);
    ensure!(
        !all.lines()
            .any(|l| l.contains("Error") || l.contains("error")),
        "redis-benchmark reported errors:\n{}",
        run.describe()
    );
    for t in [
        "PING_INLINE",
        "SET",
        "GET",
        "INCR",
        "LPUSH",
        "RPUSH",
        "LPOP",
        "RPOP",
        "SADD",
        "HSET",
        "SPOP",
        "ZADD",
        "ZPOPMIN",
        "LRANGE_100",
        "LRANGE_600",
        "MSET",
    ] {
        ensure!(
            lines.iter().any(|l| (l.starts_with(&format!("{t}:"))
                || l.starts_with(&format!("{t} (")))
                && l.contains("requests per second")),
            "no final {t} result line:\n{}",
            run.describe()
        );
    }
    // Keys went to every master (benchmark keys carry a hashtag of a slot each master owns).
    let sizes = dbsize_per_master(&c)?;
    println!("  keys per master after the benchmark: {sizes:?}");
    ensure!(
        sizes.len() == 3 && sizes.values().all(|&n| n > 0),
        "DBSIZE per master {sizes:?}"
    );
    c.wait_healthy(HEALTHY_TIMEOUT)?;
    Ok(())
}

#[test]
fn rust_cluster_client_reads_and_writes_every_shard() -> Result<()> {
    let c = seed_cluster()?;
    let mut con = c.conn()?;
    let t0 = std::time::Instant::now();
    for i in 0..1000 {
        let _: () = con.set(format!("rs:key:{i}"), format!("value-{i}"))?;
    }
    for i in 0..1000 {
        let v: Option<String> = con.get(format!("rs:key:{i}"))?;
        ensure!(
            v.as_deref() == Some(format!("value-{i}").as_str()),
            "rs:key:{i} = {v:?}"
        );
    }
    println!(
        "redis crate ClusterConnection: 1000 SET + 1000 GET in {:?}",
        t0.elapsed()
    );

    // Every master holds its share, exactly the keys whose slots it owns.
    let masters = c.masters(0)?;
    let mut expected: BTreeMap<usize, u64> = masters.iter().map(|&m| (m, 0)).collect();
    for i in 0..1000 {
        let owner = c.slot_owner(0, key_slot(format!("rs:key:{i}").as_bytes()))?;
        *expected.entry(owner).or_default() += 1;
    }
    let sizes = dbsize_per_master(&c)?;
    println!("  keys per master: {sizes:?}");
    ensure!(
        sizes == expected,
        "DBSIZE per master {sizes:?}, expected {expected:?}"
    );
    ensure!(sizes.values().all(|&n| n > 200), "uneven spread {sizes:?}");

    // A pipeline and MGET on one hashtag.
    let mut pipe = redis::cluster::cluster_pipe();
    for i in 0..10 {
        pipe.set(format!("{{user:42}}:f{i}"), i).ignore();
    }
    pipe.incr("{user:42}:counter", 5);
    let (counter,): (i64,) = pipe.query(&mut con)?;
    ensure!(counter == 5, "INCR in pipeline returned {counter}");
    let keys: Vec<String> = (0..10).map(|i| format!("{{user:42}}:f{i}")).collect();
    let vals: Vec<i64> = con.mget(&keys)?;
    ensure!(
        vals == (0..10).collect::<Vec<i64>>(),
        "MGET {{user:42}} = {vals:?}"
    );

    // The async cluster connection too.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let client = c.client()?;
    rt.block_on(async {
        let mut acon = client.get_async_connection().await?;
        let mut pipe = redis::pipe();
        for i in 0..10 {
            pipe.set(format!("{{async}}:k{i}"), format!("a{i}"))
                .ignore();
        }
        let () = pipe.query_async(&mut acon).await?;
        let keys: Vec<String> = (0..10).map(|i| format!("{{async}}:k{i}")).collect();
        let vals: Vec<String> = redis::cmd("MGET").arg(&keys).query_async(&mut acon).await?;
        ensure!(
            vals == (0..10).map(|i| format!("a{i}")).collect::<Vec<_>>(),
            "async MGET {{async}} = {vals:?}"
        );
        for i in (0..1000).step_by(97) {
            let v: Option<String> = redis::cmd("GET")
                .arg(format!("rs:key:{i}"))
                .query_async(&mut acon)
                .await?;
            ensure!(
                v.as_deref() == Some(format!("value-{i}").as_str()),
                "async GET rs:key:{i} = {v:?}"
            );
        }
        anyhow::Ok(())
    })?;
    Ok(())
}

const REDIS_PY_SCRIPT: &str = r#"
import json, os, sys
from redis.cluster import RedisCluster, ClusterNode
ports = [int(p) for p in os.environ["PORTS"].split(",")]
rc = RedisCluster(startup_nodes=[ClusterNode("127.0.0.1", p) for p in ports],
                  password=os.environ["PW"], socket_timeout=30)
n = 300
for i in range(n):
    assert rc.set(f"py:key:{i}", f"v{i}") is True
bad = [i for i in range(n) if rc.get(f"py:key:{i}") != f"v{i}".encode()]
owners = {}
for i in range(n):
    node = rc.get_node_from_key(f"py:key:{i}")
    owners[str(node.port)] = owners.get(str(node.port), 0) + 1
rc.mset_nonatomic({"{py}a": "1", "{py}b": "2", "x": "3"})
mget = [v.decode() for v in rc.mget_nonatomic(["{py}a", "{py}b", "x"])]
pipe = rc.pipeline()
pipe.set("{py}p", "pv")
pipe.incr("{py}n")
pipe.get("{py}p")
piped = pipe.execute()
node = rc.get_default_node()
pool = node.redis_connection.connection_pool
conn = pool.get_connection()
proto = conn.protocol
pool.release(conn)
print(json.dumps({"bad": bad, "owners": owners, "mget": mget,
                  "piped": [p.decode() if isinstance(p, bytes) else p for p in piped],
                  "protocol": proto, "nodes": len(rc.get_nodes())}))
"#;

#[test]
fn redis_py_cluster_resp3_every_master() -> Result<()> {
    let c = seed_cluster()?;
    let ports: Vec<String> = c.ports().iter().map(u16::to_string).collect();
    let mut cmd = Command::new("python3");
    cmd.args(["-c", REDIS_PY_SCRIPT])
        .env("PORTS", ports.join(","))
        .env("PW", CLUSTER_PASSWORD);
    let run = ToolRun::run(&mut cmd, Duration::from_secs(120))?.ensure_success()?;
    let last = run.stdout.lines().last().unwrap_or_default().to_string();
    println!("redis-py RedisCluster ({:?}): {last}", run.elapsed);
    ensure!(
        last.contains("\"bad\": []"),
        "values read back differ: {last}"
    );
    ensure!(
        last.contains("\"protocol\": 3"),
        "redis-py did not use RESP3: {last}"
    );
    ensure!(
        last.contains("\"mget\": [\"1\", \"2\", \"3\"]"),
        "mget_nonatomic: {last}"
    );
    ensure!(
        last.contains("\"piped\": [true, 1, \"pv\"]"),
        "pipeline: {last}"
    );

    // Each master got keys: per master, CLUSTER COUNTKEYSINSLOT over the slots of the py keys
    // it owns adds up to the number of those keys, and DBSIZE agrees it is non-empty.
    let masters = c.masters(0)?;
    let mut slots_of: BTreeMap<usize, BTreeMap<u16, u64>> = BTreeMap::new();
    for i in 0..300 {
        let slot = key_slot(format!("py:key:{i}").as_bytes());
        let owner = c.slot_owner(0, slot)?;
        *slots_of.entry(owner).or_default().entry(slot).or_default() += 1;
    }
    ensure!(
        slots_of.keys().copied().collect::<Vec<_>>() == masters,
        "py keys should land on all masters {masters:?}: {:?}",
        slots_of.keys()
    );
    for (m, slots) in &slots_of {
        let mut counted = 0u64;
        for (slot, n) in slots {
            let got: u64 = c
                .query(*m, &["CLUSTER", "COUNTKEYSINSLOT", &slot.to_string()])?
                .parse()?;
            ensure!(
                got >= *n,
                "master {m}: COUNTKEYSINSLOT {slot} = {got}, want >= {n}"
            );
            counted += got;
        }
        let dbsize: u64 = c.query(*m, &["DBSIZE"])?.parse()?;
        println!(
            "  master {m} (port {}): {counted} py keys counted by slot, DBSIZE {dbsize}",
            c.node(*m).port()
        );
        ensure!(
            counted > 0 && dbsize >= counted,
            "master {m}: counted {counted}, DBSIZE {dbsize}"
        );
    }
    Ok(())
}

/// CROSSSLOT, MOVED and CLUSTERDOWN replies, byte for byte, and the cluster heals afterwards.
#[test]
fn routing_errors_crossslot_moved_clusterdown() -> Result<()> {
    let c = Cluster::builder(6)
        .directive("cluster-require-full-coverage", "yes")
        .start()?;
    c.create_and_wait(1)?;

    // CROSSSLOT from any node (checked before ownership), hashtags make it work.
    assert_ne!(key_slot(b"a"), key_slot(b"b"));
    for i in 0..c.len() {
        let r = raw_query(c.node(i), &["MSET", "a", "1", "b", "2"])?;
        ensure!(
            r == b"-CROSSSLOT Keys in request don't hash to the same slot\r\n",
            "MSET a b on node {i}: {}",
            show(&r)
        );
    }
    let t = c.key_owner("{t}a")?;
    let r = raw_query(c.node(t), &["MSET", "{t}a", "1", "{t}b", "2"])?;
    ensure!(
        r == b"+OK\r\n",
        "MSET {{t}}a {{t}}b on its owner: {}",
        show(&r)
    );
    let r = raw_query(c.node(t), &["MGET", "{t}a", "{t}b"])?;
    ensure!(r == b"*2\r\n$1\r\n1\r\n$1\r\n2\r\n", "MGET: {}", show(&r));
    // Through the cluster client from anywhere.
    let mut con = c.conn()?;
    let _: () = redis::cmd("MSET")
        .arg("{t}c")
        .arg(3)
        .arg("{t}d")
        .arg(4)
        .query(&mut con)?;

    // MOVED from every node that does not own the slot (masters and replicas).
    let slot = key_slot(b"{t}a");
    for i in 0..c.len() {
        if i == t {
            continue;
        }
        let r = raw_query(c.node(i), &["GET", "{t}a"])?;
        let want = format!("-MOVED {slot} 127.0.0.1:{}\r\n", c.node(t).port());
        ensure!(
            r == want.as_bytes(),
            "GET {{t}}a on node {i}: {} (want {want:?})",
            show(&r)
        );
    }

    // CLUSTERDOWN: the owner gives up one slot.
    let key = "down:key";
    let s = key_slot(key.as_bytes());
    let owner = c.key_owner(key)?;
    let r = raw_query(c.node(owner), &["SET", key, "v"])?;
    ensure!(r == b"+OK\r\n", "SET {key}: {}", show(&r));
    let r = raw_query(c.node(owner), &["DEL", key])?;
    ensure!(r == b":1\r\n", "DEL {key}: {}", show(&r));
    let r = raw_query(c.node(owner), &["CLUSTER", "DELSLOTS", &s.to_string()])?;
    ensure!(r == b"+OK\r\n", "CLUSTER DELSLOTS {s}: {}", show(&r));
    for cmd in [vec!["GET", key], vec!["SET", key, "v"]] {
        let r = raw_query(c.node(owner), &cmd)?;
        ensure!(
            r == b"-CLUSTERDOWN Hash slot not served\r\n",
            "{cmd:?} for the deleted slot {s}: {}",
            show(&r)
        );
    }
    // With cluster-require-full-coverage the owner's whole cluster view is down.
    wait_until(
        Duration::from_secs(10),
        "cluster_state:fail on the owner",
        || {
            c.info_field(owner, "cluster_state")
                .map(|s| s == "fail")
                .unwrap_or(false)
        },
    )?;
    let other_key = (0..10_000)
        .map(|i| format!("up:{i}"))
        .find(|k| {
            let ks = key_slot(k.as_bytes());
            ks != s && c.slot_owner(owner, ks).ok() == Some(owner)
        })
        .context("a key in another slot of the owner")?;
    let r = raw_query(c.node(owner), &["GET", &other_key])?;
    ensure!(
        r == b"-CLUSTERDOWN The cluster is down\r\n",
        "GET {other_key} on the failed owner: {}",
        show(&r)
    );

    // Put it back: the cluster heals, the data is still there.
    let r = raw_query(c.node(owner), &["CLUSTER", "ADDSLOTS", &s.to_string()])?;
    ensure!(r == b"+OK\r\n", "CLUSTER ADDSLOTS {s}: {}", show(&r));
    let t_heal = c.wait_healthy(HEALTHY_TIMEOUT)?;
    println!("cluster healthy again {t_heal:?} after re-adding slot {s}");
    let r = raw_query(c.node(owner), &["SET", key, "back"])?;
    ensure!(r == b"+OK\r\n", "SET {key} after ADDSLOTS: {}", show(&r));
    let v: Vec<i64> = redis::cmd("MGET")
        .arg("{t}a")
        .arg("{t}b")
        .arg("{t}c")
        .arg("{t}d")
        .query(&mut c.conn()?)?;
    ensure!(v == vec![1, 2, 3, 4], "{{t}} keys after healing: {v:?}");
    Ok(())
}
