use std::fs;
use std::path::PathBuf;

use super::*;
use crate::config::load::{load, ConfigSource};
use crate::config::AppendFsync;

fn tmpdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("create temp dir")
}

/// The directory must outlive the test, so it is returned too.
fn live_from(text: &str) -> (LiveConfig, PathBuf, tempfile::TempDir) {
    let dir = tmpdir();
    let p = dir.path().join("rockslot.conf");
    fs::write(&p, text).expect("write");
    let l = load(&ConfigSource {
        file: Some(p.clone()),
        overrides: vec![],
    })
    .expect("load");
    (LiveConfig::new(&l), p, dir)
}

fn get(l: &LiveConfig, pats: &[&str]) -> Vec<(String, String)> {
    let pats: Vec<&[u8]> = pats.iter().map(|p| p.as_bytes()).collect();
    l.get(&pats)
}

fn get1(l: &LiveConfig, name: &str) -> Option<String> {
    get(l, &[name]).into_iter().next().map(|(_, v)| v)
}

fn set(l: &LiveConfig, pairs: &[(&str, &str)]) -> Result<(), ConfigSetError> {
    let pairs: Vec<(&[u8], &[u8])> = pairs
        .iter()
        .map(|(k, v)| (k.as_bytes(), v.as_bytes()))
        .collect();
    l.set(&pairs)
}

#[test]
fn get_renders_like_valkey() {
    let (l, _, _dir) =
        live_from("port 7000\nbind 127.0.0.1 ::1\nappendfsync always\nappendonly yes\n");
    assert_eq!(get1(&l, "port").as_deref(), Some("7000"));
    assert_eq!(get1(&l, "PORT").as_deref(), Some("7000"));
    assert_eq!(get1(&l, "bind").as_deref(), Some("127.0.0.1 ::1"));
    assert_eq!(get1(&l, "appendfsync").as_deref(), Some("always"));
    assert_eq!(get1(&l, "appendonly").as_deref(), Some("yes"));
    assert_eq!(get1(&l, "requirepass").as_deref(), Some(""));
    assert_eq!(get1(&l, "save").as_deref(), Some("3600 1 300 100 60 10000"));
    assert_eq!(get1(&l, "proto-max-bulk-len").as_deref(), Some("536870912"));
    assert_eq!(get1(&l, "cluster-enabled").as_deref(), Some("no"));
    assert_eq!(get1(&l, "loglevel").as_deref(), Some("notice"));
    assert_eq!(get1(&l, "replicaof").as_deref(), Some(""));
    assert_eq!(get1(&l, "slaveof").as_deref(), Some(""));
    assert_eq!(get1(&l, "user"), None, "no default, not set");
    assert_eq!(get1(&l, "nonexistent"), None);
    assert!(get(&l, &["user*"]).is_empty());
}

#[test]
fn get_globs_are_case_insensitive_and_deduplicated() {
    let (l, _, _dir) = live_from("tls-port 6380\ntls-session-cache-size 100\n");
    assert_eq!(get1(&l, "tls-port").as_deref(), Some("6380"));
    assert_eq!(get1(&l, "tls-auth-clients").as_deref(), Some("yes"));
    assert_eq!(l.snapshot().tls.port, 6380);
    let e = set(&l, &[("tls-port", "6390")]).expect_err("tls-port is fixed at start");
    assert!(e.to_string().contains("can't set immutable config"), "{e}");
    let names: Vec<String> = get(&l, &["CLUSTER-*-COVERAGE", "cluster-require-*"])
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert_eq!(names, ["cluster-require-full-coverage"]);

    let all = get(&l, &["*"]);
    let names: Vec<&str> = all.iter().map(|(k, _)| k.as_str()).collect();
    for expected in [
        "port",
        "save",
        "appendonly",
        "slaveof",
        "replicaof",
        "tls-port",
        "maxmemory",
    ] {
        assert!(
            names.contains(&expected),
            "{expected} missing from CONFIG GET *"
        );
    }
    let unique: std::collections::HashSet<&str> = names.iter().copied().collect();
    assert_eq!(unique.len(), names.len());

    let maxm = get(&l, &["maxmemory*"]);
    assert!(maxm.iter().any(|(k, v)| k == "maxmemory" && v == "0"));
    assert!(maxm.iter().any(|(k, _)| k == "maxmemory-policy"));
}

#[test]
fn set_applies_and_bumps_version() {
    let l = LiveConfig::from_config(Config::default());
    let before = l.snapshot();
    assert_eq!(l.version(), 0);
    set(
        &l,
        &[
            ("maxclients", "50"),
            ("APPENDFSYNC", "No"),
            ("requirepass", "pw"),
        ],
    )
    .expect("set");
    assert_eq!(l.version(), 1);
    let now = l.snapshot();
    assert_eq!(now.maxclients, 50);
    assert_eq!(now.appendfsync, AppendFsync::No);
    assert_eq!(now.requirepass.as_deref(), Some("pw"));
    assert_eq!(before.maxclients, 10_000, "old snapshots are unaffected");
    set(&l, &[("requirepass", "")]).expect("clear");
    assert_eq!(l.snapshot().requirepass, None);
    set(&l, &[("client-query-buffer-limit", "2gb")]).expect("memory units");
    assert_eq!(
        get1(&l, "client-query-buffer-limit").as_deref(),
        Some("2147483648")
    );
    set(&l, &[("save", "900 1 300 10"), ("appendonly", "YES")]).expect("no-effect ones");
    assert_eq!(get1(&l, "save").as_deref(), Some("900 1 300 10"));
    assert_eq!(get1(&l, "appendonly").as_deref(), Some("yes"));
    set(&l, &[("save", "")]).expect("save off");
    assert_eq!(get1(&l, "save").as_deref(), Some(""));
    set(&l, &[("min-slaves-to-write", "2")]).expect("alias");
    assert_eq!(l.snapshot().min_replicas_to_write, 2);
}

#[test]
fn set_is_atomic_and_errors_match_valkey() {
    let l = LiveConfig::from_config(Config::default());
    let e = set(&l, &[("maxclients", "50"), ("timeout", "-1")]).expect_err("range");
    assert_eq!(
        e.to_string(),
        "ERR CONFIG SET failed (possibly related to argument 'timeout') - \
         argument must be between 0 and 2147483647 inclusive"
    );
    assert_eq!(
        e.message(),
        "CONFIG SET failed (possibly related to argument 'timeout') - \
         argument must be between 0 and 2147483647 inclusive"
    );
    assert_eq!(l.snapshot().maxclients, 10_000, "nothing applied");
    assert_eq!(l.version(), 0);

    let e = set(&l, &[("maxclients", "50"), ("nosuch", "1")]).expect_err("unknown");
    assert_eq!(
        e.to_string(),
        "ERR Unknown option or number of arguments for CONFIG SET - 'nosuch'"
    );
    let e = set(&l, &[("Port", "1234")]).expect_err("immutable");
    assert_eq!(
        e.to_string(),
        "ERR CONFIG SET failed (possibly related to argument 'Port') - can't set immutable config"
    );
    let e = set(&l, &[("timeout", "1"), ("TIMEOUT", "2")]).expect_err("dup");
    assert_eq!(
        e.to_string(),
        "ERR CONFIG SET failed (possibly related to argument 'TIMEOUT') - duplicate parameter"
    );
    let e = set(&l, &[("cluster-require-full-coverage", "maybe")]).expect_err("bool");
    assert!(
        e.to_string().ends_with("- argument must be 'yes' or 'no'"),
        "{e}"
    );
    let e = set(&l, &[("appendonly", "maybe")]).expect_err("no-effect bool");
    assert!(
        e.to_string().ends_with("- argument must be 'yes' or 'no'"),
        "{e}"
    );
    let e = set(&l, &[("tls-new-thing", "1")]).expect_err("family names need a file value");
    assert!(matches!(e, ConfigSetError::Unknown { .. }));
    assert_eq!(l.version(), 0);
}

#[test]
fn update_bypasses_mutability() {
    let l = LiveConfig::from_config(Config::default());
    l.update(|c| c.replicaof = Some(("10.0.0.2".into(), 7000)));
    assert_eq!(l.version(), 1);
    assert_eq!(get1(&l, "replicaof").as_deref(), Some("10.0.0.2 7000"));
}

#[test]
fn rewrite_without_file_is_refused() {
    let l = LiveConfig::from_config(Config::default());
    let e = l.rewrite().expect_err("no file");
    assert_eq!(
        e.to_string(),
        "ERR The server is running without a config file"
    );
}

#[test]
fn rewrite_preserves_comments_and_round_trips() {
    let text = "# rockslot test config\nport 7000\n\n# auth\nrequirepass valkey\n\
                appendonly yes\nsave 900 1\ntimeout 0\n";
    let (l, path, _dir) = live_from(text);
    set(
        &l,
        &[
            ("requirepass", "new pass"),
            ("timeout", "60"),
            ("maxclients", "64"),
            ("save", ""),
        ],
    )
    .expect("set");
    l.rewrite().expect("rewrite");
    let out = fs::read_to_string(&path).expect("read back");
    assert_eq!(
        out,
        "# rockslot test config\nport 7000\n\n# auth\nrequirepass \"new pass\"\n\
         appendonly yes\nsave \"\"\ntimeout 60\n# Generated by CONFIG REWRITE\nmaxclients 64\n"
    );
    let reloaded = load(&ConfigSource {
        file: Some(path),
        overrides: vec![],
    })
    .expect("reload");
    assert_eq!(*l.snapshot(), reloaded.config);
    assert_eq!(
        LiveConfig::new(&reloaded).get(&[b"save"]),
        l.get(&[b"save"])
    );
}

#[test]
fn rewrite_persists_command_line_overrides() {
    let dir = tmpdir();
    let p = dir.path().join("c.conf");
    fs::write(&p, "port 7000\n").expect("write");
    let l = load(&ConfigSource {
        file: Some(p.clone()),
        overrides: vec![
            vec!["port".into(), "7010".into()],
            vec!["cluster-enabled".into(), "yes".into()],
            vec!["cluster-bus-secret".into(), "s".into()],
        ],
    })
    .expect("load");
    LiveConfig::new(&l).rewrite().expect("rewrite");
    assert_eq!(
        fs::read_to_string(&p).expect("read"),
        "port 7010\n# Generated by CONFIG REWRITE\ncluster-enabled yes\ncluster-bus-secret \"s\"\n"
    );
}

#[test]
fn live_config_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<LiveConfig>();
}

#[test]
fn family_directives_from_the_file_are_settable() {
    let (l, path, _dir) = live_from("tls-session-cache-size 1000\n");
    assert_eq!(get1(&l, "tls-session-cache-size").as_deref(), Some("1000"));
    set(&l, &[("tls-session-cache-size", "2000")]).expect("set family value");
    assert_eq!(get1(&l, "tls-session-cache-size").as_deref(), Some("2000"));
    l.rewrite().expect("rewrite");
    assert_eq!(
        fs::read_to_string(path).expect("read"),
        "tls-session-cache-size 2000\n"
    );
}
