//! Glob matching for KEYS, SCAN MATCH and CONFIG GET, with Redis's `stringmatchlen` syntax.

/// Glob matching with Redis's `stringmatchlen` syntax: `*`, `?`, `[abc]`, `[^a]`, `[a-z]`,
/// `\\x`. Iterative with one backtrack point (the last `*`), so it runs in O(pattern × key)
/// time whatever the pattern: a hostile `*a*a*a...b` cannot stall the shard.
pub fn glob_match(p: &[u8], s: &[u8], nocase: bool) -> bool {
    let (mut pi, mut si) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        if pi < p.len() && p[pi] == b'*' {
            while pi < p.len() && p[pi] == b'*' {
                pi += 1;
            }
            if pi == p.len() {
                return true;
            }
            star = Some((pi, si));
            continue;
        }
        if pi < p.len() {
            if let Some(next) = match_one(p, pi, s[si], nocase) {
                pi = next;
                si += 1;
                continue;
            }
        }
        match star {
            Some((sp, ss)) => {
                pi = sp;
                si = ss + 1;
                star = Some((sp, ss + 1));
            }
            None => return false,
        }
    }
    while pi < p.len() && p[pi] == b'*' {
        pi += 1;
    }
    pi == p.len()
}

/// Match one pattern element at `pi` (not `*`) against `ch`; the index after the element.
fn match_one(p: &[u8], pi: usize, ch: u8, nocase: bool) -> Option<usize> {
    let eq = |a: u8, b: u8| {
        if nocase {
            a.eq_ignore_ascii_case(&b)
        } else {
            a == b
        }
    };
    match p[pi] {
        b'?' => Some(pi + 1),
        b'\\' if pi + 1 < p.len() => eq(p[pi + 1], ch).then_some(pi + 2),
        b'[' => {
            let mut i = pi + 1;
            let not = p.get(i) == Some(&b'^');
            if not {
                i += 1;
            }
            let mut matched = false;
            while i < p.len() && p[i] != b']' {
                if p[i] == b'\\' && i + 1 < p.len() {
                    i += 1;
                    matched |= eq(p[i], ch);
                } else if i + 2 < p.len() && p[i + 1] == b'-' && p[i + 2] != b']' {
                    let (mut lo, mut hi) = (p[i], p[i + 2]);
                    if lo > hi {
                        std::mem::swap(&mut lo, &mut hi);
                    }
                    matched |= (lo..=hi).contains(&ch)
                        || (nocase && (lo..=hi).contains(&ch.to_ascii_lowercase()))
                        || (nocase && (lo..=hi).contains(&ch.to_ascii_uppercase()));
                    i += 2;
                } else {
                    matched |= eq(p[i], ch);
                }
                i += 1;
            }
            // An unterminated class ends at the pattern's end, as in Redis.
            (matched != not).then_some((i + 1).min(p.len()))
        }
        c => eq(c, ch).then_some(pi + 1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_patterns() {
        assert!(glob_match(b"*", b"anything", false));
        assert!(glob_match(b"h?llo", b"hello", false));
        assert!(glob_match(b"h[ae]llo", b"hallo", false));
        assert!(!glob_match(b"h[^e]llo", b"hello", false));
        assert!(glob_match(b"h[a-b]llo", b"hbllo", false));
        assert!(glob_match(b"user:*:name", b"user:42:name", false));
        assert!(!glob_match(b"user:*:name", b"user:42:age", false));
        assert!(glob_match(b"a\\*b", b"a*b", false));
        assert!(glob_match(b"HELLO", b"hello", true));
        assert!(glob_match(b"*", b"", false));
        assert!(glob_match(b"a*", b"a", false));
        assert!(!glob_match(b"a?", b"a", false));
        assert!(glob_match(b"*b*", b"abc", false));
        // A pathological pattern finishes quickly (the recursive matcher took seconds here).
        let key = vec![b'a'; 5000];
        let t = std::time::Instant::now();
        assert!(!glob_match(b"*a*a*a*a*a*a*a*a*a*a*a*a*b", &key, false));
        assert!(t.elapsed() < std::time::Duration::from_secs(1));
    }
}
