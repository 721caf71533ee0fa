//! Every Kafka request decoder: the input is a request payload (the frame without its size
//! prefix), decoded as the node decodes it (`proto::kafka::decode_request`: the header
//! peek, the served-version check, `schema::check`, then kafka-protocol's decoders). An API
//! and version with a wire table that the node does not serve yet is checked and decoded
//! directly, as `schema/tests.rs` does.
//!
//! Checked: no panic, no abort; the bounded-allocation property (decoding a request of `n`
//! bytes holds at most `48n + 16 KiB` at its peak, through the counting allocator); a
//! payload the check refuses never decodes; the framing agrees with the payload's size.
#![no_main]

use bytes::Bytes;
use kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind};
use kafka_protocol::protocol::Decodable;
use libfuzzer_sys::fuzz_target;
use pinion::proto::kafka::{decode_request, frame_len, peek_header, schema, supported};
use pinion::runtime::alloc::measure;

/// The allocation bound of `schema/tests.rs` (`bound`): 48 bytes per byte, plus the
/// request's fixed-size structs.
fn bound(len: usize) -> usize {
    48 * len + 16 * 1024
}

fuzz_target!(|payload: &[u8]| {
    // Framing: the size prefix of this payload gives back the whole frame.
    let mut frame = (payload.len() as u32).to_be_bytes().to_vec();
    frame.extend_from_slice(payload);
    assert_eq!(frame_len(&frame, usize::MAX >> 1), Ok(Some(frame.len())));
    assert_eq!(
        frame_len(&frame[..frame.len() - 1], usize::MAX >> 1),
        Ok(None)
    );

    let Ok(peek) = peek_header(payload) else {
        assert!(payload.len() < 8);
        assert!(decode_request(Bytes::copy_from_slice(payload)).is_err());
        return;
    };
    let Ok(key) = ApiKey::try_from(peek.key) else {
        assert!(decode_request(Bytes::copy_from_slice(payload)).is_err());
        return;
    };
    let version = peek.version;
    let checked = schema::check(key, version, payload);
    let bytes = Bytes::copy_from_slice(payload);
    let (decoded, usage) = if supported(key, version) {
        measure(|| {
            decode_request(bytes)
                .map(|r| (r.key, r.version))
                .map_err(|_| ())
        })
    } else if schema::find(key, version).is_some() {
        // A table for an API not served yet: the check, then the crate's decoder.
        measure(|| {
            if checked.is_err() {
                return Err(());
            }
            let mut buf = bytes;
            RequestHeader::decode(&mut buf, key.request_header_version(version)).map_err(|_| ())?;
            RequestKind::decode(key, &mut buf, version).map_err(|_| ())?;
            Ok((key, version))
        })
    } else {
        assert!(
            decode_request(bytes).is_err(),
            "{key:?} v{version} has no table, yet decoded"
        );
        return;
    };
    assert!(
        usage.peak_bytes <= bound(payload.len()),
        "a {}-byte {key:?} v{version} request allocated {} bytes at its peak",
        payload.len(),
        usage.peak_bytes
    );
    if checked.is_err() {
        assert!(
            decoded.is_err(),
            "{key:?} v{version}: refused by the check, yet decoded"
        );
    }
    if let Ok((k, v)) = decoded {
        assert_eq!((k, v), (key, version));
    }
});
