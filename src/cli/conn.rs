//! A blocking RESP2 connection for the CLI.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use anyhow::{bail, Context};

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Status(String),
    Error(String),
    Int(i64),
    Bulk(Vec<u8>),
    Nil,
    Array(Vec<Value>),
}

impl Value {
    pub fn as_text(&self) -> Option<String> {
        match self {
            Value::Status(s) | Value::Error(s) => Some(s.clone()),
            Value::Bulk(b) => Some(String::from_utf8_lossy(b).into_owned()),
            Value::Int(i) => Some(i.to_string()),
            _ => None,
        }
    }
}

fn encode(buf: &mut Vec<u8>, argv: &[Vec<u8>]) {
    buf.extend_from_slice(format!("*{}\r\n", argv.len()).as_bytes());
    for a in argv {
        buf.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        buf.extend_from_slice(a);
        buf.extend_from_slice(b"\r\n");
    }
}

pub struct Connection {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Connection {
    pub fn open(
        host: &str,
        port: u16,
        user: Option<&str>,
        pass: Option<&str>,
    ) -> anyhow::Result<Connection> {
        let stream = TcpStream::connect((host, port))
            .with_context(|| format!("Could not connect to rockslot at {host}:{port}"))?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(Duration::from_secs(60)))?;
        let mut c = Connection {
            reader: BufReader::new(stream.try_clone()?),
            writer: stream,
        };
        if let Some(p) = pass {
            let mut argv = vec![b"AUTH".to_vec()];
            if let Some(u) = user {
                argv.push(u.as_bytes().to_vec());
            }
            argv.push(p.as_bytes().to_vec());
            if let Value::Error(e) = c.call(&argv)? {
                bail!("AUTH failed: {e}");
            }
        }
        Ok(c)
    }

    pub fn call(&mut self, argv: &[Vec<u8>]) -> anyhow::Result<Value> {
        let mut buf = Vec::new();
        encode(&mut buf, argv);
        self.writer.write_all(&buf)?;
        self.read_value(0)
    }

    /// Sends every command in one write, then reads their replies in order.
    pub fn pipeline(&mut self, cmds: &[Vec<Vec<u8>>]) -> anyhow::Result<Vec<Value>> {
        let mut buf = Vec::new();
        for argv in cmds {
            encode(&mut buf, argv);
        }
        self.writer.write_all(&buf)?;
        cmds.iter().map(|_| self.read_value(0)).collect()
    }

    fn read_line(&mut self) -> anyhow::Result<String> {
        let mut line = Vec::new();
        let n = self.reader.read_until(b'\n', &mut line)?;
        if n == 0 {
            bail!("Server closed the connection");
        }
        while matches!(line.last(), Some(b'\n' | b'\r')) {
            line.pop();
        }
        Ok(String::from_utf8_lossy(&line).into_owned())
    }

    fn read_value(&mut self, depth: usize) -> anyhow::Result<Value> {
        if depth > 64 {
            bail!("reply nested too deeply");
        }
        let line = self.read_line()?;
        let (kind, rest) = line.split_at(1.min(line.len()));
        let int = |s: &str| {
            s.parse::<i64>()
                .with_context(|| format!("bad reply line {line:?}"))
        };
        Ok(match kind {
            "+" => Value::Status(rest.to_string()),
            "-" => Value::Error(rest.to_string()),
            ":" => Value::Int(int(rest)?),
            "$" | "=" => {
                let n = int(rest)?;
                if n < 0 {
                    return Ok(Value::Nil);
                }
                let mut b = vec![0; n as usize + 2];
                self.reader.read_exact(&mut b)?;
                b.truncate(n as usize);
                Value::Bulk(b)
            }
            "*" | "~" | "%" => {
                let n = int(rest)?;
                if n < 0 {
                    return Ok(Value::Nil);
                }
                let n = if kind == "%" { n * 2 } else { n };
                let mut items = Vec::with_capacity(n.min(1024) as usize);
                for _ in 0..n {
                    items.push(self.read_value(depth + 1)?);
                }
                Value::Array(items)
            }
            "_" => Value::Nil,
            "," => Value::Bulk(rest.as_bytes().to_vec()),
            "#" => Value::Int(i64::from(rest == "t")),
            _ => bail!("Protocol error: unexpected reply {line:?}"),
        })
    }
}
