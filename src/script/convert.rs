//! Conversions between replies and Lua values, and the shape of script errors, following
//! Valkey's `script_lua.c` (RESP2 and RESP3 rules, error tables, C number casts).

use bytes::Bytes;
use mlua::{Lua, MultiValue, Table, Value};

use super::ScriptError;
use crate::resp::encode::format_double;
use crate::resp::Reply;

/// A Lua number as C's `(long long)` cast on x86-64 does it: truncation, and the "integer
/// indefinite" value for NaN and out-of-range numbers (Valkey answers `1e20` with that).
pub fn c_cast(n: f64) -> i64 {
    const TWO_63: f64 = 9_223_372_036_854_775_808.0;
    // NaN is in no range, so it lands here too.
    if !(-TWO_63..TWO_63).contains(&n) {
        i64::MIN
    } else {
        n as i64
    }
}

pub fn lua_number_to_i64(v: &Value) -> Option<i64> {
    match v {
        Value::Integer(i) => Some(*i),
        Value::Number(n) => Some(c_cast(*n)),
        _ => None,
    }
}

/// Error lines are one line: CR and LF become spaces, as Valkey's error replies do.
pub fn one_line(s: &str) -> String {
    s.replace(['\r', '\n'], " ")
}

/// The innermost message of an mlua error (a Rust callback's own text, or Lua's).
pub fn lua_error_text(e: &mlua::Error) -> String {
    match e {
        mlua::Error::SyntaxError { message, .. } => message.clone(),
        mlua::Error::RuntimeError(m) => m.clone(),
        mlua::Error::CallbackError { cause, .. } => lua_error_text(cause),
        mlua::Error::WithContext { cause, .. } => lua_error_text(cause),
        other => other.to_string(),
    }
}

/// `redis.error_reply(s)`: Valkey's `luaPushErrorBuff` on `"-" .. s` — a leading code is kept
/// (`-X y` stays `X y`), a bare message gets `ERR`, and trailing CR/LF go.
pub fn error_reply_text(s: &[u8]) -> String {
    let s = String::from_utf8_lossy(s);
    let buf = if let Some(rest) = s.strip_prefix('-') {
        rest.to_string()
    } else {
        s.to_string()
    };
    let (code, msg) = match buf.split_once(' ') {
        Some((code, msg)) => (code.to_string(), msg.to_string()),
        None => ("ERR".to_string(), buf),
    };
    format!("{code} {}", msg.trim_matches(['\r', '\n']))
}

/// Arguments of `redis.call`: strings and numbers (as Lua prints them), nothing else.
pub fn command_args(lua: &Lua, args: &MultiValue) -> Result<Vec<Bytes>, String> {
    if args.is_empty() {
        return Err("ERR Please specify at least one argument for this call".into());
    }
    let mut out = Vec::with_capacity(args.len());
    for v in args {
        match v {
            Value::String(s) => out.push(Bytes::copy_from_slice(&s.as_bytes())),
            Value::Integer(_) | Value::Number(_) => match lua.coerce_string(v.clone()) {
                Ok(Some(s)) => out.push(Bytes::copy_from_slice(&s.as_bytes())),
                _ => return Err("ERR Command arguments must be strings or integers".into()),
            },
            _ => return Err("ERR Command arguments must be strings or integers".into()),
        }
    }
    Ok(out)
}

fn single(lua: &Lua, key: &str, v: impl mlua::IntoLua) -> mlua::Result<Value> {
    let t = lua.create_table()?;
    t.raw_set(key, v)?;
    Ok(Value::Table(t))
}

fn array(lua: &Lua, items: &[Reply], resp3: bool) -> mlua::Result<Value> {
    let t = lua.create_table_with_capacity(items.len(), 0)?;
    for (i, r) in items.iter().enumerate() {
        t.raw_set(i + 1, reply_to_lua(lua, r, resp3)?)?;
    }
    Ok(Value::Table(t))
}

/// A command's reply as the script sees it (`redis.setresp` chooses `resp3`).
pub fn reply_to_lua(lua: &Lua, r: &Reply, resp3: bool) -> mlua::Result<Value> {
    Ok(match r {
        Reply::Status(s) => single(lua, "ok", *s)?,
        Reply::StatusOwned(s) => single(lua, "ok", s.as_str())?,
        Reply::Error(e) => single(lua, "err", one_line(e))?,
        Reply::Int(i) => Value::Number(*i as f64),
        Reply::Bulk(b) => Value::String(lua.create_string(b)?),
        Reply::Nil | Reply::NilArray | Reply::Raw(_) => {
            if resp3 {
                Value::Nil
            } else {
                Value::Boolean(false)
            }
        }
        Reply::Array(items) | Reply::Push(items) | Reply::Multi(items) => array(lua, items, resp3)?,
        Reply::Set(items) if resp3 => {
            let t = lua.create_table()?;
            for m in items {
                t.raw_set(reply_to_lua(lua, m, resp3)?, true)?;
            }
            single(lua, "set", t)?
        }
        Reply::Set(items) => array(lua, items, resp3)?,
        Reply::Map(pairs) if resp3 => {
            let t = lua.create_table()?;
            for (k, v) in pairs {
                t.raw_set(reply_to_lua(lua, k, resp3)?, reply_to_lua(lua, v, resp3)?)?;
            }
            single(lua, "map", t)?
        }
        Reply::Map(pairs) => {
            let flat: Vec<Reply> = pairs
                .iter()
                .flat_map(|(k, v)| [k.clone(), v.clone()])
                .collect();
            array(lua, &flat, resp3)?
        }
        Reply::Pairs(pairs) => {
            let t = lua.create_table()?;
            for (i, (k, v)) in pairs.iter().enumerate() {
                if resp3 {
                    t.raw_set(i + 1, array(lua, &[k.clone(), v.clone()], resp3)?)?;
                } else {
                    t.raw_set(2 * i + 1, reply_to_lua(lua, k, resp3)?)?;
                    t.raw_set(2 * i + 2, reply_to_lua(lua, v, resp3)?)?;
                }
            }
            Value::Table(t)
        }
        Reply::Double(d) if resp3 => single(lua, "double", *d)?,
        Reply::Double(d) => Value::String(lua.create_string(format_double(*d))?),
        Reply::DoubleText(t) if resp3 => single(lua, "double", t.parse::<f64>().unwrap_or(0.0))?,
        Reply::DoubleText(t) => Value::String(lua.create_string(t)?),
        Reply::Bool(b) if resp3 => Value::Boolean(*b),
        Reply::Bool(b) => Value::Number(if *b { 1.0 } else { 0.0 }),
        Reply::Verbatim(s) if resp3 => {
            let t = lua.create_table()?;
            t.raw_set("format", "txt")?;
            t.raw_set("string", s.as_str())?;
            single(lua, "verbatim_string", t)?
        }
        Reply::Verbatim(s) => Value::String(lua.create_string(s)?),
        Reply::BigNumber(s) if resp3 => single(lua, "big_number", s.as_str())?,
        Reply::BigNumber(s) => Value::String(lua.create_string(s)?),
    })
}

fn field(t: &Table, name: &str) -> Value {
    t.raw_get(name).unwrap_or(Value::Nil)
}

fn string_field(t: &Table, name: &str) -> Option<String> {
    match field(t, name) {
        Value::String(s) => Some(s.to_string_lossy()),
        _ => None,
    }
}

/// Nesting beyond which a returned table becomes an error (a table can contain itself).
const MAX_REPLY_DEPTH: usize = 1000;

/// A script's return value as its reply. Booleans follow the script's own protocol
/// (`redis.setresp`): under RESP2 true is 1 and false is null, under RESP3 they are booleans;
/// the rest is encoded for the client's protocol when the reply is written.
pub fn lua_to_reply(v: &Value, resp3: bool) -> Reply {
    to_reply(v, resp3, 0)
}

fn to_reply(v: &Value, resp3: bool, depth: usize) -> Reply {
    if depth > MAX_REPLY_DEPTH {
        return Reply::Error("ERR reached lua stack limit".into());
    }
    match v {
        Value::String(s) => Reply::Bulk(Bytes::copy_from_slice(&s.as_bytes())),
        Value::Boolean(b) if resp3 => Reply::Bool(*b),
        Value::Boolean(true) => Reply::Int(1),
        Value::Boolean(false) => Reply::Nil,
        Value::Integer(i) => Reply::Int(*i),
        Value::Number(n) => Reply::Int(c_cast(*n)),
        Value::Table(t) => table_to_reply(t, resp3, depth),
        _ => Reply::Nil,
    }
}

fn table_to_reply(t: &Table, resp3: bool, depth: usize) -> Reply {
    if let Some(e) = string_field(t, "err") {
        return Reply::Error(one_line(&e));
    }
    if let Some(s) = string_field(t, "ok") {
        return Reply::StatusOwned(one_line(&s));
    }
    if let Value::Number(_) | Value::Integer(_) = field(t, "double") {
        let d = match field(t, "double") {
            Value::Number(n) => n,
            Value::Integer(i) => i as f64,
            _ => 0.0,
        };
        return Reply::Double(d);
    }
    if let Some(s) = string_field(t, "big_number") {
        return Reply::BigNumber(s);
    }
    if let Value::Table(m) = field(t, "map") {
        let pairs = m
            .pairs::<Value, Value>()
            .filter_map(Result::ok)
            .map(|(k, v)| {
                (
                    to_reply(&k, resp3, depth + 1),
                    to_reply(&v, resp3, depth + 1),
                )
            })
            .collect();
        return Reply::Map(pairs);
    }
    if let Value::Table(s) = field(t, "set") {
        let members = s
            .pairs::<Value, Value>()
            .filter_map(Result::ok)
            .map(|(k, _)| to_reply(&k, resp3, depth + 1))
            .collect();
        return Reply::Set(members);
    }
    let mut items = Vec::new();
    for i in 1.. {
        match t.raw_get::<Value>(i) {
            Ok(Value::Nil) | Err(_) => break,
            Ok(v) => items.push(to_reply(&v, resp3, depth + 1)),
        }
    }
    Reply::Array(items)
}

/// Marks an error raised by `redis.call`: the error line follows it. (A Rust function cannot
/// raise a Lua table; the message handler and the script's `pcall` turn it into one.)
const RAISED: &str = "\u{0}rockslot-raised\u{0}";

/// The error `redis.call` raises for a failed command (`line`: its error line).
pub fn raise(line: &str) -> mlua::Error {
    mlua::Error::RuntimeError(format!("{RAISED}{}", one_line(line)))
}

/// Marks an error a library raises at the script's line (lua-cjson's, which Valkey reports
/// as `user_script:N: ...`).
const AT_LINE: &str = "\u{0}rockslot-at-line\u{0}";

/// A library error reported at the script line that called the library.
pub fn at_line(msg: impl std::fmt::Display) -> mlua::Error {
    mlua::Error::RuntimeError(format!("{AT_LINE}{msg}"))
}

/// The error line of a value raised by [`raise`], if it is one.
fn raised_line(v: &Value) -> Option<String> {
    let Value::Error(e) = v else { return None };
    lua_error_text(e).strip_prefix(RAISED).map(str::to_string)
}

/// What a script's `pcall` hands back for an error, as Valkey's does: the error line of a
/// failed `redis.call` or of an error table, the value itself otherwise.
pub fn pcall_error(lua: &Lua, v: Value) -> mlua::Result<Value> {
    if let Some(line) = raised_line(&v) {
        return Ok(Value::String(lua.create_string(line)?));
    }
    if let Value::Table(t) = &v {
        if let Value::String(s) = field(t, "err") {
            return Ok(Value::String(s));
        }
    }
    Ok(v)
}

/// The message handler every script runs under: whatever was raised becomes an error table
/// `{err = "CODE message", source = ..., line = ...}` naming the script line that raised it
/// (Valkey's `__server__err__handler`).
pub fn error_handler(lua: &Lua, err: Value) -> mlua::Result<Table> {
    let t = match err {
        Value::Table(t) => {
            if string_field(&t, "err").is_none() {
                t.raw_set("err", "ERR unknown error")?;
            }
            t
        }
        Value::Error(e) => {
            let t = lua.create_table()?;
            let text = lua_error_text(&e);
            if let Some(line) = text.strip_prefix(RAISED) {
                t.raw_set("err", line)?;
            } else if let Some(msg) = text.strip_prefix(AT_LINE) {
                let (source, at) = user_frame(lua).unwrap_or(("@user_script", 0));
                let source = &source[1..];
                t.raw_set("err", format!("ERR {source}:{at}: {msg}"))?;
            } else {
                t.raw_set("err", format!("ERR {text}"))?;
            }
            t
        }
        other => {
            let text = match &other {
                Value::String(s) => s.to_string_lossy(),
                Value::Nil => "nil".into(),
                v => lua
                    .coerce_string(v.clone())
                    .ok()
                    .flatten()
                    .map(|s| s.to_string_lossy())
                    .unwrap_or_else(|| v.type_name().to_string()),
            };
            let t = lua.create_table()?;
            t.raw_set("err", format!("ERR {text}"))?;
            t
        }
    };
    if field(&t, "line") == Value::Nil {
        if let Some((source, line)) = user_frame(lua) {
            t.raw_set("source", source)?;
            t.raw_set("line", line)?;
        }
    }
    Ok(t)
}

/// The innermost frame of the script itself, below the raising C function or library code.
fn user_frame(lua: &Lua) -> Option<(&'static str, i32)> {
    for level in 1..32 {
        let d = lua.inspect_stack(level)?;
        match d.source().source.as_deref() {
            Some("@user_script") => return Some(("@user_script", d.curr_line())),
            Some("@user_function") => return Some(("@user_function", d.curr_line())),
            _ => {}
        }
    }
    None
}

/// The error a script ended with, from the table [`error_handler`] built.
pub fn script_error(v: &Value) -> ScriptError {
    let Value::Table(t) = v else {
        return ScriptError {
            msg: "ERR unknown error".into(),
            at: None,
        };
    };
    let msg = string_field(t, "err").unwrap_or_else(|| "ERR unknown error".into());
    let at = match (
        string_field(t, "source"),
        lua_number_to_i64(&field(t, "line")),
    ) {
        (Some(s), Some(l)) => Some((s, l)),
        _ => None,
    };
    ScriptError { msg, at }
}

/// A value as `redis.log` prints it.
pub fn lua_display(v: &Value) -> String {
    match v {
        Value::String(s) => s.to_string_lossy(),
        Value::Integer(i) => i.to_string(),
        Value::Number(n) => format_double(*n),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn c_cast_matches_x86() {
        assert_eq!(c_cast(3.99), 3);
        assert_eq!(c_cast(-3.7), -3);
        assert_eq!(c_cast(1e20), i64::MIN);
        assert_eq!(c_cast(f64::NAN), i64::MIN);
        assert_eq!(c_cast(-1e20), i64::MIN);
    }

    #[test]
    fn error_reply_text_follows_valkey() {
        assert_eq!(error_reply_text(b"MY bad"), "MY bad");
        assert_eq!(error_reply_text(b"oops"), "ERR oops");
        assert_eq!(error_reply_text(b"-X y"), "X y");
        assert_eq!(error_reply_text(b""), "ERR ");
        assert_eq!(error_reply_text(b"E m\r\n"), "E m");
    }
}
