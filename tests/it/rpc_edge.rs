//! Inputs from peers on the cluster port are validated at the rpc edge: a migration job name
//! is one safe charset (it names a directory), and a migration may only claim slots from the
//! node that owns them. Calls go through the real gRPC client with the right secret, as a
//! compromised or confused peer would send them.

use anyhow::{anyhow, Result};

use rockslot::cluster::{secret_digest, NodeId};
use rockslot::migration::MigrationConnector;
use rockslot::rpc::MigrationClients;

use crate::harness::{Cluster, CLUSTER_PASSWORD};

#[test]
fn migration_requests_with_bad_job_names_or_foreign_slots_are_refused() -> Result<()> {
    let c = Cluster::start(3)?;
    c.create_and_wait(0)?;
    let mut client = c.client()?.get_connection()?;
    for i in 0..200 {
        redis::cmd("SET")
            .arg(format!("k{i}"))
            .arg(i)
            .exec(&mut client)?;
    }
    // Node 0 is asked to import a slot that node 1 owns.
    let slot = (0..16384u16)
        .find(|s| c.slot_owner(0, *s).ok() == Some(1))
        .ok_or_else(|| anyhow!("node 1 owns no slot"))?;
    let owner = NodeId::parse(c.myid(1)?.as_bytes()).ok_or_else(|| anyhow!("bad id"))?;
    let bystander = NodeId::parse(c.myid(2)?.as_bytes()).ok_or_else(|| anyhow!("bad id"))?;
    let target = c.node(0);
    let listing = |dir: &std::path::Path| -> Result<Vec<String>> {
        let mut v: Vec<String> = std::fs::read_dir(dir)?
            .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
            .collect::<std::io::Result<_>>()?;
        v.sort();
        Ok(v)
    };
    let before = listing(target.dir())?;
    assert!(!before.is_empty());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let mut peer = MigrationClients
            .connect(
                "127.0.0.1",
                target.bus_port(),
                Some(secret_digest(CLUSTER_PASSWORD)),
            )
            .await
            .map_err(|e| anyhow!(e))?;
        for bad in ["../db", "..", "a/b", "", "job name"] {
            let e = peer.begin(bad, &owner, &[(slot, slot)]).await.unwrap_err();
            assert!(e.contains("invalid job name"), "{bad:?}: {e}");
            let e = peer.abort(bad).await.unwrap_err();
            assert!(e.contains("invalid job name"), "{bad:?}: {e}");
        }
        let e = peer
            .begin("claim1", &bystander, &[(slot, slot)])
            .await
            .unwrap_err();
        assert!(e.contains("not owned by the source"), "{e}");
        anyhow::Ok(())
    })?;
    assert_eq!(listing(target.dir())?, before, "the data directory changed");
    // Nothing changed: the slot keeps its owner, every key is there.
    assert_eq!(c.slot_owner(0, slot)?, 1);
    for i in 0..200 {
        let v: i64 = redis::cmd("GET").arg(format!("k{i}")).query(&mut client)?;
        assert_eq!(v, i);
    }
    Ok(())
}

/// Without the secret every service on the cluster port refuses the call and nothing changes
/// (a FAIL notice would otherwise mark a healthy node failed; an export would dump the data).
/// `CONFIG SET cluster-secret` node by node keeps the cluster whole (the replaced secret stays
/// valid for a grace period), then locks the old secret out.
#[test]
fn cluster_port_refuses_callers_without_the_secret_and_follows_config_set() -> Result<()> {
    use rockslot::cluster::{BusTransport, PeerAuth};
    use std::sync::Arc;
    use std::time::Duration;

    let c = Cluster::builder(3).node_timeout_ms(500).start()?;
    c.create_and_wait(0)?;
    let mut client = c.client()?.get_connection()?;
    redis::cmd("SET").arg("k").arg("v").exec(&mut client)?;
    let target = c.node(0);
    let cport = target.bus_port();
    let victim = NodeId::parse(c.myid(2)?.as_bytes()).ok_or_else(|| anyhow!("bad id"))?;
    let sender = NodeId::parse(c.myid(1)?.as_bytes()).ok_or_else(|| anyhow!("bad id"))?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let no_secret = |secret: Option<&'static str>| {
        let derive: fn(&rockslot::config::Config) -> Option<String> = match secret {
            None => |_| None,
            Some(_) => |_| Some(secret_digest("wrong")),
        };
        Arc::new(PeerAuth::new(derive, &rockslot::config::Config::default()))
    };
    rt.block_on(async {
        for auth in [no_secret(None), no_secret(Some("wrong"))] {
            let bus = rockslot::rpc::BusClient::new(auth, Duration::from_secs(2));
            let e = bus
                .fail("127.0.0.1", cport, sender, victim)
                .await
                .unwrap_err();
            assert!(e.to_string().contains("secret"), "bus: {e}");
        }
        let mut mig = MigrationClients
            .connect("127.0.0.1", cport, None)
            .await
            .map_err(|e| anyhow!(e))?;
        let e = mig.status("job1").await.unwrap_err();
        assert!(e.contains("secret"), "migration: {e}");
        let e = mig.export(&[(0, 16383)]).await.err().unwrap_or_default();
        assert!(e.contains("secret"), "migration export: {e}");
        let mut backup = rockslot::rpc::BackupPeer::connect("127.0.0.1", cport, None)
            .await
            .map_err(|e| anyhow!(e))?;
        let e = backup.export(&[(0, 16383)]).await.err().unwrap_or_default();
        assert!(e.contains("password"), "backup export: {e}");
        anyhow::Ok(())
    })?;
    // The refused FAIL notice changed nothing.
    std::thread::sleep(Duration::from_millis(300));
    let line = c
        .cluster_nodes(0)?
        .into_iter()
        .find(|l| l.id == victim.to_string());
    assert!(
        line.is_some_and(|l| !l.flags.iter().any(|f| f == "fail")),
        "a refused FAIL notice marked the node failed"
    );

    // A rolling secret change: the cluster stays healthy throughout.
    for i in 0..3 {
        c.query(i, &["CONFIG", "SET", "cluster-secret", "s3cret-2"])?;
        c.wait_healthy(Duration::from_secs(20))?;
    }
    let old = secret_digest(CLUSTER_PASSWORD);
    let new = secret_digest("s3cret-2");
    rt.block_on(async {
        // Past the grace period (four node timeouts) the old secret is refused.
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let mut m = MigrationClients
                .connect("127.0.0.1", cport, Some(old.clone()))
                .await
                .map_err(|e| anyhow!(e))?;
            match m.status("job1").await {
                Err(e) if e.contains("secret") => break,
                _ if std::time::Instant::now() > deadline => {
                    anyhow::bail!("the old secret is still accepted after 20 s")
                }
                _ => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
        let mut m = MigrationClients
            .connect("127.0.0.1", cport, Some(new))
            .await
            .map_err(|e| anyhow!(e))?;
        m.status("job1").await.map_err(|e| anyhow!(e))?;
        anyhow::Ok(())
    })?;
    c.wait_healthy(Duration::from_secs(20))?;
    let v: String = redis::cmd("GET").arg("k").query(&mut client)?;
    assert_eq!(v, "v");
    Ok(())
}

/// A replication peer's acknowledgements count only on its own stream and never beyond what
/// the primary sent: a replica claiming offset 2^64-1 shows at most the primary's offset.
#[test]
fn replica_acks_never_count_beyond_what_the_primary_sent() -> Result<()> {
    use rockslot::replication::{Hello, ReplConnector};
    use std::time::Duration;
    use tokio_stream::StreamExt;

    let node = crate::harness::Node::start()?;
    let mut c = node.conn()?;
    for i in 0..100 {
        redis::cmd("SET").arg(format!("k{i}")).arg(i).exec(&mut c)?;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let link = rt
        .block_on(rockslot::rpc::ReplClients.open(
            "127.0.0.1",
            node.bus_port(),
            None,
            Hello {
                replid: "?".into(),
                offset: 0,
                ip: "127.0.0.1".into(),
                port: 1,
                node_id: String::new(),
            },
        ))
        .map_err(|e| anyhow!(e))?;
    let mut inbound = link.inbound;
    rt.spawn(async move { while inbound.next().await.is_some() {} });
    let field = |info: &str, name: &str| -> Option<u64> {
        info.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().parse().ok())
    };
    crate::harness::wait_until(Duration::from_secs(20), "the fake replica online", || {
        redis::cmd("INFO")
            .arg("replication")
            .query::<String>(&mut c)
            .is_ok_and(|i| i.contains("slave0:"))
    })?;
    rt.block_on(link.acks.send(u64::MAX))
        .map_err(|_| anyhow!("ack channel closed"))?;
    std::thread::sleep(Duration::from_millis(500));
    let info: String = redis::cmd("INFO").arg("replication").query(&mut c)?;
    let primary = field(&info, "master_repl_offset:").ok_or_else(|| anyhow!("{info}"))?;
    let acked: u64 = info
        .lines()
        .find_map(|l| l.strip_prefix("slave0:"))
        .and_then(|l| l.split(',').find_map(|f| f.strip_prefix("offset=")))
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| anyhow!("{info}"))?;
    assert!(
        acked <= primary,
        "acked {acked} beyond the primary's {primary}"
    );
    Ok(())
}
