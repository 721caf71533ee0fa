//! The topics of a consumer's subscription, read from its JoinGroup protocol metadata
//! (Kafka's `ConsumerProtocolSubscription`: version i16, then topics as an i32 count of
//! i16-length strings; what follows is not needed here). Used by OffsetDelete, which keeps
//! the offsets of topics an active group consumes. The bytes come from clients: every
//! length is checked against what is left.

/// The subscribed topics, or None when the metadata is not a consumer subscription.
pub fn topics(metadata: &[u8]) -> Option<Vec<String>> {
    fn take<'a>(b: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
        if b.len() < n {
            return None;
        }
        let (a, rest) = b.split_at(n);
        *b = rest;
        Some(a)
    }
    let mut b = metadata;
    let v = take(&mut b, 2)?;
    if i16::from_be_bytes([v[0], v[1]]) < 0 {
        return None;
    }
    let n = take(&mut b, 4)?;
    let n = i32::from_be_bytes([n[0], n[1], n[2], n[3]]);
    let mut out = Vec::new();
    for _ in 0..n.max(0) {
        let l = take(&mut b, 2)?;
        let l = i16::from_be_bytes([l[0], l[1]]);
        let s = take(&mut b, usize::try_from(l).ok()?)?;
        out.push(String::from_utf8(s.to_vec()).ok()?);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_topics_and_refuses_garbage() {
        let mut m = vec![0, 1, 0, 0, 0, 2, 0, 1, b'a', 0, 2, b'b', b'c'];
        m.extend_from_slice(&[0xff, 0xff, 0xff, 0xff]); // user data: null
        assert_eq!(topics(&m), Some(vec!["a".into(), "bc".into()]));
        for cut in 0..12 {
            assert_eq!(topics(&m[..cut]), None);
        }
        assert_eq!(topics(&[0, 0, 0x7f, 0xff, 0xff, 0xff]), None);
        assert_eq!(topics(&[0, 0, 0, 0, 0, 1, 0x80, 0]), None);
    }
}
