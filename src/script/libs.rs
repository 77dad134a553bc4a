//! The C libraries Valkey links into its Lua, rebuilt here: `bit` (LuaBitOp semantics on
//! 32-bit integers) and `cjson` (encode/decode with lua-cjson's defaults and messages).

use mlua::{LightUserData, Lua, MultiValue, Table, Value};

/// LuaBitOp's `tobit`: the number reduced modulo 2^32 into a signed 32-bit integer.
fn tobit(v: &Value) -> mlua::Result<i32> {
    let n = match v {
        Value::Integer(i) => *i as f64,
        Value::Number(n) => *n,
        Value::String(s) => s
            .to_str()
            .ok()
            .and_then(|s| s.trim().parse::<f64>().ok())
            .ok_or_else(|| mlua::Error::runtime("bad argument #1 (number expected)"))?,
        _ => return Err(mlua::Error::runtime("bad argument #1 (number expected)")),
    };
    // BitOp adds 2^52+2^51 and keeps the low word: round to nearest, then wrap.
    let r = (n + 6_755_399_441_055_744.0).to_bits() as u32;
    Ok(r as i32)
}

fn arg(args: &MultiValue, i: usize) -> mlua::Result<i32> {
    tobit(args.get(i).unwrap_or(&Value::Nil))
}

pub fn bit(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.set("tobit", lua.create_function(|_, a: MultiValue| arg(&a, 0))?)?;
    t.set(
        "bnot",
        lua.create_function(|_, a: MultiValue| Ok(!arg(&a, 0)?))?,
    )?;
    let fold = |f: fn(i32, i32) -> i32| {
        move |_: &Lua, a: MultiValue| -> mlua::Result<i32> {
            let mut acc = arg(&a, 0)?;
            for i in 1..a.len() {
                acc = f(acc, arg(&a, i)?);
            }
            Ok(acc)
        }
    };
    t.set("band", lua.create_function(fold(|x, y| x & y))?)?;
    t.set("bor", lua.create_function(fold(|x, y| x | y))?)?;
    t.set("bxor", lua.create_function(fold(|x, y| x ^ y))?)?;
    let shift = |f: fn(u32, u32) -> u32| {
        move |_: &Lua, a: MultiValue| -> mlua::Result<i32> {
            let x = arg(&a, 0)? as u32;
            let n = (arg(&a, 1)? as u32) & 31;
            Ok(f(x, n) as i32)
        }
    };
    t.set("lshift", lua.create_function(shift(|x, n| x << n))?)?;
    t.set("rshift", lua.create_function(shift(|x, n| x >> n))?)?;
    t.set(
        "arshift",
        lua.create_function(shift(|x, n| ((x as i32) >> n) as u32))?,
    )?;
    t.set("rol", lua.create_function(shift(|x, n| x.rotate_left(n)))?)?;
    t.set("ror", lua.create_function(shift(|x, n| x.rotate_right(n)))?)?;
    t.set(
        "bswap",
        lua.create_function(|_, a: MultiValue| Ok(arg(&a, 0)?.swap_bytes()))?,
    )?;
    t.set(
        "tohex",
        lua.create_function(|_, a: MultiValue| {
            let x = arg(&a, 0)? as u32;
            let n = if a.len() > 1 { arg(&a, 1)? } else { 8 };
            let upper = n < 0;
            let n = n.unsigned_abs().min(8) as usize;
            let s = if upper {
                format!("{x:08X}")
            } else {
                format!("{x:08x}")
            };
            Ok(s[8 - n..].to_string())
        })?,
    )?;
    Ok(t)
}

fn null() -> Value {
    Value::LightUserData(LightUserData(std::ptr::null_mut()))
}

/// lua-cjson's number format (`%.14g`).
fn number(n: f64, out: &mut String) -> mlua::Result<()> {
    if !n.is_finite() {
        return Err(mlua::Error::runtime(
            "Cannot serialise number: must not be NaN or Inf",
        ));
    }
    out.push_str(&format_g14(n));
    Ok(())
}

/// C's `%.14g`.
pub fn format_g14(n: f64) -> String {
    if n == 0.0 {
        return if n.is_sign_negative() {
            "-0".into()
        } else {
            "0".into()
        };
    }
    let exp = n.abs().log10().floor() as i32;
    // %g picks exponent form when the exponent is < -4 or >= the precision.
    let e_form = format!("{:.13e}", n);
    let (mant, e) = e_form.split_once('e').unwrap_or((&e_form, "0"));
    let e: i32 = e.parse().unwrap_or(exp);
    if !(-4..14).contains(&e) {
        let mant = trim_zeros(mant);
        let sign = if e < 0 { '-' } else { '+' };
        return format!("{mant}e{sign}{:02}", e.abs());
    }
    let decimals = (13 - e).max(0) as usize;
    trim_zeros(&format!("{n:.decimals$}")).to_string()
}

fn trim_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

fn escape(s: &[u8], out: &mut String) {
    out.push('"');
    let text = String::from_utf8_lossy(s);
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '/' => out.push_str("\\/"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\u{:04x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

fn encode(v: &Value, depth: usize, out: &mut String) -> mlua::Result<()> {
    if depth > 1000 {
        return Err(mlua::Error::runtime(
            "Cannot serialise, excessive nesting (1001)",
        ));
    }
    match v {
        Value::Nil => out.push_str("null"),
        Value::LightUserData(u) if u.0.is_null() => out.push_str("null"),
        Value::Boolean(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Integer(i) => out.push_str(&i.to_string()),
        Value::Number(n) => number(*n, out)?,
        Value::String(s) => escape(&s.as_bytes(), out),
        Value::Table(t) => {
            // An array when every key is a positive integer and the array is not too sparse
            // (lua-cjson's defaults: ratio 2, safe up to 10).
            let mut max = 0usize;
            let mut count = 0usize;
            let mut is_array = true;
            for pair in t.clone().pairs::<Value, Value>() {
                let (k, _) = pair?;
                count += 1;
                match k {
                    Value::Integer(i) if i >= 1 => max = max.max(i as usize),
                    Value::Number(n) if n >= 1.0 && n.fract() == 0.0 => max = max.max(n as usize),
                    _ => is_array = false,
                }
            }
            if is_array && max > 10 && max > count * 2 {
                return Err(mlua::Error::runtime(
                    "Cannot serialise table: excessively sparse array",
                ));
            }
            if is_array && count > 0 {
                out.push('[');
                for i in 1..=max {
                    if i > 1 {
                        out.push(',');
                    }
                    encode(&t.raw_get::<Value>(i)?, depth + 1, out)?;
                }
                out.push(']');
            } else {
                out.push('{');
                let mut first = true;
                for pair in t.clone().pairs::<Value, Value>() {
                    let (k, v) = pair?;
                    if !first {
                        out.push(',');
                    }
                    first = false;
                    match &k {
                        Value::String(s) => escape(&s.as_bytes(), out),
                        Value::Integer(i) => escape(i.to_string().as_bytes(), out),
                        Value::Number(n) => {
                            let mut s = String::new();
                            number(*n, &mut s)?;
                            escape(s.as_bytes(), out)
                        }
                        _ => {
                            return Err(mlua::Error::runtime(
                                "Cannot serialise table: table key must be a number or string",
                            ))
                        }
                    }
                    out.push(':');
                    encode(&v, depth + 1, out)?;
                }
                out.push('}');
            }
        }
        other => {
            return Err(mlua::Error::runtime(format!(
                "Cannot serialise {}: type not supported",
                other.type_name()
            )))
        }
    }
    Ok(())
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn ws(&mut self) {
        while self.i < self.s.len() && matches!(self.s[self.i], b' ' | b'\t' | b'\n' | b'\r') {
            self.i += 1;
        }
    }

    fn fail(&self, want: &str) -> mlua::Error {
        let found = if self.i >= self.s.len() {
            "T_END".to_string()
        } else {
            "invalid token".to_string()
        };
        super::convert::at_line(format!(
            "Expected {want} but found {found} at character {}",
            self.i + 1
        ))
    }

    fn value(&mut self, lua: &Lua, depth: usize) -> mlua::Result<Value> {
        if depth > 1000 {
            return Err(mlua::Error::runtime(
                "Found too many nested data structures (1001)",
            ));
        }
        self.ws();
        let Some(&c) = self.s.get(self.i) else {
            return Err(self.fail("value"));
        };
        match c {
            b'{' => {
                self.i += 1;
                let t = lua.create_table()?;
                self.ws();
                if self.s.get(self.i) == Some(&b'}') {
                    self.i += 1;
                    return Ok(Value::Table(t));
                }
                loop {
                    self.ws();
                    if self.s.get(self.i) != Some(&b'"') {
                        return Err(self.fail("object key string"));
                    }
                    let k = self.string(lua)?;
                    self.ws();
                    if self.s.get(self.i) != Some(&b':') {
                        return Err(self.fail("colon"));
                    }
                    self.i += 1;
                    let v = self.value(lua, depth + 1)?;
                    t.raw_set(k, v)?;
                    self.ws();
                    match self.s.get(self.i) {
                        Some(b',') => self.i += 1,
                        Some(b'}') => {
                            self.i += 1;
                            return Ok(Value::Table(t));
                        }
                        _ => return Err(self.fail("comma or object end")),
                    }
                }
            }
            b'[' => {
                self.i += 1;
                let t = lua.create_table()?;
                self.ws();
                if self.s.get(self.i) == Some(&b']') {
                    self.i += 1;
                    return Ok(Value::Table(t));
                }
                let mut n = 1;
                loop {
                    let v = self.value(lua, depth + 1)?;
                    t.raw_set(n, v)?;
                    n += 1;
                    self.ws();
                    match self.s.get(self.i) {
                        Some(b',') => self.i += 1,
                        Some(b']') => {
                            self.i += 1;
                            return Ok(Value::Table(t));
                        }
                        _ => return Err(self.fail("comma or array end")),
                    }
                }
            }
            b'"' => Ok(Value::String(self.string(lua)?)),
            b't' if self.s[self.i..].starts_with(b"true") => {
                self.i += 4;
                Ok(Value::Boolean(true))
            }
            b'f' if self.s[self.i..].starts_with(b"false") => {
                self.i += 5;
                Ok(Value::Boolean(false))
            }
            b'n' if self.s[self.i..].starts_with(b"null") => {
                self.i += 4;
                Ok(null())
            }
            b'-' | b'0'..=b'9' => {
                let start = self.i;
                while self.i < self.s.len()
                    && matches!(
                        self.s[self.i],
                        b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9'
                    )
                {
                    self.i += 1;
                }
                let text = std::str::from_utf8(&self.s[start..self.i]).unwrap_or("");
                match text.parse::<f64>() {
                    Ok(n) => Ok(Value::Number(n)),
                    Err(_) => {
                        self.i = start;
                        Err(self.fail("value"))
                    }
                }
            }
            _ => Err(self.fail("value")),
        }
    }

    fn string(&mut self, lua: &Lua) -> mlua::Result<mlua::String> {
        self.i += 1;
        let mut out = Vec::new();
        loop {
            let Some(&c) = self.s.get(self.i) else {
                return Err(self.fail("string end"));
            };
            self.i += 1;
            match c {
                b'"' => return lua.create_string(&out),
                b'\\' => {
                    let Some(&e) = self.s.get(self.i) else {
                        return Err(self.fail("escape"));
                    };
                    self.i += 1;
                    match e {
                        b'"' | b'\\' | b'/' => out.push(e),
                        b'b' => out.push(8),
                        b'f' => out.push(12),
                        b'n' => out.push(b'\n'),
                        b'r' => out.push(b'\r'),
                        b't' => out.push(b'\t'),
                        b'u' => {
                            let hex = self
                                .s
                                .get(self.i..self.i + 4)
                                .and_then(|h| std::str::from_utf8(h).ok())
                                .and_then(|h| u32::from_str_radix(h, 16).ok())
                                .ok_or_else(|| self.fail("unicode escape"))?;
                            self.i += 4;
                            let ch = char::from_u32(hex).unwrap_or('\u{fffd}');
                            let mut buf = [0u8; 4];
                            out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                        }
                        _ => return Err(self.fail("valid escape")),
                    }
                }
                c => out.push(c),
            }
        }
    }
}

pub fn cjson(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.set(
        "encode",
        lua.create_function(|lua, a: MultiValue| {
            if a.len() != 1 {
                return Err(mlua::Error::runtime(
                    "bad argument #1 to 'encode' (expected 1 argument)",
                ));
            }
            let mut out = String::new();
            encode(&a[0], 0, &mut out)?;
            lua.create_string(out)
        })?,
    )?;
    t.set(
        "decode",
        lua.create_function(|lua, s: mlua::String| {
            let bytes = s.as_bytes();
            let mut p = Parser { s: &bytes, i: 0 };
            let v = p.value(lua, 0)?;
            p.ws();
            if p.i < bytes.len() {
                return Err(p.fail("the end"));
            }
            Ok(v)
        })?,
    )?;
    t.set("null", null())?;
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn g14_matches_c() {
        assert_eq!(format_g14(0.1), "0.1");
        assert_eq!(format_g14(1.5), "1.5");
        assert_eq!(format_g14(1e300), "1e+300");
        assert_eq!(format_g14(100.0), "100");
        assert_eq!(format_g14(123456789012345.0), "1.2345678901234e+14");
        assert_eq!(format_g14(0.0001), "0.0001");
        assert_eq!(format_g14(0.00001), "1e-05");
        assert_eq!(format_g14(-2.5), "-2.5");
    }
}
