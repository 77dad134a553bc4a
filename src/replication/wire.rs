//! Replication stream messages as domain types (the rpc layer converts them to protobuf).

use std::sync::Arc;

/// A replica's opening request.
#[derive(Debug, Clone)]
pub struct Hello {
    pub replid: String,
    pub offset: u64,
    pub ip: String,
    pub port: u16,
    pub node_id: String,
}

/// What a primary sends.
#[derive(Debug, Clone)]
pub enum PrimaryMsg {
    FullBegin {
        replid: String,
        offset: u64,
        files: u32,
    },
    Chunk {
        family: String,
        name: String,
        data: Vec<u8>,
        last: bool,
        crc32: u32,
    },
    FullEnd {
        offset: u64,
        keys: u64,
    },
    Continue {
        replid: String,
        offset: u64,
    },
    Batch {
        offset: u64,
        ops: Arc<Vec<u8>>,
    },
    Heartbeat {
        offset: u64,
    },
}
