//! TLS contexts built from the `tls-*` directives: the server side of the TLS client port and
//! of the cluster port, and the client side this node uses to call its peers.
//!
//! Owns: reading the PEM files, client-certificate policy (`tls-auth-clients`), and peer
//! verification. As Valkey does with OpenSSL, a peer's certificate must chain to
//! `tls-ca-cert-file` but need not name the address it was reached at (nodes are dialled by IP,
//! and cluster certificates rarely carry IP names).
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

static INSTALLED: std::sync::OnceLock<TlsContexts> = std::sync::OnceLock::new();

/// Makes `ctx` the process's TLS contexts (one node runs per process); the listeners and the
/// peer clients read them through [`installed`]. A second call is ignored.
pub fn install(ctx: TlsContexts) {
    let _ = INSTALLED.set(ctx);
}

/// The contexts [`install`]ed, if the node speaks TLS.
pub fn installed() -> Option<&'static TlsContexts> {
    INSTALLED.get()
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
/// post-quantum key exchange, which Valkey's OpenSSL builds do not offer either.)
#[allow(deprecated)]
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
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

fn key(path: &str) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| TlsError::File {
        what: "tls-key-file",
        path: path.to_string(),
        reason: e.to_string(),
    })
}

fn roots(path: &str) -> Result<Arc<RootCertStore>, TlsError> {
    let mut store = RootCertStore::empty();
    for c in certs("tls-ca-cert-file", path)? {
        store.add(c).map_err(|e| TlsError::File {
            what: "tls-ca-cert-file",
            path: path.to_string(),
            reason: e.to_string(),
        })?;
    }
    Ok(Arc::new(store))
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
    let ca =
        match &c.ca_cert_file {
            Some(p) => Some(roots(p)?),
            None if needs_ca => return Err(TlsError::Config(
                "Either tls-ca-cert-file or tls-ca-cert-dir must be specified when tls-cluster, \
                 tls-replication or tls-auth-clients are enabled!"
                    .into(),
            )),
            None => None,
        };
    let chain = certs("tls-cert-file", cert_file)?;
    let server_key = key(key_file)?;
    let builder = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
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
    let server = builder
        .with_single_cert(chain.clone(), server_key.clone_key())
        .map_err(|e| TlsError::Config(format!("tls-cert-file and tls-key-file: {e}")))?;
    let peer_server = match &ca {
        Some(ca) if c.on_cluster_port() => {
            let mut peer = ServerConfig::builder_with_provider(provider())
                .with_safe_default_protocol_versions()
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
        (Some(cf), Some(kf)) => (certs("tls-client-cert-file", cf)?, key(kf)?),
        _ => (chain, server_key),
    };
    let client = match ca {
        Some(ca) => {
            let mut client = ClientConfig::builder_with_provider(provider())
                .with_safe_default_protocol_versions()
                .map_err(|e| TlsError::Config(e.to_string()))?
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(PeerVerifier::new(ca)?))
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
    fn new(roots: Arc<RootCertStore>) -> Result<PeerVerifier, TlsError> {
        let inner = rustls::client::WebPkiServerVerifier::builder_with_provider(roots, provider())
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
