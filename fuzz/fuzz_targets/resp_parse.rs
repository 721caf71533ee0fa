//! The RESP request parser (`proto/resp/parse.rs`) over a connection's bytes, as
//! `shard/frames.rs` drives it: frames are taken from the front until one is incomplete or
//! an error closes the connection. The first byte picks the limits (authenticated or not,
//! and small bounds so the fuzzer reaches them).
//!
//! Checked: no panic; a frame consumes at least one byte and never more than the buffer;
//! argument ranges lie in the buffer they index; a whole frame parses the same alone; every
//! strict prefix of a whole frame is `Incomplete` (the parser consumes whole frames or
//! nothing); parsed a few arguments at a time (`parse_sliced`, as a connection parses a
//! request of many arguments over loop turns) it gives the same frame and arguments;
//! `bytes_wanted` asks for more than the buffer holds when it answers.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pinion::proto::resp::parse::{
    bytes_wanted, parse, parse_sliced, split_args, Frame, Limits, Resume,
};

fn limits(mode: u8) -> Limits {
    let base = if mode & 1 == 0 {
        Limits::default()
    } else {
        // Small bounds, so the fuzzer reaches each "too big" branch.
        Limits {
            bulk_bytes_max: 64,
            multibulk_len_max: 8,
            inline_bytes_max: 128,
            unauthenticated: false,
        }
    };
    if mode & 2 == 0 {
        base
    } else {
        base.unauthenticated()
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, stream)) = data.split_first() else {
        return;
    };
    let limits = limits(mode);
    let mut args = Vec::new();
    let mut scratch = Vec::new();
    let mut pos = 0;
    while pos < stream.len() {
        let buf = &stream[pos..];
        if let Some(want) = bytes_wanted(buf) {
            assert!(
                want > buf.len(),
                "bytes_wanted {want} of a {}-byte buffer",
                buf.len()
            );
        }
        let frame = match parse(buf, &limits, &mut args, &mut scratch) {
            Ok(f) => f,
            Err(e) => {
                // The connection gets this text and is closed.
                assert!(e.message().starts_with("ERR Protocol error: "));
                return;
            }
        };
        let consumed = match frame {
            // `args` may hold the arguments read so far; only a whole frame's are used.
            Frame::Incomplete | Frame::Paused => return,
            Frame::Empty { consumed } => consumed,
            Frame::Multibulk { consumed } => {
                assert!(!args.is_empty());
                for &(s, e) in &args {
                    assert!(s <= e && e + 2 <= consumed, "{s}..{e} of {consumed}");
                }
                consumed
            }
            Frame::Inline { consumed } => {
                assert!(!args.is_empty());
                for &(s, e) in &args {
                    assert!(s <= e && e <= scratch.len());
                }
                // The rewritten frame is a multibulk frame that parses to the same arguments.
                let words: Vec<Vec<u8>> =
                    args.iter().map(|&(s, e)| scratch[s..e].to_vec()).collect();
                let rewritten = scratch.clone();
                let (mut a2, mut s2) = (Vec::new(), Vec::new());
                let again = parse(&rewritten, &Limits::default(), &mut a2, &mut s2);
                assert_eq!(
                    again,
                    Ok(Frame::Multibulk {
                        consumed: rewritten.len()
                    })
                );
                let words2: Vec<Vec<u8>> =
                    a2.iter().map(|&(s, e)| rewritten[s..e].to_vec()).collect();
                assert_eq!(words, words2);
                consumed
            }
        };
        assert!(
            consumed >= 1 && consumed <= buf.len(),
            "consumed {consumed} of {}",
            buf.len()
        );
        // Alone, the frame parses the same; any strict prefix of it is incomplete.
        let whole = &buf[..consumed];
        let (mut a2, mut s2) = (Vec::new(), Vec::new());
        assert_eq!(
            parse(whole, &limits, &mut a2, &mut s2),
            Ok(frame_again(&frame))
        );
        // In slices of a few arguments, going on where each stopped: the same frame.
        let budget = usize::from(mode >> 2) % 7 + 1;
        let (mut a3, mut s3, mut resume) = (Vec::new(), Vec::new(), Resume::default());
        let sliced = loop {
            match parse_sliced(whole, &limits, &mut a3, &mut s3, &mut resume, budget) {
                Ok(Frame::Paused) => continue,
                other => break other,
            }
        };
        assert_eq!(sliced, Ok(frame_again(&frame)));
        assert_eq!(a3, a2);
        for cut in [0, consumed / 2, consumed - 1] {
            if cut == 0 {
                continue;
            }
            let r = parse(&whole[..cut], &limits, &mut a2, &mut s2);
            assert_eq!(
                r,
                Ok(Frame::Incomplete),
                "prefix of {cut} of a {consumed}-byte frame"
            );
        }
        pos += consumed;
    }
    // Inline splitting on its own, over the raw bytes as one line.
    if let Some(words) = split_args(stream) {
        assert!(words.iter().map(Vec::len).sum::<usize>() <= stream.len());
    }
});

fn frame_again(f: &Frame) -> Frame {
    match *f {
        Frame::Incomplete => Frame::Incomplete,
        Frame::Paused => Frame::Paused,
        Frame::Empty { consumed } => Frame::Empty { consumed },
        Frame::Multibulk { consumed } => Frame::Multibulk { consumed },
        Frame::Inline { consumed } => Frame::Inline { consumed },
    }
}
