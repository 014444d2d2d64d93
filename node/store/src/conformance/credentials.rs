//! The suite's checks of the credential records: ledgers (totals and per-second spends),
//! retention of the per-second spends, revocations, issued credentials. [`run`](super::run)
//! runs them with the others.

use std::sync::atomic::{AtomicUsize, Ordering};

use crate::credentials::{MAX_CREDENTIAL_LABEL_LEN, MAX_ISSUED_CAVEAT_LEN, MAX_ISSUED_CAVEATS};
use crate::testing::sample_channel;
use crate::{
    CredentialSpend, CredentialSpends, IssuedCredential, LedgerId, LogWalk, Store, StoreError,
    Write,
};

/// The checks of this module, run by [`run`](super::run) after the others.
pub(super) const CHECKS: [(&str, super::Check); 6] = [
    ("credential spends", credential_spends_read_back),
    (
        "credential spend replaces",
        a_later_spend_replaces_the_earlier,
    ),
    ("credential since", credential_spends_since),
    ("credential retention", pruning_credential_seconds),
    (
        "revoked and issued credentials",
        revoked_and_issued_credentials,
    ),
    (
        "credential atomicity",
        credential_spends_land_with_their_batch,
    ),
];

/// Chain ids where byte order and any other order would disagree.
const CIDS: [[u8; 16]; 4] = [[0; 16], [1; 16], [0x80; 16], [0xff; 16]];

fn ledger(cid: usize, kind: u8) -> LedgerId {
    LedgerId {
        cid: CIDS[cid],
        kind,
    }
}

fn spend(ledger: LedgerId, total: u128, second: u64, in_second: u128) -> Write {
    Write::CredentialSpend(CredentialSpend {
        ledger,
        total,
        second,
        in_second,
    })
}

fn spends(store: &dyn Store, since: u64) -> CredentialSpends {
    store
        .credential_spends(since)
        .expect("read the credential ledgers")
}

/// An issued credential with id `CIDS[i]`.
pub fn sample_issued(i: usize, parent: Option<usize>) -> IssuedCredential {
    IssuedCredential {
        id: CIDS[i],
        parent: parent.map(|p| CIDS[p]),
        created: 1_796_000_000 + i as u64,
        label: format!("agent {i}"),
        caveats: (0..i).map(|c| format!("max<={}", c * 1_000)).collect(),
        chain: (0..=i).map(|c| [c as u8; 16]).collect(),
    }
}

/// Spends read back: every ledger's total ascending by ledger (chain id, then kind), every
/// second's spend ascending by second then ledger, whatever the order of writing (seconds
/// chosen where byte order and little-endian order would disagree).
pub fn credential_spends_read_back(store: &dyn Store) {
    assert_eq!(spends(store, 0), CredentialSpends::default());
    store
        .commit(&[
            spend(ledger(3, 0), 900, 256, 900),
            spend(ledger(0, 1), 5, u64::MAX, 5),
            spend(ledger(2, 0), u128::MAX, 255, u128::MAX),
            spend(ledger(0, 0), 1, 1, 1),
        ])
        .expect("commit spends");
    store
        .commit(&[spend(ledger(1, 7), 0, 256, 0)])
        .expect("commit a spend of nothing");
    let read = spends(store, 0);
    assert_eq!(
        read.totals,
        vec![
            (ledger(0, 0), 1),
            (ledger(0, 1), 5),
            (ledger(1, 7), 0),
            (ledger(2, 0), u128::MAX),
            (ledger(3, 0), 900),
        ],
        "totals out of ledger order"
    );
    assert_eq!(
        read.seconds,
        vec![
            (ledger(0, 0), 1, 1),
            (ledger(2, 0), 255, u128::MAX),
            (ledger(1, 7), 256, 0),
            (ledger(3, 0), 256, 900),
            (ledger(0, 1), u64::MAX, 5),
        ],
        "seconds out of (second, ledger) order"
    );
    // Other records live beside the ledgers without showing in them, and the other way round.
    store
        .commit(&[
            Write::Channel(sample_channel(1)),
            Write::CredentialRevoked {
                cid: CIDS[0],
                at: 3,
            },
            Write::CredentialIssued(sample_issued(0, None)),
        ])
        .expect("commit");
    assert_eq!(spends(store, 0), read);
    assert_eq!(store.channels().expect("list").len(), 1);
}

/// A later spend of a ledger replaces its total, and its amount in the same second, within a
/// batch and across batches; a spend in another second adds that second.
pub fn a_later_spend_replaces_the_earlier(store: &dyn Store) {
    let (a, b) = (ledger(1, 0), ledger(1, 1));
    store
        .commit(&[
            spend(a, 10, 100, 10),
            spend(b, 7, 100, 7),
            spend(a, 30, 100, 30),
        ])
        .expect("commit");
    store
        .commit(&[spend(a, 45, 100, 45), spend(a, 50, 101, 5)])
        .expect("commit");
    let read = spends(store, 0);
    assert_eq!(read.totals, vec![(a, 50), (b, 7)]);
    assert_eq!(read.seconds, vec![(a, 100, 45), (b, 100, 7), (a, 101, 5)]);
    // A batch crossing seconds keeps each second's last amount; a prune between two spends
    // of one second does not undo the later.
    store
        .commit(&[
            spend(a, 51, 101, 6),
            spend(a, 60, 102, 9),
            spend(a, 61, 101, 7),
            Write::PruneCredentialSeconds { before: 102 },
            spend(a, 70, 102, 19),
            spend(b, 8, 101, 1),
        ])
        .expect("commit");
    let read = spends(store, 0);
    assert_eq!(read.totals, vec![(a, 70), (b, 8)]);
    assert_eq!(read.seconds, vec![(b, 101, 1), (a, 102, 19)]);
}

/// `since` keeps the seconds at or after it, never the totals.
pub fn credential_spends_since(store: &dyn Store) {
    let a = ledger(2, 0);
    let seconds = [0, 1, 999, 1_000, 1_001, u64::MAX - 1, u64::MAX];
    let writes: Vec<_> = seconds
        .iter()
        .zip(1u128..)
        .map(|(&second, total)| spend(a, total, second, 1))
        .collect();
    store.commit(&writes).expect("commit");
    for since in [0, 1, 1_000, 1_002, u64::MAX] {
        let read = spends(store, since);
        assert_eq!(read.totals, vec![(a, 7)], "since {since}");
        let kept: Vec<u64> = read.seconds.iter().map(|&(_, s, _)| s).collect();
        let expected: Vec<u64> = seconds.into_iter().filter(|&s| s >= since).collect();
        assert_eq!(kept, expected, "since {since}");
    }
}

/// Pruning drops exactly the seconds before `before`, every ledger's, and keeps the totals; a
/// prune and a spend in one batch apply in order.
pub fn pruning_credential_seconds(store: &dyn Store) {
    let (a, b) = (ledger(0, 0), ledger(3, 1));
    let seconds = [1, 255, 256, 86_400, 86_401, u64::MAX];
    let mut writes = Vec::new();
    for (i, &second) in seconds.iter().enumerate() {
        writes.push(spend(a, i as u128 + 1, second, 1));
        writes.push(spend(b, i as u128 + 10, second, 2));
    }
    store.commit(&writes).expect("commit");
    let totals = spends(store, 0).totals;
    assert_eq!(totals, vec![(a, 6), (b, 15)]);
    let left = |store: &dyn Store| -> Vec<u64> {
        let read = spends(store, 0);
        assert_eq!(read.totals, totals, "pruning touched a total");
        read.seconds.iter().map(|&(_, s, _)| s).collect()
    };
    store
        .commit(&[Write::PruneCredentialSeconds { before: 0 }])
        .expect("prune nothing");
    assert_eq!(
        left(store),
        vec![
            1,
            1,
            255,
            255,
            256,
            256,
            86_400,
            86_400,
            86_401,
            86_401,
            u64::MAX,
            u64::MAX
        ]
    );
    store
        .commit(&[Write::PruneCredentialSeconds { before: 256 }])
        .expect("prune");
    assert_eq!(
        left(store),
        vec![256, 256, 86_400, 86_400, 86_401, 86_401, u64::MAX, u64::MAX]
    );
    store
        .commit(&[Write::PruneCredentialSeconds { before: 256 }])
        .expect("prune again: nothing");
    assert_eq!(left(store).len(), 8);
    store
        .commit(&[Write::PruneCredentialSeconds { before: 86_401 }])
        .expect("prune");
    assert_eq!(left(store), vec![86_401, 86_401, u64::MAX, u64::MAX]);
    // In one batch: a spend then a prune past it drops it; a prune then a spend keeps it.
    store
        .commit(&[
            spend(a, 6, 90_000, 1),
            Write::PruneCredentialSeconds { before: 90_001 },
            spend(b, 15, 90_002, 2),
        ])
        .expect("commit");
    assert_eq!(left(store), vec![90_002, u64::MAX, u64::MAX]);
    store
        .commit(&[Write::PruneCredentialSeconds { before: u64::MAX }])
        .expect("prune all but the last second");
    assert_eq!(left(store), vec![u64::MAX, u64::MAX]);
}

/// Revocations and issued credentials read back in chain-id order, a later record of an id
/// replacing the earlier; an issued credential past a maximum refuses the whole batch.
pub fn revoked_and_issued_credentials(store: &dyn Store) {
    assert!(store.revoked_credentials().expect("read").is_empty());
    assert!(store.issued_credentials().expect("read").is_empty());
    store
        .commit(&[
            Write::CredentialRevoked {
                cid: CIDS[3],
                at: u64::MAX,
            },
            Write::CredentialRevoked {
                cid: CIDS[0],
                at: 0,
            },
            Write::CredentialRevoked {
                cid: CIDS[2],
                at: 5,
            },
        ])
        .expect("commit revocations");
    store
        .commit(&[Write::CredentialRevoked {
            cid: CIDS[2],
            at: 7,
        }])
        .expect("revoke again");
    assert_eq!(
        store.revoked_credentials().expect("read"),
        vec![(CIDS[0], 0), (CIDS[2], 7), (CIDS[3], u64::MAX)]
    );
    let longest = IssuedCredential {
        label: "l".repeat(MAX_CREDENTIAL_LABEL_LEN),
        caveats: vec!["c".repeat(MAX_ISSUED_CAVEAT_LEN); MAX_ISSUED_CAVEATS],
        chain: vec![[5; 16]; MAX_ISSUED_CAVEATS + 1],
        ..sample_issued(3, Some(1))
    };
    let bare = IssuedCredential {
        label: String::new(),
        caveats: Vec::new(),
        chain: Vec::new(),
        ..sample_issued(1, None)
    };
    store
        .commit(&[
            Write::CredentialIssued(longest.clone()),
            Write::CredentialIssued(sample_issued(2, Some(0))),
            Write::CredentialIssued(bare.clone()),
            Write::CredentialIssued(sample_issued(0, None)),
        ])
        .expect("commit issued credentials");
    let relabelled = IssuedCredential {
        label: "renamed".into(),
        ..sample_issued(2, Some(0))
    };
    store
        .commit(&[Write::CredentialIssued(relabelled.clone())])
        .expect("issue again");
    assert_eq!(
        store.issued_credentials().expect("read"),
        vec![sample_issued(0, None), bare, relabelled, longest.clone()]
    );
    let mut too_long = sample_issued(1, None);
    too_long.caveats.push("c".repeat(MAX_ISSUED_CAVEAT_LEN + 1));
    let err = store
        .commit(&[
            Write::CredentialRevoked {
                cid: CIDS[1],
                at: 9,
            },
            Write::CredentialIssued(too_long),
        ])
        .expect_err("a caveat past the maximum is refused");
    assert!(matches!(err, StoreError::Unencodable(_)), "{err:?}");
    assert_eq!(store.revoked_credentials().expect("read").len(), 3);
    assert_eq!(store.issued_credentials().expect("read")[3], longest);
}

/// A batch of a proof, its log entry and its spends lands whole, or (one write refused) not
/// at all; batches committed from several threads are each read whole, totals and seconds
/// alike, by a reader running beside them.
pub fn credential_spends_land_with_their_batch(store: &dyn Store) {
    let (a, b) = (ledger(0, 0), ledger(1, 0));
    let payment = super::sample_logged_payment(1, 1);
    store
        .commit(&[
            Write::Channel(sample_channel(1)),
            Write::Payment(payment.clone()),
            spend(a, 100, 50, 100),
            spend(b, 100, 50, 100),
        ])
        .expect("a proof, its payment and its spends");
    let before = spends(store, 0);
    let mut bad = sample_issued(0, None);
    bad.label = "l".repeat(MAX_CREDENTIAL_LABEL_LEN + 1);
    let err = store
        .commit(&[
            Write::Channel(sample_channel(2)),
            Write::Payment(super::sample_logged_payment(2, 2)),
            spend(a, 200, 51, 100),
            Write::PruneCredentialSeconds { before: 51 },
            Write::CredentialIssued(bad),
        ])
        .expect_err("the batch is refused");
    assert!(matches!(err, StoreError::Unencodable(_)), "{err:?}");
    assert_eq!(spends(store, 0), before, "half a batch");
    assert_eq!(store.channel(2).expect("read"), None, "half a batch");
    let mut log = Vec::new();
    store
        .walk_payments(LogWalk::After(0), &mut |p| {
            log.push(p);
            true
        })
        .expect("walk");
    assert_eq!(log, vec![payment]);

    const THREADS: usize = 4;
    const ROUNDS: u64 = 50;
    let writing = AtomicUsize::new(THREADS);
    std::thread::scope(|s| {
        s.spawn(|| {
            // Read for as long as the writers write.
            while writing.load(Ordering::SeqCst) > 0 {
                let read = spends(store, 1);
                for t in 0..THREADS {
                    let total = |kind| {
                        let ledger = ledger(t, kind);
                        let found = read.totals.iter().find(|(l, _)| *l == ledger);
                        found.map_or(0, |&(_, total)| total)
                    };
                    assert_eq!(total(10), total(11), "a read showed half of a batch");
                    let newest = read
                        .seconds
                        .iter()
                        .filter(|(l, _, _)| *l == ledger(t, 10))
                        .map(|&(_, second, _)| u128::from(second))
                        .max()
                        .unwrap_or(0);
                    assert_eq!(newest, total(10), "totals and seconds from two states");
                }
            }
        });
        for t in 0..THREADS {
            let writing = &writing;
            s.spawn(move || {
                for round in 1..=ROUNDS {
                    // Each batch moves a pair of ledgers to the same total, spent in its round.
                    let pair = [0, 1].map(|kind| {
                        spend(
                            ledger(t, 10 + kind),
                            u128::from(round),
                            round,
                            u128::from(round),
                        )
                    });
                    store.commit(&pair).expect("commit from a thread");
                    std::thread::yield_now();
                }
                writing.fetch_sub(1, Ordering::SeqCst);
            });
        }
    });
    let read = spends(store, 1);
    assert_eq!(read.seconds.len(), 2 + THREADS * 2 * ROUNDS as usize);
}
