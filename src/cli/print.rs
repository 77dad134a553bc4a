//! Reply printing in valkey-cli's two styles: human (TTY) and raw (pipes).

use std::io::Write;

use super::Value;

pub fn print(v: &Value, tty: bool, out: &mut impl Write) -> std::io::Result<()> {
    if tty {
        human(v, 0, out)
    } else {
        raw(v, out)
    }
}

fn raw(v: &Value, out: &mut impl Write) -> std::io::Result<()> {
    match v {
        Value::Status(s) | Value::Error(s) => writeln!(out, "{s}"),
        Value::Int(i) => writeln!(out, "{i}"),
        Value::Bulk(b) => {
            out.write_all(b)?;
            writeln!(out)
        }
        Value::Nil => writeln!(out),
        Value::Array(items) => items.iter().try_for_each(|i| raw(i, out)),
    }
}

fn human(v: &Value, indent: usize, out: &mut impl Write) -> std::io::Result<()> {
    match v {
        Value::Status(s) => writeln!(out, "{s}"),
        Value::Error(s) => writeln!(out, "(error) {s}"),
        Value::Int(i) => writeln!(out, "(integer) {i}"),
        Value::Bulk(b) => writeln!(out, "\"{}\"", String::from_utf8_lossy(b).escape_debug()),
        Value::Nil => writeln!(out, "(nil)"),
        Value::Array(items) if items.is_empty() => writeln!(out, "(empty array)"),
        Value::Array(items) => {
            let width = items.len().to_string().len();
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    write!(out, "{}", " ".repeat(indent))?;
                }
                write!(out, "{:>width$}) ", i + 1)?;
                human(item, indent + width + 2, out)?;
            }
            Ok(())
        }
    }
}
