//! TLS contexts built from the `tls-*` directives: the server side of the TLS client port and
//! of the cluster port, and the client side this node uses to call its peers.
//!
//! Owns: reading the PEM files, client-certificate policy (`tls-auth-clients`), and peer
//! verification, protocol versions and cipher suites (`tls-protocols`, `tls-ciphers`,
//! `tls-ciphersuites`, `tls-prefer-server-ciphers`), and replacing the contexts when CONFIG
//! SET changes them (new handshakes use the new files; established connections keep theirs).
//! As Valkey does with OpenSSL, a peer's certificate must chain to `tls-ca-cert-file` (or a
//! certificate in `tls-ca-cert-dir`) but need not name the address it was reached at (nodes
//! are dialled by IP, and cluster certificates rarely carry IP names).
//! Must not: open sockets or hold connections; callers wrap their own streams.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig,
    SignatureScheme,
};

use crate::config::{TlsAuthClients, TlsConfig};

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{0}")]
    Config(String),
    #[error("{what} {path}: {reason}")]
    File {
        what: &'static str,
        path: String,
        reason: String,
    },
}

static INSTALLED: std::sync::OnceLock<parking_lot::RwLock<Arc<TlsContexts>>> =
    std::sync::OnceLock::new();

/// Makes `ctx` the process's TLS contexts (one node runs per process); the listeners and the
/// peer clients read them through [`installed`] at each handshake. A second call is ignored.
pub fn install(ctx: TlsContexts) {
    let _ = INSTALLED.set(parking_lot::RwLock::new(Arc::new(ctx)));
}

/// The contexts in use, if the node speaks TLS.
pub fn installed() -> Option<Arc<TlsContexts>> {
    INSTALLED.get().map(|c| Arc::clone(&c.read()))
}

/// CONFIG SET of a `tls-*` directive: builds the contexts `c` asks for and, when they build,
/// uses them from the next handshake on. Which ports speak TLS is fixed at start.
pub fn reload(c: &TlsConfig) -> Result<(), TlsError> {
    let Some(slot) = INSTALLED.get() else {
        return Ok(());
    };
    if let Some(ctx) = load(c)? {
        *slot.write() = Arc::new(ctx);
    }
    Ok(())
}

/// The connector for a node's client port under `tls-cluster` (MIGRATE dials its target
/// over TLS then, as Valkey's does); `None` when `tls-cluster` is off.
pub fn cluster_connector() -> Option<tokio_rustls::TlsConnector> {
    installed()
        .filter(|t| t.cluster)
        .and_then(|t| t.client.clone())
        .map(tokio_rustls::TlsConnector::from)
}

/// What a TLS-speaking node accepts and presents.
pub struct TlsContexts {
    /// For the TLS client port (`tls-auth-clients` applies).
    pub server: Arc<ServerConfig>,
    /// For the cluster port when it speaks TLS (`tls-cluster` or `tls-replication`; `None`
    /// otherwise): a peer must always present a certificate the CA signed, whatever
    /// `tls-auth-clients` says.
    pub peer_server: Option<Arc<ServerConfig>>,
    /// For calls to peers (cluster port, MIGRATE); needs the CA, so `None` without one
    /// (then no peer is called over TLS: `tls-cluster`/`tls-replication` require a CA).
    pub client: Option<Arc<ClientConfig>>,
    /// `tls-cluster`: MIGRATE also dials its target's client port over TLS, as Valkey's does.
    pub cluster: bool,
}

/// ring, not aws-lc-rs: it builds without cmake. (Deprecated upstream for its lack of
/// post-quantum key exchange, which Valkey's OpenSSL builds do not offer either.) The cipher
/// suites are those `tls-ciphers` (TLS 1.2, OpenSSL's names) and `tls-ciphersuites` (TLS
/// 1.3) name; OpenSSL keywords (`HIGH`, `DEFAULT`, `!aNULL`) keep rustls's safe defaults.
#[allow(deprecated)]
fn provider(c: &TlsConfig) -> Result<Arc<CryptoProvider>, TlsError> {
    let mut p = rustls::crypto::ring::default_provider();
    let wanted = |list: &Option<String>, what: &str| -> Result<Option<Vec<String>>, TlsError> {
        let Some(list) = list.as_deref().filter(|l| !l.trim().is_empty()) else {
            return Ok(None);
        };
        let names: Vec<String> = list
            .split([':', ',', ' '])
            .filter(|t| !t.is_empty() && !t.starts_with(['!', '-', '+', '@']))
            .filter(|t| t.contains(['-', '_']))
            .map(rustls_suite_name)
            .collect();
        if names.is_empty() {
            return Ok(None);
        }
        let known = p
            .cipher_suites
            .iter()
            .any(|s| names.contains(&format!("{:?}", s.suite())));
        if !known {
            return Err(TlsError::Config(format!(
                "{what}: none of '{list}' is a cipher suite this build offers"
            )));
        }
        Ok(Some(names))
    };
    let tls12 = wanted(&c.ciphers, "tls-ciphers")?;
    let tls13 = wanted(&c.ciphersuites, "tls-ciphersuites")?;
    p.cipher_suites.retain(|s| {
        let name = format!("{:?}", s.suite());
        let list = match s.version().version {
            rustls::ProtocolVersion::TLSv1_3 => &tls13,
            _ => &tls12,
        };
        list.as_ref().is_none_or(|l| l.contains(&name))
    });
    Ok(Arc::new(p))
}

/// rustls's name for a suite named as OpenSSL names it (`ECDHE-RSA-AES256-GCM-SHA384`,
/// `TLS_AES_128_GCM_SHA256`); other spellings pass through.
fn rustls_suite_name(openssl: &str) -> String {
    if let Some(rest) = openssl.strip_prefix("TLS_") {
        if !rest.contains("_WITH_") {
            return format!("TLS13_{rest}");
        }
        return openssl.to_string();
    }
    let parts: Vec<&str> = openssl.split('-').collect();
    match parts.as_slice() {
        ["ECDHE", auth, "AES128", "GCM", "SHA256"] => {
            format!("TLS_ECDHE_{auth}_WITH_AES_128_GCM_SHA256")
        }
        ["ECDHE", auth, "AES256", "GCM", "SHA384"] => {
            format!("TLS_ECDHE_{auth}_WITH_AES_256_GCM_SHA384")
        }
        ["ECDHE", auth, "CHACHA20", "POLY1305"] => {
            format!("TLS_ECDHE_{auth}_WITH_CHACHA20_POLY1305_SHA256")
        }
        _ => openssl.to_string(),
    }
}

/// The protocol versions `tls-protocols` allows (unset: TLS 1.2 and 1.3).
fn versions(c: &TlsConfig) -> Result<Vec<&'static rustls::SupportedProtocolVersion>, TlsError> {
    let Some(list) = c.protocols.as_deref().filter(|l| !l.trim().is_empty()) else {
        return Ok(rustls::DEFAULT_VERSIONS.to_vec());
    };
    let mut out = Vec::new();
    for v in list.split_whitespace() {
        match v.to_ascii_lowercase().as_str() {
            "tlsv1.2" => out.push(&rustls::version::TLS12),
            "tlsv1.3" => out.push(&rustls::version::TLS13),
            "tlsv1" | "tlsv1.1" => {
                return Err(TlsError::Config(format!(
                    "tls-protocols: {v} is not offered (TLSv1.2 and TLSv1.3 are)"
                )))
            }
            _ => {
                return Err(TlsError::Config(
                    "Invalid tls-protocols specified. Use a combination of 'TLSv1', 'TLSv1.1', \
                     'TLSv1.2' and 'TLSv1.3'."
                        .into(),
                ))
            }
        }
    }
    Ok(out)
}

fn certs(what: &'static str, path: &str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let err = |reason: String| TlsError::File {
        what,
        path: path.to_string(),
        reason,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| err(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| err(e.to_string()))?;
    if certs.is_empty() {
        return Err(err("no certificate in the file".into()));
    }
    Ok(certs)
}

/// A private key from a PEM file; an encrypted PKCS#8 key (what OpenSSL 3 writes with a
/// passphrase) is decrypted with `pass` (`tls-key-file-pass`, `tls-client-key-file-pass`).
fn key(
    what: &'static str,
    path: &str,
    pass: Option<&str>,
) -> Result<PrivateKeyDer<'static>, TlsError> {
    let err = |reason: String| TlsError::File {
        what,
        path: path.to_string(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
    if !text.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----") {
        return PrivateKeyDer::from_pem_slice(text.as_bytes()).map_err(|e| err(e.to_string()));
    }
    let Some(pass) = pass.filter(|p| !p.is_empty()) else {
        return Err(err(format!(
            "the key is encrypted: set {what}-pass to its passphrase"
        )));
    };
    let pem = &text[text
        .find("-----BEGIN ENCRYPTED PRIVATE KEY-----")
        .unwrap_or(0)..];
    let (_, doc) = pkcs8::der::Document::from_pem(pem).map_err(|e| err(e.to_string()))?;
    let info =
        pkcs8::EncryptedPrivateKeyInfo::try_from(doc.as_bytes()).map_err(|e| err(e.to_string()))?;
    let plain = info
        .decrypt(pass)
        .map_err(|_| err(format!("cannot decrypt the key with {what}-pass")))?;
    Ok(PrivateKeyDer::Pkcs8(plain.as_bytes().to_vec().into()))
}

/// The CAs of `tls-ca-cert-file` and of every PEM file in `tls-ca-cert-dir`; `None` when
/// neither is set.
fn roots(c: &TlsConfig) -> Result<Option<Arc<RootCertStore>>, TlsError> {
    if c.ca_cert_file.is_none() && c.ca_cert_dir.is_none() {
        return Ok(None);
    }
    let mut store = RootCertStore::empty();
    let mut add = |what: &'static str, path: &str| -> Result<(), TlsError> {
        for cert in certs(what, path)? {
            store.add(cert).map_err(|e| TlsError::File {
                what,
                path: path.to_string(),
                reason: e.to_string(),
            })?;
        }
        Ok(())
    };
    if let Some(f) = &c.ca_cert_file {
        add("tls-ca-cert-file", f)?;
    }
    if let Some(dir) = &c.ca_cert_dir {
        let entries = std::fs::read_dir(dir).map_err(|e| TlsError::File {
            what: "tls-ca-cert-dir",
            path: dir.clone(),
            reason: e.to_string(),
        })?;
        let mut found = 0;
        for e in entries.flatten() {
            let path = e.path().to_string_lossy().into_owned();
            // Hash links and the certificates they point to are read alike; files without a
            // certificate (an index, a README) are skipped.
            if e.path().is_file() && certs("tls-ca-cert-dir", &path).is_ok() {
                add("tls-ca-cert-dir", &path)?;
                found += 1;
            }
        }
        if found == 0 {
            return Err(TlsError::File {
                what: "tls-ca-cert-dir",
                path: dir.clone(),
                reason: "no certificate in the directory".into(),
            });
        }
    }
    Ok(Some(Arc::new(store)))
}

/// The contexts `c` asks for; `None` when neither a TLS port nor a TLS cluster port is set.
pub fn load(c: &TlsConfig) -> Result<Option<TlsContexts>, TlsError> {
    if c.port == 0 && !c.on_cluster_port() {
        return Ok(None);
    }
    let (Some(cert_file), Some(key_file)) = (&c.cert_file, &c.key_file) else {
        return Err(TlsError::Config(
            "TLS needs tls-cert-file and tls-key-file".into(),
        ));
    };
    let needs_ca = c.on_cluster_port() || c.auth_clients != TlsAuthClients::No;
    let provider = provider(c)?;
    let versions = versions(c)?;
    let provider = || Arc::clone(&provider);
    let ca =
        match roots(c)? {
            Some(r) => Some(r),
            None if needs_ca => return Err(TlsError::Config(
                "Either tls-ca-cert-file or tls-ca-cert-dir must be specified when tls-cluster, \
                 tls-replication or tls-auth-clients are enabled!"
                    .into(),
            )),
            None => None,
        };
    let chain = certs("tls-cert-file", cert_file)?;
    let server_key = key("tls-key-file", key_file, c.key_file_pass.as_deref())?;
    let builder = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&versions)
        .map_err(|e| TlsError::Config(e.to_string()))?;
    let builder = match (&ca, c.auth_clients) {
        (Some(ca), TlsAuthClients::Yes) => builder.with_client_cert_verifier(
            WebPkiClientVerifier::builder_with_provider(Arc::clone(ca), provider())
                .build()
                .map_err(|e| TlsError::Config(e.to_string()))?,
        ),
        (Some(ca), TlsAuthClients::Optional) => builder.with_client_cert_verifier(
            WebPkiClientVerifier::builder_with_provider(Arc::clone(ca), provider())
                .allow_unauthenticated()
                .build()
                .map_err(|e| TlsError::Config(e.to_string()))?,
        ),
        _ => builder.with_no_client_auth(),
    };
    let mut server = builder
        .with_single_cert(chain.clone(), server_key.clone_key())
        .map_err(|e| TlsError::Config(format!("tls-cert-file and tls-key-file: {e}")))?;
    server.ignore_client_order = c.prefer_server_ciphers;
    let peer_server = match &ca {
        Some(ca) if c.on_cluster_port() => {
            let mut peer = ServerConfig::builder_with_provider(provider())
                .with_protocol_versions(&versions)
                .map_err(|e| TlsError::Config(e.to_string()))?
                .with_client_cert_verifier(
                    WebPkiClientVerifier::builder_with_provider(Arc::clone(ca), provider())
                        .build()
                        .map_err(|e| TlsError::Config(e.to_string()))?,
                )
                .with_single_cert(chain.clone(), server_key.clone_key())
                .map_err(|e| TlsError::Config(format!("tls-cert-file and tls-key-file: {e}")))?;
            // gRPC speaks HTTP/2.
            peer.alpn_protocols = vec![b"h2".to_vec()];
            Some(Arc::new(peer))
        }
        _ => None,
    };

    let (client_chain, client_key) = match (&c.client_cert_file, &c.client_key_file) {
        (Some(cf), Some(kf)) => (
            certs("tls-client-cert-file", cf)?,
            key("tls-client-key-file", kf, c.client_key_file_pass.as_deref())?,
        ),
        _ => (chain, server_key),
    };
    let client = match ca {
        Some(ca) => {
            let mut client = ClientConfig::builder_with_provider(provider())
                .with_protocol_versions(&versions)
                .map_err(|e| TlsError::Config(e.to_string()))?
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(PeerVerifier::new(ca, provider())?))
                .with_client_auth_cert(client_chain, client_key)
                .map_err(|e| TlsError::Config(format!("the client certificate: {e}")))?;
            client.alpn_protocols = vec![b"h2".to_vec()];
            Some(Arc::new(client))
        }
        None => None,
    };
    Ok(Some(TlsContexts {
        server: Arc::new(server),
        peer_server,
        client,
        cluster: c.cluster,
    }))
}

/// Verifies a peer's chain against the CA, accepting any name on it (see the module doc).
#[derive(Debug)]
struct PeerVerifier {
    inner: Arc<rustls::client::WebPkiServerVerifier>,
}

impl PeerVerifier {
    fn new(
        roots: Arc<RootCertStore>,
        provider: Arc<CryptoProvider>,
    ) -> Result<PeerVerifier, TlsError> {
        let inner = rustls::client::WebPkiServerVerifier::builder_with_provider(roots, provider)
            .build()
            .map_err(|e| TlsError::Config(format!("tls-ca-cert-file: {e}")))?;
        Ok(PeerVerifier { inner })
    }
}

impl ServerCertVerifier for PeerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            r => r,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// The name a peer dialled at `ip` is verified under (any name passes, see the module doc).
pub fn peer_server_name(ip: &str) -> ServerName<'static> {
    match ip.parse::<std::net::IpAddr>() {
        Ok(a) => ServerName::IpAddress(a.into()),
        Err(_) => ServerName::try_from(ip.to_string())
            .unwrap_or_else(|_| ServerName::IpAddress(std::net::Ipv4Addr::LOCALHOST.into())),
    }
}
