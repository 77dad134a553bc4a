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

fn tempfile_dir(name: &str) -> Result<std::path::PathBuf> {
    let d = std::env::temp_dir().join(format!(
        "rockslot-it-{name}-{}-{}",
        std::process::id(),
        crate::harness::unix_ms()
    ));
    std::fs::create_dir_all(&d)?;
    Ok(d)
}
