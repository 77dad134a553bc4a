//! Keyspace tests over a real RocksDB in a temporary directory.

use std::sync::Arc;

use bytes::Bytes;

use super::*;
use crate::storage::Engine;

fn open(dir: &std::path::Path) -> Keyspace {
    Keyspace::open(Arc::new(Engine::open_for_test(dir)), 16).unwrap()
}

fn put(ks: &Keyspace, k: &str, v: &str, expire_at: Option<i64>) {
    ks.update(k.as_bytes(), |_| {
        (
            Update::Put(Entry {
                value: Value::Str(Bytes::from(v.to_string())),
                expire_at,
            }),
            (),
        )
    })
    .unwrap();
}

#[test]
fn counts_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let ks = open(dir.path());
        for i in 0..500 {
            put(&ks, &format!("k{i}"), "v", None);
        }
        put(&ks, "k1", "again", None);
        ks.update(b"k2", |_| (Update::Delete, ())).unwrap();
        assert_eq!(ks.dbsize(0), 499);
    }
    let ks = open(dir.path());
    assert_eq!(ks.dbsize(0), 499);
    assert_eq!(
        ks.lookup(b"k1").unwrap().unwrap().value,
        Value::Str(Bytes::from("again"))
    );
    assert!(ks.lookup(b"k2").unwrap().is_none());
}

#[test]
fn expired_keys_vanish_lazily_and_actively() {
    let dir = tempfile::tempdir().unwrap();
    let ks = open(dir.path());
    let past = now_ms() - 10;
    put(&ks, "gone", "v", Some(past));
    put(&ks, "gone2", "v", Some(past));
    put(&ks, "stays", "v", Some(now_ms() + 60_000));
    assert!(ks.lookup(b"gone").unwrap().is_none());
    assert_eq!(ks.dbsize(0), 2);
    assert_eq!(ks.active_expire_cycle(100).unwrap(), 1);
    assert_eq!(ks.dbsize(0), 1);
    assert_eq!(ks.expires_count(0).unwrap(), 1);
}

#[test]
fn update_many_with_repeated_keys() {
    let dir = tempfile::tempdir().unwrap();
    let ks = open(dir.path());
    let keys: [&[u8]; 3] = [b"a", b"b", b"a"];
    ks.update_many(&keys, |_| {
        let e = |v: &'static str| Update::Put(Entry::string(Bytes::from(v)));
        (vec![e("1"), e("2"), e("3")], ())
    })
    .unwrap();
    assert_eq!(ks.dbsize(0), 2);
    assert_eq!(
        ks.lookup(b"a").unwrap().unwrap().value,
        Value::Str(Bytes::from("3"))
    );
}

#[test]
fn scan_visits_every_key_once_across_cursor_steps() {
    let dir = tempfile::tempdir().unwrap();
    let ks = open(dir.path());
    for i in 0..1000 {
        put(&ks, &format!("key:{i}"), "v", None);
    }
    // Force several keys into one slot so a cursor stops mid-slot.
    for i in 0..50 {
        put(&ks, &format!("{{tag}}:{i}"), "v", None);
    }
    let filter = ScanFilter {
        pattern: None,
        type_name: None,
        slots: None,
        db: 0,
    };
    let mut seen = std::collections::HashSet::new();
    let mut cursor = 0;
    for _ in 0..10_000 {
        let (next, keys) = ks.scan(cursor, 7, &filter).unwrap();
        for k in keys {
            assert!(seen.insert(k), "duplicate without concurrent changes");
        }
        cursor = next;
        if cursor == 0 {
            break;
        }
    }
    assert_eq!(cursor, 0);
    assert_eq!(seen.len(), 1050);
    let pat = ScanFilter {
        pattern: Some(b"{tag}:*"),
        type_name: None,
        slots: None,
        db: 0,
    };
    assert_eq!(ks.keys(&pat).unwrap().len(), 50);
}

#[test]
fn flush_all_empties_everything() {
    let dir = tempfile::tempdir().unwrap();
    let ks = open(dir.path());
    for i in 0..100 {
        put(&ks, &format!("k{i}"), "v", Some(now_ms() + 100_000));
    }
    ks.flush_all().unwrap();
    assert_eq!(ks.dbsize(0), 0);
    assert!(ks.lookup(b"k1").unwrap().is_none());
    put(&ks, "new", "v", None);
    assert_eq!(ks.dbsize(0), 1);
}

/// A legacy MIGRATE and a slot migration can pause the same slot; the first to finish must
/// not lift the other's pause (writes would land in a tap that is never shipped).
#[test]
fn overlapping_write_pauses_each_keep_their_slots_paused() {
    let dir = tempfile::tempdir().unwrap();
    let ks = open(dir.path());
    let first = ks.pause_writes(&[(10, 20)]);
    let second = ks.pause_writes(&[(15, 15)]);
    drop(second);
    assert!(ks.write_paused(15), "the first pause still holds slot 15");
    assert!(ks.write_paused(10));
    drop(first);
    assert!(!ks.write_paused(15));
    assert!(!ks.write_paused(10));
}

/// A replicated batch naming a slot past 16383 (or a range the wrong way round, or a delete
/// range spanning slots) is refused with an error; it used to panic the replica task.
#[test]
fn replicated_batch_with_bad_slots_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let ks = open(dir.path());
    let mut bad: Vec<crate::storage::Batch> = Vec::new();
    let mut b = crate::storage::Batch::new();
    b.count(crate::slot::DbSlot::new(0, 16384), 1);
    bad.push(b);
    let mut b = crate::storage::Batch::new();
    b.set_count(crate::slot::DbSlot::new(0, u16::MAX), 5);
    bad.push(b);
    let mut b = crate::storage::Batch::new();
    b.count(crate::slot::DbSlot::new(32, 5), 1);
    bad.push(b);
    let mut b = crate::storage::Batch::new();
    b.delete_slots(100, 20000);
    bad.push(b);
    let mut b = crate::storage::Batch::new();
    b.delete_slots(200, 100);
    bad.push(b);
    let mut b = crate::storage::Batch::new();
    b.slots_imported(0, 16384);
    bad.push(b);
    let mut b = crate::storage::Batch::new();
    b.put(vec![0xff, 0xff, b'k'], b"v".to_vec());
    bad.push(b);
    let mut b = crate::storage::Batch::new();
    b.delete_range(vec![0, 1, b'a'], vec![0, 2, b'a']);
    bad.push(b);
    for (i, b) in bad.into_iter().enumerate() {
        let r = ks.apply_replicated(&b.encode(), b"state", b"x".to_vec());
        assert!(r.is_err(), "bad batch {i} was applied");
    }
    put(&ks, "still", "serving", None);
    assert_eq!(ks.dbsize(0), 1);
}

#[test]
fn update_many_counts_repeated_and_many_keys_once() {
    let dir = tempfile::tempdir().unwrap();
    let ks = open(dir.path());
    put(&ks, "old", "v", Some(now_ms() + 60_000));
    // More keys than one scope stages before committing on its own, one of them repeated,
    // one replacing a key with a TTL.
    let names: Vec<String> = (0..1500)
        .map(|i| format!("m{i}"))
        .chain(["m7".to_string(), "old".to_string()])
        .collect();
    let keys: Vec<&[u8]> = names.iter().map(|n| n.as_bytes()).collect();
    ks.update_many(&keys, |live| {
        assert_eq!(live.iter().filter(|e| e.is_some()).count(), 1);
        let puts = (0..live.len())
            .map(|i| Update::Put(Entry::string(Bytes::from(format!("v{i}")))))
            .collect();
        (puts, ())
    })
    .unwrap();
    assert_eq!(ks.dbsize(0), 1501);
    assert_eq!(ks.expires_count(0).unwrap(), 0);
    assert_eq!(
        ks.lookup(b"m7").unwrap().unwrap().value,
        Value::Str(Bytes::from("v1500"))
    );
    drop(ks);
    assert_eq!(open(dir.path()).dbsize(0), 1501);
}

fn put_in(ks: &Keyspace, db: u8, k: &str, v: &str) {
    let mut p = ks.pending();
    p.select(db);
    p.update(k.as_bytes(), |_| {
        (Update::Put(Entry::string(Bytes::from(v.to_string()))), ())
    })
    .unwrap();
    p.commit().unwrap();
}

fn get_in(ks: &Keyspace, db: u8, k: &str) -> Option<Entry> {
    let mut p = ks.pending();
    p.select(db);
    let e = p.lookup(k.as_bytes()).unwrap();
    p.commit().unwrap();
    e
}

#[test]
fn databases_are_separate_and_flush_alone_including_the_last() {
    let dir = tempfile::tempdir().unwrap();
    let ks = Keyspace::open(Arc::new(Engine::open_for_test(dir.path())), 32).unwrap();
    for db in [0u8, 1, 30, 31] {
        for i in 0..100 {
            put_in(&ks, db, &format!("k{i}"), &format!("{db}"));
        }
    }
    assert_eq!(ks.total_keys(), 400);
    ks.flush_db(31).unwrap();
    ks.flush_db(1).unwrap();
    for (db, n) in [(0u8, 100), (1, 0), (30, 100), (31, 0)] {
        assert_eq!(ks.dbsize(db), n, "db {db}");
        assert_eq!(get_in(&ks, db, "k7").is_some(), n > 0, "db {db}");
    }
    assert_eq!(
        get_in(&ks, 30, "k7").unwrap().value,
        Value::Str(Bytes::from("30"))
    );
    ks.swap_db(0, 31).unwrap();
    assert_eq!(ks.dbsize(0), 0);
    assert_eq!(ks.dbsize(31), 100);
    drop(ks);
    let ks = Keyspace::open(Arc::new(Engine::open_for_test(dir.path())), 32).unwrap();
    assert_eq!(ks.dbsize(31), 100, "the database map survives a reopen");
    assert_eq!(
        get_in(&ks, 31, "k7").unwrap().value,
        Value::Str(Bytes::from("0"))
    );
}

/// A string over the chunking threshold written inline by an older build (one meta record)
/// keeps its bytes through MOVE and COPY (transfer), which used to move an empty chunk range
/// and write a chunked meta record: the value read back as zeros.
#[test]
fn inline_long_string_from_an_older_build_survives_move_and_copy() {
    let dir = tempfile::tempdir().unwrap();
    let ks = open(dir.path());
    let big: Vec<u8> = (0..(CHUNKED_ABOVE + 5000))
        .map(|i| (i % 251) as u8 + 1)
        .collect();
    let at = DbSlot::of(0, b"old");
    let mut b = Batch::new();
    let e = Entry {
        value: Value::Str(Bytes::from(big.clone())),
        expire_at: None,
    };
    b.put(encoding::meta_key(at, b"old"), encoding::encode_entry(&e));
    b.count(at, 1);
    ks.engine().write(b).unwrap();
    let mut p = ks.pending();
    assert_eq!(
        p.transfer(b"old", Some(3), b"old", true, true).unwrap(),
        Renamed::Done
    );
    assert_eq!(
        p.transfer(b"old", Some(0), b"copy", true, true).unwrap(),
        Renamed::Done
    );
    p.commit().unwrap();
    for (db, key) in [(3u8, &b"old"[..]), (0, b"copy"), (0, b"old")] {
        let mut p = ks.pending();
        p.select(db);
        let got = p.lookup(key).unwrap().map(|e| e.value);
        // Compared without printing a megabyte on failure.
        assert!(
            got == Some(Value::Str(Bytes::from(big.clone()))),
            "db {db} differs"
        );
    }
}
