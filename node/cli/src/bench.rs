//! `farthing bench`: one reproducible run on one machine. It brings up its own anvil and
//! contracts, starts two real nodes as separate processes (this binary, RocksDB on disk with
//! synced writes), opens a funded channel, streams payments both ways through the public RPC,
//! and reports durable payments per second, latency percentiles at full and at half load,
//! fsyncs and CPU time per payment, the machine's crypto ceiling measured in the same run, a
//! node's restart time, the data dir's bytes per payment, and the on-chain close checked to
//! the unit.
//!
//! The chain and the node processes come from the devnet harness the end-to-end tests use
//! (farthing-devnet, in [`setup`]); [`load`] generates the payments, [`measure`] reads the
//! counters around each phase and [`report`] prints what was measured. This file runs the
//! phases in order.

mod gateway;
mod load;
mod measure;
mod report;
mod setup;
mod store;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use alloy::primitives::Address;
use eyre::{Context, Result, bail, eyre};
use farthing_chain::contracts::MockUSDC;
use farthing_rpc::FarthingApiClient;

use load::{Load, both_ways, pay_until_linked};
use measure::{Counters, Percentiles, crypto_ceiling, dir_size};
use report::{Report, print_table};
use setup::{Chain, client, open_channel};
use store::Placement;

/// `farthing bench` options.
#[derive(Debug, clap::Args)]
pub(crate) struct BenchArgs {
    /// What to measure: `payments` (two nodes paying each other) or `gateway` (paid HTTP
    /// requests through `farthing gateway`, against the same requests on a free route).
    #[arg(long, default_value = "payments", value_parser = ["payments", "gateway"])]
    mode: String,
    /// --mode gateway: requests of each kind (paid, free) at full load.
    #[arg(long, default_value_t = 20_000)]
    requests: u64,
    /// Payments at full load (half each way).
    #[arg(long, default_value_t = 100_000)]
    payments: u64,
    /// Stream at full load for this many seconds instead of a fixed count of payments.
    #[arg(long)]
    duration: Option<f64>,
    /// Payments in flight per direction (agents paying at once).
    #[arg(long, default_value_t = 64)]
    concurrency: u64,
    /// Payments before measuring (both processes warm).
    #[arg(long, default_value_t = 2_000)]
    warmup: u64,
    /// Payments paced at half the measured peak rate, for the latency at a lower load.
    #[arg(long, default_value_t = 20_000)]
    half_rate_payments: u64,
    /// Pace that stream at this many payments per second (both ways together) instead of half
    /// the peak: the latency at a load of your choosing.
    #[arg(long)]
    paced_rate: Option<f64>,
    /// Payments streamed (alice to bob) before the restart test, on top of the others, to
    /// restart a node whose channel has seen that many (the goal: 1,000,000 in under 2 s).
    #[arg(long, default_value_t = 0)]
    restart_payments: u64,
    /// The anvil binary (default: contracts/node_modules/.bin/anvil, as scripts/setup.sh
    /// installs it; or FARTHING_ANVIL).
    #[arg(long, env = "FARTHING_ANVIL")]
    anvil: Option<PathBuf>,
    /// Async worker threads of each node (default: the node's own default, one per core).
    /// Measured here: one per node instead of two made no difference beyond the noise.
    #[arg(long)]
    node_workers: Option<u16>,
    /// Keep the run's directory (nodes' data and logs) instead of deleting it.
    #[arg(long)]
    keep: bool,
    /// Pay under agents' credentials (one per node, with hour, day and total budgets no run
    /// reaches) instead of the admin token: what credentials cost on the hot path (a verified
    /// token per connection, every payment charged to three budgets under the table's lock and
    /// written with its proof).
    #[arg(long)]
    agents: bool,
    /// `postgres`: run on RocksDB and then on PostgreSQL with a synchronous standby (started
    /// on free loopback ports), side by side, and time a leader's failover to its standby
    /// through etcd (kill -9 to the next acknowledged payment).
    #[arg(long, default_value = "rocksdb", value_parser = ["rocksdb", "postgres"])]
    store: String,
}

/// A progress line on stderr.
fn say(text: &str) {
    eprintln!("==> {text}");
}

/// Run the benchmark in a fresh temporary directory and print its report.
pub(crate) async fn run(args: BenchArgs, json: bool) -> Result<()> {
    let dir = tempfile::Builder::new()
        .prefix("farthing-bench-")
        .tempdir()
        .wrap_err("creating the run's directory")?;
    if args.mode == "gateway" {
        let report = gateway::bench(&args, dir.path()).await;
        return finish(report, dir, args.keep, json, gateway::print_table);
    }
    if args.store == "postgres" {
        let report = store::compare(&args, dir.path()).await;
        return finish(report, dir, args.keep, json, store::print);
    }
    let report = bench(&args, dir.path(), &Placement::default()).await;
    finish(report, dir, args.keep, json, print_table)
}

/// Keep the run's directory if asked, then print the report (JSON or a table).
fn finish<R: serde::Serialize>(
    report: Result<R>,
    dir: tempfile::TempDir,
    keep: bool,
    json: bool,
    table: fn(&R),
) -> Result<()> {
    if keep {
        let kept = dir.keep();
        say(&format!("run directory kept: {}", kept.display()));
    }
    let report = report?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        table(&report);
    }
    Ok(())
}

async fn bench(args: &BenchArgs, dir: &Path, placement: &Placement) -> Result<Report> {
    let positive = |value: Option<f64>, option: &str| match value {
        Some(v) if !(v.is_finite() && v > 0.0) => {
            bail!("{option} must be a positive number, not {v}")
        }
        _ => Ok(()),
    };
    positive(args.paced_rate, "--paced-rate")?;
    positive(args.duration, "--duration")?;
    std::fs::create_dir_all(dir)?;
    let chain = Chain::start(args.anvil.clone(), args.node_workers, dir).await?;

    let (alice_store, bob_store) = (placement.flags("alice"), placement.flags("bob"));
    let mut bob = chain.start_node(2, &dir.join("bob"), &bob_store)?;
    let link = format!("{}@{}", chain.bob(), bob.peers);
    let mut alice_flags = vec!["--connect".to_owned(), link];
    alice_flags.extend(alice_store);
    let alice = chain.start_node(1, &dir.join("alice"), &alice_flags)?;
    let alice_rpc = client(&alice).await?;
    let mut bob_rpc = client(&bob).await?;
    open_channel(&alice_rpc, &bob_rpc, chain.bob()).await?;
    let alice_rpc = if args.agents {
        say("paying under agents' credentials (--agents)");
        bob_rpc = setup::agent_client(&bob, &bob_rpc).await?;
        setup::agent_client(&alice, &alice_rpc).await?
    } else {
        alice_rpc
    };

    // Warm-up: the link is up, both processes have run the hot path.
    pay_until_linked(&alice_rpc).await?;
    let warm_up = Load {
        quiet: true,
        ..Load::split(args.warmup, args.concurrency)
    };
    let _ = both_ways(&alice_rpc, &bob_rpc, warm_up).await?;
    say(&format!("warm-up: {} payments", args.warmup));

    // Full load, both ways at once.
    let before = Counters::read(&alice_rpc, &bob_rpc, &alice, &bob).await?;
    let started = Instant::now();
    let full = match args.duration {
        // As many as fit in the time (each way's share is unbounded).
        Some(secs) => Load {
            until: Some(started + Duration::from_secs_f64(secs)),
            ..Load::split(u64::MAX, args.concurrency)
        },
        None => Load::split(args.payments, args.concurrency),
    };
    let mut latencies = both_ways(&alice_rpc, &bob_rpc, full).await?;
    let elapsed = started.elapsed().as_secs_f64();
    let after = Counters::read(&alice_rpc, &bob_rpc, &alice, &bob).await?;
    let full_payments = latencies.len() as u64;
    let payments_per_sec = full_payments as f64 / elapsed;
    say(&format!(
        "full load: {full_payments} payments in {elapsed:.2} s = {payments_per_sec:.0}/s"
    ));
    let latency_ms = Percentiles::of(&mut latencies);

    // Half the peak rate (or the rate asked for), paced.
    let rate = args.paced_rate.unwrap_or(payments_per_sec / 2.0);
    let paced = Load {
        rate_each: Some(rate / 2.0),
        ..Load::split(args.half_rate_payments, args.concurrency)
    };
    let pacing = Instant::now();
    let mut paced = both_ways(&alice_rpc, &bob_rpc, paced).await?;
    // Each latency runs from its request; a node that fell behind the pace shows here.
    let paced_per_sec = paced.len() as f64 / pacing.elapsed().as_secs_f64();
    let latency_half_rate_ms = Percentiles::of(&mut paced);
    say(&format!(
        "paced at {rate:.0}/s (achieved {paced_per_sec:.0}/s): p50 {:.2} ms, p99 {:.2} ms",
        latency_half_rate_ms.p50, latency_half_rate_ms.p99
    ));

    // The machine's crypto ceiling, in the same run.
    let ceiling = crypto_ceiling(Duration::from_secs(2));
    say(&format!(
        "crypto ceiling: {ceiling:.0} payments/s (sign + recover, both cores)"
    ));

    // Restart the receiver holding the channel (after more payments, if asked).
    if args.restart_payments > 0 {
        say(&format!(
            "{} more payments before the restart",
            args.restart_payments
        ));
        let more = Load {
            from_alice: args.restart_payments,
            from_bob: 0,
            ..Load::split(0, args.concurrency * 2)
        };
        both_ways(&alice_rpc, &bob_rpc, more).await?;
    }
    let total_payments =
        1 + args.warmup + full_payments + args.half_rate_payments + args.restart_payments;
    let bob_bytes = dir_size(&bob.data_dir);
    let (bob_dir, bob_peers) = (bob.data_dir.clone(), bob.peers.clone());
    let _ = bob.stop();
    let restarted = Instant::now();
    let mut flags = vec!["--peer-listen".to_owned(), bob_peers];
    flags.extend(bob_store);
    bob = chain.start_node(2, &bob_dir, &flags)?;
    bob_rpc = client(&bob).await?;
    pay_until_linked(&alice_rpc).await?;
    let restart_secs = restarted.elapsed().as_secs_f64();
    say(&format!(
        "bob's node restarted and paid again in {restart_secs:.2} s"
    ));

    // Close cooperatively: what the nodes report is what the chain pays.
    let (a, b) = (
        alice_rpc.get_channel(1).await?,
        bob_rpc.get_channel(1).await?,
    );
    let units = |text: &str| {
        farthing_core::parse_amount(text, 6, u128::MAX).map_err(|e| eyre!("amount {text}: {e}"))
    };
    let (expect_a, expect_b) = (units(&a.balance_ours)?, units(&b.balance_ours)?);
    let token = MockUSDC::new(chain.deployment.token, chain.devnet.reader());
    let held = |who: Address| {
        let token = token.clone();
        async move {
            token
                .balanceOf(who)
                .call()
                .await
                .map(|b| b.to::<u128>())
                .map_err(|e| eyre!("balance: {e}"))
        }
    };
    let (wallet_a, wallet_b) = (held(chain.alice()).await?, held(chain.bob()).await?);
    let closed = alice_rpc.close_channel(1).await?;
    let paid_a = held(chain.alice()).await? - wallet_a;
    let paid_b = held(chain.bob()).await? - wallet_b;
    let close_balances_exact =
        closed.state.as_str() == "settled" && (paid_a, paid_b) == (expect_a, expect_b);
    say(&format!(
        "cooperative close: alice +{paid_a}, bob +{paid_b} base units (nodes reported {expect_a} / {expect_b})"
    ));
    drop(alice);
    drop(bob);
    drop(chain);

    let payments = full_payments as f64;
    Ok(Report {
        payments: full_payments,
        payments_per_sec,
        ceiling_payments_per_sec: ceiling,
        ceiling_ratio: payments_per_sec / ceiling,
        latency_ms,
        latency_half_rate_ms,
        paced_rate: rate,
        paced_rate_achieved: paced_per_sec,
        fsyncs_per_payment: (after.syncs - before.syncs) as f64 / payments,
        cpu_us_per_payment: (after.cpu_secs - before.cpu_secs) * 1e6 / payments,
        client_cpu_us_per_payment: (after.client_cpu_secs - before.client_cpu_secs) * 1e6
            / payments,
        payments_per_proof: payments / (after.proofs - before.proofs).max(1) as f64,
        restart_secs,
        restart_after_payments: total_payments,
        bytes_per_payment: bob_bytes as f64 / total_payments as f64,
        close_balances_exact,
        cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
    })
}
