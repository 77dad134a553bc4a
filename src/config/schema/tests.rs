//! The typed directives: parsing, Valkey's messages, and rewrite round trips.

use super::*;

fn apply(name: &str, args: &[&str]) -> Result<Config, String> {
    let Some(Target::Typed(spec)) = lookup(name) else {
        return Err(format!("not typed: {name}"));
    };
    let mut c = Config::default();
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    (spec.apply)(&mut c, &args)?;
    Ok(c)
}

#[test]
fn names_are_unique() {
    let mut seen = std::collections::HashSet::new();
    for s in specs() {
        for n in std::iter::once(&s.name).chain(s.aliases) {
            assert!(seen.insert(*n), "duplicate {n}");
        }
    }
    for s in NO_EFFECT {
        for n in std::iter::once(&s.name).chain(s.aliases) {
            assert!(seen.insert(*n), "duplicate {n}");
        }
    }
}

#[test]
fn default_renders_round_trip() {
    // Every rewrite line must load back to the same value.
    let def = Config::default();
    for s in specs() {
        for tail in (s.rewrite)(&def) {
            let line = format!("{} {}", s.name, tail);
            let args = super::super::lex::split_args(line.as_bytes()).unwrap_or_default();
            let args: Vec<String> = args
                .into_iter()
                .skip(1)
                .map(|a| String::from_utf8_lossy(&a).into_owned())
                .collect();
            let mut c = Config::default();
            (s.apply)(&mut c, &args).unwrap_or_else(|e| panic!("{line}: {e}"));
            assert_eq!((s.get)(&c), (s.get)(&def), "{line}");
        }
    }
}

#[test]
fn typed_validation_messages() {
    assert_eq!(
        apply("port", &["0"]).unwrap_err(),
        "argument must be between 1 and 65535 inclusive"
    );
    assert_eq!(
        apply("port", &["70000"]).unwrap_err(),
        "argument must be between 1 and 65535 inclusive"
    );
    assert_eq!(apply("port", &["1", "2"]).unwrap_err(), WRONG_ARGS);
    assert_eq!(
        apply("cluster-enabled", &["true"]).unwrap_err(),
        "argument must be 'yes' or 'no'"
    );
    assert_eq!(
        apply("appendfsync", &["sometimes"]).unwrap_err(),
        "argument(s) must be one of the following: always, everysec, no"
    );
    assert_eq!(
        apply("appendfsync", &["ALWAYS"]).unwrap().appendfsync,
        AppendFsync::Always
    );
    assert_eq!(
        apply("proto-max-bulk-len", &["1000"]).unwrap_err(),
        "argument must be between 1048576 and 9223372036854775807 inclusive"
    );
    assert_eq!(
        apply("proto-max-bulk-len", &["2mb"])
            .unwrap()
            .proto_max_bulk_len,
        2 * MB
    );
    assert_eq!(apply("hz", &["1000"]).unwrap().hz, 500);
    assert_eq!(apply("hz", &["0"]).unwrap().hz, 1);
    assert!(apply("storage-slots-per-family", &["100"]).is_err());
    assert!(apply("storage-slots-per-family", &["8"]).is_err());
    assert!(apply("storage-slots-per-family", &["32768"]).is_err());
    assert_eq!(
        apply("storage-slots-per-family", &["1024"])
            .unwrap()
            .storage_slots_per_family,
        1024
    );
    assert_eq!(apply("requirepass", &[""]).unwrap().requirepass, None);
    assert_eq!(
        apply("tls-auth-clients", &["OPTIONAL"])
            .unwrap()
            .tls
            .auth_clients,
        super::super::TlsAuthClients::Optional
    );
    assert_eq!(
        apply("tls-port", &["70000"]).unwrap_err(),
        "argument must be between 0 and 65535 inclusive"
    );
    assert!(apply("tls-cluster", &["yes"])
        .unwrap()
        .tls
        .on_cluster_port());
    assert_eq!(apply("tls-cert-file", &[""]).unwrap().tls.cert_file, None);
    assert_eq!(
        apply("slaveof", &["10.0.0.1", "6380"]).unwrap().replicaof,
        Some(("10.0.0.1".to_string(), 6380))
    );
    assert_eq!(apply("replicaof", &["no", "one"]).unwrap().replicaof, None);
    assert_eq!(
        apply("replicaof", &["h", "x"]).unwrap_err(),
        "Invalid master port"
    );
    assert_eq!(
        apply("bind", &["127.0.0.1", "-::1"]).unwrap().bind,
        ["127.0.0.1", "-::1"]
    );
}

#[test]
fn lookup_precedence() {
    assert!(matches!(
        lookup("repl-backlog-size"),
        Some(Target::Typed(_))
    ));
    assert!(matches!(lookup("repl-timeout"), Some(Target::NoEffect(_))));
    assert!(matches!(lookup("repl-something-new"), Some(Target::Family)));
    assert!(matches!(
        lookup("cluster-announce-ip"),
        Some(Target::Typed(_))
    ));
    assert!(matches!(
        lookup("cluster-announce-foo"),
        Some(Target::Family)
    ));
    assert!(matches!(
        lookup("foo-max-bar-entries"),
        Some(Target::Family)
    ));
    assert!(lookup("loadmodule").is_none());
    assert!(lookup("foo").is_none());
}
