//! Slot backups with `rockslot-cli --cluster backup|restore`: half the slots of a loaded
//! 3-primary cluster backed up while a writer runs and restored into a 4-primary cluster with
//! another layout; corrupt, missing and truncated backups refused without changing the target;
//! round trips of the whole keyspace and of one slot; expired keys stay expired.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{ensure, Result};

use crate::harness::{key_slot, AckWriter, Cluster};

const SETTLE: Duration = Duration::from_secs(60);

fn cli(c: &Cluster, args: &[&str]) -> Result<crate::harness::ToolRun> {
    c.rockslot_cli_cluster(args)
}

fn seed(c: &Cluster) -> String {
    format!("127.0.0.1:{}", c.node(0).port())
}

fn total_keys(c: &Cluster) -> Result<u64> {
    c.masters(0)?.into_iter().map(|m| c.node(m).dbsize()).sum()
}

fn refused(c: &Cluster, dir: &Path, want: &str) -> Result<()> {
    let before = total_keys(c)?;
    let run = cli(
        c,
        &[
            "restore",
            &seed(c),
            "--from",
            &dir.display().to_string(),
            "--replace",
        ],
    )?;
    let out = format!("{}{}", run.stdout, run.stderr);
    ensure!(
        !run.status.success(),
        "restore of a damaged backup succeeded: {out}"
    );
    ensure!(
        out.contains(want),
        "restore error does not name {want:?}: {out}"
    );
    ensure!(
        total_keys(c)? == before,
        "a refused restore changed the target"
    );
    Ok(())
}

fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to)?;
    for e in std::fs::read_dir(from)? {
        let e = e?;
        std::fs::copy(e.path(), to.join(e.file_name()))?;
    }
    Ok(())
}

#[test]
fn backup_under_writes_restores_into_another_layout() -> Result<()> {
    let tmp = tempfile_dir("backup")?;
    let src = Cluster::builder(3).start()?;
    src.create_and_wait(0)?;
    let loaded = src.load_keys(0, "bk", 500_000, 24)?;
    // A key that expires before the restore, and one that keeps its TTL.
    src.query(src.key_owner("gone")?, &["SET", "gone", "x", "PX", "300"])?;
    src.query(
        src.key_owner("stays")?,
        &["SET", "stays", "y", "EX", "1000"],
    )?;
    let w = AckWriter::start(&src, "live", 2)?;
    w.wait_acked_after(
        Instant::now() - SETTLE,
        100,
        SETTLE,
        "writer warm-up",
        |_| true,
    )?;
    let t_start = Instant::now();
    let dir = tmp.join("half");
    let run = cli(
        &src,
        &[
            "backup",
            &seed(&src),
            "--out",
            &dir.display().to_string(),
            "--slots",
            "0-8191",
        ],
    )?
    .ensure_success()?;
    let t_end = Instant::now();
    println!("backup: {}", run.stdout.lines().last().unwrap_or_default());
    let report = w.stop(Duration::from_secs(30))?;
    ensure!(
        report.errors == 0,
        "the backup disturbed writers: {:?}",
        report.error_samples
    );

    let dst = Cluster::builder(4).start()?;
    dst.create_and_wait(0)?;
    std::thread::sleep(Duration::from_millis(400)); // let "gone" expire (its TTL is absolute)
    let run = cli(
        &dst,
        &["restore", &seed(&dst), "--from", &dir.display().to_string()],
    )?
    .ensure_success()?;
    println!("restore: {}", run.stdout.lines().last().unwrap_or_default());
    let half: Vec<(String, String)> = loaded
        .iter()
        .filter(|(k, _)| key_slot(k.as_bytes()) <= 8191)
        .cloned()
        .collect();
    let wrong = dst.wrong_values(0, &half)?;
    ensure!(
        wrong.is_empty(),
        "{} backed-up keys wrong after restore, e.g. {:?}",
        wrong.len(),
        &wrong[..wrong.len().min(3)]
    );
    let before: Vec<_> = report
        .acked
        .iter()
        .filter(|a| a.at < t_start && a.slot <= 8191)
        .cloned()
        .collect();
    let missing = dst.missing_acked(0, &before)?;
    ensure!(
        missing.is_empty(),
        "{} writes acknowledged before the backup are missing",
        missing.len()
    );
    let during = report
        .acked
        .iter()
        .filter(|a| a.slot <= 8191 && a.at < t_end)
        .count();
    let n = total_keys(&dst)?;
    ensure!(
        n >= (half.len() + before.len()) as u64 && n <= (half.len() + during + 2) as u64,
        "restored {n} keys: {} loaded + {} written before + at most {during} during the backup",
        half.len(),
        before.len()
    );
    let gone_owner = dst.key_owner("gone")?;
    if key_slot(b"gone") <= 8191 {
        ensure!(
            dst.query(gone_owner, &["GET", "gone"])?.is_empty(),
            "an expired key came back"
        );
    }
    if key_slot(b"stays") <= 8191 {
        let ttl: i64 = dst
            .query(dst.key_owner("stays")?, &["TTL", "stays"])?
            .parse()?;
        ensure!((1..=1000).contains(&ttl), "TTL not kept: {ttl}");
    }
    // Restoring again collides with every key: refused without --replace, nothing changes.
    let run = cli(
        &dst,
        &["restore", &seed(&dst), "--from", &dir.display().to_string()],
    )?;
    ensure!(
        !run.status.success() && run.stdout.contains("already exist"),
        "collision not refused: {}",
        run.stdout
    );
    ensure!(
        total_keys(&dst)? == n,
        "a refused restore changed the target"
    );

    // Damaged copies are refused before any node is touched, naming the file.
    let manifest = std::fs::read_to_string(dir.join("manifest"))?;
    let first_file = manifest
        .lines()
        .find_map(|l| l.strip_prefix("file "))
        .and_then(|l| l.split(' ').next())
        .unwrap_or_default()
        .to_string();
    let flipped = tmp.join("flipped");
    copy_dir(&dir, &flipped)?;
    let mut bytes = std::fs::read(flipped.join(&first_file))?;
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x40;
    std::fs::write(flipped.join(&first_file), bytes)?;
    refused(&dst, &flipped, &first_file)?;
    let missing_dir = tmp.join("missing");
    copy_dir(&dir, &missing_dir)?;
    std::fs::remove_file(missing_dir.join(&first_file))?;
    refused(&dst, &missing_dir, &first_file)?;
    let truncated = tmp.join("truncated");
    copy_dir(&dir, &truncated)?;
    std::fs::write(truncated.join("manifest"), &manifest[..manifest.len() / 2])?;
    refused(&dst, &truncated, "manifest")?;
    let partial = tmp.join("partial");
    copy_dir(&dir, &partial)?;
    std::fs::remove_file(partial.join("manifest"))?;
    refused(&dst, &partial, "manifest")?;

    // Whole keyspace round trip: everything in the source equals the restored copy.
    let all = tmp.join("all");
    cli(
        &src,
        &["backup", &seed(&src), "--out", &all.display().to_string()],
    )?
    .ensure_success()?;
    let copy = Cluster::builder(3).start()?;
    copy.create_and_wait(0)?;
    cli(
        &copy,
        &[
            "restore",
            &seed(&copy),
            "--from",
            &all.display().to_string(),
        ],
    )?
    .ensure_success()?;
    let wrong = copy.wrong_values(0, &loaded)?;
    ensure!(
        wrong.is_empty(),
        "{} keys differ after a full round trip",
        wrong.len()
    );
    let (a, b) = (total_keys(&src)?, total_keys(&copy)?);
    // The expired key may be reclaimed on one side and not yet on the other.
    ensure!(a.abs_diff(b) <= 1, "full round trip: {a} keys vs {b}");

    // One slot: only its keys come back.
    let slot = key_slot(loaded[0].0.as_bytes());
    let one = tmp.join("one");
    cli(
        &src,
        &[
            "backup",
            &seed(&src),
            "--out",
            &one.display().to_string(),
            "--slots",
            &slot.to_string(),
        ],
    )?
    .ensure_success()?;
    for m in dst.masters(0)? {
        dst.query(m, &["FLUSHALL"])?;
    }
    cli(
        &dst,
        &["restore", &seed(&dst), "--from", &one.display().to_string()],
    )?
    .ensure_success()?;
    let in_slot: Vec<(String, String)> = loaded
        .iter()
        .filter(|(k, _)| key_slot(k.as_bytes()) == slot)
        .cloned()
        .collect();
    ensure!(
        dst.wrong_values(0, &in_slot)?.is_empty(),
        "single-slot restore lost keys"
    );
    let mut per_slot: BTreeMap<u16, u64> = BTreeMap::new();
    for a in &report.acked {
        if a.slot == slot {
            *per_slot.entry(slot).or_default() += 1;
        }
    }
    let n = total_keys(&dst)?;
    ensure!(
        n >= in_slot.len() as u64
            && n <= (in_slot.len() as u64 + per_slot.get(&slot).copied().unwrap_or(0) + 2),
        "single-slot restore brought {n} keys, slot {slot} holds {} loaded",
        in_slot.len()
    );
    let _ = std::fs::remove_dir_all(&tmp);
    Ok(())
}

/// Issue 13, path 7. `--replace` over a live collection: the restored key is the backup's whole
/// (before, a hash kept the fields written after the backup, and its newer TTL). A key written
/// on one primary after its data was staged: the restore is refused at commit on every
/// primary (before, the staged value overwrote it without `--replace`).
#[test]
fn restore_replaces_whole_keys_and_decides_collisions_at_commit() -> Result<()> {
    let tmp = tempfile_dir("replace")?;
    let c = Cluster::builder(3).start()?;
    c.create_and_wait(0)?;
    let loaded = c.load_keys(0, "rp", 3000, 16)?;
    let h = c.key_owner("h")?;
    c.query(h, &["HSET", "h", "a", "1", "b", "2"])?;
    let dir = tmp.join("all");
    let all = dir.display().to_string();
    cli(&c, &["backup", &seed(&c), "--out", &all])?.ensure_success()?;

    c.query(h, &["HSET", "h", "c", "3"])?;
    c.query(h, &["EXPIRE", "h", "1000"])?;
    let (k0, v0) = &loaded[0];
    c.query(c.key_owner(k0)?, &["SET", k0, "changed"])?;
    cli(&c, &["restore", &seed(&c), "--from", &all, "--replace"])?.ensure_success()?;
    ensure!(
        c.query(h, &["HEXISTS", "h", "c"])? == "0",
        "the restored hash kept a field written after the backup"
    );
    let len: i64 = c.query(h, &["HLEN", "h"])?.parse()?;
    ensure!(len == 2, "restored hash has {len} fields, the backup 2");
    let ttl: i64 = c.query(h, &["TTL", "h"])?.parse()?;
    ensure!(ttl == -1, "the restored hash kept a later TTL: {ttl}");
    let v = c.query(c.key_owner(k0)?, &["GET", k0])?;
    ensure!(&v == v0, "{k0} restored as {v:?}, backup {v0:?}");
    ensure!(
        c.wrong_values(0, &loaded)?.is_empty(),
        "keys wrong after --replace"
    );

    // Empty the cluster, hold one primary's stage open and write one of its backed-up keys.
    for m in c.masters(0)? {
        c.query(m, &["FLUSHALL"])?;
    }
    let (k1, _) = &loaded[1];
    let late = c.key_owner(k1)?;
    c.query(late, &["DEBUG", "RESTORE-DELAY", "3000"])?;
    let run = std::thread::scope(|s| -> Result<crate::harness::ToolRun> {
        let restore = s.spawn(|| cli(&c, &["restore", &seed(&c), "--from", &all]));
        crate::harness::try_wait_until_every(
            SETTLE,
            Duration::from_millis(20),
            "the primary staged its part",
            || Ok(c.node(late).log_count("staged") > 0),
        )?;
        c.query(late, &["SET", k1, "written-after-staging"])?;
        restore
            .join()
            .map_err(|_| anyhow::anyhow!("restore thread panicked"))?
    })?;
    c.query(late, &["DEBUG", "RESTORE-DELAY", "0"])?;
    let out = format!("{}{}", run.stdout, run.stderr);
    ensure!(
        !run.status.success() && out.contains("already exist") && out.contains("nothing changed"),
        "a key written after staging was not refused at commit: {out}"
    );
    ensure!(
        c.query(late, &["GET", k1])? == "written-after-staging",
        "the restore overwrote a key written after staging"
    );
    ensure!(
        total_keys(&c)? == 1,
        "a refused restore changed some primary: {} keys",
        total_keys(&c)?
    );
    let _ = std::fs::remove_dir_all(&tmp);
    Ok(())
}

/// Issue 13, path 7: a primary that dies between the final collision check and its commit.
/// Before, the commit loop stopped at the first failure and left later primaries staged and
/// unrestored without saying which slots; now every other primary commits, the report names
/// the slots that were not restored, and a second restore with those `--slots` finishes it.
#[test]
fn restore_with_a_primary_lost_before_its_commit_names_what_to_restore_again() -> Result<()> {
    let tmp = tempfile_dir("resume")?;
    let mut c = Cluster::builder(3).start()?;
    c.create_and_wait(0)?;
    let loaded = c.load_keys(0, "rs", 3000, 16)?;
    let dir = tmp.join("all").display().to_string();
    cli(&c, &["backup", &seed(&c), "--out", &dir])?.ensure_success()?;
    let primaries = c.masters(0)?;
    for &m in &primaries {
        c.query(m, &["FLUSHALL"])?;
        c.query(m, &["DEBUG", "RESTORE-DELAY", "1500"])?;
    }
    // Node 0 is the tool's seed; one of the others dies once every primary is prepared.
    let victim = *primaries.iter().find(|&&m| m != 0).unwrap_or(&primaries[0]);
    let run = std::thread::scope(|s| -> Result<crate::harness::ToolRun> {
        let restore = s.spawn(|| cli(&c, &["restore", &seed(&c), "--from", &dir]));
        crate::harness::try_wait_until_every(
            SETTLE,
            Duration::from_millis(10),
            "every primary prepared the restore",
            || {
                Ok(primaries
                    .iter()
                    .all(|&m| c.node(m).log_count("prepared") > 0))
            },
        )?;
        c.node(victim).sigkill()?;
        restore
            .join()
            .map_err(|_| anyhow::anyhow!("restore thread panicked"))?
    })?;
    let out = format!("{}{}", run.stdout, run.stderr);
    ensure!(!run.status.success(), "the restore claimed success: {out}");
    for l in out.lines().filter(|l| l.contains("[ERR]")) {
        println!("restore report: {l}");
    }
    let again = out
        .lines()
        .find_map(|l| l.split("--slots ").nth(1))
        .map(|r| r.trim().to_string())
        .ok_or_else(|| anyhow::anyhow!("the report names no slots to restore again: {out}"))?;
    let lost_ranges = c.own_ranges(victim).ok();
    c.node_mut(victim).kill9()?;
    c.node_mut(victim).restart()?;
    c.wait_state_ok(SETTLE)?;
    let theirs = lost_ranges.unwrap_or_else(|| c.own_ranges(victim).unwrap_or_default());
    let expected = theirs
        .iter()
        .map(|(a, b)| {
            if a == b {
                a.to_string()
            } else {
                format!("{a}-{b}")
            }
        })
        .collect::<Vec<_>>()
        .join(",");
    ensure!(
        again == expected,
        "the report names slots {again}, the lost primary owns {expected}: {out}"
    );
    let others: u64 = primaries
        .iter()
        .filter(|&&m| m != victim)
        .map(|&m| c.node(m).dbsize())
        .sum::<Result<u64>>()?;
    let outside = loaded
        .iter()
        .filter(|(k, _)| {
            !theirs
                .iter()
                .any(|&(a, b)| (a..=b).contains(&key_slot(k.as_bytes())))
        })
        .count() as u64;
    ensure!(
        others == outside,
        "the other primaries hold {others} keys after the restore, the backup {outside}"
    );
    for &m in &primaries {
        c.query(m, &["DEBUG", "RESTORE-DELAY", "0"])?;
    }
    cli(
        &c,
        &["restore", &seed(&c), "--from", &dir, "--slots", &again],
    )?
    .ensure_success()?;
    let wrong = c.wrong_values(0, &loaded)?;
    ensure!(
        wrong.is_empty(),
        "{} keys wrong after the second restore, e.g. {:?}",
        wrong.len(),
        wrong.first()
    );
    let _ = std::fs::remove_dir_all(&tmp);
    Ok(())
}

fn tempfile_dir(name: &str) -> Result<std::path::PathBuf> {
    let d = std::env::temp_dir().join(format!(
        "rockslot-it-{name}-{}-{}",
        std::process::id(),
        crate::harness::unix_ms()
    ));
    std::fs::create_dir_all(&d)?;
    Ok(d)
}
