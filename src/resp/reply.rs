//! Reply values produced by command handlers.

use bytes::Bytes;

/// A reply value. Handlers build these; the encoder renders them for the client's protocol.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// `+OK`-style status line.
    Status(&'static str),
    /// A status line built at run time (`+BUMPED 3`).
    StatusOwned(String),
    /// A complete error line without the leading `-` (e.g. `ERR syntax error`).
    Error(String),
    Int(i64),
    Bulk(Bytes),
    /// Null bulk in RESP2, `_` in RESP3.
    Nil,
    /// Null array in RESP2 (`*-1`), `_` in RESP3.
    NilArray,
    Array(Vec<Reply>),
    /// A map in RESP3, a flat array in RESP2.
    Map(Vec<(Reply, Reply)>),
    /// A set in RESP3, an array in RESP2.
    Set(Vec<Reply>),
    /// A double in RESP3, a bulk string in RESP2.
    Double(f64),
    /// A double already formatted by the command (GEOPOS's coordinates): `,text` in RESP3,
    /// the same text as a bulk string in RESP2.
    DoubleText(String),
    /// A boolean in RESP3, an integer 1/0 in RESP2.
    Bool(bool),
    /// A big number (`(` in RESP3), a bulk string in RESP2 (scripts' `{big_number = ...}`).
    BigNumber(String),
    /// Verbatim text (`=N\r\ntxt:...`) in RESP3, a bulk string in RESP2.
    Verbatim(String),
    /// (member, score)-style pairs: a flat array in RESP2, an array of 2-element arrays in RESP3
    /// (ZRANGE WITHSCORES, HRANDFIELD WITHVALUES).
    Pairs(Vec<(Reply, Reply)>),
    /// Out-of-band data (pub/sub messages): `>` in RESP3, an array in RESP2.
    Push(Vec<Reply>),
    /// Several replies to one command, written one after another (SUBSCRIBE a b).
    Multi(Vec<Reply>),
    /// Already-encoded bytes, written as they are (replies that are the same in both protocols).
    Raw(Bytes),
}

impl Reply {
    pub const OK: Reply = Reply::Status("OK");

    pub fn err(msg: impl Into<String>) -> Reply {
        Reply::Error(msg.into())
    }

    pub fn bulk(b: impl Into<Bytes>) -> Reply {
        Reply::Bulk(b.into())
    }

    pub fn bulk_str(s: &str) -> Reply {
        Reply::Bulk(Bytes::copy_from_slice(s.as_bytes()))
    }

    pub fn opt_bulk(b: Option<impl Into<Bytes>>) -> Reply {
        match b {
            Some(b) => Reply::Bulk(b.into()),
            None => Reply::Nil,
        }
    }

    pub fn is_error(&self) -> bool {
        matches!(self, Reply::Error(_))
    }

    /// `Reply::Array` of bulk strings.
    pub fn bulks<I, B>(items: I) -> Reply
    where
        I: IntoIterator<Item = B>,
        B: Into<Bytes>,
    {
        Reply::Array(items.into_iter().map(|b| Reply::Bulk(b.into())).collect())
    }
}
