//! The store's integration tests: the conformance suite against every backend, through the
//! public API only, and the failing wrapper other crates use.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use farthing_store::testing::{FailingStore, sample_channel, sample_cursor};
use farthing_store::{LoggedPayment, MemStore, RocksStore, Store, StoreError, Write, conformance};

#[test]
fn mem_store_conforms() {
    conformance::run(MemStore::new);
}

#[test]
fn rocks_store_conforms() {
    let parent = tempfile::tempdir().unwrap();
    let n = AtomicUsize::new(0);
    conformance::run(|| {
        let dir = parent
            .path()
            .join(n.fetch_add(1, Ordering::SeqCst).to_string());
        RocksStore::open(dir).unwrap()
    });
}

#[test]
fn a_failing_store_that_is_not_failing_conforms() {
    conformance::run(|| FailingStore::new(MemStore::new()));
}

#[test]
fn shared_stores_conform() {
    conformance::run(|| Arc::new(MemStore::new()));
    conformance::run(|| Box::new(MemStore::new()) as Box<dyn Store>);
}

#[test]
fn a_failing_store_refuses_commits_keeps_reads_and_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let store = FailingStore::new(RocksStore::open(dir.path()).unwrap());
    let switch = store.switch();
    store.commit(&[Write::Channel(sample_channel(1))]).unwrap();

    switch.fail();
    let err = store
        .commit(&[
            Write::Channel(sample_channel(2)),
            Write::Cursor(sample_cursor(3)),
        ])
        .unwrap_err();
    assert!(matches!(err, StoreError::Unavailable { .. }), "{err}");
    assert!(
        err.to_string().contains("retry once the store is back"),
        "{err}"
    );
    assert_eq!(switch.refused(), 1);
    // Reads pass through; nothing of the refused batch is there.
    assert_eq!(store.channels().unwrap(), vec![sample_channel(1)]);
    assert_eq!(store.cursor().unwrap(), None);

    switch.recover();
    store.commit(&[Write::Channel(sample_channel(2))]).unwrap();
    assert_eq!(store.channels().unwrap().len(), 2);
    assert!(!switch.is_failing());
}

/// Bytes per payment of the payment log on disk (RocksDB, compacted): 100,000 entries written
/// as the node writes them (in synced batches of 128, beside their channel's record), with
/// neither memo nor key (the benchmark's payments), then with a 16-byte memo and a 20-byte
/// idempotency key of random hex digits (which compress only to half), then as an agent's
/// payment: the same with the credential that spent it (one of 8 random chain ids). Prints the
/// numbers (`cargo test -p farthing-store --test it -- --nocapture payment_log_bytes`); the
/// goal is under 100.
#[test]
fn payment_log_bytes_per_payment() {
    const N: u64 = 100_000;
    for (memo, key, credential) in [(0, 0, false), (16, 20, false), (16, 20, true)] {
        let dir = tempfile::tempdir().unwrap();
        let store = RocksStore::open(dir.path()).unwrap();
        store.commit(&[Write::Channel(sample_channel(1))]).unwrap();
        store.compact().unwrap();
        let before = store.sst_bytes().unwrap();
        let start_ms = 1_796_000_000_000u64;
        let mut state = 0x5eed_u64;
        let mut hex = |len: usize| -> String {
            (0..len)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    char::from(b"0123456789abcdef"[(state % 16) as usize])
                })
                .collect()
        };
        for batch in (1..=N).collect::<Vec<_>>().chunks(128) {
            let mut writes = vec![Write::Channel(sample_channel(1))];
            writes.extend(batch.iter().map(|&seq| {
                Write::Payment(LoggedPayment {
                    seq,
                    channel: 1,
                    outgoing: seq.is_multiple_of(3),
                    nonce: seq / 8 + 1,
                    amount: 1 + u128::from(seq % 5) * 1_000,
                    at_ms: start_ms + seq / 30,
                    memo: hex(memo).into_bytes(),
                    key: (key > 0).then(|| hex(key)),
                    carried: false,
                    credential: credential.then(|| {
                        let agent = seq % 8 + 1;
                        let mut cid = [0; 16];
                        let halves = [0x9e37_79b9_7f4a_7c15_u64, 0xbf58_476d_1ce4_e5b9];
                        for (half, k) in cid.chunks_mut(8).zip(halves) {
                            half.copy_from_slice(&agent.wrapping_mul(k).to_be_bytes());
                        }
                        cid
                    }),
                })
            }));
            store.commit(&writes).unwrap();
        }
        store.compact().unwrap();
        let bytes = store.sst_bytes().unwrap() - before;
        let per_payment = bytes as f64 / N as f64;
        println!(
            "payment log, memo {memo} B, key {key} B, credential {credential}: \
             {per_payment:.1} bytes per payment \
             ({bytes} bytes of SST for {N})"
        );
        assert!(per_payment < 100.0, "{per_payment} bytes per payment");
    }
}
