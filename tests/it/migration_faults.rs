//! Faults at a slot migration's commit point (issue 13, path 1): the source dies while the
//! target's Commit is between taking the slots and recording it, and the target cannot save
//! nodes.conf at Commit. Either way each slot ends with one owner and every key readable.

use std::time::Duration;

use anyhow::{ensure, Result};

use crate::harness::{primaries_only, try_wait_until_every, Cluster};

const SETTLE: Duration = Duration::from_secs(60);

pub(crate) fn all_loaded_keys_readable(c: &Cluster, loaded: &[(String, String)]) -> Result<()> {
    let wrong = c.wrong_values(0, loaded)?;
    ensure!(
        wrong.is_empty(),
        "{} of {} loaded keys wrong or missing, e.g. {:?}",
        wrong.len(),
        loaded.len(),
        &wrong[..wrong.len().min(5)]
    );
    Ok(())
}

/// SIGKILL the source while the target holds its Commit right after taking the slots (DEBUG
/// SLOT-MIGRATION-COMMIT-DELAY). The cut call must not stop the target's commit half-way, and
/// the restarted source's abort must not roll back data under slots the target owns: before,
/// the target ended up owning the slots with none of their keys.
#[test]
fn source_killed_inside_the_commit_loses_nothing() -> Result<()> {
    let (mut c, src, dst) = primaries_only(Cluster::builder(3).directive("appendfsync", "always"))?;
    let loaded = c.load_keys(0, "mid-commit", 5_000, 32)?;
    c.query(dst, &["DEBUG", "SLOT-MIGRATION-COMMIT-DELAY", "3000"])?;
    c.migrate_slots(src, 0, 999, dst)?;
    try_wait_until_every(
        SETTLE,
        Duration::from_millis(10),
        "the target took the slots",
        || Ok(c.slot_owner(dst, 0)? == dst),
    )?;
    c.node_mut(src).kill9()?;
    c.query(dst, &["DEBUG", "SLOT-MIGRATION-COMMIT-DELAY", "0"])?;
    c.node_mut(src).restart()?;
    c.wait_healthy(SETTLE)?;
    try_wait_until_every(
        SETTLE,
        Duration::from_millis(100),
        "jobs resolved and every node sees the target owning slot 0",
        || {
            Ok(c.no_active_slot_jobs()?
                && (0..c.len()).all(|i| c.slot_owner(i, 0).ok() == Some(dst)))
        },
    )?;
    c.one_owner_per_slot()?;
    all_loaded_keys_readable(&c, &loaded)
}

/// The target cannot write nodes.conf at Commit (a directory stands where its temporary file
/// goes, which stops root too). The target must not claim the slots it could not record: the
/// migration fails, the source keeps the slots and their keys, and the same migration succeeds
/// once the target can save again.
#[test]
fn commit_without_a_saved_nodes_conf_changes_no_owner() -> Result<()> {
    let (c, src, dst) = primaries_only(Cluster::builder(3))?;
    let loaded = c.load_keys(0, "no-save", 3_000, 32)?;
    let blocker = c.nodes_conf_path(dst).with_extension("conf.tmp");
    std::fs::create_dir(&blocker)?;
    c.migrate_slots(src, 0, 99, dst)?;
    try_wait_until_every(SETTLE, Duration::from_millis(50), "job ended", || {
        c.no_active_slot_jobs()
    })?;
    let jobs = c.slot_migrations(src)?;
    ensure!(
        jobs.iter()
            .any(|j| j.get("state").map(String::as_str) == Some("failed")),
        "the migration did not fail: {jobs:?}"
    );
    for i in 0..c.len() {
        ensure!(
            c.slot_owner(i, 0)? == src,
            "node {i} sees slot 0 owned by node {} after a commit that was not saved",
            c.slot_owner(i, 0)?
        );
    }
    c.one_owner_per_slot()?;
    all_loaded_keys_readable(&c, &loaded)?;

    std::fs::remove_dir(&blocker)?;
    c.migrate_slots(src, 0, 99, dst)?;
    try_wait_until_every(
        SETTLE,
        Duration::from_millis(50),
        "second migration",
        || {
            Ok(c.no_active_slot_jobs()?
                && (0..c.len()).all(|i| c.slot_owner(i, 0).ok() == Some(dst)))
        },
    )?;
    c.one_owner_per_slot()?;
    all_loaded_keys_readable(&c, &loaded)
}

/// The target dies for good inside its Commit (SIGKILL during DEBUG SLOT-MIGRATION-COMMIT-DELAY,
/// never restarted). The source cannot learn the outcome, so the slots stay paused and the job
/// says so; `CLUSTER CANCELSLOTMIGRATIONS <job> FORCE` is the operator's way out: the source
/// keeps the slots with a new config epoch, writes to them work again and no key is lost.
#[test]
fn operator_keeps_slots_when_the_target_is_gone() -> Result<()> {
    // The dead target's own slots stay uncovered: the rest of the cluster keeps serving.
    let (mut c, src, dst) =
        primaries_only(Cluster::builder(3).directive("cluster-require-full-coverage", "no"))?;
    let loaded = c.load_keys(0, "gone", 3_000, 32)?;
    let epoch_before: u64 = c.info_field(src, "cluster_my_epoch")?.parse()?;
    c.query(dst, &["DEBUG", "SLOT-MIGRATION-COMMIT-DELAY", "60000"])?;
    c.migrate_slots(src, 0, 99, dst)?;
    try_wait_until_every(
        SETTLE,
        Duration::from_millis(10),
        "the target took the slots",
        || Ok(c.slot_owner(dst, 0)? == dst),
    )?;
    c.node_mut(dst).kill9()?;
    let job = |c: &Cluster| -> Result<std::collections::BTreeMap<String, String>> {
        c.slot_migrations(src)?
            .into_iter()
            .next()
            .ok_or_else(|| anyhow::anyhow!("the source lists no job"))
    };
    try_wait_until_every(
        SETTLE,
        Duration::from_millis(200),
        "the job says it waits for the target's answer",
        || {
            let j = job(&c)?;
            Ok(j.get("state").map(String::as_str) == Some("paused")
                && j.get("message").is_some_and(|m| m.contains("FORCE")))
        },
    )?;
    let name = job(&c)?.get("name").cloned().unwrap_or_default();
    let n = c.query(src, &["CLUSTER", "CANCELSLOTMIGRATIONS", &name, "FORCE"])?;
    ensure!(n == "1", "CANCELSLOTMIGRATIONS FORCE answered {n:?}");
    try_wait_until_every(SETTLE, Duration::from_millis(50), "job cancelled", || {
        Ok(job(&c)?.get("state").map(String::as_str) == Some("cancelled"))
    })?;
    let epoch_after: u64 = c.info_field(src, "cluster_my_epoch")?.parse()?;
    ensure!(
        epoch_after > epoch_before,
        "the source kept the slots without a new config epoch ({epoch_before} -> {epoch_after})"
    );
    let (key, _) = loaded
        .iter()
        .find(|(k, _)| crate::harness::key_slot(k.as_bytes()) <= 99)
        .ok_or_else(|| anyhow::anyhow!("no loaded key in slots 0-99"))?;
    if let Err(e) = c.query(src, &["SET", key, "after-force"]) {
        anyhow::bail!(
            "a write to a kept slot failed: {e:#}; source's view:\n{}",
            c.cluster_nodes_text(src)?
        );
    }
    ensure!(c.query(src, &["GET", key])? == "after-force");
    let view = c.cluster_nodes(src)?;
    let mine = view
        .iter()
        .find(|l| l.is_myself())
        .ok_or_else(|| anyhow::anyhow!("no myself line"))?;
    let rest: Vec<(String, String)> = loaded
        .iter()
        .filter(|(k, _)| k != key && mine.owns(crate::harness::key_slot(k.as_bytes())))
        .cloned()
        .collect();
    let others: Vec<usize> = (0..c.len()).filter(|&i| i != dst).collect();
    for &i in &others {
        ensure!(
            c.slot_owner(i, 0)? == src,
            "node {i} does not see the source owning slot 0"
        );
    }
    ensure!(
        rest.len() > 900,
        "only {} loaded keys on the source",
        rest.len()
    );
    let wrong = c.wrong_values(src, &rest)?;
    ensure!(
        wrong.is_empty(),
        "{} keys on the source lost, e.g. {:?}",
        wrong.len(),
        &wrong[..wrong.len().min(3)]
    );
    Ok(())
}
