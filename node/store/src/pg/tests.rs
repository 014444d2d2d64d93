//! The PostgreSQL backend against a real PostgreSQL with a synchronous standby, started by
//! the tests ([`PgCluster`]).

use std::sync::atomic::{AtomicU32, Ordering};

use super::*;
use crate::testing::postgres::{PgCluster, Stop};
use crate::testing::sample_channel;

fn cluster() -> PgCluster {
    PgCluster::with_sync_standby().expect("start PostgreSQL with a synchronous standby")
}

fn schema() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!("t{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

fn leader(url: &str, schema: &str) -> PgStore {
    let store = PgStore::open(url, schema).expect("open");
    store.take_over(None, "test").expect("take over");
    store
}

#[test]
fn passes_the_conformance_suite() {
    let pg = cluster();
    crate::conformance::run(|| leader(&pg.url(), &schema()));
}

#[test]
fn what_was_committed_is_there_after_a_reopen_and_a_crash_of_the_primary() {
    let mut pg = cluster();
    let url = pg.url();
    let store = leader(&url, "s");
    for id in 0..50 {
        store
            .commit(&[Write::Channel(sample_channel(id))])
            .expect("commit");
    }
    drop(store);
    // Reopened: the same records, the schema record kept.
    let store = leader(&url, "s");
    assert_eq!(store.channels().unwrap().len(), 50);
    drop(store);
    // The primary crashes and the standby is promoted: every committed batch is on it.
    pg.stop_primary(Stop::Immediate).unwrap();
    pg.promote_standby().unwrap();
    let store = leader(&url, "s");
    let channels = store.channels().unwrap();
    assert_eq!(channels.len(), 50);
    assert_eq!(channels[49], sample_channel(49));
    store
        .commit(&[Write::Channel(sample_channel(50))])
        .expect("the promoted standby takes commits");
}

#[test]
fn a_newer_epoch_fences_the_older_holder_out() {
    let pg = cluster();
    let url = pg.url();
    let old = PgStore::open(&url, "f").unwrap();
    assert!(
        matches!(
            old.commit(&[Write::Channel(sample_channel(1))]),
            Err(StoreError::Unavailable { .. })
        ),
        "a store that has not taken over commits nothing"
    );
    assert_eq!(old.take_over(Some(7), "old").unwrap(), 7);
    old.commit(&[Write::Channel(sample_channel(1))]).unwrap();

    let new = PgStore::open(&url, "f").unwrap();
    assert_eq!(new.take_over(Some(9), "new").unwrap(), 9);
    match old.commit(&[Write::Channel(sample_channel(2))]) {
        Err(StoreError::Fenced {
            mine: 7,
            found: 9,
            holder,
        }) => assert_eq!(holder, "new"),
        other => panic!("the old holder must be fenced, got {other:?}"),
    }
    assert_eq!(
        new.channel(2).unwrap(),
        None,
        "a fenced batch writes nothing"
    );
    new.commit(&[Write::Channel(sample_channel(2))]).unwrap();
    // An older epoch cannot take the store back.
    match old.take_over(Some(8), "old") {
        Err(StoreError::Fenced { found: 9, .. }) => {}
        other => panic!("an older epoch must not take over, got {other:?}"),
    }
    // Without an election, the next epoch.
    assert_eq!(old.take_over(None, "old").unwrap(), 10);
    assert!(matches!(
        new.commit(&[Write::Channel(sample_channel(3))]),
        Err(StoreError::Fenced { found: 10, .. })
    ));
}

#[test]
fn a_takeover_waits_for_the_batch_in_flight() {
    let pg = cluster();
    let url = pg.url();
    let old = Arc::new(leader(&url, "w"));
    // Hold the fence row as a batch in flight does, from another session.
    let (held, release) = (
        std::sync::mpsc::channel::<()>(),
        std::sync::mpsc::channel::<()>(),
    );
    let url2 = url.clone();
    let holder = std::thread::spawn(move || {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async move {
            let (client, connection) = url2
                .parse::<Config>()
                .unwrap()
                .connect(NoTls)
                .await
                .unwrap();
            tokio::spawn(connection);
            client
                .batch_execute("BEGIN; SELECT * FROM w.leader WHERE id = 1 FOR UPDATE")
                .await
                .unwrap();
            held.0.send(()).unwrap();
            tokio::task::spawn_blocking(move || release.1.recv())
                .await
                .unwrap()
                .unwrap();
            client.batch_execute("COMMIT").await.unwrap();
        })
    });
    held.1.recv().unwrap();
    let new = PgStore::open(&url, "w").unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let taken = new.take_over(Some(100), "new").map(|_| Box::new(new));
        let _ = tx.send(taken);
    });
    assert!(
        rx.recv_timeout(Duration::from_millis(300)).is_err(),
        "the takeover must wait while the row is locked"
    );
    release.0.send(()).unwrap();
    holder.join().unwrap();
    let new = rx
        .recv()
        .unwrap()
        .expect("the takeover completes once the batch ends");
    assert!(matches!(
        old.commit(&[Write::Channel(sample_channel(1))]),
        Err(StoreError::Fenced { .. })
    ));
    new.commit(&[Write::Channel(sample_channel(1))]).unwrap();
}

#[test]
fn with_the_standby_down_a_commit_fails_and_lands_once_it_is_back() {
    let mut pg = cluster();
    let url = pg.url();
    let store = leader(&url, "d").with_commit_deadline(Duration::from_secs(2));
    store.commit(&[Write::Channel(sample_channel(1))]).unwrap();
    pg.stop_standby(Stop::Immediate).unwrap();
    match store.commit(&[Write::Channel(sample_channel(2))]) {
        Err(StoreError::Postgres { reason, .. }) => {
            assert!(reason.contains("no answer"), "{reason}")
        }
        other => panic!("a commit the standby cannot confirm must fail, got {other:?}"),
    }
    pg.start_standby().unwrap();
    // Found whole later (it was committed on the primary, waiting for the standby), or not at
    // all; committing it again is always safe.
    store.commit(&[Write::Channel(sample_channel(2))]).unwrap();
    assert_eq!(store.channel(2).unwrap(), Some(sample_channel(2)));
}

#[test]
fn bad_configuration_is_refused_with_what_to_do() {
    let e = PgStore::open("host=127.0.0.1 port=notaport", "s").unwrap_err();
    assert!(e.to_string().contains("connection string"), "{e}");
    let pg = PgCluster::start().unwrap();
    let e = PgStore::open(&pg.url(), "Bad-Name").unwrap_err();
    assert!(e.to_string().contains("schema name"), "{e}");
    drop(pg);
}

#[test]
fn a_newer_record_schema_is_refused() {
    let pg = PgCluster::start().unwrap();
    let store = leader(&pg.url(), "n");
    store
        .apply(vec![Op::Put(
            kv::SCHEMA_KEY.to_vec(),
            (crate::SCHEMA_VERSION + 1).to_be_bytes().to_vec(),
        )])
        .unwrap();
    match PgStore::open(&pg.url(), "n") {
        Err(StoreError::NewerSchema { location, .. }) => assert!(location.ends_with("#n")),
        other => panic!("a newer schema must be refused, got {other:?}"),
    }
}
