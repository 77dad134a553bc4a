//! The typed `tls-*` directives (Valkey's names and messages). The files they name are read
//! when the node starts (`server::tls`), not here; the other `tls-*` directives Valkey has
//! (ciphers, protocols, session cache) are accepted without effect through the `tls-*` family.

use super::lex::{non_empty, one, parse_bool, parse_bounded, repr, yes_no};
use super::schema::Spec;
use super::TlsAuthClients;

macro_rules! tls_file_spec {
    ($name:literal, $field:ident) => {
        Spec {
            name: $name,
            aliases: &[],
            mutable: false,
            apply: |c, a| {
                c.tls.$field = non_empty(one(a)?);
                Ok(())
            },
            get: |c| c.tls.$field.clone().unwrap_or_default(),
            rewrite: |c| vec![repr(c.tls.$field.as_deref().unwrap_or(""))],
        }
    };
}

macro_rules! tls_bool_spec {
    ($name:literal, $field:ident) => {
        Spec {
            name: $name,
            aliases: &[],
            mutable: false,
            apply: |c, a| {
                c.tls.$field = parse_bool(one(a)?)?;
                Ok(())
            },
            get: |c| yes_no(c.tls.$field),
            rewrite: |c| vec![yes_no(c.tls.$field)],
        }
    };
}

pub(crate) static TLS_SPECS: &[Spec] = &[
    Spec {
        name: "tls-port",
        aliases: &[],
        mutable: false,
        apply: |c, a| {
            c.tls.port = parse_bounded(one(a)?, false, 0, 65535)? as u16;
            Ok(())
        },
        get: |c| c.tls.port.to_string(),
        rewrite: |c| vec![c.tls.port.to_string()],
    },
    tls_file_spec!("tls-cert-file", cert_file),
    tls_file_spec!("tls-key-file", key_file),
    tls_file_spec!("tls-client-cert-file", client_cert_file),
    tls_file_spec!("tls-client-key-file", client_key_file),
    tls_file_spec!("tls-ca-cert-file", ca_cert_file),
    Spec {
        name: "tls-auth-clients",
        aliases: &[],
        mutable: false,
        apply: |c, a| {
            c.tls.auth_clients = TlsAuthClients::from_name(one(a)?).ok_or_else(|| {
                format!(
                    "argument(s) must be one of the following: {}",
                    TlsAuthClients::NAMES.join(", ")
                )
            })?;
            Ok(())
        },
        get: |c| c.tls.auth_clients.as_str().to_string(),
        rewrite: |c| vec![c.tls.auth_clients.as_str().to_string()],
    },
    tls_bool_spec!("tls-replication", replication),
    tls_bool_spec!("tls-cluster", cluster),
];
