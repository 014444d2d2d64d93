//! The libmacaroons V2 binary layout, first-party caveats only, decoded strictly:
//!
//! ```text
//! 0x02 | [0x01 varint(len) location] | 0x02 varint(len) identifier | 0x00
//!      | { 0x02 varint(len) caveat | 0x00 }*  | 0x00 | 0x06 0x20 tag[32]
//! ```
//!
//! Varints are LEB128 and must be minimal. A caveat with a location (0x01) or verification id
//! (0x04) field is third-party and refused. Trailing bytes, a tag that is not 32 bytes, a
//! token over [`MAX_TOKEN`] bytes, more than [`MAX_CAVEATS`] caveats or a caveat over
//! [`MAX_CAVEAT`] bytes are refused. The location is not signed: only absent, empty or `fth`
//! is accepted, so that no byte of a token can change without it being refused.

use crate::CredentialError;

/// The largest binary token read or written, in bytes.
pub const MAX_TOKEN: usize = 4096;
/// The most caveats a token may carry.
pub const MAX_CAVEATS: usize = 64;
/// The largest single caveat, in bytes.
pub const MAX_CAVEAT: usize = 512;
/// The location Farthing writes (unsigned, informational).
pub const LOCATION: &[u8] = b"fth";

const VERSION: u8 = 0x02;
const EOS: u8 = 0x00;
const FIELD_LOCATION: u8 = 0x01;
const FIELD_IDENTIFIER: u8 = 0x02;
const FIELD_VID: u8 = 0x04;
const FIELD_SIGNATURE: u8 = 0x06;

/// A macaroon as laid out on the wire, before its caveats are parsed or its chain checked.
/// (Debug only in tests: it would print the tag.)
#[derive(Clone, PartialEq, Eq)]
#[cfg_attr(test, derive(Debug))]
pub(crate) struct Raw {
    /// `None`: no location field; `Some(b"")` or `Some(b"fth")` otherwise.
    pub(crate) location: Option<Vec<u8>>,
    pub(crate) identifier: Vec<u8>,
    pub(crate) caveats: Vec<Vec<u8>>,
    pub(crate) tag: [u8; 32],
}

fn put_varint(out: &mut Vec<u8>, mut n: usize) {
    while n >= 0x80 {
        out.push((n as u8 & 0x7f) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

fn put_field(out: &mut Vec<u8>, kind: u8, data: &[u8]) {
    out.push(kind);
    put_varint(out, data.len());
    out.extend_from_slice(data);
}

/// Encodes `raw` in the V2 layout.
pub(crate) fn encode(raw: &Raw) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + raw.caveats.iter().map(|c| c.len() + 3).sum::<usize>());
    out.push(VERSION);
    if let Some(loc) = &raw.location {
        put_field(&mut out, FIELD_LOCATION, loc);
    }
    put_field(&mut out, FIELD_IDENTIFIER, &raw.identifier);
    out.push(EOS);
    for c in &raw.caveats {
        put_field(&mut out, FIELD_IDENTIFIER, c);
        out.push(EOS);
    }
    out.push(EOS);
    put_field(&mut out, FIELD_SIGNATURE, &raw.tag);
    out
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn byte(&mut self) -> Result<u8, CredentialError> {
        let b = *self
            .buf
            .get(self.pos)
            .ok_or(CredentialError::Malformed("truncated"))?;
        self.pos += 1;
        Ok(b)
    }

    fn peek(&self) -> Result<u8, CredentialError> {
        self.buf
            .get(self.pos)
            .copied()
            .ok_or(CredentialError::Malformed("truncated"))
    }

    fn varint(&mut self) -> Result<usize, CredentialError> {
        let mut n: usize = 0;
        for i in 0..3 {
            let b = self.byte()?;
            n |= usize::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                if b == 0 && i > 0 {
                    return Err(CredentialError::Malformed("non-minimal length"));
                }
                return Ok(n);
            }
        }
        Err(CredentialError::Malformed("length too large"))
    }

    fn field_data(&mut self) -> Result<&'a [u8], CredentialError> {
        let len = self.varint()?;
        let end = self
            .pos
            .checked_add(len)
            .ok_or(CredentialError::Malformed("length"))?;
        let data = self
            .buf
            .get(self.pos..end)
            .ok_or(CredentialError::Malformed("truncated"))?;
        self.pos = end;
        Ok(data)
    }

    fn expect(&mut self, b: u8, what: &'static str) -> Result<(), CredentialError> {
        if self.byte()? == b {
            Ok(())
        } else {
            Err(CredentialError::Malformed(what))
        }
    }
}

/// Decodes a V2 binary macaroon, strictly (see the module docs).
pub(crate) fn decode(buf: &[u8]) -> Result<Raw, CredentialError> {
    if buf.len() > MAX_TOKEN {
        return Err(CredentialError::TooLarge);
    }
    let mut r = Reader { buf, pos: 0 };
    r.expect(VERSION, "not a V2 macaroon")?;
    let location = if r.peek()? == FIELD_LOCATION {
        r.pos += 1;
        let loc = r.field_data()?;
        if !(loc.is_empty() || loc == LOCATION) {
            return Err(CredentialError::Malformed("unknown location"));
        }
        Some(loc.to_vec())
    } else {
        None
    };
    r.expect(FIELD_IDENTIFIER, "identifier expected")?;
    let identifier = r.field_data()?.to_vec();
    r.expect(EOS, "end of header expected")?;
    let mut caveats = Vec::new();
    loop {
        match r.byte()? {
            EOS => break,
            FIELD_IDENTIFIER => {}
            FIELD_LOCATION | FIELD_VID => return Err(CredentialError::ThirdParty),
            _ => return Err(CredentialError::Malformed("unknown field")),
        }
        if caveats.len() == MAX_CAVEATS {
            return Err(CredentialError::TooManyCaveats);
        }
        let c = r.field_data()?;
        if c.len() > MAX_CAVEAT {
            return Err(CredentialError::CaveatTooLong);
        }
        match r.byte()? {
            EOS => {}
            FIELD_LOCATION | FIELD_VID => return Err(CredentialError::ThirdParty),
            _ => return Err(CredentialError::Malformed("end of caveat expected")),
        }
        caveats.push(c.to_vec());
    }
    r.expect(FIELD_SIGNATURE, "signature expected")?;
    let sig = r.field_data()?;
    let tag: [u8; 32] = sig
        .try_into()
        .map_err(|_| CredentialError::Malformed("tag is not 32 bytes"))?;
    if r.pos != buf.len() {
        return Err(CredentialError::Malformed("trailing bytes"));
    }
    Ok(Raw {
        location,
        identifier,
        caveats,
        tag,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw() -> Raw {
        Raw {
            location: Some(LOCATION.to_vec()),
            identifier: vec![0x01, 0xaa, 0xbb],
            caveats: vec![b"scope=pay".to_vec()],
            tag: [0x11; 32],
        }
    }

    /// The layout written out by hand from the libmacaroons V2 spec (doc/format in
    /// libmacaroons; pymacaroons' BinarySerializer): version 2; location field (type 1,
    /// length 3, "fth"); identifier field (type 2, length 3); end of section; one caveat
    /// (type 2, length 9, "scope=pay", end of caveat); end of caveats; signature field
    /// (type 6, length 32).
    #[test]
    fn v2_layout_matches_hand_built_vector() {
        let mut want = vec![
            0x02, 0x01, 0x03, b'f', b't', b'h', 0x02, 0x03, 0x01, 0xaa, 0xbb, 0x00,
        ];
        want.extend_from_slice(&[0x02, 0x09]);
        want.extend_from_slice(b"scope=pay");
        want.extend_from_slice(&[0x00, 0x00, 0x06, 0x20]);
        want.extend_from_slice(&[0x11; 32]);
        assert_eq!(encode(&raw()), want);
        assert!(decode(&want) == Ok(raw()));
    }

    #[test]
    fn long_fields_use_minimal_varints() {
        let mut r = raw();
        r.caveats = vec![vec![b'a'; 300]];
        let bytes = encode(&r);
        assert_eq!(&bytes[12..15], &[0x02, 0xac, 0x02]); // 300 = 0b10_0101100
        assert!(decode(&bytes) == Ok(r));
        let mut bad = raw();
        bad.location = None;
        let mut b = encode(&bad);
        // Identifier length 3 written as 0x83 0x00: non-minimal.
        b.splice(2..3, [0x83, 0x00]);
        assert_eq!(
            decode(&b),
            Err(CredentialError::Malformed("non-minimal length"))
        );
    }

    #[test]
    fn refuses_third_party_trailing_and_limits() {
        let good = encode(&raw());
        let mut trailing = good.clone();
        trailing.push(0);
        assert_eq!(
            decode(&trailing),
            Err(CredentialError::Malformed("trailing bytes"))
        );
        // A caveat carrying a vid field.
        let mut tp = good[..12].to_vec();
        tp.extend_from_slice(&[0x02, 0x01, b'x', 0x04, 0x01, b'v', 0x00, 0x00, 0x06, 0x20]);
        tp.extend_from_slice(&[0; 32]);
        assert_eq!(decode(&tp), Err(CredentialError::ThirdParty));
        let mut many = raw();
        many.caveats = vec![b"note#".to_vec(); MAX_CAVEATS + 1];
        assert_eq!(decode(&encode(&many)), Err(CredentialError::TooManyCaveats));
        let mut long = raw();
        long.caveats = vec![vec![b'a'; MAX_CAVEAT + 1]];
        assert_eq!(decode(&encode(&long)), Err(CredentialError::CaveatTooLong));
        let mut big = raw();
        big.caveats = vec![vec![b'a'; 500]; 9];
        assert_eq!(decode(&encode(&big)), Err(CredentialError::TooLarge));
    }
}
