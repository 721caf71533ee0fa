//! The control plane's wire (`control/src/wire.rs`): frames read off a stream, their MACs
//! checked, and the JSON messages inside decoded as the server (`server::msg::ClientMsg`)
//! and a node (`twopc::ToMember`, whose maps are validated on decode) decode them.
//!
//! Mode byte bit 0 clear: the rest is a raw stream read frame by frame (`read_frame`, then
//! `Sealer::open`), as from an unauthenticated peer: no frame may pass the MAC. Bit 0 set:
//! the rest is a payload, sealed by a client and opened by the server with the shared
//! secret, so the fuzzer reaches the JSON decoders.
//!
//! Checked: no panic; a frame over the bound or shorter than its MAC is refused before its
//! body is read; open(seal(p)) is p; one flipped byte of a sealed frame fails the MAC; a
//! message that decodes encodes to JSON that decodes to the same message.
#![no_main]

use std::io::Cursor;

use libfuzzer_sys::fuzz_target;
use pinion_control::server::msg::ClientMsg;
use pinion_control::twopc::ToMember;
use pinion_control::wire::{read_frame, Sealer, Side, WireError};

const SECRET: &[u8] = b"fuzzing-secret-0123456789";
const NONCE: [u8; 16] = *b"nonce-of-16bytes";

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode & 1 == 0 {
        let mut r = Cursor::new(rest);
        let mut server = Sealer::new(SECRET, NONCE, Side::Client);
        loop {
            match read_frame(&mut r) {
                Ok(body) => {
                    assert!(body.len() >= 32 && body.len() <= rest.len());
                    // A forged frame: 2^-256 to pass.
                    assert!(matches!(server.open(&body), Err(WireError::BadMac)));
                }
                Err(WireError::Io(_)) => break,
                Err(WireError::TooLong(n)) => {
                    assert!(n > pinion_control::limits::FRAME_BYTES_MAX);
                    break;
                }
                Err(WireError::TooShort(n)) => {
                    assert!(n < 32);
                    break;
                }
                Err(e) => panic!("read_frame: {e}"),
            }
        }
        return;
    }

    let mut client = Sealer::new(SECRET, NONCE, Side::Client);
    let mut server = Sealer::new(SECRET, NONCE, Side::Client);
    let frame = client.seal(rest);
    let mut r = Cursor::new(&frame[..]);
    let body = read_frame(&mut r).expect("a sealed frame reads back");
    let payload = server.open(&body).expect("a sealed frame opens").to_vec();
    assert_eq!(payload, rest);
    // The same frame again is a replay: the sequence has moved on.
    assert!(matches!(server.open(&body), Err(WireError::BadMac)));
    if !body.is_empty() {
        let mut flipped = body.clone();
        let i = usize::from(mode >> 1) % flipped.len();
        flipped[i] ^= 0x01;
        let mut fresh = Sealer::new(SECRET, NONCE, Side::Client);
        assert!(fresh.open(&flipped).is_err());
    }

    if let Ok(m) = serde_json::from_slice::<ClientMsg>(&payload) {
        let text = serde_json::to_vec(&m).expect("a message encodes");
        let again: ClientMsg = serde_json::from_slice(&text).expect("its encoding decodes");
        assert_eq!(serde_json::to_vec(&again).expect("encodes"), text);
    }
    if let Ok(m) = serde_json::from_slice::<ToMember>(&payload) {
        let text = serde_json::to_vec(&m).expect("a message encodes");
        let again: ToMember = serde_json::from_slice(&text).expect("its encoding decodes");
        assert_eq!(again, m);
    }
});
