//! `farthing bench --store postgres`: the same payment run on RocksDB and then on PostgreSQL
//! (a primary with a synchronous standby, started by the bench on free loopback ports from
//! Debian's binaries), side by side, and the failover time of a node run as a leader and a
//! standby (a three-member etcd cluster): kill -9 of the leader to the next acknowledged
//! payment through the standby.
//!
//! Everything shares this machine's cores: PostgreSQL, its standby and etcd take CPU the
//! nodes would otherwise have, and the nodes' CPU per payment does not count theirs.

use std::path::Path;
use std::time::{Duration, Instant};

use eyre::{Result, WrapErr, eyre};
use farthing_cluster::testing::EtcdCluster;
use farthing_devnet::{KillAll, NodeCommand};
use farthing_store::testing::postgres::PgCluster;
use serde::Serialize;

use super::load::{Load, both_ways, pay_until_linked};
use super::report::{Report, print_table};
use super::setup::{Chain, client};
use super::{BenchArgs, say};

/// Flags that put each node of a run on a store.
#[derive(Debug, Clone, Default)]
pub(super) struct Placement {
    /// The PostgreSQL connection string; `None`: RocksDB in the data directories.
    postgres: Option<String>,
}

impl Placement {
    /// The flags of the node `who` ("alice", "bob").
    pub(super) fn flags(&self, who: &str) -> Vec<String> {
        match &self.postgres {
            None => Vec::new(),
            Some(url) => [
                "--store",
                "postgres",
                "--postgres",
                url,
                "--postgres-schema",
            ]
            .into_iter()
            .map(str::to_owned)
            .chain([format!("bench_{who}")])
            .collect(),
        }
    }
}

/// What `--store postgres` measured.
#[derive(Debug, Serialize)]
pub(super) struct Comparison {
    rocksdb: Report,
    postgres: Report,
    /// PostgreSQL's payments/s over RocksDB's, same run.
    throughput_ratio: f64,
    /// Seconds from kill -9 of the leader to the next payment acknowledged through the
    /// standby, one per failover.
    failover_secs: Vec<f64>,
    /// The etcd lease the leader held, seconds.
    lease_ttl_secs: u64,
}

/// Run the payment bench on RocksDB, then on PostgreSQL, then time failovers.
pub(super) async fn compare(args: &BenchArgs, dir: &Path) -> Result<Comparison> {
    say("starting PostgreSQL with a synchronous standby");
    let pg = tokio::task::spawn_blocking(PgCluster::with_sync_standby)
        .await?
        .wrap_err("starting PostgreSQL (scripts/setup.sh installs it)")?;
    say("run 1 of 2: RocksDB");
    let rocksdb = super::bench(args, &dir.join("rocksdb"), &Placement::default()).await?;
    say("run 2 of 2: PostgreSQL (synchronous standby)");
    let placement = Placement {
        postgres: Some(pg.url()),
    };
    let postgres = super::bench(args, &dir.join("postgres"), &placement).await?;
    let lease_ttl_secs = 3;
    let failover_secs = failovers(args, &dir.join("failover"), &pg, lease_ttl_secs, 3).await?;
    Ok(Comparison {
        throughput_ratio: postgres.payments_per_sec / rocksdb.payments_per_sec,
        rocksdb,
        postgres,
        failover_secs,
        lease_ttl_secs,
    })
}

/// alice's node as a leader with a standby; payments stream from alice and bob; the leader is
/// killed `rounds` times (a new standby each time). Seconds from each kill to the next payment
/// acknowledged through the new leader.
async fn failovers(
    args: &BenchArgs,
    dir: &Path,
    pg: &PgCluster,
    lease_ttl: u64,
    rounds: usize,
) -> Result<Vec<f64>> {
    std::fs::create_dir_all(dir)?;
    say("failover: starting a three-member etcd cluster");
    let etcd = EtcdCluster::start(3)
        .await
        .map_err(|e| eyre!("starting etcd (scripts/setup.sh installs it): {e}"))?;
    let chain = Chain::start(args.anvil.clone(), args.node_workers, dir).await?;
    let bob = chain.start_node(2, &dir.join("bob"), &[] as &[&str])?;
    // A standby still waiting to lead is no child the bench holds yet: on any early return it
    // must not outlive the run (it would campaign forever, and the bench wait for it).
    let _standbys = KillAll(dir.join("alice").display().to_string());
    let link = format!("{}@{}", chain.bob(), bob.peers);
    let alice_dir = dir.join("alice");
    let mut flags: Vec<String> = ["--store", "postgres", "--postgres", &pg.url()]
        .into_iter()
        .map(str::to_owned)
        .collect();
    flags.extend(["--postgres-schema".into(), "failover_alice".into()]);
    flags.extend(["--connect".into(), link, "--lease-ttl".into()]);
    flags.push(lease_ttl.to_string());
    for endpoint in etcd.endpoints() {
        flags.extend(["--etcd".into(), endpoint]);
    }
    // Instances share alice's data directory (her RPC token and credential key); each logs
    // to its own file. A standby's start returns once it leads.
    let instance = |n: usize| {
        let command = NodeCommand::new(
            &std::env::current_exe().expect("the bench knows its binary"),
            1,
            &alice_dir,
            &chain.devnet.rpc_url,
            &chain.deployment_file(),
        )
        .args(&flags)
        .args(&["--instance".to_owned(), format!("a{n}")])
        .log_to(&dir.join(format!("alice-a{n}.log")));
        tokio::task::spawn_blocking(move || command.start())
    };
    let mut leader = instance(0).await??;
    let mut alice_rpc = client(&leader).await?;
    let bob_rpc = client(&bob).await?;
    super::setup::open_channel(&alice_rpc, &bob_rpc, chain.bob()).await?;
    pay_until_linked(&alice_rpc).await?;
    let mut took = Vec::new();
    for round in 1..=rounds {
        let standby = instance(round);
        // Let the standby campaign, under load.
        let load = Load {
            quiet: true,
            ..Load::split(4_000, args.concurrency)
        };
        both_ways(&alice_rpc, &bob_rpc, load).await?;
        let streaming = tokio::spawn({
            let (a, b) = (alice_rpc.clone(), bob_rpc.clone());
            async move {
                let load = Load {
                    quiet: true,
                    ..Load::split(u64::MAX, 16)
                };
                both_ways(&a, &b, load).await
            }
        });
        tokio::time::sleep(Duration::from_millis(200)).await;
        let killed = Instant::now();
        leader.kill();
        leader = standby.await??;
        alice_rpc = client(&leader).await?;
        pay_until_linked(&alice_rpc).await?;
        let secs = killed.elapsed().as_secs_f64();
        streaming.abort();
        say(&format!(
            "failover {round}: kill -9 of the leader -> next payment acknowledged in {secs:.2} s"
        ));
        took.push(secs);
    }
    leader.stop()?;
    drop(bob);
    Ok(took)
}

/// Both reports, then the comparison.
pub(super) fn print(c: &Comparison) {
    println!("\n## RocksDB");
    print_table(&c.rocksdb);
    println!("\n## PostgreSQL (synchronous standby, same machine)");
    print_table(&c.postgres);
    let (r, p) = (&c.rocksdb, &c.postgres);
    println!("\n| measure | RocksDB | PostgreSQL |\n|---|---|---|");
    println!(
        "| durable payments/s | {:.0} | {:.0} ({:.0}%) |",
        r.payments_per_sec,
        p.payments_per_sec,
        c.throughput_ratio * 100.0
    );
    println!(
        "| latency p50 / p99 at full load | {:.2} / {:.2} ms | {:.2} / {:.2} ms |",
        r.latency_ms.p50, r.latency_ms.p99, p.latency_ms.p50, p.latency_ms.p99
    );
    println!(
        "| commits per payment | {:.3} | {:.3} |",
        r.fsyncs_per_payment, p.fsyncs_per_payment
    );
    println!(
        "| payments per signed proof | {:.1} | {:.1} |",
        r.payments_per_proof, p.payments_per_proof
    );
    let mut sorted = c.failover_secs.clone();
    sorted.sort_by(f64::total_cmp);
    println!(
        "\nfailover (lease {} s), kill -9 to the next acknowledged payment: {}",
        c.lease_ttl_secs,
        sorted
            .iter()
            .map(|s| format!("{s:.2} s"))
            .collect::<Vec<_>>()
            .join(", ")
    );
}
