//! The key layout of the credential records (see [`credentials`](crate::credentials)), and
//! their reads and writes on top of a [`Kv`].

use std::collections::HashMap;

use super::{Kv, Op, corrupt};
use crate::codec::DecodeError;
use crate::credentials::{self, CredentialSpend, CredentialSpends, IssuedCredential, LedgerId};
use crate::{Result, StoreError};

/// Prefix of credential ledger totals; the ledger's chain id (16) and kind (1) follow.
pub(crate) const CREDENTIAL_TOTAL_PREFIX: &[u8] = b"cspt/";
/// Prefix of per-second credential spends; the second (8, big-endian), then the ledger's
/// chain id (16) and kind (1) follow.
pub(crate) const CREDENTIAL_SECOND_PREFIX: &[u8] = b"cspw/";
/// Prefix of revocations; the revoked credential's chain id (16) follows.
pub(crate) const REVOKED_PREFIX: &[u8] = b"crev/";
/// Prefix of issued credentials; the credential's chain id (16) follows.
pub(crate) const ISSUED_PREFIX: &[u8] = b"cred/";

const LEDGER_LEN: usize = 17;
const SECOND_LEN: usize = 8 + LEDGER_LEN;

/// The key of `ledger`'s total.
pub(crate) fn credential_total_key(ledger: LedgerId) -> Vec<u8> {
    [CREDENTIAL_TOTAL_PREFIX, &ledger.cid, &[ledger.kind]].concat()
}

/// The key of `ledger`'s spend in `second`.
pub(crate) fn credential_second_key(second: u64, ledger: LedgerId) -> Vec<u8> {
    [
        CREDENTIAL_SECOND_PREFIX,
        &second.to_be_bytes(),
        &ledger.cid,
        &[ledger.kind],
    ]
    .concat()
}

/// The first per-second key of `second` (every ledger's spend in it sorts at or after it).
fn second_start(second: u64) -> Vec<u8> {
    [CREDENTIAL_SECOND_PREFIX, &second.to_be_bytes()].concat()
}

/// The key of credential `cid`'s revocation.
pub(crate) fn revoked_key(cid: [u8; 16]) -> Vec<u8> {
    [REVOKED_PREFIX, &cid].concat()
}

/// The key of issued credential `id`.
pub(crate) fn issued_key(id: [u8; 16]) -> Vec<u8> {
    [ISSUED_PREFIX, &id].concat()
}

/// Past every ledger total's key (`/` + 1).
const CREDENTIAL_TOTAL_END: &[u8] = b"cspt0";
/// Past every per-second key (`/` + 1).
const CREDENTIAL_SECOND_END: &[u8] = b"cspw0";

/// A credential key as an operator can read it (`cspt/cid_…/0`, `cspw/1796000000/cid_…/1`,
/// `crev/cid_…`, `cred/cid_…`), if it is one of a well-formed length.
pub(super) fn describe(key: &[u8]) -> Option<String> {
    let hex = |id: &[u8]| -> String { id.iter().map(|b| format!("{b:02x}")).collect() };
    let readable = |id: LedgerId| format!("cid_{}/{}", hex(&id.cid), id.kind);
    if let Some(rest) = key.strip_prefix(CREDENTIAL_TOTAL_PREFIX) {
        let id = <[u8; LEDGER_LEN]>::try_from(rest).ok()?;
        return Some(format!("cspt/{}", readable(ledger(id))));
    }
    if let Some(rest) = key.strip_prefix(CREDENTIAL_SECOND_PREFIX) {
        let (second, id) = split_second(rest)?;
        return Some(format!("cspw/{second}/{}", readable(id)));
    }
    for (prefix, name) in [(REVOKED_PREFIX, "crev/"), (ISSUED_PREFIX, "cred/")] {
        if let Some(rest) = key.strip_prefix(prefix) {
            let id = <[u8; 16]>::try_from(rest).ok()?;
            return Some(format!("{name}cid_{}", hex(&id)));
        }
    }
    None
}

/// The ledger a ledger id's 17 key bytes name.
fn ledger(id: [u8; LEDGER_LEN]) -> LedgerId {
    let [cid @ .., kind] = id;
    LedgerId { cid, kind }
}

/// The second and the ledger the bytes of a per-second key after its prefix name, if they are
/// 25 bytes long.
fn split_second(rest: &[u8]) -> Option<(u64, LedgerId)> {
    let (second, id) = rest.split_first_chunk::<8>()?;
    let id = <[u8; LEDGER_LEN]>::try_from(id).ok()?;
    Some((u64::from_be_bytes(*second), ledger(id)))
}

/// A key under `prefix` whose rest is not `expected` bytes long.
fn bad_key(key: &[u8], prefix: &[u8], record: &'static str, expected: usize) -> StoreError {
    let e = DecodeError::BadKey {
        record,
        len: key.len().saturating_sub(prefix.len()),
        expected,
    };
    corrupt(key, e)
}

/// The `N` bytes after `prefix` in `key`.
fn key_part<const N: usize>(key: &[u8], prefix: &[u8], record: &'static str) -> Result<[u8; N]> {
    let rest = key.get(prefix.len()..).unwrap_or_default();
    <[u8; N]>::try_from(rest).map_err(|_| bad_key(key, prefix, record, N))
}

pub(crate) fn credential_spends(kv: &impl Kv, since: u64) -> Result<CredentialSpends> {
    let mut out = CredentialSpends::default();
    let ranges = [
        (
            CREDENTIAL_TOTAL_PREFIX.to_vec(),
            CREDENTIAL_TOTAL_END.to_vec(),
        ),
        (second_start(since), CREDENTIAL_SECOND_END.to_vec()),
    ];
    kv.scan_ranges(&ranges, &mut |key, value| {
        if key.starts_with(CREDENTIAL_TOTAL_PREFIX) {
            let id = key_part(key, CREDENTIAL_TOTAL_PREFIX, "credential total")?;
            let total = credentials::decode_credential_total(value).map_err(|e| corrupt(key, e))?;
            out.totals.push((ledger(id), total));
        } else {
            let rest = key
                .get(CREDENTIAL_SECOND_PREFIX.len()..)
                .unwrap_or_default();
            let (second, id) = split_second(rest).ok_or_else(|| {
                bad_key(
                    key,
                    CREDENTIAL_SECOND_PREFIX,
                    "credential second",
                    SECOND_LEN,
                )
            })?;
            let amount =
                credentials::decode_credential_second(value).map_err(|e| corrupt(key, e))?;
            out.seconds.push((id, second, amount));
        }
        Ok(())
    })?;
    Ok(out)
}

pub(crate) fn revoked_credentials(kv: &impl Kv) -> Result<Vec<([u8; 16], u64)>> {
    let mut out = Vec::new();
    kv.scan(REVOKED_PREFIX, &mut |key, value| {
        let cid = key_part(key, REVOKED_PREFIX, "credential revocation")?;
        let at = credentials::decode_credential_revoked(value).map_err(|e| corrupt(key, e))?;
        out.push((cid, at));
        Ok(())
    })?;
    Ok(out)
}

pub(crate) fn issued_credentials(kv: &impl Kv) -> Result<Vec<IssuedCredential>> {
    let mut out = Vec::new();
    kv.scan(ISSUED_PREFIX, &mut |key, value| {
        let id = key_part(key, ISSUED_PREFIX, "issued credential")?;
        let issued =
            credentials::decode_issued_credential(id, value).map_err(|e| corrupt(key, e))?;
        out.push(issued);
        Ok(())
    })?;
    Ok(out)
}

/// Which spend of a batch stores each ledger's total, and each ledger's amount in each second:
/// the last one (a group commit often carries many spends of one ledger) — the same outcome
/// as applying them all in order, with one put per key.
#[derive(Default)]
pub(super) struct NewestSpends {
    totals: HashMap<LedgerId, usize>,
    seconds: HashMap<(LedgerId, u64), usize>,
}

impl NewestSpends {
    /// Write `i` of the batch is `spend`.
    pub(super) fn note(&mut self, i: usize, spend: &CredentialSpend) {
        self.totals.insert(spend.ledger, i);
        self.seconds.insert((spend.ledger, spend.second), i);
    }

    /// Push the puts of write `i`, `spend`, that no later spend of the batch replaces.
    pub(super) fn put(&self, i: usize, spend: &CredentialSpend, ops: &mut Vec<Op>) {
        if self.totals.get(&spend.ledger) == Some(&i) {
            ops.push(Op::Put(
                credential_total_key(spend.ledger),
                credentials::encode_credential_total(spend.total),
            ));
        }
        if self.seconds.get(&(spend.ledger, spend.second)) == Some(&i) {
            ops.push(Op::Put(
                credential_second_key(spend.second, spend.ledger),
                credentials::encode_credential_second(spend.in_second),
            ));
        }
    }
}

/// Drop every per-second record before `before` (and any damaged key under the prefix that
/// sorts below it: retention cuts by key, it does not read).
pub(super) fn prune_seconds(before: u64) -> Op {
    Op::DeleteRange(CREDENTIAL_SECOND_PREFIX.to_vec(), second_start(before))
}

pub(super) fn revoked(cid: [u8; 16], at: u64) -> Op {
    Op::Put(revoked_key(cid), credentials::encode_credential_revoked(at))
}

pub(super) fn issued(c: &IssuedCredential) -> Result<Op, StoreError> {
    Ok(Op::Put(
        issued_key(c.id),
        credentials::encode_issued_credential(c)?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv::Kv;
    use crate::{MemStore, Store, Write};

    const CID: [u8; 16] = [
        0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee,
        0xff,
    ];
    const HEX: &str = "cid_00112233445566778899aabbccddeeff";

    fn spent(kind: u8) -> LedgerId {
        LedgerId { cid: CID, kind }
    }

    #[test]
    fn keys_sort_second_first_and_read_well() {
        let (a, b) = (
            spent(1),
            LedgerId {
                cid: [0; 16],
                kind: 0,
            },
        );
        assert!(credential_second_key(255, a) < credential_second_key(256, b));
        assert!(credential_second_key(7, b) < credential_second_key(7, a));
        assert!(credential_second_key(u64::MAX, a).as_slice() < CREDENTIAL_SECOND_END);
        assert!(credential_total_key(b) < credential_total_key(a));
        assert!(credential_total_key(a).as_slice() < CREDENTIAL_TOTAL_END);
        let describe = super::super::describe;
        assert_eq!(describe(&credential_total_key(a)), format!("cspt/{HEX}/1"));
        assert_eq!(
            describe(&credential_second_key(1_796_000_000, spent(0))),
            format!("cspw/1796000000/{HEX}/0")
        );
        assert_eq!(describe(&revoked_key(CID)), format!("crev/{HEX}"));
        assert_eq!(describe(&issued_key(CID)), format!("cred/{HEX}"));
        // A key of the wrong length reads as its bytes.
        assert_eq!(describe(b"crev/\x01"), "crev/\\x01");
        assert_eq!(describe(b"cspt/"), "cspt/");
    }

    /// Damaged records and misshapen keys are refused naming the key; nothing is skipped.
    #[test]
    fn damaged_credential_records_are_refused_naming_the_key() {
        let corrupt_at = |err: StoreError| match err {
            StoreError::Corrupt { key, source } => (key, source),
            other => panic!("not a corrupt record: {other:?}"),
        };
        let store = MemStore::new();
        store.put_raw(&credential_total_key(spent(0)), &[1, 0x80]);
        let (key, source) = corrupt_at(store.credential_spends(0).unwrap_err());
        assert_eq!(key, format!("cspt/{HEX}/0"));
        assert!(matches!(source, DecodeError::Truncated { .. }), "{source}");

        let store = MemStore::new();
        store.put_raw(&credential_second_key(9, spent(1)), &[2, 1]);
        let (key, source) = corrupt_at(store.credential_spends(0).unwrap_err());
        assert_eq!(key, format!("cspw/9/{HEX}/1"));
        assert!(matches!(
            source,
            DecodeError::UnknownVersion { found: 2, .. }
        ));
        // Before `since`, it is not read.
        assert!(store.credential_spends(10).unwrap().seconds.is_empty());

        let store = MemStore::new();
        store.put_raw(&[CREDENTIAL_SECOND_PREFIX, &[0xff; 9]].concat(), &[1, 1]);
        let (_, source) = corrupt_at(store.credential_spends(0).unwrap_err());
        assert!(
            matches!(
                source,
                DecodeError::BadKey {
                    len: 9,
                    expected: 25,
                    ..
                }
            ),
            "{source}"
        );
        // Retention cuts a damaged key below its bound without reading it, and never fails
        // for it; one past every second it leaves.
        store.put_raw(&[CREDENTIAL_SECOND_PREFIX, &[0; 3]].concat(), b"junk");
        store
            .commit(&[Write::PruneCredentialSeconds { before: u64::MAX }])
            .unwrap();
        assert!(
            store
                .get(&[CREDENTIAL_SECOND_PREFIX, &[0; 3]].concat())
                .unwrap()
                .is_none()
        );
        assert!(store.credential_spends(0).is_err());

        let store = MemStore::new();
        store.put_raw(&[REVOKED_PREFIX, &CID[..15]].concat(), &[1, 0]);
        let (_, source) = corrupt_at(store.revoked_credentials().unwrap_err());
        assert!(matches!(
            source,
            DecodeError::BadKey {
                len: 15,
                expected: 16,
                ..
            }
        ));
        let store = MemStore::new();
        store.put_raw(&revoked_key(CID), &[1, 0, 0]);
        let (key, source) = corrupt_at(store.revoked_credentials().unwrap_err());
        assert_eq!(key, format!("crev/{HEX}"));
        assert!(matches!(source, DecodeError::Trailing { extra: 1, .. }));

        let store = MemStore::new();
        store.put_raw(&issued_key(CID), &[1, 2]);
        let (key, source) = corrupt_at(store.issued_credentials().unwrap_err());
        assert_eq!(key, format!("cred/{HEX}"));
        assert!(matches!(
            source,
            DecodeError::BadTag {
                field: "parent",
                tag: 2,
                ..
            }
        ));
        let message = store.issued_credentials().unwrap_err().to_string();
        assert!(message.contains(&format!("cred/{HEX}")), "{message}");
        assert!(message.contains("restore a backup"), "{message}");
    }
}
