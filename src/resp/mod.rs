//! RESP2/RESP3 framing: an incremental request decoder with Valkey's limits and error
//! wording, and a reply encoder for both protocol versions.
//!
//! Owns: `Request` decoding (multibulk and inline), `Reply` values, encoding.
//! Must not: know any command, touch sockets, or allocate per reply beyond the output buffer.

mod decode;
pub mod encode;
mod reply;

pub use decode::{repr, split_args, split_args_str, DecodeError, Decoder, Limits};
pub use encode::encode;
pub use reply::Reply;

/// Protocol version negotiated with HELLO.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Protocol {
    #[default]
    Resp2,
    Resp3,
}
