//! DUMP/RESTORE payloads of the keyspace's values, in Valkey's RDB payload format (see
//! `rdb`), so MIGRATE and RESTORE work between rockslot and valkey-server in both directions.

use bytes::Bytes;

use crate::rdb::Object;

use super::{Entry, Kind, Value};

impl super::Pending<'_> {
    /// The DUMP payload of `key` holding `e` (a collection's members are read as this scope
    /// sees them).
    pub fn dump_payload(&self, key: &[u8], e: &Entry) -> super::Result<Vec<u8>> {
        let obj = match &e.value {
            Value::Str(b) => Object::Str(Bytes::clone(b)),
            Value::Hash(_, 0) => Object::Hash(self.members(key, Kind::Hash)?),
            Value::Hash(..) => Object::VolatileHash(self.hash_members_with_ttls(key)?),
            Value::Set(_) => Object::Set(
                self.members(key, Kind::Set)?
                    .into_iter()
                    .map(|(m, _)| m)
                    .collect(),
            ),
            Value::List { .. } => Object::List(self.list_elements(key)?),
            Value::ZSet(_) => Object::ZSet(self.zset_members(key)?),
            Value::Stream(_) => Object::Stream(Box::new(self.stream_dump(key)?)),
            Value::Chunked(len) => Object::Str(super::chunked::assemble(
                &self.reader(),
                self.at(key),
                key,
                *len,
            )?),
        };
        Ok(crate::rdb::dump_payload(&obj))
    }
}
