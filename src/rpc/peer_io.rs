//! The cluster port's connections over TLS (`tls-cluster`/`tls-replication`): the listener's
//! handshakes and the connector peers are called through. Plain TCP needs neither.
//!
//! Owns: TLS handshakes on the cluster port, both directions. Must not: know any service.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tonic::transport::server::{Connected, TcpConnectInfo};
use tonic::transport::{Channel, Endpoint};

/// How long a peer has to finish its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// An accepted TLS connection that tells tonic its TCP addresses (for `remote_addr`).
pub(crate) struct PeerStream {
    inner: tokio_rustls::server::TlsStream<TcpStream>,
    info: TcpConnectInfo,
}

impl Connected for PeerStream {
    type ConnectInfo = TcpConnectInfo;
    fn connect_info(&self) -> TcpConnectInfo {
        self.info.clone()
    }
}

impl AsyncRead for PeerStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for PeerStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// TLS connections accepted on `listener`, handshakes done apart so a slow or silent caller
/// holds up nobody. Accepting stops when the stream is dropped.
pub(crate) fn tls_incoming(
    listener: TcpListener,
) -> tokio_stream::wrappers::ReceiverStream<std::io::Result<PeerStream>> {
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                a = listener.accept() => a,
                _ = tx.closed() => return,
            };
            let (tcp, addr) = match accepted {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!("cluster port accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::debug!("TCP_NODELAY on a cluster-port connection: {e}");
            }
            let info = TcpConnectInfo {
                local_addr: tcp.local_addr().ok(),
                remote_addr: Some(addr),
            };
            // The contexts in force now: CONFIG SET may have replaced the certificates.
            let Some(config) = crate::tls::installed().and_then(|t| t.peer_server.clone()) else {
                continue;
            };
            let acceptor = tokio_rustls::TlsAcceptor::from(config);
            let tx = tx.clone();
            tokio::spawn(async move {
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                    Ok(Ok(inner)) => {
                        let _ = tx.send(Ok(PeerStream { inner, info })).await;
                    }
                    Ok(Err(e)) => {
                        tracing::warn!("TLS handshake on the cluster port from {addr}: {e}")
                    }
                    Err(_) => {
                        tracing::warn!("TLS handshake on the cluster port from {addr} timed out")
                    }
                }
            });
        }
    });
    tokio_stream::wrappers::ReceiverStream::new(rx)
}

type Connecting = Pin<
    Box<
        dyn std::future::Future<
                Output = std::io::Result<
                    hyper_util::rt::TokioIo<tokio_rustls::client::TlsStream<TcpStream>>,
                >,
            > + Send,
    >,
>;

/// Dials `uri`'s host and port and completes a TLS handshake with `config`.
fn tls_connector(
    config: Arc<rustls::ClientConfig>,
) -> impl tower::Service<
    tonic::codegen::http::Uri,
    Response = hyper_util::rt::TokioIo<tokio_rustls::client::TlsStream<TcpStream>>,
    Error = std::io::Error,
    Future = Connecting,
> + Clone
       + Send
       + 'static {
    tower::service_fn(move |uri: tonic::codegen::http::Uri| -> Connecting {
        let config = Arc::clone(&config);
        Box::pin(async move {
            let bad = || std::io::Error::new(std::io::ErrorKind::InvalidInput, uri.to_string());
            let host = uri.host().ok_or_else(bad)?;
            let host = host.trim_start_matches('[').trim_end_matches(']');
            let port = uri.port_u16().ok_or_else(bad)?;
            let tcp = TcpStream::connect((host, port)).await?;
            tcp.set_nodelay(true)?;
            let tls = tokio_rustls::TlsConnector::from(config)
                .connect(crate::tls::peer_server_name(host), tcp)
                .await?;
            Ok(hyper_util::rt::TokioIo::new(tls))
        })
    })
}

/// The TLS client configuration for peers, when the cluster port speaks TLS.
fn peer_tls() -> Option<Arc<rustls::ClientConfig>> {
    crate::tls::installed()
        .filter(|t| t.peer_server.is_some())
        .and_then(|t| t.client.clone())
}

/// A channel that connects on first use, over TLS when the cluster port speaks it.
pub(crate) fn lazy_channel(ep: &Endpoint) -> Channel {
    match peer_tls() {
        Some(c) => ep.connect_with_connector_lazy(tls_connector(c)),
        None => ep.connect_lazy(),
    }
}

/// A connected channel, over TLS when the cluster port speaks it.
pub(crate) async fn connect_channel(ep: &Endpoint) -> Result<Channel, tonic::transport::Error> {
    match peer_tls() {
        Some(c) => ep.connect_with_connector(tls_connector(c)).await,
        None => ep.connect().await,
    }
}
