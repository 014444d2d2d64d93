//! The store's integration tests: the conformance suite against every backend, through the
//! public API only, and the failing wrapper other crates use.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use farthing_store::testing::{FailingStore, sample_channel, sample_cursor};
use farthing_store::{MemStore, RocksStore, Store, StoreError, Write, conformance};

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
