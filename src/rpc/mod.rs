//! gRPC services on the cluster port. Generated protobuf types stay in this module: they are
//! validated into domain types at the edge, and nothing outside sees them.
//!
//! Owns: the ClusterBus, Replication and Migration servers and clients, peer authentication.
//! Must not: decide cluster state; it hands validated messages to `cluster`.

mod backup;
mod bus;
mod convert;
mod migration;
mod peer_io;
mod replication;

pub use backup::{backup_service, BackupPeer, BackupService};
pub use bus::{bus_service, BusClient, BusServer};
pub use convert::InvalidMessage;
pub use migration::{migration_service, GrpcMigrationPeer, MigrationClients, MigrationService};
pub use replication::{repl_service, ReplClients, ReplService, REPL_AUTH_METADATA};

pub(crate) mod pb {
    tonic::include_proto!("rockslot.cluster");
}

pub(crate) mod repl_pb {
    tonic::include_proto!("rockslot.replication");
}

pub(crate) mod mig_pb {
    tonic::include_proto!("rockslot.migration");
}

/// Metadata key carrying the digest of the shared bus secret.
pub const AUTH_METADATA: &str = "rockslot-bus-auth";

/// The largest message the data services (replication, migration, backup) send or accept.
/// One replicated batch holds a whole pipeline scope or transaction, and a single value may
/// be as large as `proto-max-bulk-len` (512 MB by default); a lower limit made the replica
/// refuse such a batch and the primary re-send it forever. Peers are authenticated.
pub(crate) const MAX_MESSAGE: usize = 1 << 30;

/// A channel to a peer's cluster port, with HTTP/2 windows large enough for bulk streams
/// (full syncs, slot moves, backups).
pub(crate) async fn peer_channel(ip: &str, port: u16) -> Result<tonic::transport::Channel, String> {
    let ep = tonic::transport::Endpoint::from_shared(bus::peer_uri(ip, port))
        .map_err(|e| e.to_string())?
        .connect_timeout(std::time::Duration::from_secs(5))
        .tcp_nodelay(true)
        .http2_keep_alive_interval(std::time::Duration::from_secs(5))
        .initial_stream_window_size(8 << 20)
        .initial_connection_window_size(16 << 20);
    peer_io::connect_channel(&ep)
        .await
        .map_err(|e| format!("connecting to {ip}:{port}: {e}"))
}

/// The metadata key carrying a caller's replaced credential during its grace period.
fn previous_key(key: &str) -> String {
    format!("{key}-previous")
}

/// Accepts a request whose metadata `key` (or `key-previous`) carries a credential `auth`
/// accepts; `what` names the refused request and its credential in the log and the status.
pub(crate) fn check_digest<T>(
    req: &tonic::Request<T>,
    key: &str,
    auth: &crate::cluster::PeerAuth,
    what: &str,
) -> Result<(), tonic::Status> {
    let md = req.metadata();
    let got: Vec<&str> = [md.get(key), md.get(previous_key(key).as_str())]
        .into_iter()
        .flatten()
        .filter_map(|v| v.to_str().ok())
        .collect();
    if auth.accepts(&got) {
        return Ok(());
    }
    let peer = req.remote_addr().map(|a| a.to_string()).unwrap_or_default();
    tracing::warn!("refused {what} (from {peer})");
    Err(tonic::Status::unauthenticated(what.to_string()))
}

/// `m` as a request carrying what `auth` offers: the current credential and, during a grace
/// period, the replaced one.
pub(crate) fn with_auth<T>(
    m: T,
    key: &'static str,
    auth: &crate::cluster::PeerAuth,
) -> tonic::Request<T> {
    let (current, previous) = auth.offered();
    let mut r = with_digest(m, key, current.as_deref());
    if let Some(v) = previous.and_then(|d| crate::cluster::auth_token(&d).parse().ok()) {
        if let Ok(k) = tonic::metadata::MetadataKey::from_bytes(previous_key(key).as_bytes()) {
            r.metadata_mut().insert(k, v);
        }
    }
    r
}

/// `m` as a request carrying a fresh token for `digest` (if any) in metadata `key`.
pub(crate) fn with_digest<T>(m: T, key: &'static str, digest: Option<&str>) -> tonic::Request<T> {
    let mut r = tonic::Request::new(m);
    insert_token(r.metadata_mut(), key, digest);
    r
}

/// Puts a fresh token for `digest` (if any) in metadata `key`; never the digest itself.
pub(crate) fn insert_token(
    md: &mut tonic::metadata::MetadataMap,
    key: &'static str,
    digest: Option<&str>,
) {
    if let Some(v) = digest.and_then(|d| crate::cluster::auth_token(d).parse().ok()) {
        md.insert(key, v);
    }
}

/// Serves the cluster port: the ClusterBus (cluster mode) and Replication services, until
/// `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    bus: Option<pb::cluster_bus_server::ClusterBusServer<BusServer>>,
    repl: repl_pb::replication_server::ReplicationServer<ReplService>,
    migration: Option<mig_pb::migration_server::MigrationServer<MigrationService>>,
    backup: Option<mig_pb::slot_backup_server::SlotBackupServer<BackupService>>,
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> Result<(), tonic::transport::Error> {
    // Large flow-control windows: slot migration and full sync stream hundreds of MB, and
    // HTTP/2's 64 KiB default makes every 64 KiB wait for a window update.
    let router = tonic::transport::Server::builder()
        .initial_stream_window_size(Some(8 << 20))
        .initial_connection_window_size(Some(16 << 20))
        .add_optional_service(bus)
        .add_service(repl)
        .add_optional_service(migration)
        .add_optional_service(backup);
    if crate::tls::installed().is_some_and(|t| t.peer_server.is_some()) {
        let incoming = peer_io::tls_incoming(listener);
        return router
            .serve_with_incoming_shutdown(incoming, shutdown)
            .await;
    }
    // Small request/reply calls (bus pings, replica acks, commit) wait ~40 ms for a delayed
    // ACK under Nagle: accepted connections send at once, as the clients' side does.
    let incoming = tokio_stream::StreamExt::map(
        tokio_stream::wrappers::TcpListenerStream::new(listener),
        |conn| {
            conn.inspect(|s| {
                if let Err(e) = s.set_nodelay(true) {
                    tracing::debug!("TCP_NODELAY on a cluster-port connection: {e}");
                }
            })
        },
    );
    router
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await
}
