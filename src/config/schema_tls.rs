//! The typed `tls-*` directives (Valkey's names and messages). The files they name are read
//! when the node starts and again on CONFIG SET (`crate::tls`), not here; the other `tls-*`
//! directives Valkey has (session cache, DH params) are accepted without effect through the
//! `tls-*` family.

use super::lex::{format_memory, non_empty, one, parse_bool, parse_bounded, repr, yes_no};
use super::schema::{bool_spec, enum_err, num_spec, opt_str_spec, Spec};
use super::TlsAuthClients;

pub(crate) static TLS_SPECS: &[Spec] = &[
    num_spec!("tls-port", tls.port, u16, 0, 65535, false, false, []),
    opt_str_spec!("tls-cert-file", tls.cert_file, true),
    opt_str_spec!("tls-key-file", tls.key_file, true),
    opt_str_spec!("tls-client-cert-file", tls.client_cert_file, true),
    opt_str_spec!("tls-client-key-file", tls.client_key_file, true),
    opt_str_spec!("tls-ca-cert-file", tls.ca_cert_file, true),
    opt_str_spec!("tls-key-file-pass", tls.key_file_pass, true),
    opt_str_spec!("tls-client-key-file-pass", tls.client_key_file_pass, true),
    opt_str_spec!("tls-ca-cert-dir", tls.ca_cert_dir, true),
    opt_str_spec!("tls-protocols", tls.protocols, true),
    opt_str_spec!("tls-ciphers", tls.ciphers, true),
    opt_str_spec!("tls-ciphersuites", tls.ciphersuites, true),
    bool_spec!(
        "tls-prefer-server-ciphers",
        tls.prefer_server_ciphers,
        true,
        []
    ),
    Spec {
        name: "tls-auth-clients",
        aliases: &[],
        mutable: true,
        apply: |c, a| {
            c.tls.auth_clients = TlsAuthClients::from_name(one(a)?)
                .ok_or_else(|| enum_err(TlsAuthClients::NAMES))?;
            Ok(())
        },
        get: |c| c.tls.auth_clients.as_str().to_string(),
        rewrite: |c| vec![c.tls.auth_clients.as_str().to_string()],
    },
    bool_spec!("tls-replication", tls.replication, false, []),
    bool_spec!("tls-cluster", tls.cluster, false, []),
];
