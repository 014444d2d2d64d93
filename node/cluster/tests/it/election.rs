//! Two or more candidates in this process.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use etcd_client::Client;
use farthing_cluster::{ClusterError, ElectionConfig, LostReason, campaign, current_leader};
use tokio::time::{Instant, timeout};

use crate::{config, etcd, wait_for_candidates};

const BOUND: Duration = Duration::from_secs(15);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_candidates_one_leads_and_current_leader_agrees() {
    let cluster = etcd(1).await;
    let name = "farthing/test/two/leader";
    let endpoints = cluster.endpoints();
    assert_eq!(
        current_leader(&endpoints, name)
            .await
            .expect("current_leader"),
        None
    );

    let a = timeout(BOUND, campaign(&config(&cluster, name, "a@127.0.0.1:1", 3)))
        .await
        .expect("the first candidate leads at once")
        .expect("campaign");
    let b_config = config(&cluster, name, "b@127.0.0.1:2", 3);
    let b = tokio::spawn(async move { campaign(&b_config).await });
    wait_for_candidates(&endpoints, name, 2).await;

    assert!(a.is_leading());
    assert!(
        !b.is_finished(),
        "the second candidate must still be campaigning"
    );
    let (value, epoch) = current_leader(&endpoints, name)
        .await
        .expect("read")
        .expect("a leader");
    assert_eq!((value.as_str(), epoch), ("a@127.0.0.1:1", a.epoch()));
    assert_ne!(a.cluster_id(), 0);
    b.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resign_hands_over_at_once() {
    let cluster = etcd(1).await;
    let name = "farthing/test/resign/leader";
    // A lease of 60 s: a hand-over within the bound can only be the resign's.
    let a = campaign(&config(&cluster, name, "a", 60))
        .await
        .expect("campaign");
    let watch = a.watch();
    let b_config = config(&cluster, name, "b", 60);
    let b = tokio::spawn(async move { campaign(&b_config).await });
    wait_for_candidates(&cluster.endpoints(), name, 2).await;

    let started = Instant::now();
    let a_epoch = a.epoch();
    a.resign().await;
    let b = timeout(BOUND, b)
        .await
        .expect("the standby leads")
        .expect("task")
        .expect("campaign");
    let handover = started.elapsed();
    println!("resign -> standby leads: {handover:?}");

    assert_eq!(watch.lost().await, LostReason::Resigned);
    assert!(!watch.is_leading());
    assert!(b.epoch() > a_epoch, "epoch {} after {a_epoch}", b.epoch());
    // A lease expiry would take T = 60 s, past the bound: the resign handed over.
    let (value, epoch) = current_leader(&cluster.endpoints(), name)
        .await
        .expect("read")
        .expect("leader");
    assert_eq!((value.as_str(), epoch), ("b", b.epoch()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_member_failover_keeps_the_leader() {
    let mut cluster = etcd(3).await;
    let name = "farthing/test/member-failover/leader";
    let endpoints = cluster.endpoints();
    let ttl = 3;
    let a = campaign(&config(&cluster, name, "a", ttl))
        .await
        .expect("campaign");
    let b_config = config(&cluster, name, "b", ttl);
    let b = tokio::spawn(async move { campaign(&b_config).await });
    wait_for_candidates(&endpoints, name, 2).await;

    let raft_leader = cluster.raft_leader_member().await.expect("a raft leader");
    cluster
        .kill_member(raft_leader)
        .expect("kill the raft leader member");
    let killed = Instant::now();
    let mut client = Client::connect(&endpoints, None).await.expect("connect");
    loop {
        let put = timeout(
            Duration::from_millis(500),
            client.put("farthing/test/probe", "x", None),
        );
        if matches!(put.await, Ok(Ok(_))) {
            break;
        }
        assert!(
            killed.elapsed() < BOUND,
            "no write went through within {BOUND:?} of the kill"
        );
    }
    println!(
        "etcd raft leader member killed -> a put works again: {:?}",
        killed.elapsed()
    );

    // Had the lease not been kept alive through the member failover, etcd would expire it
    // within T of the kill: watch the leader past that.
    let observed = Duration::from_secs(ttl + 1);
    let lost = timeout(observed.saturating_sub(killed.elapsed()), a.lost()).await;
    assert!(lost.is_err(), "the leader lost its leadership: {lost:?}");
    assert!(a.is_leading());
    let (value, epoch) = current_leader(&endpoints, name)
        .await
        .expect("read")
        .expect("leader");
    assert_eq!(
        (value.as_str(), epoch),
        ("a", a.epoch()),
        "the same leader, the same epoch"
    );
    assert!(
        !b.is_finished(),
        "the second candidate won during the member failover"
    );
    b.abort();
}

/// Log lines, captured.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log buffer").extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

// Current-thread runtime: the campaign runs on this thread, under this thread's subscriber.
#[tokio::test]
async fn campaign_waits_and_says_so_while_etcd_is_unreachable() {
    let logs = Captured::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    // A port nobody listens on (bound, then released).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let endpoint = format!("http://127.0.0.1:{port}");
    let config = ElectionConfig::new(vec![endpoint.clone()], "farthing/test/x/leader", "a");
    let waiting = campaign(&config);
    tokio::pin!(waiting);
    let bound = Instant::now() + Duration::from_secs(10);
    let line = loop {
        let text = String::from_utf8_lossy(&logs.0.lock().expect("log buffer")).into_owned();
        if let Some(line) = text.lines().find(|l| l.contains("campaigning again")) {
            break line.to_string();
        }
        assert!(
            Instant::now() < bound,
            "no retry line within 10 s; logs: {text}"
        );
        let waited = timeout(Duration::from_millis(100), &mut waiting).await;
        assert!(
            waited.is_err(),
            "campaign must keep waiting as a standby, got {waited:?}"
        );
    };
    println!("standby log: {line}");
    assert!(line.contains("WARN") && line.contains(&endpoint), "{line}");
}

#[tokio::test]
async fn bad_configurations_are_refused() {
    let good = ElectionConfig::new(
        vec!["http://127.0.0.1:2379".into()],
        "farthing/1/0xab/leader",
        "a",
    );
    let cases = [
        ElectionConfig {
            endpoints: vec![],
            ..good.clone()
        },
        ElectionConfig {
            endpoints: vec!["https://127.0.0.1:2379".into()],
            ..good.clone()
        },
        ElectionConfig {
            endpoints: vec!["http://".into()],
            ..good.clone()
        },
        ElectionConfig {
            name: String::new(),
            ..good.clone()
        },
        ElectionConfig {
            name: "farthing/1/0xab/leader/".into(),
            ..good.clone()
        },
        ElectionConfig {
            instance: String::new(),
            ..good.clone()
        },
        ElectionConfig {
            lease_ttl: Duration::from_secs(1),
            ..good.clone()
        },
        ElectionConfig {
            lease_ttl: Duration::from_millis(2500),
            ..good.clone()
        },
    ];
    for case in cases {
        match timeout(Duration::from_secs(5), campaign(&case)).await {
            Ok(Err(ClusterError::Config(message))) => println!("refused: {message}"),
            other => panic!("{case:?}: expected a configuration error, got {other:?}"),
        }
    }
    assert!(matches!(
        current_leader(&[], "x").await,
        Err(ClusterError::Config(_))
    ));
}

/// The election's first key and its lease, as etcd has them.
async fn leader_key(endpoints: &[String], name: &str) -> (String, i64) {
    let mut client = Client::connect(endpoints, None).await.expect("connect");
    let options = etcd_client::GetOptions::new().with_prefix().with_sort(
        etcd_client::SortTarget::Create,
        etcd_client::SortOrder::Ascend,
    );
    let reply = client
        .get(format!("{name}/"), Some(options))
        .await
        .expect("get");
    let kv = reply.kvs().first().expect("a leader key");
    (kv.key_str().expect("utf-8 key").to_string(), kv.lease())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoked_lease_is_reported_by_the_keep_alive() {
    let cluster = etcd(1).await;
    let name = "farthing/test/revoked/leader";
    let a = campaign(&config(&cluster, name, "a", 3))
        .await
        .expect("campaign");
    let (_, lease) = leader_key(&cluster.endpoints(), name).await;
    let mut client = Client::connect(cluster.endpoints(), None)
        .await
        .expect("connect");
    client
        .lease_revoke(lease)
        .await
        .expect("revoke the leader's lease");
    let revoked = Instant::now();
    let reason = timeout(BOUND, a.lost())
        .await
        .expect("the loss is reported");
    println!(
        "lease revoked -> leader reports {reason:?}: {:?}",
        revoked.elapsed()
    );
    // etcd's answer (TTL 0), not the local deadline, which is up to 2 s away at T = 3 s.
    assert_eq!(reason, LostReason::LeaseExpired);
    assert!(!a.is_leading());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleted_key_is_reported_by_the_observer() {
    let cluster = etcd(1).await;
    let name = "farthing/test/deleted/leader";
    let a = campaign(&config(&cluster, name, "a", 3))
        .await
        .expect("campaign");
    let b_config = config(&cluster, name, "b", 3);
    let b = tokio::spawn(async move { campaign(&b_config).await });
    wait_for_candidates(&cluster.endpoints(), name, 2).await;

    // The lease lives on; only the election key goes, so B leads and A's keep-alives succeed.
    let (key, _) = leader_key(&cluster.endpoints(), name).await;
    let mut client = Client::connect(cluster.endpoints(), None)
        .await
        .expect("connect");
    client
        .delete(key, None)
        .await
        .expect("delete the leader's key");
    let b = timeout(BOUND, b)
        .await
        .expect("B leads")
        .expect("task")
        .expect("campaign");
    let reason = timeout(BOUND, a.lost())
        .await
        .expect("the loss is reported");
    assert_eq!(reason, LostReason::Superseded { epoch: b.epoch() });
    assert!(!a.is_leading());
    assert!(b.is_leading());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_leader_stops_its_keep_alive() {
    let cluster = etcd(1).await;
    let name = "farthing/test/dropped/leader";
    let ttl = 2;
    let a = campaign(&config(&cluster, name, "a", ttl))
        .await
        .expect("campaign");
    let watch = a.watch();
    let b_config = config(&cluster, name, "b", ttl);
    let b = tokio::spawn(async move { campaign(&b_config).await });
    wait_for_candidates(&cluster.endpoints(), name, 2).await;

    drop(a);
    let dropped = Instant::now();
    assert_eq!(
        timeout(BOUND, watch.lost()).await.expect("reported"),
        LostReason::Dropped
    );
    let b = timeout(BOUND, b)
        .await
        .expect("B leads")
        .expect("task")
        .expect("campaign");
    println!(
        "leader dropped (T = {ttl} s) -> standby leads: {:?}",
        dropped.elapsed()
    );
    assert!(b.epoch() > watch.epoch());
}
