//! The one conformance suite every [`Store`] backend must pass (RELIABILITY D5).
//!
//! Call [`run`] from a test with a function that makes a fresh, empty store; or call the
//! checks one by one. Each check panics, with what was expected, when the store breaks the
//! contract. Durability across a restart depends on how a backend is reopened, so each
//! backend's own tests check it (see `RocksStore`'s).
//!
//! The checks of the credential records are in [`credentials`].

pub mod credentials;

use farthing_core::Channel;

use crate::records::MAX_SIGNATURE_LEN;
use crate::testing::{sample_channel, sample_cursor, sample_pending_tx};
use crate::{KeyedPayment, LogWalk, LoggedPayment, Store, StoreError, Write};

/// One check of the suite.
type Check = fn(&dyn Store);

/// Run every check, each on a fresh store from `make`.
pub fn run<S: Store>(make: impl Fn() -> S) {
    let checks: [(&str, Check); 16] = [
        ("empty store", empty_store_reads_nothing),
        ("read back", committed_writes_read_back),
        ("batch atomicity", a_batch_lands_whole),
        ("refused batch", a_refused_batch_leaves_nothing),
        ("overwrite", later_writes_overwrite_earlier_ones),
        ("remove", removed_pending_txs_are_gone),
        ("ordering", reads_come_in_id_order),
        ("many channels", many_channels),
        ("large signatures", large_signatures),
        ("threads", concurrent_commits_land_whole),
        ("payment keys", payment_keys),
        ("closing marks", closing_marks),
        ("owner", owner),
        ("payment log", payment_log_reads_back_in_order),
        (
            "payment log atomicity",
            payment_log_entries_land_with_their_batch,
        ),
        ("payment log retention", payment_log_prunes_a_range),
    ];
    for (name, check) in checks.into_iter().chain(credentials::CHECKS) {
        let store = make();
        let reads = store.channels().expect("a fresh store lists its channels");
        assert!(
            reads.is_empty(),
            "check {name}: `make` must return an empty store"
        );
        check(&store);
    }
}

/// An empty store has no channel, no cursor, no pending transaction; an empty commit is fine.
pub fn empty_store_reads_nothing(store: &dyn Store) {
    assert_eq!(store.channel(0).expect("read channel 0"), None);
    assert_eq!(store.channel(u64::MAX).expect("read channel max"), None);
    assert!(store.channels().expect("list channels").is_empty());
    assert_eq!(store.cursor().expect("read cursor"), None);
    assert!(store.pending_txs().expect("list pending txs").is_empty());
    store.commit(&[]).expect("an empty batch commits");
    assert!(store.channels().expect("list channels").is_empty());
}

/// What a commit wrote reads back equal, field for field.
pub fn committed_writes_read_back(store: &dyn Store) {
    let channel = sample_channel(7);
    let mut bare = sample_channel(8);
    bare.ours = None;
    bare.theirs = None;
    bare.on_chain.closer = Some(bare.partner);
    let tx = sample_pending_tx(3, Some(7));
    store
        .commit(&[Write::Channel(channel.clone())])
        .expect("commit a channel");
    assert_eq!(store.channel(7).expect("read"), Some(channel.clone()));
    store
        .commit(&[
            Write::Channel(bare.clone()),
            Write::PendingTx(tx.clone()),
            Write::Cursor(sample_cursor(12)),
        ])
        .expect("commit");
    assert_eq!(store.channel(8).expect("read"), Some(bare.clone()));
    assert_eq!(store.channels().expect("list"), vec![channel, bare]);
    assert_eq!(store.cursor().expect("read"), Some(sample_cursor(12)));
    assert_eq!(store.pending_txs().expect("list"), vec![tx]);
    assert_eq!(store.channel(9).expect("read"), None);
}

/// A batch with a channel, the cursor and a pending transaction is visible whole.
pub fn a_batch_lands_whole(store: &dyn Store) {
    let batch = [
        Write::Channel(sample_channel(1)),
        Write::Cursor(sample_cursor(500)),
        Write::PendingTx(sample_pending_tx(9, Some(1))),
    ];
    store.commit(&batch).expect("commit the batch");
    assert_eq!(store.channels().expect("list"), vec![sample_channel(1)]);
    assert_eq!(store.cursor().expect("read"), Some(sample_cursor(500)));
    assert_eq!(
        store.pending_txs().expect("list"),
        vec![sample_pending_tx(9, Some(1))]
    );
}

/// A batch refused for one bad write (a signature too long to store) writes nothing.
pub fn a_refused_batch_leaves_nothing(store: &dyn Store) {
    store
        .commit(&[Write::Cursor(sample_cursor(1))])
        .expect("commit");
    let mut bad = sample_channel(2);
    if let Some(p) = bad.theirs.as_mut() {
        p.signature = vec![1; MAX_SIGNATURE_LEN + 1].into();
    }
    let err = store
        .commit(&[
            Write::Channel(sample_channel(1)),
            Write::Cursor(sample_cursor(2)),
            Write::PendingTx(sample_pending_tx(1, None)),
            Write::Channel(bad),
        ])
        .expect_err("a signature past the maximum is refused");
    assert!(
        matches!(err, StoreError::Unencodable(_)),
        "unexpected error: {err}"
    );
    assert!(store.channels().expect("list").is_empty(), "half a batch");
    assert_eq!(store.cursor().expect("read"), Some(sample_cursor(1)));
    assert!(
        store.pending_txs().expect("list").is_empty(),
        "half a batch"
    );
}

/// A later write to the same key replaces the earlier one, across commits and within one.
pub fn later_writes_overwrite_earlier_ones(store: &dyn Store) {
    let mut channel = sample_channel(4);
    store
        .commit(&[
            Write::Channel(channel.clone()),
            Write::Cursor(sample_cursor(10)),
        ])
        .expect("commit");
    if let Some(p) = channel.ours.as_mut() {
        p.nonce += 1;
        p.transferred += 5;
    }
    store
        .commit(&[Write::Channel(channel.clone())])
        .expect("commit");
    assert_eq!(store.channel(4).expect("read"), Some(channel.clone()));
    assert_eq!(store.channels().expect("list").len(), 1);

    // Within one batch the last write wins.
    let mut last = channel.clone();
    last.on_chain.deposit_b += 1;
    let mut tx = sample_pending_tx(6, Some(4));
    store
        .commit(&[
            Write::Channel(channel),
            Write::Cursor(sample_cursor(11)),
            Write::PendingTx(tx.clone()),
            Write::Channel(last.clone()),
            Write::Cursor(sample_cursor(12)),
        ])
        .expect("commit");
    assert_eq!(store.channel(4).expect("read"), Some(last));
    assert_eq!(store.cursor().expect("read"), Some(sample_cursor(12)));

    // Replacing a pending transaction (a fee bump) keeps one record under its key.
    tx.raw.push(0xff);
    tx.submitted_at += 60;
    store
        .commit(&[Write::PendingTx(tx.clone())])
        .expect("commit");
    assert_eq!(store.pending_txs().expect("list"), vec![tx]);
}

/// Removing a pending transaction removes only it; removing an absent one is a no-op.
pub fn removed_pending_txs_are_gone(store: &dyn Store) {
    let txs: Vec<_> = (1..=3).map(|k| sample_pending_tx(k, Some(k))).collect();
    let puts: Vec<_> = txs.iter().cloned().map(Write::PendingTx).collect();
    store.commit(&puts).expect("commit");
    store
        .commit(&[Write::RemovePendingTx(2), Write::RemovePendingTx(99)])
        .expect("remove");
    assert_eq!(
        store.pending_txs().expect("list"),
        vec![txs[0].clone(), txs[2].clone()]
    );
    // Put and remove in one batch: removed. Remove then put: present.
    store
        .commit(&[
            Write::PendingTx(sample_pending_tx(4, None)),
            Write::RemovePendingTx(4),
            Write::RemovePendingTx(1),
            Write::PendingTx(txs[0].clone()),
        ])
        .expect("commit");
    assert_eq!(
        store.pending_txs().expect("list"),
        vec![txs[0].clone(), txs[2].clone()]
    );
    store
        .commit(&[Write::RemovePendingTx(1), Write::RemovePendingTx(3)])
        .expect("remove");
    assert!(store.pending_txs().expect("list").is_empty());
}

/// Channels and pending transactions list in ascending numeric order, whatever the order
/// of writing (ids chosen where byte order and little-endian order would disagree).
pub fn reads_come_in_id_order(store: &dyn Store) {
    let ids = [256, u64::MAX, 1, 0, 255, 1 << 32, 1 << 56, 2, u64::MAX - 1];
    let mut writes: Vec<_> = ids
        .iter()
        .map(|&id| Write::Channel(sample_channel(id)))
        .collect();
    writes.extend(
        ids.iter()
            .map(|&k| Write::PendingTx(sample_pending_tx(k, None))),
    );
    store.commit(&writes).expect("commit");
    let mut sorted = ids;
    sorted.sort_unstable();
    let channel_ids: Vec<_> = store
        .channels()
        .expect("list")
        .iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(channel_ids, sorted, "channels out of id order");
    let keys: Vec<_> = store
        .pending_txs()
        .expect("list")
        .iter()
        .map(|t| t.key)
        .collect();
    assert_eq!(keys, sorted, "pending txs out of key order");
}

/// A thousand channels in one batch, then more in several: all there, each readable.
pub fn many_channels(store: &dyn Store) {
    let first: Vec<_> = (0..1_000)
        .rev()
        .map(|id| Write::Channel(sample_channel(id)))
        .collect();
    store.commit(&first).expect("commit 1000 channels");
    for chunk in (1_000..1_200).collect::<Vec<u64>>().chunks(50) {
        let writes: Vec<_> = chunk
            .iter()
            .map(|&id| Write::Channel(sample_channel(id)))
            .collect();
        store.commit(&writes).expect("commit 50 channels");
    }
    let all = store.channels().expect("list");
    let expected: Vec<Channel> = (0..1_200).map(sample_channel).collect();
    assert!(
        all == expected,
        "the 1200 channels differ from what was written"
    );
    for id in [0, 499, 999, 1_000, 1_199] {
        assert_eq!(store.channel(id).expect("read"), Some(sample_channel(id)));
    }
    assert_eq!(store.channel(1_200).expect("read"), None);
}

/// Signatures of 65 bytes with every bit set, empty ones, and the longest storable one.
pub fn large_signatures(store: &dyn Store) {
    let mut channels = Vec::new();
    for (id, len, byte) in [(1, 65, 0xff), (2, 0, 0), (3, MAX_SIGNATURE_LEN, 0xab)] {
        let mut c = sample_channel(id);
        if let Some(p) = c.ours.as_mut() {
            p.signature = vec![byte; len].into();
            p.transferred = u128::MAX;
            p.nonce = u64::MAX;
        }
        if let Some(p) = c.theirs.as_mut() {
            p.signature = vec![!byte; len].into();
        }
        channels.push(c);
    }
    let writes: Vec<_> = channels.iter().cloned().map(Write::Channel).collect();
    store.commit(&writes).expect("commit");
    assert_eq!(store.channels().expect("list"), channels);
    assert_eq!(store.channel(3).expect("read"), Some(channels[2].clone()));
}

/// Commits from several threads at once all land, and a listing never shows half a batch.
pub fn concurrent_commits_land_whole(store: &dyn Store) {
    const THREADS: u64 = 4;
    const ROUNDS: u64 = 20;
    std::thread::scope(|s| {
        for t in 0..THREADS {
            s.spawn(move || {
                for round in 0..ROUNDS {
                    // Each batch moves a pair of channels to the same deposit together.
                    let pair = [t * 2, t * 2 + 1].map(|id| {
                        let mut c = sample_channel(id);
                        c.on_chain.deposit_b = u128::from(round);
                        Write::Channel(c)
                    });
                    store.commit(&pair).expect("commit from a thread");
                }
            });
        }
        s.spawn(|| {
            for _ in 0..ROUNDS * 2 {
                let listed = store.channels().expect("list while others commit");
                for pair in listed.chunks(2) {
                    if let [a, b] = pair {
                        assert_eq!(
                            (a.id / 2, a.on_chain.deposit_b),
                            (b.id / 2, b.on_chain.deposit_b),
                            "a listing showed half of a batch"
                        );
                    }
                }
            }
        });
    });
    let all = store.channels().expect("list");
    assert_eq!(all.len() as u64, THREADS * 2);
    assert!(
        all.iter()
            .all(|c| c.on_chain.deposit_b == u128::from(ROUNDS - 1))
    );
}

/// A payment filed under its idempotency key reads back with the channel written beside it;
/// keys are exact (no prefix match); an empty or overlong key refuses the whole batch.
pub fn payment_keys(store: &dyn Store) {
    let paid = KeyedPayment {
        channel: 7,
        nonce: 12,
        amount: 1_500_000,
    };
    assert_eq!(store.keyed_payment("order-1").expect("read key"), None);
    store
        .commit(&[
            Write::Channel(sample_channel(7)),
            Write::PaymentKey("order-1".into(), paid),
        ])
        .expect("commit a keyed payment");
    assert_eq!(
        store.keyed_payment("order-1").expect("read key"),
        Some(paid)
    );
    assert_eq!(store.keyed_payment("order-").expect("read prefix"), None);
    assert_eq!(store.keyed_payment("order-10").expect("read longer"), None);
    for bad in [
        String::new(),
        "k".repeat(crate::records::MAX_PAYMENT_KEY_LEN + 1),
    ] {
        let err = store
            .commit(&[
                Write::Channel(sample_channel(8)),
                Write::PaymentKey(bad, paid),
            ])
            .expect_err("a bad key is refused");
        assert!(matches!(err, StoreError::Unencodable(_)), "{err:?}");
    }
    assert_eq!(store.channel(8).expect("read channel 8"), None);
    // Redeemed challenges are their own namespace: the same string as a key is another record.
    assert_eq!(store.redeemed("order-1").expect("read redeemed"), None);
    let served = KeyedPayment { nonce: 13, ..paid };
    store
        .commit(&[Write::Redeemed("order-1".into(), served)])
        .expect("commit a redemption");
    assert_eq!(store.redeemed("order-1").expect("read"), Some(served));
    assert_eq!(store.keyed_payment("order-1").expect("read"), Some(paid));
    let err = store
        .commit(&[Write::Redeemed(String::new(), served)])
        .expect_err("an empty challenge is refused");
    assert!(matches!(err, StoreError::Unencodable(_)), "{err:?}");
}

/// The owner is absent until recorded, then read back as written.
pub fn owner(store: &dyn Store) {
    assert_eq!(store.owner().expect("read owner"), None);
    let owner = alloy_primitives::Address::repeat_byte(0x42);
    store.commit(&[Write::Owner(owner)]).expect("record owner");
    assert_eq!(store.owner().expect("read owner"), Some(owner));
}

/// Closing marks read back in id order, once each however often written, beside the channel
/// they mark.
pub fn closing_marks(store: &dyn Store) {
    assert_eq!(
        store.closing_channels().expect("read marks"),
        Vec::<u64>::new()
    );
    store
        .commit(&[
            Write::Channel(sample_channel(7)),
            Write::Closing(7),
            Write::Closing(3),
        ])
        .expect("commit closing marks");
    store.commit(&[Write::Closing(7)]).expect("mark again");
    assert_eq!(store.closing_channels().expect("read marks"), vec![3, 7]);
    assert_eq!(
        store.channel(7).expect("read channel"),
        Some(sample_channel(7))
    );
}

/// A payment-log entry numbered `seq` on channel `channel`.
pub fn sample_logged_payment(seq: u64, channel: u64) -> LoggedPayment {
    LoggedPayment {
        seq,
        channel,
        outgoing: seq.is_multiple_of(2),
        nonce: seq * 3,
        amount: u128::from(seq) * 1_000 + 1,
        at_ms: 1_796_000_000_000 + seq,
        memo: format!("memo {seq}").into_bytes(),
        key: (seq.is_multiple_of(3)).then(|| format!("key-{seq}")),
        carried: seq.is_multiple_of(5),
        credential: seq.is_multiple_of(7).then_some([seq as u8; 16]),
    }
}

/// Everything `walk` visits, in order.
fn walked(store: &dyn Store, walk: LogWalk) -> Vec<LoggedPayment> {
    let mut out = Vec::new();
    store
        .walk_payments(walk, &mut |p| {
            out.push(p);
            true
        })
        .expect("walk the payment log");
    out
}

/// Entries read back field for field, forward from any point and backward from any point, in
/// sequence order (also past 255 and 65,535: keys sort like numbers); a walk stops when told.
pub fn payment_log_reads_back_in_order(store: &dyn Store) {
    assert_eq!(store.last_payment_seq().expect("last seq"), 0);
    assert!(walked(store, LogWalk::After(0)).is_empty());
    let seqs = [1u64, 2, 3, 255, 256, 65_536, 1 << 40];
    let writes: Vec<Write> = seqs
        .iter()
        .map(|&seq| Write::Payment(sample_logged_payment(seq, seq % 4)))
        .collect();
    store.commit(&writes).expect("commit log entries");
    let numbers = |entries: Vec<LoggedPayment>| entries.iter().map(|p| p.seq).collect::<Vec<_>>();
    assert_eq!(
        walked(store, LogWalk::After(0)),
        seqs.map(|s| sample_logged_payment(s, s % 4))
    );
    assert_eq!(
        numbers(walked(store, LogWalk::After(3))),
        vec![255, 256, 65_536, 1 << 40]
    );
    assert_eq!(
        numbers(walked(store, LogWalk::After(255))),
        vec![256, 65_536, 1 << 40]
    );
    assert!(walked(store, LogWalk::After(1 << 40)).is_empty());
    assert!(walked(store, LogWalk::After(u64::MAX)).is_empty());
    assert_eq!(
        numbers(walked(store, LogWalk::Before(256))),
        vec![255, 3, 2, 1]
    );
    assert_eq!(
        numbers(walked(store, LogWalk::Before(u64::MAX))),
        vec![1 << 40, 65_536, 256, 255, 3, 2, 1]
    );
    assert!(walked(store, LogWalk::Before(1)).is_empty());
    assert!(walked(store, LogWalk::Before(0)).is_empty());
    assert_eq!(store.last_payment_seq().expect("last seq"), 1 << 40);
    let mut first_two = Vec::new();
    store
        .walk_payments(LogWalk::After(0), &mut |p| {
            first_two.push(p.seq);
            first_two.len() < 2
        })
        .expect("walk");
    assert_eq!(first_two, vec![1, 2], "a walk stops when told");
    // A run longer than a chunk holds, walked from inside any of its chunks.
    let base = 1u64 << 40;
    let run: Vec<Write> = (base + 1..=base + 600)
        .map(|seq| Write::Payment(sample_logged_payment(seq, 9)))
        .collect();
    store.commit(&run).expect("commit a long run");
    for after in [base, base + 255, base + 256, base + 257, base + 599] {
        let seqs = numbers(walked(store, LogWalk::After(after)));
        assert_eq!(
            seqs,
            (after + 1..=base + 600).collect::<Vec<_>>(),
            "after {after}"
        );
        let back = numbers(walked(store, LogWalk::Before(after + 1)));
        assert_eq!(back.len() as u64, after - base + 7, "before {}", after + 1);
        assert_eq!(back.first(), Some(&after));
    }
    store
        .commit(&[Write::PrunePayments { through: base }])
        .expect("prune the older ones");
    assert_eq!(walked(store, LogWalk::After(0)).len(), 600);
    assert_eq!(store.last_payment_seq().expect("last seq"), base + 600);
    // Other records live beside the log without showing in it.
    store
        .commit(&[Write::Channel(sample_channel(u64::MAX)), Write::Closing(1)])
        .expect("commit");
    assert_eq!(walked(store, LogWalk::After(0)).len(), 600);
}

/// Entries land with the batch that carries them, or not at all: a batch refused for one bad
/// write (an overlong memo, an empty key, a bad signature) leaves no entry.
pub fn payment_log_entries_land_with_their_batch(store: &dyn Store) {
    store
        .commit(&[
            Write::Channel(sample_channel(1)),
            Write::Payment(sample_logged_payment(1, 1)),
            Write::Payment(sample_logged_payment(2, 1)),
        ])
        .expect("a proof and its payments");
    let too_long = LoggedPayment {
        memo: vec![b'm'; crate::records::MAX_LOGGED_MEMO_LEN + 1],
        ..sample_logged_payment(4, 1)
    };
    let no_key = LoggedPayment {
        key: Some(String::new()),
        ..sample_logged_payment(4, 1)
    };
    let mut bad_signature = sample_channel(2);
    if let Some(p) = bad_signature.theirs.as_mut() {
        p.signature = vec![1; MAX_SIGNATURE_LEN + 1].into();
    }
    for bad in [
        Write::Payment(too_long),
        Write::Payment(no_key),
        Write::Channel(bad_signature),
    ] {
        let err = store
            .commit(&[Write::Payment(sample_logged_payment(3, 2)), bad])
            .expect_err("the batch is refused");
        assert!(matches!(err, StoreError::Unencodable(_)), "{err:?}");
    }
    assert_eq!(
        walked(store, LogWalk::After(0)),
        vec![sample_logged_payment(1, 1), sample_logged_payment(2, 1)],
        "no entry of a refused batch"
    );
}

/// Pruning drops the entries up to a number, never past it, by chunk (the entries a commit
/// wrote together): a chunk holding later entries too stays whole.
pub fn payment_log_prunes_a_range(store: &dyn Store) {
    for seq in 1..=10 {
        store
            .commit(&[Write::Payment(sample_logged_payment(seq, 1))])
            .expect("commit");
    }
    store
        .commit(&[Write::PrunePayments { through: 4 }])
        .expect("prune");
    let left: Vec<u64> = walked(store, LogWalk::After(0))
        .iter()
        .map(|p| p.seq)
        .collect();
    assert_eq!(left, (5..=10).collect::<Vec<_>>());
    store
        .commit(&[Write::PrunePayments { through: 4 }])
        .expect("prune again: nothing");
    store
        .commit(&[Write::PrunePayments { through: 9 }])
        .expect("prune");
    assert_eq!(
        walked(store, LogWalk::After(0)),
        vec![sample_logged_payment(10, 1)]
    );
    assert_eq!(store.last_payment_seq().expect("last"), 10);
    // 11..=15 in one commit: pruning through 12 keeps their chunk whole, through 15 drops it.
    let writes: Vec<Write> = (11..=15)
        .map(|seq| Write::Payment(sample_logged_payment(seq, 2)))
        .collect();
    store.commit(&writes).expect("commit");
    store
        .commit(&[Write::PrunePayments { through: 12 }])
        .expect("prune");
    let left: Vec<u64> = walked(store, LogWalk::After(0))
        .iter()
        .map(|p| p.seq)
        .collect();
    assert_eq!(left, (11..=15).collect::<Vec<_>>());
    assert_eq!(
        walked(store, LogWalk::After(12)),
        (13..=15)
            .map(|s| sample_logged_payment(s, 2))
            .collect::<Vec<_>>(),
        "a walk starts inside a chunk"
    );
    assert_eq!(
        walked(store, LogWalk::Before(13)),
        vec![sample_logged_payment(12, 2), sample_logged_payment(11, 2)],
        "and ends inside one"
    );
    store
        .commit(&[Write::PrunePayments { through: 15 }])
        .expect("prune");
    assert!(walked(store, LogWalk::After(0)).is_empty());
    store
        .commit(&[Write::PrunePayments { through: u64::MAX }])
        .expect("prune everything");
    assert!(walked(store, LogWalk::After(0)).is_empty());
    assert_eq!(store.last_payment_seq().expect("last"), 0);
    store
        .commit(&[Write::Channel(sample_channel(3))])
        .expect("other records stay writable");
}
