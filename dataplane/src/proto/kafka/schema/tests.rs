//! The tables against the crate, and the length check against hostile lengths.
//!
//! A generator writes random valid requests from a table (every version, known and unknown
//! tagged fields, empty and non-empty arrays) and records where each length sits; the crate
//! must decode every one and consume exactly its bytes, so a table that differs from the
//! crate's decoder fails here. Then each length is replaced by hostile values (huge, one past
//! the frame, negative, zero): whatever the bytes, `decode_request` returns without a panic
//! and allocates within a bound proportional to the frame (counted by the test allocator).

use bytes::{Buf, Bytes};
use kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind};
use kafka_protocol::protocol::Decodable;

use super::tables::{self, ALL};
use super::{check, find, Field, LengthError, Schema, Ty};
use crate::limits::KAFKA_REQUEST_ELEMENTS_MAX;
use crate::proto::kafka::{decode_request, SUPPORTED};
use crate::runtime::alloc::measure;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// How a length is written.
#[derive(Debug, Clone, Copy)]
enum Width {
    I16,
    I32,
    /// An unsigned varint of this many bytes (compact lengths hold the length plus one).
    Var(usize),
}

/// Where a length sits in a generated request.
#[derive(Debug, Clone, Copy)]
struct Site {
    pos: usize,
    width: Width,
}

struct Gen<'r> {
    out: Vec<u8>,
    sites: Vec<Site>,
    rng: &'r mut Rng,
    version: i16,
    flexible: bool,
    /// `Some(k)`: write the smallest request instead, every array with one element but the
    /// k-th array met, which gets [`BIG`] (see `decoding_allocates_at_most_48_bytes_per_byte`).
    minimal: Option<usize>,
    /// Arrays met so far.
    arrays: usize,
}

/// Elements of the large array of a minimal request.
const BIG: usize = 2000;

fn put_uvarint(out: &mut Vec<u8>, mut v: u32) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

impl Gen<'_> {
    fn site(&mut self, width: Width) {
        self.sites.push(Site {
            pos: self.out.len(),
            width,
        });
    }

    /// A non-null length or count.
    fn len(&mut self, width: Width, n: usize) {
        if self.flexible {
            let start = self.out.len();
            put_uvarint(&mut self.out, n as u32 + 1);
            let used = self.out.len() - start;
            self.out.truncate(start);
            self.site(Width::Var(used));
            put_uvarint(&mut self.out, n as u32 + 1);
        } else {
            self.site(width);
            match width {
                Width::I16 => self.out.extend_from_slice(&(n as i16).to_be_bytes()),
                _ => self.out.extend_from_slice(&(n as i32).to_be_bytes()),
            }
        }
    }

    /// A varint that is itself a length (a tagged section's count or a field's size).
    fn var(&mut self, v: u32) {
        let start = self.out.len();
        put_uvarint(&mut self.out, v);
        let used = self.out.len() - start;
        self.sites.push(Site {
            pos: start,
            width: Width::Var(used),
        });
    }

    fn value(&mut self, ty: &Ty) {
        match ty {
            Ty::Fixed(n) if self.minimal.is_some() => self.out.resize(self.out.len() + n, 0),
            Ty::Str if self.minimal.is_some() => self.len(Width::I16, 0),
            Ty::Bytes if self.minimal.is_some() => self.len(Width::I32, 0),
            Ty::Array(elem) if self.minimal.is_some() => {
                let n = if self.minimal == Some(self.arrays) {
                    BIG
                } else {
                    1
                };
                self.arrays += 1;
                self.len(Width::I32, n);
                for _ in 0..n {
                    self.value(elem);
                }
            }
            Ty::Fixed(n) => {
                for _ in 0..*n {
                    let b = self.rng.next() as u8;
                    self.out.push(b);
                }
            }
            Ty::Str => {
                let n = self.rng.below(7) as usize;
                self.len(Width::I16, n);
                for _ in 0..n {
                    let c = b'a' + self.rng.below(26) as u8;
                    self.out.push(c);
                }
            }
            Ty::Bytes => {
                let n = self.rng.below(12) as usize;
                self.len(Width::I32, n);
                for _ in 0..n {
                    let b = self.rng.next() as u8;
                    self.out.push(b);
                }
            }
            Ty::Array(elem) => {
                let n = self.rng.below(4) as usize;
                self.len(Width::I32, n);
                for _ in 0..n {
                    self.value(elem);
                }
            }
            Ty::Struct(fields) => self.fields(fields),
        }
    }

    fn fields(&mut self, fields: &[Field]) {
        let v = self.version;
        for f in fields.iter().filter(|f| f.tag.is_none() && f.on(v)) {
            self.value(&f.ty);
        }
        if self.flexible {
            self.tagged(fields);
        }
    }

    /// A tagged section: some of the known tags of this version, and unknown ones: small
    /// tags the table does not know in any version, and tags of 20 and up. Should the crate
    /// know a small tag the table lacks, it decodes the value as its type, not by its size,
    /// and the request no longer reads as generated: a missing tag fails the test.
    fn tagged(&mut self, fields: &[Field]) {
        let v = self.version;
        let mut items: Vec<(u32, Option<&Ty>)> = fields
            .iter()
            .filter(|f| f.on(v) && self.rng.below(2) == 0)
            .filter_map(|f| f.tag.map(|t| (t, Some(&f.ty))))
            .collect();
        let unknown: Vec<u32> = (0..4)
            .filter(|&t| fields.iter().all(|f| f.tag != Some(t)))
            .chain(20..30)
            .collect();
        for _ in 0..self.rng.below(3) {
            let tag = unknown[self.rng.below(unknown.len() as u64) as usize];
            items.push((tag, None));
        }
        if self.minimal.is_some() {
            items.clear();
        }
        self.var(items.len() as u32);
        for (tag, ty) in items {
            put_uvarint(&mut self.out, tag);
            let mut sub = Gen {
                out: Vec::new(),
                sites: Vec::new(),
                rng: &mut *self.rng,
                version: v,
                flexible: true,
                minimal: None,
                arrays: 0,
            };
            match ty {
                Some(ty) => sub.value(ty),
                None => {
                    // Often empty, which no known type's value would be.
                    for _ in 0..sub.rng.below(6).saturating_sub(2) {
                        let b = sub.rng.next() as u8;
                        sub.out.push(b);
                    }
                }
            }
            let (bytes, sites) = (sub.out, sub.sites);
            self.var(bytes.len() as u32);
            let base = self.out.len();
            self.sites.extend(sites.into_iter().map(|s| Site {
                pos: s.pos + base,
                width: s.width,
            }));
            self.out.extend_from_slice(&bytes);
        }
    }
}

/// A random valid request payload (header and body) of `schema` at `version`.
fn generate(schema: &Schema, version: i16, rng: &mut Rng) -> (Vec<u8>, Vec<Site>) {
    generate_as(schema, version, rng, None)
}

fn generate_as(
    schema: &Schema,
    version: i16,
    rng: &mut Rng,
    minimal: Option<usize>,
) -> (Vec<u8>, Vec<Site>) {
    let header_version = schema.key.request_header_version(version);
    let mut g = Gen {
        out: Vec::new(),
        sites: Vec::new(),
        rng,
        version: header_version,
        flexible: false,
        minimal,
        arrays: 0,
    };
    g.out.extend_from_slice(&(schema.key as i16).to_be_bytes());
    g.out.extend_from_slice(&version.to_be_bytes());
    g.out.extend_from_slice(&7i32.to_be_bytes());
    g.value(&Ty::Str); // client_id
    if header_version >= 2 {
        g.flexible = true;
        g.tagged(&[]);
    }
    g.version = version;
    g.flexible = version >= schema.flexible;
    g.fields(schema.fields);
    (g.out, g.sites)
}

/// The crate's decoder over a payload: how many bytes it left, or why it failed.
fn crate_decode(key: ApiKey, version: i16, payload: &[u8]) -> Result<usize, String> {
    let mut buf = Bytes::copy_from_slice(payload);
    RequestHeader::decode(&mut buf, key.request_header_version(version))
        .map_err(|e| e.to_string())?;
    RequestKind::decode(key, &mut buf, version).map_err(|e| e.to_string())?;
    Ok(buf.remaining())
}

fn versions(s: &Schema) -> impl Iterator<Item = i16> {
    s.lo..=s.hi
}

#[test]
fn every_table_reads_what_the_crate_decodes() {
    let mut rng = Rng(0x5eed_0000_0000_0001);
    for s in ALL {
        for v in versions(s) {
            for round in 0..300 {
                let (payload, _) = generate(s, v, &mut rng);
                assert_eq!(check(s.key, v, &payload), Ok(()), "{:?} v{v}", s.key);
                assert_eq!(
                    crate_decode(s.key, v, &payload),
                    Ok(0),
                    "{:?} v{v} round {round}: the crate read the generated request differently \
                     ({payload:02x?})",
                    s.key
                );
            }
        }
    }
}

#[test]
fn tables_cover_exactly_the_versions_the_crate_decodes() {
    for s in ALL {
        for v in s.lo - 1..=s.hi + 1 {
            // An empty body fails at once on the version check outside the crate's range;
            // inside it, it fails on the first missing byte (or decodes, if empty is valid).
            let unsupported = RequestKind::decode(s.key, &mut Bytes::new(), v)
                .is_err_and(|e| format!("{e:#}").contains("not supported"));
            assert_eq!(
                unsupported,
                !(s.lo..=s.hi).contains(&v),
                "{:?} v{v}: the table says v{}-{}",
                s.key,
                s.lo,
                s.hi
            );
        }
    }
    let lock = include_str!("../../../../../Cargo.lock");
    let locked = lock
        .split("[[package]]")
        .find(|p| p.contains("name = \"kafka-protocol\"\n"))
        .expect("kafka-protocol in Cargo.lock");
    assert!(
        locked.contains(&format!("version = \"{}\"", tables::CRATE_VERSION)),
        "kafka-protocol changed version: rerun tools/kafka_wire_schema.py"
    );
}

#[test]
fn every_served_version_has_a_table() {
    for &(key, lo, hi) in SUPPORTED {
        for v in lo..=hi {
            assert!(
                find(key, v).is_some(),
                "{key:?} v{v} is served without a table"
            );
        }
    }
    // And a served API without one is refused rather than decoded unchecked.
    assert_eq!(
        check(ApiKey::ElectLeaders, 0, &[0; 16]),
        Err(LengthError::NoSchema)
    );
}

/// The most a request of `len` bytes may allocate while decoded: 48 bytes per byte (the
/// worst measured is 41, see `decoding_allocates_at_most_48_bytes_per_byte`), plus a
/// constant for the request's own fixed-size structs.
fn bound(len: usize) -> usize {
    48 * len + 16 * 1024
}

fn rewrite(payload: &[u8], site: Site, value: i64) -> Vec<u8> {
    let mut out = payload.to_vec();
    match site.width {
        Width::I16 => out[site.pos..site.pos + 2].copy_from_slice(&(value as i16).to_be_bytes()),
        Width::I32 => out[site.pos..site.pos + 4].copy_from_slice(&(value as i32).to_be_bytes()),
        Width::Var(used) => {
            let mut v = Vec::new();
            put_uvarint(&mut v, value as u32);
            out.splice(site.pos..site.pos + used, v);
        }
    }
    out
}

/// Check and decode `payload` as the node does, measuring what that allocates: through
/// `decode_request` for a served version, else the check and the crate's decoder directly
/// (the tables cover APIs not served yet). Whether it decoded, and its peak.
fn decode_measured(key: ApiKey, version: i16, payload: Vec<u8>) -> (bool, usize) {
    let len = payload.len();
    let served = crate::proto::kafka::supported(key, version);
    let bytes = Bytes::from(payload.clone());
    let (ok, usage) = measure(|| {
        if served {
            decode_request(bytes).is_ok()
        } else {
            check(key, version, &payload).is_ok() && crate_decode(key, version, &payload).is_ok()
        }
    });
    assert!(
        usage.peak_bytes <= bound(len),
        "a {len}-byte {key:?} v{version} request allocated {} bytes",
        usage.peak_bytes
    );
    (ok, usage.peak_bytes)
}

#[test]
fn hostile_lengths_are_refused_or_decode_within_the_bound() {
    let mut rng = Rng(0x5eed_0000_0000_0002);
    let (mut refused, mut decoded) = (0u64, 0u64);
    for s in ALL {
        for v in versions(s) {
            for _ in 0..200 {
                let (payload, sites) = generate(s, v, &mut rng);
                let site = sites[rng.below(sites.len() as u64) as usize];
                let left = (payload.len() - site.pos) as i64;
                let value = match rng.below(10) {
                    0 => i16::MAX as i64,
                    1 => i32::MAX as i64,
                    2 => u32::MAX as i64,
                    3 => 1 << 28,
                    4 => left + 1,
                    5 => left,
                    6 => -2,
                    7 => 0,
                    8 => rng.below(64) as i64,
                    _ => rng.next() as u32 as i64,
                };
                let mutated = rewrite(&payload, site, value);
                let before = check(s.key, v, &mutated);
                let (ok, _) = decode_measured(s.key, v, mutated);
                if before.is_err() {
                    assert!(!ok, "refused by the check, yet decoded");
                    refused += 1;
                } else {
                    decoded += 1;
                }
            }
        }
    }
    // Both outcomes happen: the mutations reach the check and also pass it.
    assert!(
        refused > 1000 && decoded > 1000,
        "{refused} refused, {decoded} decoded"
    );
}

#[test]
fn byte_flips_and_truncations_never_panic_and_stay_within_the_bound() {
    let mut rng = Rng(0x5eed_0000_0000_0003);
    for s in ALL {
        for v in versions(s) {
            for _ in 0..100 {
                let (mut b, _) = generate(s, v, &mut rng);
                for _ in 0..rng.below(4) + 1 {
                    let i = 4 + rng.below(b.len() as u64 - 4) as usize; // keep key and version
                    b[i] = rng.next() as u8;
                }
                let cut = 8 + rng.below(b.len() as u64 - 7) as usize;
                b.truncate(cut);
                decode_measured(s.key, v, b);
            }
        }
    }
}

/// The worst ratio of memory to wire bytes: for every table and version, requests of the
/// smallest elements, each array in turn holding 2000 of them; `decode_measured` asserts
/// the bound on each.
#[test]
fn decoding_allocates_at_most_48_bytes_per_byte() {
    let mut rng = Rng(1);
    let mut worst = (0.0f64, ApiKey::Produce, 0i16, 0usize);
    let mut served_worst = worst;
    for s in ALL {
        for v in versions(s) {
            for k in 0.. {
                let (p, _) = generate_as(s, v, &mut rng, Some(k));
                let len = p.len();
                if len < BIG {
                    break; // no k-th array: every array was met
                }
                let (ok, peak) = decode_measured(s.key, v, p.clone());
                assert!(
                    ok,
                    "{:?} v{v}: a minimal request was refused: {:?} {:?}",
                    s.key,
                    check(s.key, v, &p),
                    crate_decode(s.key, v, &p)
                );
                let ratio = peak as f64 / len as f64;
                if ratio > worst.0 {
                    worst = (ratio, s.key, v, k);
                }
                if ratio > served_worst.0 && crate::proto::kafka::supported(s.key, v) {
                    served_worst = (ratio, s.key, v, k);
                }
            }
        }
    }
    eprintln!("worst ratio {worst:?}; of the versions served {served_worst:?}");
    assert!(worst.0 > 24.0, "the bound is far from tight: {worst:?}");
}

#[test]
fn a_request_of_more_elements_than_the_limit_is_refused() {
    // Metadata v9: 2^20 + 1 null topic names, two bytes each, and nothing wrong but the count.
    let n = KAFKA_REQUEST_ELEMENTS_MAX as u32 + 1;
    let mut m = vec![0, 3, 0, 9, 0, 0, 0, 1, 0, 0, 0];
    put_uvarint(&mut m, n + 1);
    for _ in 0..n {
        m.extend_from_slice(&[0, 0]);
    }
    m.extend_from_slice(&[1, 0, 0, 0]);
    assert_eq!(
        check(ApiKey::Metadata, 9, &m),
        Err(LengthError::Elements {
            field: "topics",
            max: KAFKA_REQUEST_ELEMENTS_MAX
        })
    );
    // One element fewer passes.
    let mut m = vec![0, 3, 0, 9, 0, 0, 0, 1, 0, 0, 0];
    put_uvarint(&mut m, n);
    for _ in 0..n - 1 {
        m.extend_from_slice(&[0, 0]);
    }
    m.extend_from_slice(&[1, 0, 0, 0]);
    assert_eq!(check(ApiKey::Metadata, 9, &m), Ok(()));
}

#[test]
fn each_kind_of_length_is_refused_with_its_field_named() {
    // Metadata v1: topics claims 2^31-1 entries of at least 2 bytes.
    let mut m = vec![0, 3, 0, 1, 0, 0, 0, 1, 0, 0];
    m.extend_from_slice(&i32::MAX.to_be_bytes());
    assert_eq!(
        check(ApiKey::Metadata, 1, &m),
        Err(LengthError::Array {
            field: "topics",
            count: i32::MAX as u64,
            min: 2,
            left: 0
        })
    );
    // Metadata v9 (flexible): the same as a compact array.
    let mut m = vec![0, 3, 0, 9, 0, 0, 0, 1, 0, 0, 0];
    put_uvarint(&mut m, u32::MAX);
    m.push(0);
    assert!(matches!(
        check(ApiKey::Metadata, 9, &m),
        Err(LengthError::Array {
            field: "topics",
            ..
        })
    ));
    // The header's client_id claims more bytes than follow.
    let h = vec![0, 18, 0, 0, 0, 0, 0, 1, 0x7f, 0xff, b'x'];
    assert_eq!(
        check(ApiKey::ApiVersions, 0, &h),
        Err(LengthError::Past {
            field: "client_id",
            len: 0x7fff,
            left: 1
        })
    );
    // A negative string length other than null.
    let h = vec![0, 18, 0, 0, 0, 0, 0, 1, 0xff, 0xfe];
    assert_eq!(
        check(ApiKey::ApiVersions, 0, &h),
        Err(LengthError::Negative {
            field: "client_id",
            len: -2
        })
    );
    // Produce v3: the records' bytes claim 2^31-1.
    let mut p = vec![0, 0, 0, 3, 0, 0, 0, 1, 0, 0]; // header v1, client_id ""
    p.extend_from_slice(&[0xff, 0xff, 0, 1, 0, 0, 0, 0]); // transactional_id null, acks, timeout
    p.extend_from_slice(&[0, 0, 0, 1, 0, 1, b't']); // one topic "t"
    p.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0]); // one partition, index 0
    p.extend_from_slice(&i32::MAX.to_be_bytes());
    assert!(matches!(
        check(ApiKey::Produce, 3, &p),
        Err(LengthError::Past {
            field: "records",
            ..
        })
    ));
    // An unknown tagged field whose size runs past the frame (ApiVersions v3, header v2).
    let mut a = vec![0, 18, 0, 3, 0, 0, 0, 1, 0, 0, 0, 1, 1]; // header, two empty names
    a.extend_from_slice(&[1, 30]); // one tagged field, tag 30
    put_uvarint(&mut a, 1 << 30);
    assert!(matches!(
        check(ApiKey::ApiVersions, 3, &a),
        Err(LengthError::Past {
            field: "tagged field",
            ..
        })
    ));
}
