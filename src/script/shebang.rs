//! The `#!lua flags=...` first line of an EVAL script (Valkey 7+), with Valkey's messages.

/// What a script's shebang declares. A script without one has none of these.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScriptFlags {
    /// The script declared its flags (Valkey then applies the stricter defaults of functions).
    pub declared: bool,
    pub no_writes: bool,
    pub allow_oom: bool,
    pub allow_stale: bool,
    pub no_cluster: bool,
    pub allow_cross_slot_keys: bool,
}

/// Splits a script into its flags and the code Lua compiles: the shebang line is blanked, so
/// line numbers stay those of the text the user sent.
pub fn parse(body: &[u8]) -> Result<(ScriptFlags, Vec<u8>), String> {
    if !body.starts_with(b"#!") {
        return Ok((ScriptFlags::default(), body.to_vec()));
    }
    let Some(end) = body.iter().position(|&b| b == b'\n') else {
        return Err("ERR Invalid script shebang".into());
    };
    let line = String::from_utf8_lossy(&body[2..end]);
    let mut words = line.split(' ').filter(|w| !w.is_empty());
    let engine = words.next().unwrap_or("");
    if engine != "lua" {
        return Err(format!("ERR Could not find scripting engine '{engine}'"));
    }
    let mut flags = ScriptFlags {
        declared: true,
        ..ScriptFlags::default()
    };
    for w in words {
        let Some(list) = w.strip_prefix("flags=") else {
            return Err(format!("ERR Unknown lua shebang option: {w}"));
        };
        for f in list.split(',').filter(|f| !f.is_empty()) {
            match f {
                "no-writes" => flags.no_writes = true,
                "allow-oom" => flags.allow_oom = true,
                "allow-stale" => flags.allow_stale = true,
                "no-cluster" => flags.no_cluster = true,
                "allow-cross-slot-keys" => flags.allow_cross_slot_keys = true,
                other => return Err(format!("ERR Unexpected flag in script shebang: {other}")),
            }
        }
    }
    Ok((flags, body[end..].to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shebangs_parse_as_valkey() {
        let (f, code) = parse(b"#!lua flags=no-writes,allow-oom\nreturn 1").unwrap();
        assert!(f.declared && f.no_writes && f.allow_oom && !f.no_cluster);
        assert_eq!(code, b"\nreturn 1");
        assert_eq!(parse(b"return 1").unwrap().0, ScriptFlags::default());
        assert_eq!(
            parse(b"#!lua flags=bogus\n").unwrap_err(),
            "ERR Unexpected flag in script shebang: bogus"
        );
        assert_eq!(
            parse(b"#!python\n").unwrap_err(),
            "ERR Could not find scripting engine 'python'"
        );
        assert_eq!(
            parse(b"#!lua name=x\n").unwrap_err(),
            "ERR Unknown lua shebang option: name=x"
        );
        assert!(parse(b"#!lua   flags=  \nreturn 4").unwrap().0.declared);
        assert_eq!(parse(b"#!lua").unwrap_err(), "ERR Invalid script shebang");
    }
}
