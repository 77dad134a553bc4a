//! gRPC services on the cluster port. Generated protobuf types stay in this module: they are
//! validated into domain types at the edge, and nothing outside sees them.
//!
//! Owns: the ClusterBus server and client, peer authentication.
//! Must not: decide cluster state; it hands validated messages to `cluster`.

mod bus;
mod convert;

pub use bus::{BusClient, BusServer, BusService};
pub use convert::InvalidMessage;

pub(crate) mod pb {
    tonic::include_proto!("rockslot.cluster");
}

pub(crate) mod repl_pb {
    tonic::include_proto!("rockslot.replication");
}

/// Metadata key carrying the digest of the shared bus secret.
pub const AUTH_METADATA: &str = "rockslot-bus-auth";

/// What peers present: a digest of the secret, never the secret itself.
pub fn secret_digest(secret: &str) -> String {
    sha1_smol::Sha1::from(format!("rockslot-bus:{secret}"))
        .digest()
        .to_string()
}
