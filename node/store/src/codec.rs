//! The byte-level reader and writer behind every record, and their errors.
//!
//! Integers are fixed-width big-endian (one way to write each value, so a record has exactly
//! one encoding); byte strings carry a big-endian length prefix. The reader checks every
//! length against the bytes that remain *before* allocating, so decoding never allocates
//! more than the input's own length, and never panics.

/// Why stored bytes could not be read back as a record.
///
/// Every variant means the bytes are not a record this build wrote: either a newer Farthing
/// wrote them, or the database is damaged. Nothing is guessed or partly read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The record's version byte is not one this build reads.
    #[error(
        "{record} record has version {found}, but this build reads versions 1 to {supported}: \
         run the Farthing version that wrote it, or restore a backup"
    )]
    UnknownVersion {
        /// Which kind of record.
        record: &'static str,
        /// The version byte found.
        found: u8,
        /// The newest version this build reads.
        supported: u8,
    },
    /// The record ends in the middle of a field.
    #[error(
        "{record} record ends inside {field} ({needed} bytes needed, {remaining} left): \
         the record is damaged, restore a backup"
    )]
    Truncated {
        /// Which kind of record.
        record: &'static str,
        /// The field being read.
        field: &'static str,
        /// Bytes the field needs.
        needed: usize,
        /// Bytes left in the record.
        remaining: usize,
    },
    /// A length prefix promises more bytes than the record holds.
    #[error(
        "{record} record gives {field} a length of {len} bytes but only {remaining} are left: \
         the record is damaged, restore a backup"
    )]
    BadLength {
        /// Which kind of record.
        record: &'static str,
        /// The length-prefixed field.
        field: &'static str,
        /// The length prefix read.
        len: usize,
        /// Bytes left in the record.
        remaining: usize,
    },
    /// Bytes follow the end of the record.
    #[error(
        "{record} record has {extra} unexpected bytes after its end: it was written by a \
         different Farthing or is damaged; run the version that wrote it, or restore a backup"
    )]
    Trailing {
        /// Which kind of record.
        record: &'static str,
        /// How many bytes follow.
        extra: usize,
    },
    /// An enum or option tag has a value no version of this record uses.
    #[error(
        "{record} record has tag {tag} for {field}, which no known version uses: \
         the record is damaged, restore a backup"
    )]
    BadTag {
        /// Which kind of record.
        record: &'static str,
        /// The tagged field.
        field: &'static str,
        /// The tag found.
        tag: u8,
    },
    /// A key has the wrong length for its prefix.
    #[error(
        "{record} key is {len} bytes long, not {expected}: the database is damaged, \
         restore a backup"
    )]
    BadKey {
        /// Which kind of record the key's prefix names.
        record: &'static str,
        /// The key's length without its prefix.
        len: usize,
        /// The length this build writes.
        expected: usize,
    },
    /// The record's own id differs from the id in its key.
    #[error(
        "{record} record carries id {found} but is stored under id {key}: the database is \
         damaged, restore a backup"
    )]
    IdMismatch {
        /// Which kind of record.
        record: &'static str,
        /// The id in the key.
        key: u64,
        /// The id inside the record.
        found: u64,
    },
}

/// Why a value cannot be turned into a record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// A byte field is longer than its length prefix can express.
    #[error(
        "cannot store {record}: {field} is {len} bytes, at most {max} fit; refuse such a value \
         before it reaches the store"
    )]
    TooLong {
        /// Which kind of record.
        record: &'static str,
        /// The field that is too long.
        field: &'static str,
        /// Its length.
        len: usize,
        /// The most the record format holds.
        max: usize,
    },
}

/// Builds one record.
pub(crate) struct Writer {
    record: &'static str,
    buf: Vec<u8>,
}

impl Writer {
    /// Start a record of kind `record` with its version byte.
    pub(crate) fn new(record: &'static str, version: u8, capacity: usize) -> Self {
        let mut buf = Vec::with_capacity(capacity);
        buf.push(version);
        Self { record, buf }
    }

    pub(crate) fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }

    pub(crate) fn u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    pub(crate) fn u64(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    pub(crate) fn u128(&mut self, v: u128) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    pub(crate) fn array(&mut self, v: &[u8]) {
        self.buf.extend_from_slice(v);
    }

    /// Option tag: 0 for none, 1 for some.
    pub(crate) fn present(&mut self, some: bool) {
        self.buf.push(u8::from(some));
    }

    /// An unsigned LEB128 varint: 7 bits a byte, low group first, the shortest form (the
    /// reader refuses any other, so a value still has exactly one encoding).
    pub(crate) fn varint(&mut self, mut v: u128) {
        while v >= 0x80 {
            self.buf.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.buf.push(v as u8);
    }

    /// Bytes with a varint length prefix, at most `max` of them.
    pub(crate) fn bytes_var(
        &mut self,
        field: &'static str,
        v: &[u8],
        max: usize,
    ) -> Result<(), EncodeError> {
        if v.len() > max {
            return Err(self.too_long(field, v.len(), max));
        }
        self.varint(v.len() as u128);
        self.buf.extend_from_slice(v);
        Ok(())
    }

    /// Bytes with a 2-byte length prefix.
    pub(crate) fn bytes16(&mut self, field: &'static str, v: &[u8]) -> Result<(), EncodeError> {
        let len = u16::try_from(v.len()).map_err(|_| self.too_long(field, v.len(), MAX_LEN16))?;
        self.buf.extend_from_slice(&len.to_be_bytes());
        self.buf.extend_from_slice(v);
        Ok(())
    }

    /// Bytes with a 4-byte length prefix.
    pub(crate) fn bytes32(&mut self, field: &'static str, v: &[u8]) -> Result<(), EncodeError> {
        let len = u32::try_from(v.len()).map_err(|_| self.too_long(field, v.len(), MAX_LEN32))?;
        self.u32(len);
        self.buf.extend_from_slice(v);
        Ok(())
    }

    pub(crate) fn finish(self) -> Vec<u8> {
        self.buf
    }

    fn too_long(&self, field: &'static str, len: usize, max: usize) -> EncodeError {
        EncodeError::TooLong {
            record: self.record,
            field,
            len,
            max,
        }
    }
}

/// Longest byte string a 2-byte length prefix holds.
pub(crate) const MAX_LEN16: usize = u16::MAX as usize;
/// Longest byte string a 4-byte length prefix holds.
pub(crate) const MAX_LEN32: usize = u32::MAX as usize;

/// Reads one record, front to back.
pub(crate) struct Reader<'a> {
    record: &'static str,
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    /// Read the version byte of a `record` and return it with a reader for the rest;
    /// versions outside `1..=supported` are refused here.
    pub(crate) fn open(
        record: &'static str,
        bytes: &'a [u8],
        supported: u8,
    ) -> Result<(u8, Self), DecodeError> {
        let mut reader = Self {
            record,
            rest: bytes,
        };
        let version = reader.u8("version")?;
        if version == 0 || version > supported {
            return Err(DecodeError::UnknownVersion {
                record,
                found: version,
                supported,
            });
        }
        Ok((version, reader))
    }

    fn take(&mut self, field: &'static str, n: usize) -> Result<&'a [u8], DecodeError> {
        if n > self.rest.len() {
            return Err(DecodeError::Truncated {
                record: self.record,
                field,
                needed: n,
                remaining: self.rest.len(),
            });
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    pub(crate) fn array<const N: usize>(
        &mut self,
        field: &'static str,
    ) -> Result<[u8; N], DecodeError> {
        let mut out = [0; N];
        out.copy_from_slice(self.take(field, N)?);
        Ok(out)
    }

    pub(crate) fn u8(&mut self, field: &'static str) -> Result<u8, DecodeError> {
        self.array::<1>(field).map(|[b]| b)
    }

    pub(crate) fn u16(&mut self, field: &'static str) -> Result<u16, DecodeError> {
        self.array(field).map(u16::from_be_bytes)
    }

    pub(crate) fn u32(&mut self, field: &'static str) -> Result<u32, DecodeError> {
        self.array(field).map(u32::from_be_bytes)
    }

    pub(crate) fn u64(&mut self, field: &'static str) -> Result<u64, DecodeError> {
        self.array(field).map(u64::from_be_bytes)
    }

    pub(crate) fn u128(&mut self, field: &'static str) -> Result<u128, DecodeError> {
        self.array(field).map(u128::from_be_bytes)
    }

    /// A varint written by [`Writer::varint`] holding at most `bits` bits; an overlong form
    /// (a final zero group) or a value past `bits` is refused as a bad tag of `field`.
    pub(crate) fn varint(&mut self, field: &'static str, bits: u32) -> Result<u128, DecodeError> {
        let mut value = 0u128;
        let mut shift = 0u32;
        loop {
            let byte = self.u8(field)?;
            let group = u128::from(byte & 0x7f);
            if shift >= bits || (shift > 0 && byte == 0) || (group << shift) >> shift != group {
                return Err(self.bad_tag(field, byte));
            }
            value |= group << shift;
            if byte & 0x80 == 0 {
                break;
            }
            shift += 7;
        }
        if bits < 128 && value >> bits != 0 {
            return Err(self.bad_tag(field, 0xff));
        }
        Ok(value)
    }

    /// A varint of at most 64 bits.
    pub(crate) fn varint64(&mut self, field: &'static str) -> Result<u64, DecodeError> {
        self.varint(field, 64).map(|v| v as u64)
    }

    /// Bytes with a varint length prefix, at most `max` of them.
    pub(crate) fn bytes_var(
        &mut self,
        field: &'static str,
        max: usize,
    ) -> Result<Vec<u8>, DecodeError> {
        let len = usize::try_from(self.varint64(field)?).unwrap_or(usize::MAX);
        if len > max {
            return Err(DecodeError::BadLength {
                record: self.record,
                field,
                len,
                remaining: self.rest.len().min(max),
            });
        }
        self.prefixed(field, len)
    }

    /// An option tag: 0 is none, 1 is some, anything else is refused.
    pub(crate) fn present(&mut self, field: &'static str) -> Result<bool, DecodeError> {
        match self.u8(field)? {
            0 => Ok(false),
            1 => Ok(true),
            tag => Err(self.bad_tag(field, tag)),
        }
    }

    /// Bytes with a 2-byte length prefix.
    pub(crate) fn bytes16(&mut self, field: &'static str) -> Result<Vec<u8>, DecodeError> {
        let len = usize::from(self.u16(field)?);
        self.prefixed(field, len)
    }

    /// Bytes with a 4-byte length prefix.
    pub(crate) fn bytes32(&mut self, field: &'static str) -> Result<Vec<u8>, DecodeError> {
        let len = usize::try_from(self.u32(field)?).unwrap_or(usize::MAX);
        self.prefixed(field, len)
    }

    /// `len` bytes, checked against what is left before anything is allocated.
    fn prefixed(&mut self, field: &'static str, len: usize) -> Result<Vec<u8>, DecodeError> {
        if len > self.rest.len() {
            return Err(DecodeError::BadLength {
                record: self.record,
                field,
                len,
                remaining: self.rest.len(),
            });
        }
        self.take(field, len).map(<[u8]>::to_vec)
    }

    pub(crate) fn bad_tag(&self, field: &'static str, tag: u8) -> DecodeError {
        DecodeError::BadTag {
            record: self.record,
            field,
            tag,
        }
    }

    /// The record must end here.
    pub(crate) fn finish(self) -> Result<(), DecodeError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::Trailing {
                record: self.record,
                extra: self.rest.len(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_length_prefix_past_the_end_is_refused_before_allocating() {
        // Claims 4 GiB of payload in a 6-byte record.
        let bytes = [1, 0xff, 0xff, 0xff, 0xff, 7];
        let (_, mut r) = Reader::open("test", &bytes, 1).unwrap();
        let err = r.bytes32("raw").unwrap_err();
        assert_eq!(
            err,
            DecodeError::BadLength {
                record: "test",
                field: "raw",
                len: u32::MAX as usize,
                remaining: 1
            }
        );
    }

    #[test]
    fn version_zero_and_versions_past_the_supported_one_are_refused() {
        for v in [0, 2, 255] {
            let err = Reader::open("test", &[v], 1).err().unwrap();
            assert!(matches!(err, DecodeError::UnknownVersion { found, .. } if found == v));
        }
        assert!(Reader::open("test", &[], 1).is_err());
    }

    #[test]
    fn varints_round_trip_in_their_shortest_form_only() {
        for v in [0u128, 1, 127, 128, 300, u128::from(u64::MAX), u128::MAX] {
            let mut w = Writer::new("test", 1, 0);
            w.varint(v);
            let bytes = w.finish();
            let (_, mut r) = Reader::open("test", &bytes, 1).unwrap();
            assert_eq!(r.varint("v", 128).unwrap(), v);
            r.finish().unwrap();
        }
        // 1 written in two bytes, 2^64 as a u64, a 19th group: refused.
        for bytes in [
            &[1, 0x81, 0x00][..],
            &[
                1, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x02,
            ][..],
        ] {
            let (_, mut r) = Reader::open("test", bytes, 1).unwrap();
            assert!(r.varint64("v").is_err(), "{bytes:?}");
        }
        let mut long = vec![1];
        long.extend([0xff; 19]);
        long.push(1);
        let (_, mut r) = Reader::open("test", &long, 1).unwrap();
        assert!(r.varint("v", 128).is_err());
    }

    #[test]
    fn a_signature_longer_than_its_prefix_is_refused_on_write() {
        let mut w = Writer::new("test", 1, 0);
        let err = w.bytes16("signature", &vec![0; MAX_LEN16 + 1]).unwrap_err();
        assert!(err.to_string().contains("at most 65535 fit"), "{err}");
    }
}
