//! One journey for keys of a new type through everything that moves a slot: native and
//! legacy resharding, replication, a cluster backup restored elsewhere, and a primary's
//! SIGKILL with its replica taking over. Each type's test gives its keys and how to read
//! them (a fingerprint) and checks the reads stay what they should be.

use std::time::Duration;

use anyhow::{ensure, Result};

use super::{show, wait_until, Cluster, RawConn};

const SETTLE: Duration = Duration::from_secs(60);

/// How a test reads one key into comparable bytes.
pub type Fingerprint<'a> = &'a dyn Fn(&mut RawConn, &str) -> Result<Vec<u8>>;

fn fingerprints(
    c: &Cluster,
    names: &[String],
    fp: Fingerprint,
    what: &str,
) -> Result<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    for k in names {
        let owner = c.key_owner(k)?;
        let f = fp(&mut c.node(owner).raw_authed()?, k)?;
        ensure!(
            !f.starts_with(b"-"),
            "{what}: {k} at node {owner}: {}",
            show(&f)
        );
        out.push(f);
    }
    Ok(out)
}

fn same(got: &[Vec<u8>], want: &[Vec<u8>], names: &[String], what: &str) -> Result<()> {
    for ((g, w), k) in got.iter().zip(want).zip(names) {
        ensure!(
            g == w,
            "{k} changed {what}: {} instead of {}",
            show(g),
            show(w)
        );
    }
    Ok(())
}

/// Takes the keys `names` of a 3×2 cluster (built by the caller) through
/// `rockslot-cli --cluster reshard` (native) and `redis-cli --cluster reshard` (MIGRATE),
/// then asks `want` what every key should read as, and checks it there, on the replicas,
/// in a new cluster restored from `--cluster backup`, and on the replica promoted when its
/// primary is SIGKILLed.
pub fn slot_journey(
    c: &mut Cluster,
    names: &[String],
    fp: Fingerprint,
    want: &mut dyn FnMut(&Cluster) -> Result<Vec<Vec<u8>>>,
) -> Result<()> {
    let masters = c.masters(0)?;
    let (m0, m1, m2) = (
        c.myid(masters[0])?,
        c.myid(masters[1])?,
        c.myid(masters[2])?,
    );
    c.reshard_via(0, true, &m0, &m1, 3000)?;
    c.reshard_via(0, false, &m1, &m2, 2000)?;
    c.wait_converged(SETTLE)?;
    let want = want(c)?;
    same(
        &fingerprints(c, names, fp, "resharded")?,
        &want,
        names,
        "moving its slot",
    )?;

    for k in names {
        let owner = c.key_owner(k)?;
        let replica = c.replica_of(0, owner)?;
        let mut rc = c.node(replica).raw_authed()?;
        rc.cmd(&["READONLY"])?;
        let target = fp(&mut c.node(owner).raw_authed()?, k)?;
        wait_until(SETTLE, "the replica's copy", || {
            fp(&mut rc, k).is_ok_and(|f| f == target)
        })?;
    }

    let out = tempfile::Builder::new().prefix("rockslot-it-").tempdir()?;
    let dir = out.path().join("bk").display().to_string();
    let seed = format!("127.0.0.1:{}", c.node(0).port());
    c.rockslot_cli_cluster(&["backup", &seed, "--out", &dir])?
        .ensure_success()?;
    {
        let d = Cluster::builder(3).start()?;
        d.create_and_wait(0)?;
        let dseed = format!("127.0.0.1:{}", d.node(0).port());
        d.rockslot_cli_cluster(&["restore", &dseed, "--from", &dir])?
            .ensure_success()?;
        same(
            &fingerprints(&d, names, fp, "restored")?,
            &want,
            names,
            "through backup and restore",
        )?;
    }

    // A primary (not node 0, whose view the journey reads) dies; its replica serves its keys.
    let victim = *c
        .masters(0)?
        .iter()
        .find(|&&m| m != 0)
        .expect("three primaries");
    let heir = c.replica_of(0, victim)?;
    let theirs: Vec<usize> = (0..names.len())
        .filter(|&i| c.key_owner(&names[i]).is_ok_and(|o| o == victim))
        .collect();
    ensure!(!theirs.is_empty(), "the victim holds keys");
    c.node_mut(victim).kill9()?;
    wait_until(SETTLE, "the replica to take over", || {
        c.key_owner(&names[theirs[0]]).is_ok_and(|o| o == heir)
    })?;
    for i in theirs {
        let got = fp(&mut c.node(heir).raw_authed()?, &names[i])?;
        ensure!(
            got == want[i],
            "{} on the promoted replica: {}",
            names[i],
            show(&got)
        );
    }
    Ok(())
}
