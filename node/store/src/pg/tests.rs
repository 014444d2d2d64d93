//! The PostgreSQL backend against a real PostgreSQL with a synchronous standby, started by
//! the tests ([`PgCluster`]).

use std::sync::atomic::{AtomicU32, Ordering};

use super::*;
use crate::testing::postgres::{PgCluster, Stop};
use crate::testing::sample_channel;
use crate::{Store, Write};

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

/// Poll `query` on the primary until it prints `want` (30 s at most).
fn wait_for(pg: &PgCluster, what: &str, query: &str, want: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let seen = pg.sql(false, query).unwrap();
        if seen.trim() == want {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{what}: {query} printed {seen:?}, not {want:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

const IN_SYNC_WAIT: &str = "SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'SyncRep'";

#[test]
fn a_takeover_waits_for_the_batch_in_flight_and_sees_it() {
    let mut pg = cluster();
    let url = pg.url();
    let old = Arc::new(leader(&url, "w").with_commit_deadline(Duration::from_secs(60)));
    let new = PgStore::open(&url, "w").unwrap();
    // A real batch stuck in COMMIT (the standby is down), holding the fence row.
    pg.stop_standby(Stop::Immediate).unwrap();
    let committing = {
        let old = old.clone();
        std::thread::spawn(move || old.commit(&[Write::Channel(sample_channel(5))]))
    };
    wait_for(&pg, "the batch waits for the standby", IN_SYNC_WAIT, "1");
    let taking = std::thread::spawn(move || new.take_over(Some(100), "new").map(|_| Box::new(new)));
    wait_for(
        &pg,
        "the takeover waits for the fence row",
        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'",
        "1",
    );
    pg.start_standby().unwrap();
    committing
        .join()
        .unwrap()
        .expect("the batch that began before the takeover commits");
    let new = taking
        .join()
        .unwrap()
        .expect("the takeover completes after it");
    assert_eq!(
        new.channel(5).unwrap(),
        Some(sample_channel(5)),
        "the new holder sees the batch it waited for"
    );
    assert!(matches!(
        old.commit(&[Write::Channel(sample_channel(6))]),
        Err(StoreError::Fenced {
            mine: 1,
            found: 100,
            ..
        })
    ));
    assert_eq!(new.channel(6).unwrap(), None);
}

#[test]
fn a_cancelled_wait_for_the_standby_fails_the_commit() {
    let mut pg = cluster();
    let store = Arc::new(leader(&pg.url(), "c").with_commit_deadline(Duration::from_secs(60)));
    pg.stop_standby(Stop::Immediate).unwrap();
    let committing = {
        let store = store.clone();
        std::thread::spawn(move || store.commit(&[Write::Channel(sample_channel(7))]))
    };
    wait_for(&pg, "the batch waits for the standby", IN_SYNC_WAIT, "1");
    // PostgreSQL then reports the COMMIT as done, with a warning only.
    pg.sql(
        false,
        "SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE wait_event = 'SyncRep'",
    )
    .unwrap();
    match committing.join().unwrap() {
        Err(StoreError::Postgres { reason, .. }) => assert!(reason.contains("notice"), "{reason}"),
        other => panic!("a commit not known to be replicated must fail, got {other:?}"),
    }
    pg.start_standby().unwrap();
    store.commit(&[Write::Channel(sample_channel(8))]).unwrap();
}

#[test]
fn with_the_standby_down_a_commit_fails_and_lands_once_it_is_back() {
    let mut pg = cluster();
    let url = pg.url();
    let store = leader(&url, "d").with_commit_deadline(Duration::from_secs(2));
    store.commit(&[Write::Channel(sample_channel(1))]).unwrap();
    pg.stop_standby(Stop::Immediate).unwrap();
    for _ in 0..3 {
        match store.commit(&[Write::Channel(sample_channel(2))]) {
            Err(StoreError::Postgres { reason, .. }) => {
                assert!(reason.contains("no answer"), "{reason}");
                assert!(reason.contains("session was ended"), "{reason}");
            }
            other => panic!("a commit the standby cannot confirm must fail, got {other:?}"),
        }
        // Its server session is gone: nothing piles up, nothing holds the fence row.
        assert_eq!(pg.sql(false, IN_SYNC_WAIT).unwrap().trim(), "0");
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
    assert!(e.to_string().contains("port"), "says which option: {e}");
    let pg = PgCluster::start().unwrap();
    let e = PgStore::open(&pg.url(), "Bad-Name").unwrap_err();
    assert!(e.to_string().contains("schema name"), "{e}");
    // PostgreSQL's own words, not just "db error".
    let e =
        PgStore::open(&pg.url().replace("dbname=postgres", "dbname=nosuchdb"), "s").unwrap_err();
    assert!(e.to_string().contains("nosuchdb"), "{e}");
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
