//! CRC-64/Jones as Valkey computes it (reflected, polynomial 0xad93d23594c935a9, no final
//! xor): the checksum of DUMP payloads and the 8 bytes after an RDB file's EOF opcode.

const POLY_REFLECTED: u64 = 0x95ac_9329_ac4b_c9b5;

const fn table() -> [[u64; 256]; 8] {
    let mut t = [[0u64; 256]; 8];
    let mut i = 0;
    while i < 256 {
        let mut crc = i as u64;
        let mut k = 0;
        while k < 8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ POLY_REFLECTED
            } else {
                crc >> 1
            };
            k += 1;
        }
        t[0][i] = crc;
        i += 1;
    }
    // Slicing-by-8 tables: a whole RDB file is checksummed while it streams.
    let mut i = 0;
    while i < 256 {
        let mut s = 1;
        while s < 8 {
            let prev = t[s - 1][i];
            t[s][i] = t[0][(prev & 0xff) as usize] ^ (prev >> 8);
            s += 1;
        }
        i += 1;
    }
    t
}

static TABLE: [[u64; 256]; 8] = table();

/// Continues `crc` over `data` (start with 0).
pub fn crc64(mut crc: u64, data: &[u8]) -> u64 {
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        let v = crc ^ u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
        crc = TABLE[7][(v & 0xff) as usize]
            ^ TABLE[6][((v >> 8) & 0xff) as usize]
            ^ TABLE[5][((v >> 16) & 0xff) as usize]
            ^ TABLE[4][((v >> 24) & 0xff) as usize]
            ^ TABLE[3][((v >> 32) & 0xff) as usize]
            ^ TABLE[2][((v >> 40) & 0xff) as usize]
            ^ TABLE[1][((v >> 48) & 0xff) as usize]
            ^ TABLE[0][(v >> 56) as usize];
    }
    for &b in chunks.remainder() {
        crc = TABLE[0][((crc ^ b as u64) & 0xff) as usize] ^ (crc >> 8);
    }
    crc
}
