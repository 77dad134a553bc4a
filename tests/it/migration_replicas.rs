//! A slot migration to a target that has a replica (issue 13, path 2). The replica fetches
//! the imported slots from its primary when the stream reaches the SlotsImported marker.
//! Killed during that fetch, it must fetch again after a restart. The target's commit waits
//! for it, so a failover right after the commit keeps every key.

use std::time::Duration;

use anyhow::Result;

use crate::harness::{primaries_only, try_wait_until_every, Cluster};
use crate::migration_faults::all_loaded_keys_readable;

const SETTLE: Duration = Duration::from_secs(60);
/// Slots 0-999 hold about 3,700 of these keys: more than one export chunk (2,048 entries), so
/// DEBUG SLOT-MIGRATION-DELAY on the target holds the replica's fetch open.
const KEYS: usize = 60_000;

/// Three primaries, and a replica of the one owning slot 16383 (the target). Returns the
/// cluster, the source (owner of slot 0), the target and the replica.
fn target_with_replica() -> Result<(Cluster, usize, usize, usize)> {
    let (mut c, src, dst) = primaries_only(Cluster::builder(3).directive("appendfsync", "always"))?;
    let r = c.add_replica_of(dst, SETTLE)?;
    c.wait_state_ok(SETTLE)?;
    Ok((c, src, dst, r))
}

fn wait_fetch_started(c: &Cluster, r: usize) -> Result<()> {
    try_wait_until_every(
        SETTLE,
        Duration::from_millis(10),
        "the replica started fetching the imported slots",
        || Ok(c.node(r).log_count("fetching imported slots") > 0),
    )
}

/// SIGKILL the target's replica while it fetches the imported slots, finish the migration,
/// restart the replica. Before the fix the replica had stored the stream offset past the
/// marker before fetching, so it came back past it and kept slots 0-999 empty for good.
#[test]
fn target_replica_killed_mid_fetch_fetches_again() -> Result<()> {
    let (mut c, src, dst, r) = target_with_replica()?;
    c.load_keys(0, "refetch", KEYS, 64)?;
    c.query(dst, &["DEBUG", "SLOT-MIGRATION-DELAY", "3000"])?;
    c.migrate_slots(src, 0, 999, dst)?;
    wait_fetch_started(&c, r)?;
    c.node_mut(r).kill9()?;
    c.query(dst, &["DEBUG", "SLOT-MIGRATION-DELAY", "0"])?;
    try_wait_until_every(
        SETTLE,
        Duration::from_millis(50),
        "the migration finished",
        || Ok(c.no_active_slot_jobs()? && c.slot_owner(src, 0)? == dst),
    )?;
    c.node_mut(r).restart()?;
    c.wait_replicating(r, dst, SETTLE)?;
    c.wait_same_slots(dst, r, (0, 999), SETTLE)?;
    c.wait_same_dbsize(dst, r, SETTLE)?;
    Ok(())
}

/// SIGKILL the target as soon as every node sees it owning the slots, while its replica would
/// still be fetching them, and let the replica take over. Before the fix the commit did not wait for
/// the replica: it was promoted with slots 0-999 empty and their keys were gone.
#[test]
fn target_failed_over_right_after_commit_keeps_every_key() -> Result<()> {
    let (mut c, src, dst, r) = target_with_replica()?;
    let loaded = c.load_keys(0, "handover", KEYS, 64)?;
    c.query(dst, &["DEBUG", "SLOT-MIGRATION-DELAY", "3000"])?;
    c.migrate_slots(src, 0, 999, dst)?;
    try_wait_until_every(
        SETTLE,
        Duration::from_millis(10),
        "every node sees the target owning the slots",
        || Ok((0..c.len()).all(|i| c.slot_owner(i, 0).ok() == Some(dst))),
    )?;
    c.node_mut(dst).kill9()?;
    try_wait_until_every(
        SETTLE,
        Duration::from_millis(100),
        "the replica took over the target's slots",
        || Ok(c.slot_owner(src, 0)? == r && c.slot_owner(src, 16383)? == r),
    )
    .map_err(|e| {
        anyhow::anyhow!(
            "{e:#}; source's view:\n{}\nlogs:\n{}",
            c.cluster_nodes_text(src).unwrap_or_default(),
            c.log_tails(30)
        )
    })?;
    try_wait_until_every(
        SETTLE,
        Duration::from_millis(100),
        "cluster_state:ok",
        || Ok(c.info_field(src, "cluster_state")? == "ok"),
    )?;
    all_loaded_keys_readable(&c, &loaded)
}
