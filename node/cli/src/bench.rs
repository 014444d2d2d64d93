//! `farthing bench`: one reproducible run on one machine. It brings up its own anvil and
//! contracts, starts two real nodes as separate processes (this binary, RocksDB on disk with
//! synced writes), opens a funded channel, streams payments both ways through the public RPC,
//! and reports durable payments per second, latency percentiles at full and at half load,
//! fsyncs and CPU time per payment, the machine's crypto ceiling measured in the same run, a
//! node's restart time, the data dir's bytes per payment, and the on-chain close checked to
//! the unit.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use alloy::network::EthereumWallet;
use alloy::primitives::{Address, U256};
use alloy::providers::{Provider, ProviderBuilder};
use eyre::{Context, Result, bail, eyre};
use farthing_chain::Deployment;
use farthing_chain::contracts::{ChannelManager, MockUSDC};
use farthing_daemon::{KeySource, load_key};
use farthing_rpc::{FarthingApiClient, OpenParams, WsClient};
use serde::Serialize;

use crate::PayTarget;
use crate::stream::{self, Stream, percentile_ms};

/// `farthing bench` options.
#[derive(Debug, clap::Args)]
pub(crate) struct BenchArgs {
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
}

/// Latency percentiles in milliseconds.
#[derive(Debug, Serialize)]
struct Percentiles {
    p50: f64,
    p99: f64,
    p999: f64,
}

impl Percentiles {
    fn of(latencies: &mut [Duration]) -> Self {
        latencies.sort_unstable();
        Self {
            p50: percentile_ms(latencies, 0.5),
            p99: percentile_ms(latencies, 0.99),
            p999: percentile_ms(latencies, 0.999),
        }
    }
}

/// What the run measured (`--json` prints it as one object).
#[derive(Debug, Serialize)]
struct Report {
    /// Payments at full load, both directions.
    payments: u64,
    /// Acknowledged (fsynced by the receiver) payments per second at full load.
    payments_per_sec: f64,
    /// Payer sign + receiver recover per second on this machine, both cores.
    ceiling_payments_per_sec: f64,
    /// payments_per_sec / ceiling_payments_per_sec.
    ceiling_ratio: f64,
    /// Per payment, at full load.
    latency_ms: Percentiles,
    /// Per payment, paced at half the measured rate (or at `--paced-rate`).
    latency_half_rate_ms: Percentiles,
    /// The rate that stream asked for, and the rate it achieved (both ways together).
    paced_rate: f64,
    paced_rate_achieved: f64,
    /// Synced commits of both nodes per payment at full load.
    fsyncs_per_payment: f64,
    /// CPU time of both node processes per payment at full load, microseconds.
    cpu_us_per_payment: f64,
    /// CPU time of the bench's own RPC clients (the agents) per payment at full load.
    client_cpu_us_per_payment: f64,
    /// Payments per signed proof at full load (queued payments share one proof).
    payments_per_proof: f64,
    /// Seconds from starting a node holding the channel to its first acknowledged payment.
    restart_secs: f64,
    /// How many payments the restarted node's channel had seen.
    restart_after_payments: u64,
    /// The receiver's data directory size divided by every payment it took.
    bytes_per_payment: f64,
    /// The cooperative close paid both sides exactly what the nodes reported.
    close_balances_exact: bool,
    /// Threads of the machine (for the table next to the published anchors).
    cpus: usize,
}

/// A child process killed when dropped.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Proc {
    fn pid(&self) -> u32 {
        self.0.id()
    }

    /// SIGTERM and wait: a clean shutdown.
    fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let _ = self.0.wait();
        std::mem::forget(self);
    }
}

/// A node of the run.
struct BenchNode {
    proc: Proc,
    url: String,
    peers: String,
    data_dir: PathBuf,
}

fn say(text: &str) {
    eprintln!("==> {text}");
}

pub(crate) async fn run(args: BenchArgs, json: bool) -> Result<()> {
    let dir = tempfile::Builder::new()
        .prefix("farthing-bench-")
        .tempdir()
        .wrap_err("creating the run's directory")?;
    let report = bench(&args, dir.path()).await;
    if args.keep {
        let kept = dir.keep();
        say(&format!("run directory kept: {}", kept.display()));
    }
    let report = report?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_table(&report);
    }
    Ok(())
}

async fn bench(args: &BenchArgs, dir: &Path) -> Result<Report> {
    let positive = |value: Option<f64>, option: &str| match value {
        Some(v) if !(v.is_finite() && v > 0.0) => {
            bail!("{option} must be a positive number, not {v}")
        }
        _ => Ok(()),
    };
    positive(args.paced_rate, "--paced-rate")?;
    positive(args.duration, "--duration")?;
    let (anvil, rpc_url) = start_anvil(args.anvil.clone())?;
    say(&format!("anvil at {rpc_url}"));
    let deployment = deploy(&rpc_url).await?;
    let deployment_file = dir.join("deployment.json");
    std::fs::write(&deployment_file, serde_json::to_string(&deployment)?)?;
    let alice_key = load_key(&KeySource::DevAccount(1))?;
    let bob_key = load_key(&KeySource::DevAccount(2))?;
    mint(
        &rpc_url,
        &deployment,
        &[alice_key.address(), bob_key.address()],
    )
    .await?;
    say("contracts deployed; alice and bob funded with 1,000,000 USDC each");

    let workers: Vec<String> = args
        .node_workers
        .map(|n| vec!["--workers".into(), n.to_string()])
        .unwrap_or_default();
    let with_workers = |more: &[&str]| -> Vec<String> {
        workers
            .iter()
            .cloned()
            .chain(more.iter().map(|s| (*s).to_owned()))
            .collect()
    };
    let mut bob = start_node(
        2,
        &dir.join("bob"),
        &rpc_url,
        &deployment_file,
        &with_workers(&[]),
    )?;
    let link = format!("{}@{}", bob_key.address(), bob.peers);
    let alice = start_node(
        1,
        &dir.join("alice"),
        &rpc_url,
        &deployment_file,
        &with_workers(&["--connect", &link]),
    )?;
    let alice_rpc = Arc::new(client(&alice).await?);
    let mut bob_rpc = Arc::new(client(&bob).await?);
    let deposit = 500_000u128;
    alice_rpc
        .open_channel(OpenParams {
            partner: bob_key.address(),
            amount: deposit.to_string(),
            challenge_period: Some(600),
        })
        .await?;
    until("bob's node to see the channel", || async {
        bob_rpc.get_channel(1).await.is_ok()
    })
    .await?;
    bob_rpc.top_up(1, deposit.to_string()).await?;
    until("alice's node to see bob's deposit", || async {
        alice_rpc
            .get_channel(1)
            .await
            .is_ok_and(|c| c.deposit_partner == deposit.to_string())
    })
    .await?;
    say("channel 1 open: 500,000 USDC from each side");

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
    let bob_dir = bob.data_dir.clone();
    bob.proc.stop();
    let restarted = Instant::now();
    bob = start_node(
        2,
        &bob_dir,
        &rpc_url,
        &deployment_file,
        &with_workers(&["--peer-listen", &bob.peers]),
    )?;
    bob_rpc = Arc::new(client(&bob).await?);
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
    let token = MockUSDC::new(
        deployment.token,
        ProviderBuilder::new().connect_http(rpc_url.parse()?),
    );
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
    let (wallet_a, wallet_b) = (
        held(alice_key.address()).await?,
        held(bob_key.address()).await?,
    );
    let closed = alice_rpc.close_channel(1).await?;
    let paid_a = held(alice_key.address()).await? - wallet_a;
    let paid_b = held(bob_key.address()).await? - wallet_b;
    let close_balances_exact =
        closed.state.as_str() == "settled" && (paid_a, paid_b) == (expect_a, expect_b);
    say(&format!(
        "cooperative close: alice +{paid_a}, bob +{paid_b} base units (nodes reported {expect_a} / {expect_b})"
    ));
    drop(alice);
    drop(bob);
    drop(anvil);

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

/// Both nodes' synced commits and CPU time.
struct Counters {
    syncs: u64,
    cpu_secs: f64,
    /// This process: the bench's own RPC clients.
    client_cpu_secs: f64,
    /// Proofs both nodes have signed on the channel.
    proofs: u64,
}

impl Counters {
    async fn read(
        alice_rpc: &WsClient,
        bob_rpc: &WsClient,
        alice: &BenchNode,
        bob: &BenchNode,
    ) -> Result<Self> {
        let (a, b) = (alice_rpc.info().await?, bob_rpc.info().await?);
        let (ca, cb) = (
            alice_rpc.get_channel(1).await?,
            bob_rpc.get_channel(1).await?,
        );
        Ok(Self {
            syncs: a.store_syncs + b.store_syncs,
            cpu_secs: cpu_secs(alice.proc.pid())? + cpu_secs(bob.proc.pid())?,
            client_cpu_secs: cpu_secs(std::process::id())?,
            proofs: ca.sent_nonce + cb.sent_nonce,
        })
    }
}

/// User + system CPU time of process `pid` (Linux /proc).
fn cpu_secs(pid: u32) -> Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    // After the command name: state is field 3; utime and stime are fields 14 and 15.
    let ticks = |i: usize| -> Result<f64> {
        Ok(fields
            .get(i - 3)
            .ok_or_else(|| eyre!("/proc/{pid}/stat is short"))?
            .parse::<f64>()?)
    };
    Ok((ticks(14)? + ticks(15)?) / 100.0)
}

/// One phase of payments, both ways at once.
#[derive(Debug, Clone, Copy)]
struct Load {
    from_alice: u64,
    from_bob: u64,
    /// Payments in flight per direction.
    concurrency: u64,
    /// Payments per second per direction (none: as fast as acknowledged).
    rate_each: Option<f64>,
    /// Start no payment after this instant.
    until: Option<Instant>,
    /// No progress line.
    quiet: bool,
}

impl Load {
    /// `payments` split evenly between the two directions, as fast as acknowledged.
    fn split(payments: u64, concurrency: u64) -> Self {
        Self {
            from_alice: payments / 2,
            from_bob: payments - payments / 2,
            concurrency,
            rate_each: None,
            until: None,
            quiet: false,
        }
    }
}

/// alice pays bob while bob pays alice, as `load` says; every latency.
async fn both_ways(
    alice_rpc: &Arc<WsClient>,
    bob_rpc: &Arc<WsClient>,
    load: Load,
) -> Result<Vec<Duration>> {
    let stream = |count, quiet| Stream {
        target: PayTarget::Channel(1),
        amount: "0.000001".into(),
        count,
        concurrency: load.concurrency,
        idempotency_key: None,
        memo: None,
        rate: load.rate_each,
        until: load.until,
        quiet,
    };
    let (from_alice, from_bob) = tokio::join!(
        stream::run(alice_rpc.clone(), stream(load.from_alice, load.quiet)),
        stream::run(bob_rpc.clone(), stream(load.from_bob, true)),
    );
    let mut latencies = from_alice?.latencies;
    latencies.extend(from_bob?.latencies);
    Ok(latencies)
}

/// Payer sign + receiver recover per second with both cores busy (libsecp256k1, as the nodes).
fn crypto_ceiling(for_how_long: Duration) -> f64 {
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let domain = farthing_chain::messages::channel_domain(31337, Address::repeat_byte(0xcc));
    let digester = farthing_chain::fast::ProofDigester::new(&domain);
    let key = alloy::signers::local::PrivateKeySigner::random();
    let signer = Arc::new(farthing_chain::fast::FastSigner::new(&key));
    let started = Instant::now();
    let workers: Vec<_> = (0..threads)
        .map(|t| {
            let signer = signer.clone();
            std::thread::spawn(move || {
                let mut done = 0u64;
                while started.elapsed() < for_how_long {
                    let digest = digester.digest(t as u64, done + 1, u128::from(done));
                    let signature = signer.sign(&digest);
                    let _ = farthing_chain::fast::recover(&digest, &signature);
                    done += 1;
                }
                done
            })
        })
        .collect();
    let done: u64 = workers.into_iter().map(|w| w.join().unwrap_or(0)).sum();
    done as f64 / started.elapsed().as_secs_f64()
}

fn dir_size(path: &Path) -> u64 {
    std::fs::read_dir(path)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| match e.file_type() {
                    Ok(t) if t.is_dir() => dir_size(&e.path()),
                    _ => e.metadata().map_or(0, |m| m.len()),
                })
                .sum()
        })
        .unwrap_or(0)
}

async fn until<F, Fut>(what: &str, check: F) -> Result<()>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(30);
    while !check().await {
        if Instant::now() > deadline {
            bail!("timed out waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

/// One payment from alice once the link is (back) up.
async fn pay_until_linked(alice_rpc: &WsClient) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let paid = alice_rpc
            .pay(farthing_rpc::PayParams {
                channel_id: Some(1),
                partner: None,
                amount: "0.000001".into(),
                idempotency_key: None,
                memo: None,
            })
            .await;
        match paid {
            Ok(_) => return Ok(()),
            Err(e) if Instant::now() > deadline => bail!("no payment went through: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

fn start_anvil(path: Option<PathBuf>) -> Result<(Proc, String)> {
    let anvil = path.unwrap_or_else(|| PathBuf::from("contracts/node_modules/.bin/anvil"));
    if !anvil.exists() {
        bail!(
            "{} is missing: run scripts/setup.sh (or pass --anvil PATH)",
            anvil.display()
        );
    }
    let mut child = Command::new(&anvil)
        .args(["--host", "127.0.0.1", "--port", "0", "--chain-id", "31337"])
        .args(["--hardfork", "prague"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .wrap_err_with(|| format!("starting {}", anvil.display()))?;
    let stdout = child.stdout.take().ok_or_else(|| eyre!("anvil's stdout"))?;
    let proc = Proc(child);
    for line in BufReader::new(stdout).lines() {
        let line = line?;
        if let Some(addr) = line.strip_prefix("Listening on ") {
            return Ok((proc, format!("http://{}", addr.trim())));
        }
    }
    bail!("anvil exited before listening")
}

async fn deploy(rpc_url: &str) -> Result<Deployment> {
    let deployer = load_key(&KeySource::DevAccount(0))?;
    let provider = ProviderBuilder::new()
        .wallet(EthereumWallet::from(deployer.clone()))
        .connect_http(rpc_url.parse()?);
    let deployment_block = provider.get_block_number().await? + 1;
    let token = MockUSDC::deploy(&provider, deployer.address()).await?;
    token
        .configureMinter(deployer.address(), U256::MAX)
        .send()
        .await?
        .get_receipt()
        .await?;
    let manager = ChannelManager::deploy(&provider, 60u32, 2_592_000u32).await?;
    Ok(Deployment {
        chain_id: 31337,
        channel_manager: *manager.address(),
        token: *token.address(),
        token_decimals: 6,
        deployment_block,
        deployer: deployer.address(),
        min_challenge_period: 60,
        max_challenge_period: 2_592_000,
    })
}

async fn mint(rpc_url: &str, d: &Deployment, to: &[Address]) -> Result<()> {
    let deployer = load_key(&KeySource::DevAccount(0))?;
    let provider = ProviderBuilder::new()
        .wallet(EthereumWallet::from(deployer))
        .connect_http(rpc_url.parse()?);
    let token = MockUSDC::new(d.token, &provider);
    for &who in to {
        token
            .mint(who, U256::from(1_000_000u64 * 1_000_000))
            .send()
            .await?
            .get_receipt()
            .await?;
    }
    Ok(())
}

fn start_node(
    account: u32,
    data_dir: &Path,
    rpc_url: &str,
    deployment: &Path,
    extra: &[String],
) -> Result<BenchNode> {
    let log = std::fs::File::create(data_dir.with_extension("log"))?;
    let mut command = Command::new(std::env::current_exe()?);
    command
        .arg("--data-dir")
        .arg(data_dir)
        .args(["node", "--dev", &account.to_string(), "--rpc-url", rpc_url])
        .args(["--rpc-listen", "127.0.0.1:0", "--log-level", "warn"])
        .arg("--deployment")
        .arg(deployment)
        .args(extra);
    if !extra.iter().any(|a| a == "--peer-listen") {
        command.args(["--peer-listen", "127.0.0.1:0"]);
    }
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .wrap_err("starting a node")?;
    let stdout = child.stdout.take().ok_or_else(|| eyre!("node stdout"))?;
    let proc = Proc(child);
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line)?;
    // "farthing node 0x.. peers on HOST:PORT listening on HOST:PORT"
    let words: Vec<&str> = line.split_whitespace().collect();
    if words.len() != 9 {
        bail!(
            "node {account} did not start: see {}",
            data_dir.with_extension("log").display()
        );
    }
    Ok(BenchNode {
        url: format!("ws://{}", words[8]),
        peers: words[5].to_owned(),
        data_dir: data_dir.to_owned(),
        proc,
    })
}

async fn client(node: &BenchNode) -> Result<WsClient> {
    let token = farthing_rpc::read_token(&node.data_dir)?;
    Ok(farthing_rpc::connect_ws(&node.url, &token).await?)
}

fn print_table(r: &Report) {
    println!(
        "\nfarthing bench: {} payments at full load, {} cpus",
        r.payments, r.cpus
    );
    println!("| measure | value |\n|---|---|");
    println!(
        "| durable payments/s (both ways, acked after the receiver's fsync) | {:.0} |",
        r.payments_per_sec
    );
    println!(
        "| crypto ceiling (sign + recover, all cores) | {:.0}/s (achieved {:.0}%) |",
        r.ceiling_payments_per_sec,
        r.ceiling_ratio * 100.0
    );
    println!(
        "| latency at full load p50 / p99 / p99.9 | {:.2} / {:.2} / {:.2} ms |",
        r.latency_ms.p50, r.latency_ms.p99, r.latency_ms.p999
    );
    println!(
        "| latency paced at {:.0}/s (achieved {:.0}/s) p50 / p99 / p99.9 | {:.2} / {:.2} / {:.2} ms |",
        r.paced_rate,
        r.paced_rate_achieved,
        r.latency_half_rate_ms.p50,
        r.latency_half_rate_ms.p99,
        r.latency_half_rate_ms.p999
    );
    println!("| fsyncs per payment | {:.3} |", r.fsyncs_per_payment);
    println!(
        "| CPU per payment (both nodes) | {:.0} us |",
        r.cpu_us_per_payment
    );
    println!(
        "| CPU per payment (the bench's RPC clients) | {:.0} us |",
        r.client_cpu_us_per_payment
    );
    println!(
        "| payments per signed proof | {:.1} |",
        r.payments_per_proof
    );
    println!(
        "| restart to first payment ({} payments in the channel) | {:.2} s |",
        r.restart_after_payments, r.restart_secs
    );
    println!(
        "| data dir bytes per payment | {:.1} |",
        r.bytes_per_payment
    );
    println!("| cooperative close exact | {} |", r.close_balances_exact);
}
