//! The replication backlog: the most recent committed batches with their offsets, so a
//! reconnecting replica continues from its offset instead of a full sync. Bounded by
//! `repl-backlog-size`; a replica further behind than that gets a full sync. A streaming
//! replica pins what it has not sent yet (as Valkey holds it in the replica's output buffer),
//! up to [`STREAM_HOLD`] beyond the backlog size: a write larger than the backlog still
//! streams instead of forcing a full sync.

use std::collections::VecDeque;
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::watch;

use crate::keyspace::WriteLog;

/// Most bytes held for streaming replicas beyond `repl-backlog-size` (Valkey's default hard
/// `client-output-buffer-limit replica`); a replica further behind resyncs.
pub const STREAM_HOLD: u64 = 256 << 20;

pub fn new_replid() -> String {
    crate::cluster::NodeId::random().to_string()
}

struct Inner {
    replid: String,
    replid2: String,
    /// First offset not covered by `replid2` (Valkey's second_repl_offset), -1 if none.
    second_offset: i64,
    offset: u64,
    /// Offset of the first byte still held.
    start: u64,
    frames: VecDeque<(u64, Arc<Vec<u8>>)>,
    bytes: u64,
    limit: u64,
    /// Streaming replicas (by link) and the offset each has been handed up to.
    readers: std::collections::HashMap<u64, u64>,
}

pub struct Backlog {
    inner: Mutex<Inner>,
    /// Set when the first replica connects (or this node follows a primary), as Valkey creates
    /// its backlog then: until then commits pay nothing for replication.
    active: std::sync::atomic::AtomicBool,
    /// Writes were committed while not recording.
    unlogged: std::sync::atomic::AtomicBool,
    tx: watch::Sender<u64>,
}

/// The replication identity and position, as INFO shows them.
#[derive(Debug, Clone)]
pub struct Position {
    pub replid: String,
    pub replid2: String,
    pub second_offset: i64,
    pub offset: u64,
    pub start: u64,
    pub histlen: u64,
    pub limit: u64,
}

impl Backlog {
    pub fn new(replid: String, offset: u64, limit: u64) -> Backlog {
        let (tx, _) = watch::channel(offset);
        Backlog {
            inner: Mutex::new(Inner {
                replid,
                replid2: "0".repeat(40),
                second_offset: -1,
                offset,
                start: offset,
                frames: VecDeque::new(),
                bytes: 0,
                limit: limit.max(1 << 20),
                readers: Default::default(),
            }),
            active: std::sync::atomic::AtomicBool::new(false),
            unlogged: std::sync::atomic::AtomicBool::new(false),
            tx,
        }
    }

    /// Starts recording. If writes were committed unrecorded, the stored position no longer
    /// matches the data: a new history starts, so no replica continues from that position.
    pub fn activate(&self) {
        let mut i = self.inner.lock();
        if !self.active.load(std::sync::atomic::Ordering::Acquire)
            && self
                .unlogged
                .swap(false, std::sync::atomic::Ordering::AcqRel)
        {
            i.replid = new_replid();
            i.replid2 = "0".repeat(40);
            i.second_offset = -1;
            i.start = i.offset;
            i.frames.clear();
            i.bytes = 0;
        }
        self.active
            .store(true, std::sync::atomic::Ordering::Release);
    }

    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.tx.subscribe()
    }

    pub fn position(&self) -> Position {
        let i = self.inner.lock();
        Position {
            replid: i.replid.clone(),
            replid2: i.replid2.clone(),
            second_offset: i.second_offset,
            offset: i.offset,
            start: i.start,
            histlen: i.offset - i.start,
            limit: i.limit,
        }
    }

    fn push(i: &mut Inner, end: u64, frame: Arc<Vec<u8>>) {
        i.bytes += frame.len() as u64;
        i.frames.push_back((end, frame));
        i.offset = end;
        while i.bytes > i.limit {
            let Some(&(first_end, _)) = i.frames.front() else {
                break;
            };
            let pinned = i.readers.values().any(|p| *p < first_end);
            if pinned && i.bytes <= i.limit + STREAM_HOLD {
                break;
            }
            let Some((e, f)) = i.frames.pop_front() else {
                break;
            };
            i.bytes -= f.len() as u64;
            i.start = e;
        }
    }

    /// Records a batch received from our primary, which ends at `end` (a replica mirrors the
    /// stream so it can serve its own replicas after a failover).
    pub fn append_at(&self, end: u64, frame: Vec<u8>) {
        let mut i = self.inner.lock();
        if end <= i.offset {
            return;
        }
        Self::push(&mut i, end, Arc::new(frame));
        drop(i);
        self.tx.send_replace(end);
    }

    /// Starts over at `offset` under `replid` (after a full sync).
    pub fn reset(&self, replid: String, offset: u64) {
        let mut i = self.inner.lock();
        i.replid = replid;
        i.offset = offset;
        i.start = offset;
        i.frames.clear();
        i.bytes = 0;
        drop(i);
        self.tx.send_replace(offset);
    }

    /// A new history begins (this node became a primary): the old id stays valid up to here.
    pub fn promote(&self) {
        let mut i = self.inner.lock();
        i.replid2 = std::mem::replace(&mut i.replid, new_replid());
        i.second_offset = i.offset as i64 + 1;
    }

    /// Whether a replica at `(replid, offset)` can continue from the backlog.
    pub fn can_continue(&self, replid: &str, offset: u64) -> bool {
        let i = self.inner.lock();
        let same = replid == i.replid || (replid == i.replid2 && (offset as i64) < i.second_offset);
        same && offset >= i.start && offset <= i.offset && Self::at_boundary(&i, offset)
    }

    fn at_boundary(i: &Inner, offset: u64) -> bool {
        offset == i.start || offset == i.offset || i.frames.iter().any(|(e, _)| *e == offset)
    }

    /// The batches after `offset`, or `None` if they are no longer held.
    pub fn frames_after(&self, offset: u64) -> Option<Vec<(u64, Arc<Vec<u8>>)>> {
        let i = self.inner.lock();
        Self::after(&i, offset)
    }

    fn after(i: &Inner, offset: u64) -> Option<Vec<(u64, Arc<Vec<u8>>)>> {
        if offset < i.start || offset > i.offset || !Self::at_boundary(i, offset) {
            return None;
        }
        Some(
            i.frames
                .iter()
                .filter(|(e, _)| *e > offset)
                .cloned()
                .collect(),
        )
    }

    /// Starts holding what the replica streaming on `link` from `offset` has not been handed
    /// yet; the hold ends when the returned pin is dropped.
    pub fn pin(self: &Arc<Self>, link: u64, offset: u64) -> StreamPin {
        self.inner.lock().readers.insert(link, offset);
        StreamPin {
            backlog: Arc::clone(self),
            link,
        }
    }

    /// [`Backlog::frames_after`] for a pinned stream: what it is handed stops being held for it.
    pub fn frames_for(&self, pin: &StreamPin, offset: u64) -> Option<Vec<(u64, Arc<Vec<u8>>)>> {
        let mut i = self.inner.lock();
        let frames = Self::after(&i, offset)?;
        let upto = frames.last().map_or(offset, |(e, _)| *e);
        i.readers.insert(pin.link, upto);
        Some(frames)
    }
}

/// A streaming replica's hold on the backlog (see [`Backlog::pin`]).
pub struct StreamPin {
    backlog: Arc<Backlog>,
    link: u64,
}

impl Drop for StreamPin {
    fn drop(&mut self) {
        self.backlog.inner.lock().readers.remove(&self.link);
    }
}

impl WriteLog for Backlog {
    fn append(&self, frame: Vec<u8>) -> u64 {
        let mut i = self.inner.lock();
        let end = i.offset + frame.len() as u64;
        Self::push(&mut i, end, Arc::new(frame));
        drop(i);
        self.tx.send_replace(end);
        end
    }

    fn offset(&self) -> u64 {
        self.inner.lock().offset
    }

    fn active(&self) -> bool {
        self.active.load(std::sync::atomic::Ordering::Acquire)
    }

    fn skipped(&self) {
        // Checked first: commits on every core would otherwise keep writing one cache line.
        if !self.unlogged.load(std::sync::atomic::Ordering::Relaxed) {
            self.unlogged
                .store(true, std::sync::atomic::Ordering::Release);
        }
    }

    fn position_record(&self, end: u64) -> (Vec<u8>, Vec<u8>) {
        let replid = self.inner.lock().replid.clone();
        (super::STATE_KEY.to_vec(), super::encode_state(&replid, end))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continue_within_history_only() {
        let b = Backlog::new("a".repeat(40), 0, 1 << 20);
        let o1 = b.append(vec![0; 10]);
        let o2 = b.append(vec![0; 20]);
        assert_eq!((o1, o2), (10, 30));
        assert_eq!(b.frames_after(10).unwrap().len(), 1);
        assert!(b.frames_after(5).is_none(), "not a batch boundary");
        assert!(b.can_continue(&"a".repeat(40), 10));
        assert!(!b.can_continue(&"b".repeat(40), 10));
        assert!(
            !b.can_continue(&"a".repeat(40), 31),
            "an offset from the future"
        );
        b.promote();
        assert!(
            b.can_continue(&"a".repeat(40), 30),
            "the old id stays valid after a failover"
        );
    }

    /// A write larger than the backlog still reaches a replica that is streaming; with no
    /// replica streaming it is not held.
    #[test]
    fn streaming_replica_pins_a_write_larger_than_the_backlog() {
        let b = Arc::new(Backlog::new("a".repeat(40), 0, 1 << 20));
        let first = b.append(vec![0; 100]);
        let pin = b.pin(7, first);
        let big = b.append(vec![1; 3 << 20]);
        let got = b
            .frames_for(&pin, first)
            .expect("the big write is held for the stream");
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].0, big);
        assert_eq!(got[0].1.len(), 3 << 20);
        // Handed over: the next write may trim it.
        let next = b.append(vec![2; 10]);
        assert_eq!(b.frames_for(&pin, big).map(|f| f.len()), Some(1));
        drop(pin);
        b.append(vec![3; 3 << 20]);
        assert!(b.frames_after(next).is_none(), "not held without a stream");
    }

    #[test]
    fn trims_to_limit() {
        let b = Backlog::new("a".repeat(40), 0, 1 << 20);
        for _ in 0..5 {
            b.append(vec![0; 400 << 10]);
        }
        let p = b.position();
        assert!(p.histlen <= 1 << 20);
        assert!(b.frames_after(0).is_none());
    }
}
