//! Redis-compatible glob matching (`stringmatchlen`), used by KEYS, SCAN MATCH,
//! PSUBSCRIBE, CONFIG GET and anything else that takes a Redis pattern.
//!
//! This module owns only the matching semantics. It must not allocate, must not
//! recurse, and must stay linear-ish in the input: patterns come straight from
//! clients, and Redis itself had CVE-2022-36021 for exponential matching.
//!
//! Semantics follow Valkey's `stringmatchlen` byte for byte, including quirks:
//! - `*` any run of bytes, `?` exactly one byte, `\x` the literal `x`
//!   (a trailing lone `\` is a literal backslash).
//! - `[abc]`, `[^abc]`, `[a-z]`; a reversed range `[z-a]` means `[a-z]`;
//!   `\` inside a class escapes the next byte (compared case-sensitively even
//!   with `nocase`, as Valkey does).
//! - An unterminated `[` class swallows the rest of the pattern: `[abc` matches
//!   exactly one of `a`, `b`, `c`.
//! - The empty string only matches the empty pattern — not even `*`. Valkey's
//!   KEYS/SCAN special-case a lone `*` before calling the matcher; callers that
//!   can see empty keys or channels must do the same if they want that.
//! - `nocase` folds ASCII only (Valkey uses `tolower` in the C locale).
//!
//! Range bounds compare as unsigned bytes; Valkey compares plain `char`, which is
//! signed on x86, so ranges that straddle 0x80 can differ there. Nobody writes
//! those on purpose.

/// Matches `string` against the Redis glob `pattern`.
///
/// Runs in O(pattern * string) worst case: every token except `*` consumes
/// exactly one byte, so on a mismatch it is enough to retry from the most
/// recent `*` one byte further on; earlier stars never need revisiting.
pub fn glob_match(pattern: &[u8], string: &[u8], nocase: bool) -> bool {
    if string.is_empty() {
        // Valkey's loop never runs for an empty string, so only an empty pattern
        // matches; trailing-star skipping only happens after consuming a byte.
        return pattern.is_empty();
    }
    let mut p = 0usize;
    let mut s = 0usize;
    // (pattern index just after the last star, string index that star is
    // currently assumed to stop at)
    let mut resume: Option<(usize, usize)> = None;

    while s < string.len() {
        if p < pattern.len() {
            if pattern[p] == b'*' {
                while p < pattern.len() && pattern[p] == b'*' {
                    p += 1;
                }
                if p == pattern.len() {
                    return true;
                }
                resume = Some((p, s));
                continue;
            }
            let (matched, next) = match_one(pattern, p, string[s], nocase);
            if matched {
                p = next;
                s += 1;
                continue;
            }
        }
        match resume {
            Some((star_p, star_s)) => {
                let star_s = star_s + 1;
                resume = Some((star_p, star_s));
                p = star_p;
                s = star_s;
            }
            None => return false,
        }
    }
    while p < pattern.len() && pattern[p] == b'*' {
        p += 1;
    }
    p == pattern.len()
}

/// Matches the single non-star token starting at `pattern[p]` against byte `c`.
/// Returns whether it matched and the index just past the token.
fn match_one(pattern: &[u8], p: usize, c: u8, nocase: bool) -> (bool, usize) {
    match pattern[p] {
        b'?' => (true, p + 1),
        b'[' => match_class(pattern, p + 1, c, nocase),
        b'\\' if p + 1 < pattern.len() => (eq(pattern[p + 1], c, nocase), p + 2),
        lit => (eq(lit, c, nocase), p + 1),
    }
}

/// `i` points just past the `[`. Mirrors Valkey's loop order exactly, because
/// the order of the checks decides what odd classes like `[a-]` or `[\` mean.
fn match_class(pattern: &[u8], mut i: usize, c: u8, nocase: bool) -> (bool, usize) {
    let negate = pattern.get(i) == Some(&b'^');
    if negate {
        i += 1;
    }
    let mut matched = false;
    loop {
        let rest = pattern.len().saturating_sub(i);
        if rest == 0 {
            // Unbalanced `[`: the class runs to the end of the pattern.
            break;
        }
        let b = pattern[i];
        if b == b'\\' && rest >= 2 {
            i += 1;
            if pattern[i] == c {
                matched = true;
            }
        } else if b == b']' {
            i += 1;
            break;
        } else if rest >= 3 && pattern[i + 1] == b'-' {
            let (mut lo, mut hi) = (b, pattern[i + 2]);
            if lo > hi {
                std::mem::swap(&mut lo, &mut hi);
            }
            let mut x = c;
            if nocase {
                lo = lo.to_ascii_lowercase();
                hi = hi.to_ascii_lowercase();
                x = x.to_ascii_lowercase();
            }
            if lo <= x && x <= hi {
                matched = true;
            }
            i += 2;
        } else if eq(b, c, nocase) {
            matched = true;
        }
        i += 1;
    }
    (matched != negate, i)
}

#[inline]
fn eq(a: u8, b: u8, nocase: bool) -> bool {
    if nocase {
        a.eq_ignore_ascii_case(&b)
    } else {
        a == b
    }
}

#[cfg(test)]
mod tests {
    use super::glob_match;

    fn m(p: &str, s: &str) -> bool {
        glob_match(p.as_bytes(), s.as_bytes(), false)
    }
    fn mi(p: &str, s: &str) -> bool {
        glob_match(p.as_bytes(), s.as_bytes(), true)
    }

    #[test]
    fn literals_and_wildcards() {
        assert!(m("hello", "hello"));
        assert!(!m("hello", "hell"));
        assert!(!m("hell", "hello"));
        assert!(m("h?llo", "hallo"));
        assert!(!m("h?llo", "hllo"));
        assert!(m("h*llo", "hllo"));
        assert!(m("h*llo", "heeeello"));
        assert!(m("*", "anything"));
        assert!(m("**", "x"));
        assert!(m("a*", "a"));
        assert!(m("a**", "a"));
        assert!(m("*a*", "bab"));
        assert!(!m("*a*", "bbb"));
        assert!(m("user:*:name", "user:1000:name"));
        assert!(!m("user:*:name", "user:1000:nam"));
        assert!(m("*.conf", "x.y.conf"));
        assert!(!m("a?", "a"));
        assert!(m("a*?", "ab"));
        assert!(!m("a*?", "a"));
    }

    #[test]
    fn empty_string_quirk() {
        assert!(m("", ""));
        assert!(!m("*", ""));
        assert!(!m("?", ""));
        assert!(!m("", "a"));
    }

    #[test]
    fn classes() {
        assert!(m("h[ae]llo", "hello"));
        assert!(m("h[ae]llo", "hallo"));
        assert!(!m("h[ae]llo", "hillo"));
        assert!(m("h[^e]llo", "hallo"));
        assert!(!m("h[^e]llo", "hello"));
        assert!(m("h[a-b]llo", "hbllo"));
        assert!(!m("h[a-b]llo", "hcllo"));
        assert!(m("h[b-a]llo", "hallo"), "reversed ranges are allowed");
        assert!(m("[0-9][0-9]", "42"));
        assert!(m("[\\]]", "]"));
        assert!(m("[\\-]", "-"));
        assert!(m("[a\\-z]", "-"));
        assert!(!m("[a\\-z]", "b"));
        // `]` right after `[` closes an empty class, which matches nothing.
        assert!(!m("[]]", "]"));
        assert!(!m("[]]", "]]"));
    }

    #[test]
    fn unbalanced_class_swallows_rest() {
        assert!(m("[abc", "a"));
        assert!(m("[abc", "c"));
        assert!(!m("[abc", "ab"));
        assert!(!m("[abc", "d"));
        assert!(m("x[ab", "xb"));
        assert!(!m("[", "a"));
        assert!(m("[^", "a"), "empty negated class matches any byte");
        assert!(m("[^a", "b"));
        assert!(!m("[^a", "a"));
        // `[a-]` is a range from ']' to 'a' (the `]` is eaten by the range).
        assert!(m("[a-]", "_"));
        assert!(m("[a-]", "a"));
        assert!(!m("[a-]", "b"));
        // trailing backslash inside a class is a literal backslash
        assert!(m("[a\\", "\\"));
    }

    #[test]
    fn escapes() {
        assert!(m("\\*", "*"));
        assert!(!m("\\*", "a"));
        assert!(m("a\\?b", "a?b"));
        assert!(!m("a\\?b", "axb"));
        assert!(m("\\[x\\]", "[x]"));
        assert!(m("a\\", "a\\"), "trailing backslash is literal");
        assert!(m("*\\*", "abc*"));
        assert!(!m("*\\*", "abc"));
    }

    #[test]
    fn nocase() {
        assert!(mi("HeLLo", "hello"));
        assert!(!m("HeLLo", "hello"));
        assert!(mi("h[A-Z]llo", "hello"));
        assert!(mi("h[E]llo", "hello"));
        assert!(mi("*PORT*", "cluster-port"));
        assert!(!mi("[^E]", "e"));
        // Escaped bytes inside classes stay case-sensitive, like Valkey.
        assert!(!mi("[\\E]", "e"));
    }

    #[test]
    fn backtracking_is_correct() {
        assert!(m("*ab", "aab"));
        assert!(m("*aab", "aaab"));
        assert!(m("a*b*c", "abbbbc"));
        assert!(m("a*b*c", "aXbYbZc"));
        assert!(!m("a*b*c", "aXbYbZ"));
        assert!(m("*?*?*", "ab"));
        assert!(!m("*?*?*", "a"));
        assert!(m("*x*y*", "..x..x..y.."));
        assert!(m("a*[0-9]", "abc9"));
        assert!(!m("a*[0-9]", "abc9z"));
    }

    #[test]
    fn pathological_patterns_are_fast() {
        let s = "a".repeat(10_000);
        let p = "a*".repeat(100) + "b";
        let start = std::time::Instant::now();
        assert!(!m(&p, &s));
        let p2 = "*a".repeat(200) + "*";
        assert!(m(&p2, &s));
        let p3 = "*?".repeat(500) + "b";
        assert!(!m(&p3, &s));
        assert!(start.elapsed() < std::time::Duration::from_secs(2));
    }

    #[test]
    fn binary_bytes() {
        assert!(glob_match(b"\xff*", b"\xff\x00\x01", false));
        assert!(glob_match(b"[\x00-\x10]", b"\x05", false));
        assert!(glob_match(b"?", b"\x80", true));
    }
}
