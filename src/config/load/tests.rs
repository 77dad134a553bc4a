use std::fs;
use std::path::PathBuf;

use super::*;
use crate::config::{AppendFsync, LogLevel};

fn tmpdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("create temp dir")
}

fn write(dir: &std::path::Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    fs::write(&p, text).expect("write config");
    p
}

fn load_file(text: &str) -> Result<Loaded, ConfigError> {
    let dir = tmpdir();
    let p = write(dir.path(), "rockslot.conf", text);
    load(&ConfigSource {
        file: Some(p),
        overrides: vec![],
    })
}

fn args(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

const SEED: &str = "port 7000
cluster-enabled yes
cluster-config-file nodes.conf
cluster-node-timeout 5000
appendonly yes
requirepass valkey
masterauth valkey
bind 127.0.0.1
dir ./data/7000
appendfsync always
";

#[test]
fn seed_config_loads() {
    let l = load_file(SEED).expect("seed config must load");
    let c = &l.config;
    assert_eq!(c.port, 7000);
    assert!(c.cluster_enabled);
    assert_eq!(c.cluster_config_file, "nodes.conf");
    assert_eq!(c.cluster_node_timeout_ms, 5000);
    assert_eq!(c.requirepass.as_deref(), Some("valkey"));
    assert_eq!(c.masterauth.as_deref(), Some("valkey"));
    assert_eq!(c.bind, ["127.0.0.1"]);
    assert_eq!(c.dir, PathBuf::from("./data/7000"));
    assert_eq!(c.appendfsync, AppendFsync::Always);
    assert_eq!(c.cluster_bus_port(), 17000);
    assert_eq!(
        c.cluster_config_path(),
        PathBuf::from("./data/7000/nodes.conf")
    );
    assert_eq!(l.warnings.len(), 1, "{:?}", l.warnings);
    assert!(
        l.warnings[0].ends_with(":5: 'appendonly' has no effect in rockslot"),
        "{}",
        l.warnings[0]
    );
    assert!(l.path.as_ref().is_some_and(|p| p.is_absolute()));
}

#[test]
fn comments_blank_lines_case_and_later_lines_win() {
    let l =
        load_file("# comment\n\n   \n  # indented comment\nPORT 1\r\nPort 2\nLogLevel WARNING\n")
            .expect("load");
    assert_eq!(l.config.port, 2);
    assert_eq!(l.config.loglevel, LogLevel::Warning);
}

#[test]
fn quoting_in_files() {
    let l = load_file(
        "requirepass \"pa ss\\x21\\\"\"\nmasterauth 'it\\'s'\nlogfile \"\"\nbind 127.0.0.1 \"::1\"\n",
    )
    .expect("load");
    assert_eq!(l.config.requirepass.as_deref(), Some("pa ss!\""));
    assert_eq!(l.config.masterauth.as_deref(), Some("it's"));
    assert_eq!(l.config.logfile, "");
    assert_eq!(l.config.bind, ["127.0.0.1", "::1"]);
}

#[test]
fn errors_name_file_and_line() {
    let dir = tmpdir();
    let p = write(dir.path(), "rockslot.conf", "port 7000\n\n# c\nfoo bar\n");
    let e = load(&ConfigSource {
        file: Some(p.clone()),
        overrides: vec![],
    })
    .expect_err("unknown directive");
    assert_eq!(
        e.to_string(),
        format!(
            "{}:4: Bad directive or wrong number of arguments: 'foo bar'",
            p.display()
        )
    );

    let e = load_file("port 7000\nrequirepass \"abc\n").expect_err("quotes");
    let msg = e.to_string();
    assert!(
        msg.contains(":2: Unbalanced quotes in configuration line: 'requirepass \"abc'"),
        "{msg}"
    );

    let e = load_file("requirepass \"abc\"def\n").expect_err("glued quote");
    assert!(e.to_string().contains("Unbalanced quotes"), "{e}");

    let e = load_file("port 0\n").expect_err("port 0");
    assert!(
        e.to_string()
            .ends_with(":1: argument must be between 1 and 65535 inclusive: 'port 0'"),
        "{e}"
    );
    let e = load_file("cluster-enabled maybe\n").expect_err("bool");
    assert!(
        e.to_string().contains("argument must be 'yes' or 'no'"),
        "{e}"
    );
    let e = load_file("port\n").expect_err("arity");
    assert!(
        e.to_string()
            .contains(":1: wrong number of arguments: 'port'"),
        "{e}"
    );
    let e = load_file("loadmodule /x.so\n").expect_err("unsupported");
    assert!(e.to_string().contains("Bad directive"), "{e}");
}

#[test]
fn missing_file_is_an_open_error() {
    let e = load(&ConfigSource {
        file: Some(PathBuf::from("/nonexistent/rockslot.conf")),
        overrides: vec![],
    })
    .expect_err("missing");
    assert!(
        e.to_string()
            .starts_with("Fatal error, can't open config file '/nonexistent/rockslot.conf'"),
        "{e}"
    );
}

#[test]
fn memory_units_in_files() {
    let l = load_file(
        "proto-max-bulk-len 1gb\nclient-query-buffer-limit 2000m\nrepl-backlog-size 100kb\n\
         storage-block-cache-size 1G\nstorage-write-buffer-size 64MB\n",
    )
    .expect("load");
    assert_eq!(l.config.proto_max_bulk_len, 1 << 30);
    assert_eq!(l.config.client_query_buffer_limit, 2_000_000_000);
    assert_eq!(l.config.repl_backlog_size, 100 * 1024);
    assert_eq!(l.config.storage_block_cache_size, 1_000_000_000);
    assert_eq!(l.config.storage_write_buffer_size, 64 << 20);
    let e = load_file("proto-max-bulk-len 10\n").expect_err("below 1mb");
    assert!(
        e.to_string()
            .contains("argument must be between 1048576 and"),
        "{e}"
    );
    let e = load_file("proto-max-bulk-len lots\n").expect_err("not memory");
    assert!(
        e.to_string().contains("argument must be a memory value"),
        "{e}"
    );
}

#[test]
fn no_effect_directives_warn_and_are_kept() {
    let l = load_file(
        "save 900 1\nsave 300 10\ndaemonize no\nlazyfree-lazy-something yes\n\
         slave-priority 50\nmaxmemory 1gb\ntls-session-cache-size 100\nuser default on nopass\n\
         hash-max-ziplist-entries 256\n",
    )
    .expect("load");
    // The encoding thresholds are typed (OBJECT ENCODING reads them): no warning.
    assert_eq!(l.warnings.len(), 8, "{:?}", l.warnings);
    assert_eq!(l.config.hash_max_listpack_entries, 256);
    assert!(l.warnings[0].ends_with(":1: 'save' has no effect in rockslot"));
    assert!(l.warnings[4].ends_with(":5: 'slave-priority' has no effect in rockslot"));
    let e = &l.extras;
    assert_eq!(e.get("save", None).as_deref(), Some("900 1 300 10"));
    assert_eq!(e.get("replica-priority", None).as_deref(), Some("50"));
    assert_eq!(e.get("maxmemory", None).as_deref(), Some("1073741824"));
    assert_eq!(
        e.get("lazyfree-lazy-something", None).as_deref(),
        Some("yes")
    );
    assert_eq!(e.get("user", None).as_deref(), Some("default on nopass"));
    let e = load_file("appendonly maybe\n").expect_err("bool still validated");
    assert!(
        e.to_string().contains("argument must be 'yes' or 'no'"),
        "{e}"
    );
    let l = load_file("save \"\"\n").expect("save off");
    assert_eq!(l.extras.get("save", None).as_deref(), Some(""));
}

#[test]
fn include_is_relative_to_including_file() {
    let dir = tmpdir();
    fs::create_dir_all(dir.path().join("sub")).expect("mkdir");
    write(
        dir.path(),
        "sub/common.conf",
        "port 7001\ninclude more.conf\n",
    );
    write(dir.path(), "sub/more.conf", "timeout 9\n");
    let main = write(
        dir.path(),
        "main.conf",
        "include sub/common.conf\nport 7002\n",
    );
    let l = load(&ConfigSource {
        file: Some(main),
        overrides: vec![],
    })
    .expect("load");
    assert_eq!(l.config.port, 7002, "later line overrides the include");
    assert_eq!(l.config.timeout_secs, 9);
}

#[test]
fn include_errors() {
    let dir = tmpdir();
    write(dir.path(), "a.conf", "include b.conf\n");
    let b = write(dir.path(), "b.conf", "# b\ninclude a.conf\n");
    let e = load(&ConfigSource {
        file: Some(dir.path().join("a.conf")),
        overrides: vec![],
    })
    .expect_err("loop");
    let msg = e.to_string();
    assert!(
        msg.starts_with(&format!("{}:2: include loop", b.display())),
        "{msg}"
    );

    write(dir.path(), "bad.conf", "port 1\nnonsense 1\n");
    let main = write(dir.path(), "main.conf", "include bad.conf\n");
    let e = load(&ConfigSource {
        file: Some(main),
        overrides: vec![],
    })
    .expect_err("inner error");
    assert!(e.to_string().contains("bad.conf:2: Bad directive"), "{e}");

    let main = write(dir.path(), "m2.conf", "include missing.conf\n");
    let e = load(&ConfigSource {
        file: Some(main),
        overrides: vec![],
    })
    .expect_err("missing include");
    assert!(
        e.to_string()
            .contains("m2.conf:1: Fatal error, can't open config file"),
        "{e}"
    );

    // A deep but finite chain is refused too.
    for i in 0..12 {
        write(
            dir.path(),
            &format!("d{i}.conf"),
            &format!("include d{}.conf\n", i + 1),
        );
    }
    write(dir.path(), "d12.conf", "port 1\n");
    let e = load(&ConfigSource {
        file: Some(dir.path().join("d0.conf")),
        overrides: vec![],
    })
    .expect_err("too deep");
    assert!(
        e.to_string().contains("include nesting is deeper than 10"),
        "{e}"
    );
}

#[test]
fn parse_args_splits_file_and_overrides() {
    let s = parse_args(&args(&[
        "/etc/x.conf",
        "--port",
        "7000",
        "--bind",
        "a",
        "b",
    ]))
    .expect("ok");
    assert_eq!(s.file, Some(PathBuf::from("/etc/x.conf")));
    assert_eq!(
        s.overrides,
        vec![args(&["port", "7000"]), args(&["bind", "a", "b"])]
    );

    let s = parse_args(&args(&["--requirepass", "--weird", "--port", "1"])).expect("ok");
    assert_eq!(s.file, None);
    assert_eq!(
        s.overrides,
        vec![args(&["requirepass", "--weird"]), args(&["port", "1"])]
    );

    let s = parse_args(&args(&["--save", "--port", "1", "--save"])).expect("ok");
    assert_eq!(
        s.overrides,
        vec![
            args(&["save", ""]),
            args(&["port", "1"]),
            args(&["save", ""])
        ]
    );

    let s = parse_args(&args(&["--port 7000", "--replicaof", "h", "1"])).expect("ok");
    assert_eq!(
        s.overrides,
        vec![args(&["port", "7000"]), args(&["replicaof", "h", "1"])]
    );

    assert!(parse_args(&args(&["a.conf", "b.conf"])).is_err());
    assert!(parse_args(&args(&["-"])).is_err());
    assert_eq!(parse_args(&[]).expect("empty"), ConfigSource::default());
}

#[test]
fn overrides_apply_after_file_and_name_command_line() {
    let dir = tmpdir();
    let p = write(dir.path(), "x.conf", "port 7000\nappendfsync always\n");
    let mut src = parse_args(&args(&["--port", "7005", "--loglevel", "debug"])).expect("ok");
    src.file = Some(p);
    let l = load(&src).expect("load");
    assert_eq!(l.config.port, 7005);
    assert_eq!(l.config.appendfsync, AppendFsync::Always);
    assert_eq!(l.config.loglevel, LogLevel::Debug);

    let src = parse_args(&args(&["--port", "99999"])).expect("ok");
    let e = load(&src).expect_err("range");
    assert_eq!(
        e.to_string(),
        "command line: argument must be between 1 and 65535 inclusive: 'port 99999'"
    );
    let src = parse_args(&args(&["--bogus", "1"])).expect("ok");
    assert_eq!(
        load(&src).expect_err("unknown").to_string(),
        "command line: Bad directive or wrong number of arguments: 'bogus 1'"
    );
    let src = parse_args(&args(&["--appendonly", "yes"])).expect("ok");
    let l = load(&src).expect("load");
    assert_eq!(
        l.warnings,
        ["command line: 'appendonly' has no effect in rockslot"]
    );
}

#[test]
fn cross_validation_runs_after_everything() {
    let e = load_file("cluster-enabled yes\nrequirepass s\nport 60000\n")
        .expect_err("bus port overflow");
    assert!(matches!(e, ConfigError::Invalid(_)), "{e}");
    load_file("cluster-enabled yes\nrequirepass s\nport 60000\ncluster-port 7001\n")
        .expect("explicit bus port");
    let e = load_file("cluster-enabled yes\n").expect_err("no secret");
    assert!(
        e.to_string()
            .contains("needs a secret for the cluster port"),
        "{e}"
    );
}
