//! FUNCTION DUMP/RESTORE payloads: each library's code (opcode 245, then the code as an RDB
//! string), the RDB version and a CRC64 of all before, as valkey-server 8.1 writes them.

use super::object::write_string;
use super::{crc64, Reader, RDB_VERSION};

pub(super) const OP_FUNCTION2: u8 = 245;
pub(super) const OP_FUNCTION_PRE_GA: u8 = 246;

/// Why FUNCTION RESTORE refused a payload, in Valkey's words.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum FunctionPayloadError {
    #[error("DUMP payload version or checksum are wrong")]
    VersionOrChecksum,
    #[error("Pre-GA function format not supported")]
    PreGa,
    #[error("given type is not a function")]
    NotFunction,
    #[error("can not read data type")]
    Type,
    #[error("Failed loading library payload")]
    Library,
}

/// The payload holding `codes` (each a library's full text, shebang included).
pub fn functions_payload<'a>(codes: impl IntoIterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut out = Vec::new();
    for code in codes {
        out.push(OP_FUNCTION2);
        write_string(&mut out, code);
    }
    out.extend_from_slice(&RDB_VERSION.to_le_bytes());
    let crc = crc64(0, &out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// The libraries' code in a payload; the footer is checked first (a version newer than
/// this node writes is refused, as Valkey's strict check does).
pub fn read_functions_payload(p: &[u8]) -> Result<Vec<Vec<u8>>, FunctionPayloadError> {
    if p.len() < 10 {
        return Err(FunctionPayloadError::VersionOrChecksum);
    }
    let (body, footer) = p.split_at(p.len() - 10);
    let version = u16::from_le_bytes([footer[0], footer[1]]);
    let mut crc = [0u8; 8];
    crc.copy_from_slice(&footer[2..]);
    if version > RDB_VERSION || crc64(0, &p[..p.len() - 8]) != u64::from_le_bytes(crc) {
        return Err(FunctionPayloadError::VersionOrChecksum);
    }
    let mut r = Reader::new(body);
    let mut codes = Vec::new();
    while (r.offset() as usize) < body.len() {
        match r.u8().map_err(|_| FunctionPayloadError::Type)? {
            OP_FUNCTION2 => {}
            OP_FUNCTION_PRE_GA => return Err(FunctionPayloadError::PreGa),
            _ => return Err(FunctionPayloadError::NotFunction),
        }
        codes.push(r.string().map_err(|_| FunctionPayloadError::Library)?);
    }
    Ok(codes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_matches_valkey_bytes() {
        // FUNCTION DUMP of valkey-server 8.1.8 after loading this one library.
        let code: &[u8] =
            b"#!lua name=mylib\nserver.register_function('f1', function(keys, args) return 1 end)";
        let p = functions_payload([code]);
        assert_eq!(&p[..3], &[0xf5, 0x40, 0x52]);
        assert_eq!(
            &p[p.len() - 10..],
            &[0x0b, 0, 0xaf, 0x4e, 0xcf, 0x9a, 0x13, 0x36, 0x79, 0xad]
        );
        assert_eq!(read_functions_payload(&p).unwrap(), vec![code.to_vec()]);
        let empty = functions_payload([]);
        assert_eq!(
            empty,
            [0x0b, 0, 0x34, 0x44, 0xe1, 0x33, 0xf2, 0xe0, 0x4b, 0x53]
        );
        assert_eq!(
            read_functions_payload(&empty).unwrap(),
            Vec::<Vec<u8>>::new()
        );
    }

    #[test]
    fn bad_payloads_get_valkeys_errors() {
        use FunctionPayloadError::*;
        let with_body = |body: &[u8], version: u16| {
            let mut p = body.to_vec();
            p.extend_from_slice(&version.to_le_bytes());
            let crc = crc64(0, &p);
            p.extend_from_slice(&crc.to_le_bytes());
            p
        };
        assert_eq!(read_functions_payload(b"short"), Err(VersionOrChecksum));
        assert_eq!(
            read_functions_payload(&with_body(b"", 12)),
            Err(VersionOrChecksum)
        );
        let mut flipped = functions_payload([&b"#!lua name=a\n"[..]]);
        flipped[4] ^= 1;
        assert_eq!(read_functions_payload(&flipped), Err(VersionOrChecksum));
        assert_eq!(
            read_functions_payload(&with_body(&[0xf6, 1, b'x'], 11)),
            Err(PreGa)
        );
        assert_eq!(
            read_functions_payload(&with_body(&[0x00, 1, b'x'], 11)),
            Err(NotFunction)
        );
        assert_eq!(
            read_functions_payload(&with_body(&[0xf5], 11)),
            Err(Library)
        );
        assert_eq!(
            read_functions_payload(&with_body(&[0xf5, 5, b'x'], 11)),
            Err(Library)
        );
    }
}
