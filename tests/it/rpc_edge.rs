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
