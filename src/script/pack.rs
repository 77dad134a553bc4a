//! The binary libraries Valkey links into its Lua: `cmsgpack` (antirez's lua-cmsgpack) and
//! `struct` (Roberto Ierusalimschy's struct.c), with their encodings and messages.

use mlua::{Lua, MultiValue, Table, Value};

use super::convert::at_line;

fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Integer(i) => Some(*i as f64),
        Value::Number(n) => Some(*n),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------
// cmsgpack

/// lua-cmsgpack's array test: keys 1..n with no holes.
fn array_len(t: &Table) -> mlua::Result<Option<usize>> {
    let (mut count, mut max) = (0usize, 0usize);
    for pair in t.clone().pairs::<Value, Value>() {
        let (k, _) = pair?;
        match number(&k) {
            Some(n) if n >= 1.0 && n.fract() == 0.0 => max = max.max(n as usize),
            _ => return Ok(None),
        }
        count += 1;
    }
    Ok((count == max).then_some(max))
}

fn mp_len(out: &mut Vec<u8>, len: usize, fix: u8, fix_max: usize, codes: [u8; 3]) {
    if len <= fix_max {
        out.push(fix | len as u8);
    } else if len <= 0xff && codes[0] != 0 {
        out.extend([codes[0], len as u8]);
    } else if len <= 0xffff {
        out.push(codes[1]);
        out.extend((len as u16).to_be_bytes());
    } else {
        out.push(codes[2]);
        out.extend((len as u32).to_be_bytes());
    }
}

fn mp_int(out: &mut Vec<u8>, i: i64) {
    if i >= 0 {
        match i {
            0..=127 => out.push(i as u8),
            128..=0xff => out.extend([0xcc, i as u8]),
            0x100..=0xffff => {
                out.push(0xcd);
                out.extend((i as u16).to_be_bytes());
            }
            0x1_0000..=0xffff_ffff => {
                out.push(0xce);
                out.extend((i as u32).to_be_bytes());
            }
            _ => {
                out.push(0xcf);
                out.extend((i as u64).to_be_bytes());
            }
        }
    } else {
        match i {
            -32..=-1 => out.push(i as u8),
            -128..=-33 => out.extend([0xd0, i as u8]),
            -32768..=-129 => {
                out.push(0xd1);
                out.extend((i as i16).to_be_bytes());
            }
            -2_147_483_648..=-32769 => {
                out.push(0xd2);
                out.extend((i as i32).to_be_bytes());
            }
            _ => {
                out.push(0xd3);
                out.extend(i.to_be_bytes());
            }
        }
    }
}

fn mp_encode(v: &Value, depth: usize, out: &mut Vec<u8>) -> mlua::Result<()> {
    match v {
        Value::Nil => out.push(0xc0),
        Value::Boolean(b) => out.push(if *b { 0xc3 } else { 0xc2 }),
        Value::Integer(i) => mp_int(out, *i),
        Value::Number(n) => {
            if n.fract() == 0.0 && n.is_finite() && n.abs() < 9.2e18 {
                mp_int(out, *n as i64);
            } else if (*n as f32) as f64 == *n || n.is_nan() {
                out.push(0xca);
                out.extend((*n as f32).to_be_bytes());
            } else {
                out.push(0xcb);
                out.extend(n.to_be_bytes());
            }
        }
        Value::String(s) => {
            let b = s.as_bytes();
            mp_len(out, b.len(), 0xa0, 31, [0xd9, 0xda, 0xdb]);
            out.extend_from_slice(&b);
        }
        Value::Table(t) if depth < 16 => match array_len(t)? {
            Some(n) => {
                mp_len(out, n, 0x90, 15, [0, 0xdc, 0xdd]);
                for i in 1..=n {
                    mp_encode(&t.raw_get::<Value>(i)?, depth + 1, out)?;
                }
            }
            None => {
                let pairs: Vec<(Value, Value)> = t
                    .clone()
                    .pairs::<Value, Value>()
                    .collect::<mlua::Result<_>>()?;
                mp_len(out, pairs.len(), 0x80, 15, [0, 0xde, 0xdf]);
                for (k, v) in pairs {
                    mp_encode(&k, depth + 1, out)?;
                    mp_encode(&v, depth + 1, out)?;
                }
            }
        },
        // Too deep, or a type MessagePack has no form for: nil, as lua-cmsgpack does.
        _ => out.push(0xc0),
    }
    Ok(())
}

struct MpReader<'a> {
    b: &'a [u8],
    i: usize,
}

impl MpReader<'_> {
    fn take(&mut self, n: usize) -> mlua::Result<&[u8]> {
        let s = self
            .b
            .get(self.i..self.i + n)
            .ok_or_else(|| at_line("Missing bytes in input."))?;
        self.i += n;
        Ok(s)
    }

    fn uint(&mut self, n: usize) -> mlua::Result<u64> {
        Ok(self.take(n)?.iter().fold(0u64, |a, &x| (a << 8) | x as u64))
    }

    fn value(&mut self, lua: &Lua, depth: usize) -> mlua::Result<Value> {
        if depth > 64 {
            return Err(at_line("Bad data format in input."));
        }
        let c = self.take(1)?[0];
        let sint = |u: u64, bits: u32| ((u << (64 - bits)) as i64) >> (64 - bits);
        Ok(match c {
            0x00..=0x7f => Value::Number(c as f64),
            0xe0..=0xff => Value::Number((c as i8) as f64),
            0xc0 => Value::Nil,
            0xc2 => Value::Boolean(false),
            0xc3 => Value::Boolean(true),
            0xcc => Value::Number(self.uint(1)? as f64),
            0xcd => Value::Number(self.uint(2)? as f64),
            0xce => Value::Number(self.uint(4)? as f64),
            0xcf => Value::Number(self.uint(8)? as f64),
            0xd0 => Value::Number(sint(self.uint(1)?, 8) as f64),
            0xd1 => Value::Number(sint(self.uint(2)?, 16) as f64),
            0xd2 => Value::Number(sint(self.uint(4)?, 32) as f64),
            0xd3 => Value::Number(self.uint(8)? as i64 as f64),
            0xca => Value::Number(f32::from_bits(self.uint(4)? as u32) as f64),
            0xcb => Value::Number(f64::from_bits(self.uint(8)?)),
            0xa0..=0xbf => self.string(lua, (c & 0x1f) as usize)?,
            0xd9 | 0xc4 => {
                let n = self.uint(1)? as usize;
                self.string(lua, n)?
            }
            0xda | 0xc5 => {
                let n = self.uint(2)? as usize;
                self.string(lua, n)?
            }
            0xdb | 0xc6 => {
                let n = self.uint(4)? as usize;
                self.string(lua, n)?
            }
            0x90..=0x9f => self.array(lua, (c & 0x0f) as usize, depth)?,
            0xdc => {
                let n = self.uint(2)? as usize;
                self.array(lua, n, depth)?
            }
            0xdd => {
                let n = self.uint(4)? as usize;
                self.array(lua, n, depth)?
            }
            0x80..=0x8f => self.map(lua, (c & 0x0f) as usize, depth)?,
            0xde => {
                let n = self.uint(2)? as usize;
                self.map(lua, n, depth)?
            }
            0xdf => {
                let n = self.uint(4)? as usize;
                self.map(lua, n, depth)?
            }
            _ => return Err(at_line("Bad data format in input.")),
        })
    }

    fn string(&mut self, lua: &Lua, n: usize) -> mlua::Result<Value> {
        let s = self.take(n)?;
        Ok(Value::String(lua.create_string(s)?))
    }

    fn array(&mut self, lua: &Lua, n: usize, depth: usize) -> mlua::Result<Value> {
        let t = lua.create_table()?;
        for i in 1..=n {
            let v = self.value(lua, depth + 1)?;
            t.raw_set(i, v)?;
        }
        Ok(Value::Table(t))
    }

    fn map(&mut self, lua: &Lua, n: usize, depth: usize) -> mlua::Result<Value> {
        let t = lua.create_table()?;
        for _ in 0..n {
            let k = self.value(lua, depth + 1)?;
            let v = self.value(lua, depth + 1)?;
            if k != Value::Nil {
                t.raw_set(k, v)?;
            }
        }
        Ok(Value::Table(t))
    }
}

/// `unpack_limit(s, limit, offset)`: up to `limit` values (0: all) from byte `offset`, after
/// the offset of the next value (-1 when the input is used up).
fn mp_unpack(
    lua: &Lua,
    s: &[u8],
    limit: usize,
    offset: usize,
    with_offset: bool,
) -> mlua::Result<MultiValue> {
    let mut r = MpReader { b: s, i: offset };
    let mut vals = Vec::new();
    while r.i < s.len() && (limit == 0 || vals.len() < limit) {
        vals.push(r.value(lua, 0)?);
    }
    let mut out = Vec::with_capacity(vals.len() + 1);
    if with_offset {
        let next = if r.i >= s.len() { -1.0 } else { r.i as f64 };
        out.push(Value::Number(next));
    }
    out.extend(vals);
    Ok(MultiValue::from_iter(out))
}

pub fn cmsgpack(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.set(
        "pack",
        lua.create_function(|lua, args: MultiValue| {
            if args.is_empty() {
                return Err(at_line(
                    "bad argument #0 to 'pack' (MessagePack pack needs input.)",
                ));
            }
            let mut out = Vec::new();
            for v in &args {
                mp_encode(v, 0, &mut out)?;
            }
            lua.create_string(out)
        })?,
    )?;
    t.set(
        "unpack",
        lua.create_function(|lua, s: mlua::String| mp_unpack(lua, &s.as_bytes(), 0, 0, false))?,
    )?;
    t.set(
        "unpack_one",
        lua.create_function(|lua, (s, offset): (mlua::String, Option<f64>)| {
            mp_unpack(
                lua,
                &s.as_bytes(),
                1,
                offset.unwrap_or(0.0).max(0.0) as usize,
                true,
            )
        })?,
    )?;
    t.set(
        "unpack_limit",
        lua.create_function(
            |lua, (s, limit, offset): (mlua::String, f64, Option<f64>)| {
                mp_unpack(
                    lua,
                    &s.as_bytes(),
                    limit.max(0.0) as usize,
                    offset.unwrap_or(0.0).max(0.0) as usize,
                    true,
                )
            },
        )?,
    )?;
    Ok(t)
}

// ---------------------------------------------------------------------------------------
// struct

struct Fmt<'a> {
    f: &'a [u8],
    i: usize,
    little: bool,
    align: usize,
}

enum Item {
    Int { size: usize, signed: bool },
    Float,
    Double,
    Pad,
    Zstr,
    Fixed(usize),
}

impl Fmt<'_> {
    fn new(f: &[u8]) -> Fmt<'_> {
        Fmt {
            f,
            i: 0,
            little: true,
            align: 1,
        }
    }

    fn num(&mut self, default: usize) -> usize {
        let start = self.i;
        while self.i < self.f.len() && self.f[self.i].is_ascii_digit() {
            self.i += 1;
        }
        std::str::from_utf8(&self.f[start..self.i])
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(default)
    }

    /// The next item and its size, or `None` at the end.
    fn next(&mut self, fname: &str) -> mlua::Result<Option<(Item, usize)>> {
        loop {
            let Some(&c) = self.f.get(self.i) else {
                return Ok(None);
            };
            self.i += 1;
            let item = match c {
                b' ' => continue,
                b'>' => {
                    self.little = false;
                    continue;
                }
                b'<' => {
                    self.little = true;
                    continue;
                }
                b'!' => {
                    self.align = self.num(8);
                    continue;
                }
                b'b' => (
                    Item::Int {
                        size: 1,
                        signed: true,
                    },
                    1,
                ),
                b'B' => (
                    Item::Int {
                        size: 1,
                        signed: false,
                    },
                    1,
                ),
                b'h' => (
                    Item::Int {
                        size: 2,
                        signed: true,
                    },
                    2,
                ),
                b'H' => (
                    Item::Int {
                        size: 2,
                        signed: false,
                    },
                    2,
                ),
                b'l' => (
                    Item::Int {
                        size: 8,
                        signed: true,
                    },
                    8,
                ),
                b'L' | b'T' => (
                    Item::Int {
                        size: 8,
                        signed: false,
                    },
                    8,
                ),
                b'i' | b'I' => {
                    let n = self.num(4);
                    if !(1..=8).contains(&n) {
                        return Err(at_line(format!(
                            "integral size {n} is larger than limit of 8"
                        )));
                    }
                    (
                        Item::Int {
                            size: n,
                            signed: c == b'i',
                        },
                        n,
                    )
                }
                b'f' => (Item::Float, 4),
                b'd' => (Item::Double, 8),
                b'x' => (Item::Pad, 1),
                b's' => (Item::Zstr, 0),
                b'c' => {
                    let n = self.num(0);
                    (Item::Fixed(n), n)
                }
                other => {
                    return Err(at_line(format!(
                        "bad argument #1 to '{fname}' (invalid format option '{}')",
                        other as char
                    )))
                }
            };
            return Ok(Some(item));
        }
    }

    fn padding(&self, pos: usize, size: usize) -> usize {
        let a = size.min(self.align);
        if a <= 1 || !a.is_power_of_two() {
            return 0;
        }
        (a - (pos & (a - 1))) & (a - 1)
    }
}

fn put_int(out: &mut Vec<u8>, v: i64, size: usize, little: bool) {
    let bytes = v.to_le_bytes();
    let mut b: Vec<u8> = bytes[..size].to_vec();
    if !little {
        b.reverse();
    }
    out.extend(b);
}

fn get_int(b: &[u8], signed: bool, little: bool) -> f64 {
    let mut v: u64 = 0;
    for i in 0..b.len() {
        let byte = if little { b[b.len() - 1 - i] } else { b[i] };
        v = (v << 8) | byte as u64;
    }
    let bits = b.len() as u32 * 8;
    if signed && bits < 64 {
        (((v << (64 - bits)) as i64) >> (64 - bits)) as f64
    } else if signed {
        v as i64 as f64
    } else {
        v as f64
    }
}

fn struct_pack(lua: &Lua, args: MultiValue) -> mlua::Result<mlua::String> {
    let mut it = args.into_iter();
    let Some(Value::String(fmt)) = it.next() else {
        return Err(at_line("bad argument #1 to 'pack' (string expected)"));
    };
    let fmt = fmt.as_bytes().to_vec();
    let mut f = Fmt::new(&fmt);
    let mut out = Vec::new();
    let mut arg = 2;
    while let Some((item, size)) = f.next("pack")? {
        let pad = f.padding(out.len(), size);
        out.extend(std::iter::repeat_n(0u8, pad));
        let bad =
            |arg: usize, what: &str| at_line(format!("bad argument #{arg} to 'pack' ({what})"));
        match item {
            Item::Pad => out.push(0),
            Item::Int { size, .. } => {
                let v = it
                    .next()
                    .as_ref()
                    .and_then(number)
                    .ok_or_else(|| bad(arg, "number expected"))?;
                put_int(&mut out, super::convert::c_cast(v), size, f.little);
                arg += 1;
            }
            Item::Float | Item::Double => {
                let v = it
                    .next()
                    .as_ref()
                    .and_then(number)
                    .ok_or_else(|| bad(arg, "number expected"))?;
                let mut b = if matches!(item, Item::Float) {
                    (v as f32).to_le_bytes().to_vec()
                } else {
                    v.to_le_bytes().to_vec()
                };
                if !f.little {
                    b.reverse();
                }
                out.extend(b);
                arg += 1;
            }
            Item::Zstr | Item::Fixed(_) => {
                let s = match it.next() {
                    Some(Value::String(s)) => s.as_bytes().to_vec(),
                    Some(v @ (Value::Integer(_) | Value::Number(_))) => lua
                        .coerce_string(v)?
                        .map(|s| s.as_bytes().to_vec())
                        .unwrap_or_default(),
                    _ => return Err(bad(arg, "string expected")),
                };
                match item {
                    Item::Fixed(n) => {
                        let n = if n == 0 { s.len() } else { n };
                        if s.len() < n {
                            return Err(bad(arg, "string too short"));
                        }
                        out.extend_from_slice(&s[..n]);
                    }
                    _ => {
                        out.extend_from_slice(&s);
                        out.push(0);
                    }
                }
                arg += 1;
            }
        }
    }
    lua.create_string(out)
}

fn struct_unpack(lua: &Lua, args: MultiValue) -> mlua::Result<MultiValue> {
    let mut it = args.into_iter();
    let (Some(Value::String(fmt)), Some(Value::String(data))) = (it.next(), it.next()) else {
        return Err(at_line("bad argument #2 to 'unpack' (string expected)"));
    };
    let (fmt, data) = (fmt.as_bytes().to_vec(), data.as_bytes().to_vec());
    let mut pos = it
        .next()
        .as_ref()
        .and_then(number)
        .map(|p| (p as usize).saturating_sub(1))
        .unwrap_or(0);
    let mut f = Fmt::new(&fmt);
    let mut out: Vec<Value> = Vec::new();
    let short = || at_line("bad argument #2 to 'unpack' (data string too short)");
    while let Some((item, size)) = f.next("unpack")? {
        pos += f.padding(pos, size);
        match item {
            Item::Pad => pos += 1,
            Item::Int { size, signed } => {
                let b = data.get(pos..pos + size).ok_or_else(short)?;
                out.push(Value::Number(get_int(b, signed, f.little)));
                pos += size;
            }
            Item::Float | Item::Double => {
                let b = data.get(pos..pos + size).ok_or_else(short)?;
                let mut b = b.to_vec();
                if !f.little {
                    b.reverse();
                }
                let v = if size == 4 {
                    f32::from_le_bytes(b.try_into().unwrap_or([0; 4])) as f64
                } else {
                    f64::from_le_bytes(b.try_into().unwrap_or([0; 8]))
                };
                out.push(Value::Number(v));
                pos += size;
            }
            Item::Zstr => {
                let rest = data.get(pos..).ok_or_else(short)?;
                let end = rest
                    .iter()
                    .position(|&b| b == 0)
                    .ok_or_else(|| at_line("unfinished string in data"))?;
                out.push(Value::String(lua.create_string(&rest[..end])?));
                pos += end + 1;
            }
            Item::Fixed(n) => {
                let n = if n == 0 {
                    match out.pop().as_ref().and_then(number) {
                        Some(n) => n as usize,
                        None => return Err(at_line("format 'c0' needs a previous size")),
                    }
                } else {
                    n
                };
                let b = data.get(pos..pos + n).ok_or_else(short)?;
                out.push(Value::String(lua.create_string(b)?));
                pos += n;
            }
        }
    }
    out.push(Value::Number((pos + 1) as f64));
    Ok(MultiValue::from_iter(out))
}

fn struct_size(_: &Lua, fmt: mlua::String) -> mlua::Result<f64> {
    let fmt = fmt.as_bytes().to_vec();
    let mut f = Fmt::new(&fmt);
    let mut pos = 0usize;
    while let Some((item, size)) = f.next("size")? {
        if matches!(item, Item::Zstr) {
            return Err(at_line(
                "bad argument #1 to 'size' (options 's' has no fixed size)",
            ));
        }
        pos += f.padding(pos, size) + size;
    }
    Ok(pos as f64)
}

pub fn structs(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.set("pack", lua.create_function(struct_pack)?)?;
    t.set("unpack", lua.create_function(struct_unpack)?)?;
    t.set("size", lua.create_function(struct_size)?)?;
    Ok(t)
}
