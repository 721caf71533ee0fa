//! Unit tests of the bitmap and string-range commands, run through `cache::cmd::exec_key`
//! against a store, several against naive bit-by-bit models.
//!
//! This file holds the helpers they share; the tests sit by command group, one file per
//! source file of `bits/` (`bit.rs`, `bitfield.rs`, `bitop.rs`, `lcs.rs`, `range.rs`,
//! `scan.rs`), and `writes.rs` for what the writes do to the store.

use super::super::testing::{run, store};
use super::super::{exec_key, OomCheck};
use super::*;
use crate::cache::slot::key_slot;
use crate::proto::resp::command::lookup;

mod bit;
mod bitfield;
mod bitop;
mod lcs;
mod range;
mod scan;
mod writes;

/// Run a command whose arguments may hold any bytes, in RESP2 or RESP3.
fn call(s: &mut Store, words: &[&[u8]], resp3: bool) -> Vec<u8> {
    let mut src = Vec::new();
    let mut ranges = Vec::new();
    for w in words {
        let at = src.len();
        src.extend_from_slice(w);
        ranges.push((at, src.len()));
    }
    let a = Args {
        src: &src,
        ranges: &ranges,
    };
    let spec = lookup(a.get(0)).expect("known command");
    assert!(spec.arity_ok(a.len()));
    let mut buf = Vec::new();
    let mut out = Out::new(&mut buf, resp3);
    exec_key(
        s,
        spec,
        &a,
        key_slot(a.get(1)),
        0,
        OomCheck::Refuse,
        &mut out,
    );
    buf
}

fn set(s: &mut Store, key: &str, v: &[u8]) {
    assert_eq!(call(s, &[b"SET", key.as_bytes(), v], false), b"+OK\r\n");
}

fn get(s: &mut Store, key: &str) -> Vec<u8> {
    let r = call(s, &[b"GET", key.as_bytes()], false);
    if r == b"$-1\r\n" {
        return Vec::new();
    }
    let body = r.splitn(2, |&b| b == b'\n').nth(1).unwrap().to_vec();
    body[..body.len() - 2].to_vec()
}

fn int(n: i64) -> String {
    format!(":{n}\r\n")
}

fn err(e: &str) -> String {
    format!("-{e}\r\n")
}

/// A naive model of every bit of a string, for fuzzing.
fn bits_of(v: &[u8]) -> Vec<bool> {
    v.iter()
        .flat_map(|b| (0..8).map(move |i| b & (0x80 >> i) != 0))
        .collect()
}

fn rand(seed: &mut u64) -> u64 {
    crate::cache::store::xorshift64(seed)
}
