//! Real disk faults: a node's data directory on a small tmpfs the harness mounts (the suite
//! runs as root), filled up with a file to make RocksDB's writes fail with ENOSPC, then
//! emptied again.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, ensure, Context, Result};

/// A tmpfs mounted for its owner's lifetime (unmounted lazily on drop).
#[derive(Debug)]
pub struct Tmpfs(PathBuf);

/// The file [`Tmpfs::fill`] writes.
const FILLER: &str = "zz-filler";

impl Tmpfs {
    pub fn mount(at: &Path, size: &str) -> Result<Tmpfs> {
        std::fs::create_dir_all(at)?;
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .output()
            .context("running mount")?;
        if !out.status.success() {
            bail!(
                "mounting a tmpfs at {} failed (the test needs root): {}",
                at.display(),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(Tmpfs(at.to_path_buf()))
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    pub fn resize(&self, size: &str) -> Result<()> {
        let st = Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.0)
            .status()?;
        ensure!(st.success(), "remounting {} failed", self.0.display());
        Ok(())
    }

    /// Takes all the free space but `leave` bytes with a file; returns its size.
    pub fn fill(&self, leave: u64) -> Result<u64> {
        use std::io::Write;
        let free = free_bytes(&self.0)?;
        let want = free.saturating_sub(leave);
        let mut f = std::fs::File::create(self.0.join(FILLER))?;
        let block = vec![0x5a_u8; 1 << 20];
        let mut written = 0u64;
        while written < want {
            let n = (want - written).min(block.len() as u64) as usize;
            match f.write_all(&block[..n]) {
                Ok(()) => written += n as u64,
                // Someone else took the rest meanwhile: full is what we wanted.
                Err(e) if e.raw_os_error() == Some(28) => break,
                Err(e) => return Err(e.into()),
            }
        }
        Ok(written)
    }

    /// Removes what [`Self::fill`] wrote.
    pub fn empty(&self) -> Result<()> {
        match std::fs::remove_file(self.0.join(FILLER)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
            _ => Ok(()),
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Free bytes of the filesystem holding `p` (`df -B1 --output=avail`).
pub fn free_bytes(p: &Path) -> Result<u64> {
    let out = Command::new("df")
        .args(["-B1", "--output=avail"])
        .arg(p)
        .output()
        .context("running df")?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .nth(1)
        .and_then(|l| l.trim().parse().ok())
        .with_context(|| format!("df of {}: {text}", p.display()))
}

impl super::Cluster {
    fn disk(&self, i: usize) -> Result<&Tmpfs> {
        self.disks
            .get(i)
            .and_then(Option::as_ref)
            .with_context(|| format!("node {i}'s data is not on a tmpfs (data_on_tmpfs)"))
    }

    /// Takes all the free space of node `i`'s data tmpfs; returns the bytes written.
    pub fn fill_disk(&self, i: usize) -> Result<u64> {
        self.disk(i)?.fill(0)
    }

    /// Gives node `i`'s data tmpfs its space back.
    pub fn empty_disk(&self, i: usize) -> Result<()> {
        self.disk(i)?.empty()
    }
}
