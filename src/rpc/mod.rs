//! gRPC services on the cluster port. Generated protobuf types stay in this module: they are
//! validated into domain types at the edge, and nothing outside sees them.
//!
//! Owns: the ClusterBus, Replication and Migration servers and clients, peer authentication.
//! Must not: decide cluster state; it hands validated messages to `cluster`.

mod backup;
mod bus;
mod convert;
mod migration;
mod replication;

pub use backup::{backup_service, BackupPeer, BackupService, BackupSide, StageReport};
pub use bus::{bus_service, BusClient, BusServer, BusService};
pub use convert::InvalidMessage;
pub use migration::{
    migration_service, ChunkStream, DataChunk, ImportSide, MigrationPeer, MigrationService,
};
pub use replication::{repl_service, ReplLink, ReplService, ReplSource, REPL_AUTH_METADATA};

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

/// What peers present: a digest of the secret, never the secret itself.
pub fn secret_digest(secret: &str) -> String {
    sha1_smol::Sha1::from(format!("rockslot-bus:{secret}"))
        .digest()
        .to_string()
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
    let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
    // Large flow-control windows: slot migration and full sync stream hundreds of MB, and
    // HTTP/2's 64 KiB default makes every 64 KiB wait for a window update.
    tonic::transport::Server::builder()
        .initial_stream_window_size(Some(8 << 20))
        .initial_connection_window_size(Some(16 << 20))
        .add_optional_service(bus)
        .add_service(repl)
        .add_optional_service(migration)
        .add_optional_service(backup)
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await
}
