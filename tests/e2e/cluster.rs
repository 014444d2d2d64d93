//! One node as a leader and standbys (issue 16): alice's node runs as several `farthing node`
//! processes on one PostgreSQL (with a synchronous standby) and one three-member etcd
//! cluster, all real, started by the test on free loopback ports; bob's node is a plain RocksDB
//! node that dials alice's instances in turn (one `--connect` per instance: it finds whichever
//! leads). Payments stream from alice to bob through the leader's RPC while:
//! - the leader is killed (kill -9): a standby leads, every acknowledged payment is there,
//!   nonces go on, bob agrees;
//! - the next leader is paused (SIGSTOP) until a standby took over, then resumed: it steps down
//!   (exits non-zero) and the store's fence names the new leader;
//! - etcd's raft leader member is killed: the leader keeps leading, its standby never takes
//!   over (the fence row is unchanged);
//!
//! and then the channel closes cooperatively, exact to the unit on-chain. A second test runs
//! one instance through PostgreSQL failures: the primary crashes and its standby is promoted
//! (nothing acknowledged is lost); PostgreSQL is down (the node degrades, acknowledges nothing,
//! and resumes when it is back).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use farthing_cluster::testing::{EtcdCluster, signal};
use farthing_devnet::KillAll;
use farthing_e2e::{Daemon, Deployed, PATIENCE, USDC, base_units, done_if, eventually, pay_units};
use farthing_rpc::{FarthingApiClient, HttpClient};
use farthing_store::testing::postgres::{PgCluster, Stop};

/// The leader's etcd lease in these tests, seconds.
const LEASE_TTL: u64 = 4;

/// Every acknowledged payment: (phase, nonce, base units).
type Acked = Arc<Mutex<Vec<(u32, u64, u128)>>>;

/// Payers streaming 1..=5-unit payments through `client` until stopped or refused.
struct Stream {
    stop: Arc<AtomicBool>,
    payers: Vec<tokio::task::JoinHandle<()>>,
}

impl Stream {
    fn start(client: &HttpClient, acked: &Acked, phase: u32) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let payers = (0..2u128)
            .map(|p| {
                let (client, acked, stop) = (client.clone(), acked.clone(), stop.clone());
                tokio::spawn(async move {
                    for i in 0u128.. {
                        if stop.load(Ordering::SeqCst) {
                            return;
                        }
                        let units = (i + p) % 5 + 1;
                        match pay_units(units).call(&client).await {
                            Ok(paid) => acked.lock().unwrap().push((phase, paid.nonce, units)),
                            Err(_) => return,
                        }
                    }
                })
            })
            .collect();
        Self { stop, payers }
    }

    /// Payments acknowledged so far in `phase`.
    fn count(acked: &Acked, phase: u32) -> usize {
        acked
            .lock()
            .unwrap()
            .iter()
            .filter(|a| a.0 == phase)
            .count()
    }

    async fn end(self) {
        self.stop.store(true, Ordering::SeqCst);
        for payer in self.payers {
            // A payer stuck on a paused process is cut off by its client's timeout.
            let _ = payer.await;
        }
    }
}

/// Pay until one payment is acknowledged (the new leader is linked to bob); it counts.
async fn pay_until_linked(client: &HttpClient, acked: &Acked, phase: u32) {
    let paid = eventually(PATIENCE, "a payment through the new leader", async || {
        pay_units(1).call(client).await.map_err(|e| e.to_string())
    })
    .await;
    acked.lock().unwrap().push((phase, paid.nonce, 1));
}

/// Alice's and bob's nodes agree on alice's latest proof, which covers every acknowledged
/// payment ([`farthing_e2e::check_acknowledged`]). Returns (nonce, units).
async fn check_agreement(
    alice: &HttpClient,
    bob: &HttpClient,
    acked: &Acked,
    what: &str,
) -> (u64, u128) {
    let now = eventually(PATIENCE, &format!("{what}: both nodes agree"), async || {
        let (a, b) = (alice.get_channel(1).await, bob.get_channel(1).await);
        let (a, b) = (a.map_err(|e| e.to_string())?, b.map_err(|e| e.to_string())?);
        let (sent, received) = (
            (a.sent_nonce, base_units(&a.sent)),
            (b.received_nonce, base_units(&b.received)),
        );
        done_if(sent == received, format!("{sent:?} vs {received:?}")).map(|_| sent)
    })
    .await;
    farthing_e2e::check_acknowledged(&acked.lock().unwrap(), now, what);
    now
}

/// Wait for a standby to lead (its start returns then).
async fn leads(standby: tokio::task::JoinHandle<Daemon>) -> Daemon {
    tokio::time::timeout(PATIENCE, standby)
        .await
        .expect("the standby leads")
        .unwrap()
}

/// The store's fence row: (epoch, holder).
fn fence(pg: &PgCluster, promoted: bool) -> (u64, String) {
    let row = pg
        .sql(promoted, "SELECT epoch, holder FROM alice.leader")
        .unwrap();
    let (epoch, holder) = row.trim().split_once('|').unwrap();
    (epoch.parse().unwrap(), holder.to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standby_takes_over_from_a_killed_or_paused_leader_and_loses_nothing() {
    let net = Deployed::start().await;
    let _instances = KillAll(net.data_dir("alice").display().to_string());
    let pg = tokio::task::spawn_blocking(PgCluster::with_sync_standby)
        .await
        .unwrap()
        .unwrap();
    let mut etcd = EtcdCluster::start(3).await.unwrap();
    // Bob's node dials alice's: every instance's address, in turn (a standby listens on none
    // until it leads), so it finds whichever leads. Instances a3 and a4 also dial bob's: a new
    // leader then reaches bob even while bob's link to a paused old leader still looks up.
    let ports: Vec<u16> = (0..4).map(|_| farthing_e2e::fixed_port()).collect();
    let bob_peers = format!("127.0.0.1:{}", farthing_e2e::fixed_port());
    let bob_link = format!("{}@{bob_peers}", net.party("BOB").address());
    let alice_address = net.party("ALICE").address();
    let mut bob_flags = Vec::new();
    for port in &ports {
        bob_flags.extend([
            "--connect".to_owned(),
            format!("{alice_address}@127.0.0.1:{port}"),
        ]);
    }
    bob_flags.extend(["--peer-listen".to_owned(), bob_peers.clone()]);
    let bob_flags: Vec<&str> = bob_flags.iter().map(String::as_str).collect();
    let bob = net.daemon(2, "bob", &bob_flags);
    let bob_rpc = net.rpc("bob", &bob);
    let url = pg.url();
    let endpoints = etcd.endpoints();
    let lease = LEASE_TTL.to_string();
    // Every instance shares alice's data directory (her RPC token and credential key: the
    // secrets instances of one node must share) and the same flags but its name.
    let instance = |n: usize| {
        let mut args = vec![
            "--store",
            "postgres",
            "--postgres",
            &url,
            "--postgres-schema",
            "alice",
            "--lease-ttl",
            &lease,
            "--instance",
        ]
        .into_iter()
        .map(str::to_owned)
        .collect::<Vec<_>>();
        args.push(format!("a{}", n + 1));
        args.extend([
            "--peer-listen".to_owned(),
            format!("127.0.0.1:{}", ports[n]),
        ]);
        if n >= 2 {
            args.extend(["--connect".to_owned(), bob_link.clone()]);
        }
        for e in &endpoints {
            args.extend(["--etcd".to_owned(), e.clone()]);
        }
        let (data, rpc_url, deployment) = (
            net.data_dir("alice"),
            net.devnet.rpc_url.clone(),
            net.deployment.clone(),
        );
        // Returns once the instance leads (a standby blocks here).
        tokio::task::spawn_blocking(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            Daemon::start_as(1, &data, &rpc_url, &deployment, &args)
        })
    };

    let a1 = leads(instance(0)).await;
    assert_eq!(fence(&pg, false).1, "a1");
    let standby = instance(1);
    let a1_rpc = net.rpc("alice", &a1);
    let opened = a1_rpc
        .open_channel(net.party("BOB").address(), "10".into(), Some(600))
        .await
        .unwrap();
    a1_rpc.wait_channel(opened.id, Some(120)).await.unwrap();
    let acked: Acked = Arc::default();
    pay_until_linked(&a1_rpc, &acked, 0).await;

    // 1. kill -9 the leader mid-stream.
    let stream = Stream::start(&a1_rpc, &acked, 1);
    eventually(PATIENCE, "payments through a1", async || {
        Stream::count(&acked, 1) >= 50
    })
    .await;
    let killed = Instant::now();
    a1.kill();
    let a2 = leads(standby).await;
    let took = killed.elapsed();
    stream.end().await;
    let a2_rpc = net.rpc("alice", &a2);
    pay_until_linked(&a2_rpc, &acked, 2).await;
    eprintln!(
        "cluster: kill -9 of the leader -> standby serving in {:.2} s, first payment acknowledged after {:.2} s",
        took.as_secs_f64(),
        killed.elapsed().as_secs_f64()
    );
    let (epoch_a2, holder) = fence(&pg, false);
    assert_eq!(holder, "a2");
    let after_kill = check_agreement(&a2_rpc, &bob_rpc, &acked, "after kill -9").await;

    // 2. SIGSTOP the leader until a standby took over and serves (while the old one is still
    // paused: bob's link to it looks up, a3's own dial replaces it); SIGCONT: it steps down.
    let standby = instance(2);
    let stream = Stream::start(&a2_rpc, &acked, 3);
    eventually(PATIENCE, "payments through a2", async || {
        Stream::count(&acked, 3) >= 50
    })
    .await;
    signal(a2.pid(), "STOP").unwrap();
    let a3 = leads(standby).await;
    let (epoch_a3, holder) = fence(&pg, false);
    assert_eq!(holder, "a3");
    assert!(
        epoch_a3 > epoch_a2,
        "epochs only grow: {epoch_a2} -> {epoch_a3}"
    );
    let a3_rpc = net.rpc("alice", &a3);
    // `farthing info` says who serves: the store, its epoch and the instance.
    let store = a3_rpc.info().await.unwrap().store;
    assert!(
        store.contains("#alice") && store.contains(&format!("epoch {epoch_a3}, instance a3")),
        "{store}"
    );
    pay_until_linked(&a3_rpc, &acked, 4).await;
    let paused = check_agreement(&a3_rpc, &bob_rpc, &acked, "while a2 is paused").await;
    signal(a2.pid(), "CONT").unwrap();
    let zombie = tokio::task::spawn_blocking(move || a2.wait())
        .await
        .unwrap();
    assert!(
        !zombie.success(),
        "the resumed old leader steps down: {zombie}"
    );
    stream.end().await;
    let after_pause = check_agreement(&a3_rpc, &bob_rpc, &acked, "after SIGCONT").await;
    assert_eq!(
        after_pause, paused,
        "the resumed old leader changed nothing"
    );
    assert!(after_pause.0 > after_kill.0, "nonces go on");
    assert_eq!(
        fence(&pg, false),
        (epoch_a3, "a3".to_owned()),
        "nothing took the store back"
    );

    // 3. Kill etcd's raft leader member under a leader with a standby: no takeover.
    let standby = instance(3);
    let stream = Stream::start(&a3_rpc, &acked, 5);
    let member = etcd.raft_leader_member().await.unwrap();
    etcd.kill_member(member).unwrap();
    let (killed, before) = (Instant::now(), Stream::count(&acked, 5));
    // Past the lease and then some: had a3 lost its lease, the standby would hold the store.
    let window = std::time::Duration::from_secs(LEASE_TTL + 2);
    eventually(
        PATIENCE,
        "payments through a3 well past a lease after the member kill",
        async || Stream::count(&acked, 5) >= before + 200 && killed.elapsed() > window,
    )
    .await;
    stream.end().await;
    assert_eq!(
        fence(&pg, false),
        (epoch_a3, "a3".to_owned()),
        "no split brain: a3 still holds the store"
    );
    assert!(!standby.is_finished(), "the standby is still waiting");
    let last = check_agreement(&a3_rpc, &bob_rpc, &acked, "after the etcd member kill").await;

    // The channel closes cooperatively, exact on-chain.
    let closed = a3_rpc.close_channel(1).await.unwrap();
    assert_eq!(closed.state.as_str(), "settled");
    let sent = u64::try_from(last.1).unwrap();
    assert_eq!(net.party("ALICE").balance().await, 100 * USDC - sent);
    assert_eq!(net.party("BOB").balance().await, sent);
    eprintln!(
        "cluster: {} acknowledged payments, {sent} units, over 3 leaders",
        acked.lock().unwrap().len()
    );
    assert!(a3.stop().success(), "a clean stop exits 0");
    // The last standby leads once a3 resigned.
    let a4 = leads(standby).await;
    assert_eq!(fence(&pg, false).1, "a4");
    a4.stop();
    bob.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_failover_and_outage_lose_nothing_acknowledged() {
    let net = Deployed::start().await;
    let mut pg = tokio::task::spawn_blocking(PgCluster::with_sync_standby)
        .await
        .unwrap()
        .unwrap();
    let url = pg.url();
    let store = [
        "--store",
        "postgres",
        "--postgres",
        &url,
        "--postgres-schema",
        "alice",
    ];
    let (alice, bob, channel) = net.linked_pair("10", &store).await;
    assert_eq!(channel, 1);
    let (alice_rpc, bob_rpc) = (net.rpc("alice", &alice), net.rpc("bob", &bob));
    let acked: Acked = Arc::default();
    pay_until_linked(&alice_rpc, &acked, 0).await;

    // The primary crashes mid-stream; its synchronous standby is promoted.
    let stream = Stream::start(&alice_rpc, &acked, 1);
    eventually(PATIENCE, "payments", async || {
        Stream::count(&acked, 1) >= 50
    })
    .await;
    pg.stop_primary(Stop::Immediate).unwrap();
    pg.promote_standby().unwrap();
    stream.end().await;
    pay_until_linked(&alice_rpc, &acked, 2).await;
    let promoted = check_agreement(&alice_rpc, &bob_rpc, &acked, "after the promotion").await;

    // PostgreSQL is down: the node acknowledges nothing and says why; back, it resumes.
    pg.stop_standby(Stop::Fast).unwrap();
    let refused = eventually(PATIENCE, "a refused payment", async || {
        match pay_units(1).call(&alice_rpc).await {
            Ok(paid) => Err(format!("acknowledged {paid:?}")),
            Err(e) => Ok(e.to_string()),
        }
    })
    .await;
    assert!(
        refused.contains("store") || refused.contains("PostgreSQL"),
        "{refused}"
    );
    let health = alice_rpc.info().await.unwrap().health;
    assert!(
        health.reasons.iter().any(|p| p.contains("PostgreSQL")),
        "the node says it is degraded and why: {:?}",
        health.reasons
    );
    pg.start_standby().unwrap();
    pay_until_linked(&alice_rpc, &acked, 3).await;
    let last = check_agreement(&alice_rpc, &bob_rpc, &acked, "after the outage").await;
    assert!(last.0 > promoted.0);

    let closed = alice_rpc.close_channel(1).await.unwrap();
    assert_eq!(closed.state.as_str(), "settled");
    let sent = u64::try_from(last.1).unwrap();
    assert_eq!(net.party("ALICE").balance().await, 100 * USDC - sent);
    assert_eq!(net.party("BOB").balance().await, sent);
    alice.stop();
    bob.stop();
}
