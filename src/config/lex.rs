//! Value-level syntax shared by the loader, CONFIG SET and CONFIG REWRITE:
//! Valkey's `sdssplitargs` tokenizer, `sdscatrepr` quoting, `memtoull` memory
//! units and the yes/no and integer parsers with Valkey's error wording.
//!
//! Everything here is pure and byte-exact to Valkey where that is observable;
//! it must not know about particular directives.

/// Reason text Valkey uses when `sdssplitargs` fails on a config line.
pub(crate) const UNBALANCED_QUOTES: &str = "Unbalanced quotes in configuration line";

/// Valkey's reason for a known directive given the wrong number of values.
pub(crate) const WRONG_ARGS: &str = "wrong number of arguments";

/// The single value of a one-argument directive.
pub(crate) fn non_empty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_string())
}

pub(crate) fn one(args: &[String]) -> Result<&str, String> {
    match args {
        [v] => Ok(v.as_str()),
        _ => Err(WRONG_ARGS.to_string()),
    }
}

/// Splits a line the way Valkey's `sdssplitargs` does (the one tokenizer, shared with inline
/// commands). `None` means unbalanced quotes (including a closing quote glued to the next
/// character).
pub(crate) fn split_args(line: &[u8]) -> Option<Vec<Vec<u8>>> {
    crate::resp::split_args(line)
}

/// Valkey's `sdscatrepr` of a config value.
pub(crate) fn repr(s: &str) -> String {
    crate::resp::repr(s.as_bytes())
}

/// Leaves tokens that survive `split_args` unchanged as they are, quotes the
/// rest; used where Valkey writes raw words (bind addresses, opaque values).
pub(crate) fn quote_if_needed(s: &str) -> String {
    let plain = !s.is_empty()
        && s.bytes()
            .all(|b| (0x21..=0x7e).contains(&b) && b != b'"' && b != b'\'');
    if plain {
        s.to_string()
    } else {
        repr(s)
    }
}

/// Valkey's `memtoull`: digits then an optional case-insensitive unit
/// (b, k=1000, kb=1024, m, mb, g, gb). `None` on anything else or overflow.
pub(crate) fn parse_memory(s: &str) -> Option<u64> {
    let digits_end = s
        .bytes()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(s.len());
    let (digits, unit) = s.split_at(digits_end);
    let mul: u64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" => 1000,
        "kb" => 1024,
        "m" => 1000 * 1000,
        "mb" => 1024 * 1024,
        "g" => 1000 * 1000 * 1000,
        "gb" => 1024 * 1024 * 1024,
        _ => return None,
    };
    // Valkey's strtoull accepts an empty digit string as 0; "mb" meaning 0 is a
    // typo trap, so it is refused here.
    if digits.is_empty() {
        return None;
    }
    digits.parse::<u64>().ok()?.checked_mul(mul)
}

/// The compact form CONFIG REWRITE writes for memory values (`512mb`, `1gb`).
pub(crate) fn format_memory(bytes: u64) -> String {
    const KB: u64 = 1024;
    const MB: u64 = 1024 * KB;
    const GB: u64 = 1024 * MB;
    if bytes != 0 && bytes % GB == 0 {
        format!("{}gb", bytes / GB)
    } else if bytes != 0 && bytes % MB == 0 {
        format!("{}mb", bytes / MB)
    } else if bytes != 0 && bytes % KB == 0 {
        format!("{}kb", bytes / KB)
    } else {
        bytes.to_string()
    }
}

pub(crate) fn parse_bool(s: &str) -> Result<bool, String> {
    if s.eq_ignore_ascii_case("yes") {
        Ok(true)
    } else if s.eq_ignore_ascii_case("no") {
        Ok(false)
    } else {
        Err("argument must be 'yes' or 'no'".to_string())
    }
}

pub(crate) fn yes_no(b: bool) -> String {
    if b { "yes" } else { "no" }.to_string()
}

/// Valkey's `string2ll`: optional '-', digits, nothing else (no '+', no spaces,
/// no leading zeros other than "0" itself).
pub(crate) fn parse_int(s: &str) -> Result<i64, String> {
    const ERR: &str = "argument couldn't be parsed into an integer";
    let digits = s.strip_prefix('-').unwrap_or(s);
    let well_formed = !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (digits == "0" || !digits.starts_with('0'))
        && s != "-0";
    if !well_formed {
        return Err(ERR.to_string());
    }
    s.parse::<i64>().map_err(|_| ERR.to_string())
}

/// Parses an integer (or memory value when `memory`) and checks it against an
/// inclusive range, with Valkey's messages.
pub(crate) fn parse_bounded(s: &str, memory: bool, min: u64, max: u64) -> Result<u64, String> {
    let value: i128 = if memory {
        match parse_memory(s) {
            Some(v) => i128::from(v),
            None => return Err("argument must be a memory value".to_string()),
        }
    } else {
        i128::from(parse_int(s)?)
    };
    if value < i128::from(min) || value > i128::from(max) {
        return Err(format!(
            "argument must be between {min} and {max} inclusive"
        ));
    }
    u64::try_from(value).map_err(|_| format!("argument must be between {min} and {max} inclusive"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(s: &str) -> Option<Vec<String>> {
        split_args(s.as_bytes()).map(|v| {
            v.into_iter()
                .map(|a| String::from_utf8_lossy(&a).into_owned())
                .collect()
        })
    }

    #[test]
    fn split_plain_and_quoted() {
        assert_eq!(split("port 7000").unwrap(), ["port", "7000"]);
        assert_eq!(split("  a\t b  ").unwrap(), ["a", "b"]);
        assert_eq!(split("").unwrap(), Vec::<String>::new());
        assert_eq!(
            split("requirepass \"a b\"").unwrap(),
            ["requirepass", "a b"]
        );
        assert_eq!(split("x \"\"").unwrap(), ["x", ""]);
        assert_eq!(split("x ''").unwrap(), ["x", ""]);
        assert_eq!(split("x 'it\\'s'").unwrap(), ["x", "it's"]);
        assert_eq!(
            split("x 'a\\nb'").unwrap(),
            ["x", "a\\nb"],
            "no escapes in single quotes"
        );
        assert_eq!(
            split(r#"x "a\nb\r\t\\\"\x41\x4a""#).unwrap(),
            ["x", "a\nb\r\t\\\"AJ"]
        );
        assert_eq!(split(r#"x "\xZZ""#).unwrap(), ["x", "xZZ"]);
        assert_eq!(
            split("foo\"bar\"").unwrap(),
            ["foobar"],
            "quote may open mid-token"
        );
        assert_eq!(split(r#"x "a\b\a""#).unwrap(), ["x", "a\u{8}\u{7}"]);
    }

    #[test]
    fn split_unbalanced() {
        assert!(split("x \"abc").is_none());
        assert!(split("x 'abc").is_none());
        assert!(split("x \"abc\"def").is_none());
        assert!(split("x 'abc'def").is_none());
        assert!(split("x \"abc\\").is_none());
    }

    #[test]
    fn repr_round_trips() {
        for s in [
            "",
            "plain",
            "a b",
            "q\"uote",
            "back\\slash",
            "nl\n",
            "tab\t",
            "é",
            "\u{1}",
        ] {
            let line = format!("k {}", repr(s));
            assert_eq!(split(&line).unwrap(), ["k", s], "{line}");
            let line = format!("k {}", quote_if_needed(s));
            assert_eq!(split(&line).unwrap(), ["k", s], "{line}");
        }
        assert_eq!(repr("valkey"), "\"valkey\"");
        assert_eq!(quote_if_needed("127.0.0.1"), "127.0.0.1");
        assert_eq!(quote_if_needed(""), "\"\"");
    }

    #[test]
    fn memory_units() {
        assert_eq!(parse_memory("0"), Some(0));
        assert_eq!(parse_memory("100"), Some(100));
        assert_eq!(parse_memory("100b"), Some(100));
        assert_eq!(parse_memory("1k"), Some(1000));
        assert_eq!(parse_memory("1kb"), Some(1024));
        assert_eq!(parse_memory("1KB"), Some(1024));
        assert_eq!(parse_memory("2m"), Some(2_000_000));
        assert_eq!(parse_memory("2Mb"), Some(2 * 1024 * 1024));
        assert_eq!(parse_memory("3g"), Some(3_000_000_000));
        assert_eq!(parse_memory("3gb"), Some(3 * 1024 * 1024 * 1024));
        assert_eq!(parse_memory("1tb"), None);
        assert_eq!(parse_memory("-1"), None);
        assert_eq!(parse_memory("mb"), None);
        assert_eq!(parse_memory("1.5mb"), None);
        assert_eq!(parse_memory("99999999999999999999gb"), None);
        assert_eq!(format_memory(512 * 1024 * 1024), "512mb");
        assert_eq!(format_memory(1024 * 1024 * 1024), "1gb");
        assert_eq!(format_memory(2048), "2kb");
        assert_eq!(format_memory(1000), "1000");
        assert_eq!(format_memory(0), "0");
    }

    #[test]
    fn integers_and_bools() {
        assert_eq!(parse_int("42"), Ok(42));
        assert_eq!(parse_int("-7"), Ok(-7));
        assert!(parse_int("+7").is_err());
        assert!(parse_int("07").is_err());
        assert!(parse_int("1k").is_err());
        assert!(parse_int("").is_err());
        assert_eq!(parse_bool("YES"), Ok(true));
        assert_eq!(parse_bool("no"), Ok(false));
        assert_eq!(
            parse_bool("1").unwrap_err(),
            "argument must be 'yes' or 'no'"
        );
        assert_eq!(
            parse_bounded("0", false, 1, 65535).unwrap_err(),
            "argument must be between 1 and 65535 inclusive"
        );
        assert_eq!(
            parse_bounded("-5", false, 0, 10).unwrap_err(),
            "argument must be between 0 and 10 inclusive"
        );
        assert_eq!(
            parse_bounded("1x", true, 0, 10).unwrap_err(),
            "argument must be a memory value"
        );
        assert_eq!(parse_bounded("2mb", true, 1 << 20, u64::MAX), Ok(2 << 20));
    }
}
