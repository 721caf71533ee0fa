//! The cluster map's decoders (`control/src/map.rs`): the byte form a node stores and the
//! JSON form control messages carry. Mode byte bit 0 set: the checksum at the end of the
//! byte form is made right, so the fuzzer reaches the fields; bit 1 set: the rest is read
//! as the JSON form instead.
//!
//! Checked: no panic; a map that decodes is valid, and encodes to a form that decodes to
//! the same map (byte form and JSON form alike).
#![no_main]

use libfuzzer_sys::fuzz_target;
use pinion_control::map::ClusterMap;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let decoded = if mode & 2 == 2 {
        serde_json::from_slice::<ClusterMap>(rest).ok()
    } else {
        let mut b = rest.to_vec();
        if mode & 1 == 1 && b.len() >= 4 {
            let n = b.len() - 4;
            let crc = crc32c::crc32c(&b[..n]);
            b[n..].copy_from_slice(&crc.to_be_bytes());
        }
        ClusterMap::decode(&b).ok()
    };
    let Some(map) = decoded else {
        return;
    };
    map.validate().expect("a decoded map is valid");
    let bytes = map.encode();
    assert_eq!(ClusterMap::decode(&bytes).as_ref(), Ok(&map));
    let json = serde_json::to_vec(&map).expect("a map encodes as JSON");
    let back: ClusterMap = serde_json::from_slice(&json).expect("its JSON decodes");
    assert_eq!(back, map);
    assert_eq!(back.encode(), bytes);
});
