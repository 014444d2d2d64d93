//! Chain providers that are not a local anvil: a slow one (seconds per call) and one that
//! rate-limits (HTTP 429), faked by a JSON-RPC front in front of anvil. Payments between two
//! `farthing node` processes go on and settle exactly; a rate limit is retried (with backoff)
//! instead of making the node degraded. Also: an RPC serving another chain is refused at start.

use std::process::Command;
use std::sync::atomic::Ordering::SeqCst;
use std::time::Duration;

use farthing_e2e::front::serve_rpc_front;
use farthing_e2e::{Daemon, Deployed, PATIENCE, Party, USDC, done_if, eventually, farthing_bin};
use farthing_rpc::{FarthingApiClient, OpenParams, PayParams};

/// alice's node and bob's, both on the chain RPC at `rpc_url` with `extra` flags, alice's
/// keeping a link to bob's; their logs go to files in the data dirs.
pub(crate) struct Pair {
    pub(crate) alice: Daemon,
    pub(crate) bob: Daemon,
    pub(crate) alice_rpc: farthing_rpc::HttpClient,
    pub(crate) bob_rpc: farthing_rpc::HttpClient,
    logs: [std::path::PathBuf; 2],
}

impl Pair {
    pub(crate) fn start(net: &Deployed, rpc_url: &str, extra: &[&str]) -> Self {
        Self::start_with(net, rpc_url, extra, extra)
    }

    /// [`Pair::start`] with flags of each node's own.
    pub(crate) fn start_with(
        net: &Deployed,
        rpc_url: &str,
        alice_extra: &[&str],
        bob_extra: &[&str],
    ) -> Self {
        let bob_party = net.party("BOB");
        let logs = [
            net.dir.path().join("alice.log"),
            net.dir.path().join("bob.log"),
        ];
        let start =
            |account: u32, who: &str, log: &std::path::Path, extra: &[&str], more: &[&str]| {
                let process = farthing_e2e::NodeCommand::new(
                    &farthing_bin(),
                    account,
                    &net.data_dir(who),
                    rpc_url,
                    &net.deployment,
                )
                .args(extra)
                .args(more)
                .log_to(log)
                .start()
                .unwrap_or_else(|e| {
                    panic!("{e}: {}", std::fs::read_to_string(log).unwrap_or_default())
                });
                Daemon::from_process(process)
            };
        let bob = start(2, "bob", &logs[1], bob_extra, &[]);
        let link = format!("{}@{}", bob_party.address(), bob.peers);
        let alice = start(1, "alice", &logs[0], alice_extra, &["--connect", &link]);
        Self {
            alice_rpc: net.rpc("alice", &alice),
            bob_rpc: net.rpc("bob", &bob),
            alice,
            bob,
            logs,
        }
    }

    /// alice opens channel 1 to bob with 20 USDC; returns once it takes payments both ways.
    pub(crate) async fn open(&self, bob: &Party) {
        let opened = OpenParams {
            partner: bob.address(),
            amount: "20".into(),
            challenge_period: Some(600),
        }
        .call(&self.alice_rpc)
        .await
        .unwrap();
        assert_eq!(opened.id, 1);
        self.alice_rpc.wait_channel(1, Some(120)).await.unwrap();
    }

    /// alice pays bob `count` times 0.01 after `done` payments: nonces and balances exact.
    pub(crate) async fn pay(&self, done: u64, count: u64) {
        for i in done + 1..=done + count {
            let paid = PayParams {
                channel_id: Some(1),
                partner: None,
                amount: "0.01".into(),
                idempotency_key: None,
                memo: None,
            }
            .call(&self.alice_rpc)
            .await
            .unwrap();
            let ours = 20 * USDC - i * USDC / 100;
            assert_eq!(
                (paid.nonce, paid.balance_ours.clone()),
                (i, farthing_core::format_amount(u128::from(ours), 6))
            );
        }
    }

    /// alice closes channel 1 cooperatively after `paid` payments of 0.01: settled at once,
    /// alice left with 100 USDC less what she paid, bob up by it, to the unit.
    pub(crate) async fn close(&self, alice: &Party, bob: &Party, paid: u64, bob_before: u64) {
        let at_bob = eventually(PATIENCE, "bob's node to hold every payment", async || {
            let channel = self.bob_rpc.get_channel(1).await.unwrap();
            let want = farthing_core::format_amount(u128::from(paid * USDC / 100), 6);
            if channel.balance_ours == want {
                Ok(channel)
            } else {
                Err(channel.balance_ours)
            }
        })
        .await;
        assert_eq!(at_bob.state.as_str(), "open");
        let closed = self.alice_rpc.close_channel(1).await.unwrap();
        assert_eq!(closed.state.as_str(), "settled", "{closed:?}");
        assert_eq!(alice.balance().await, 100 * USDC - paid * USDC / 100);
        assert_eq!(bob.balance().await, bob_before + paid * USDC / 100);
    }
}

#[tokio::test]
async fn a_slow_provider_does_not_stall_payments_and_the_channel_settles_exactly() {
    let net = Deployed::start().await;
    let (alice, bob) = (net.party("ALICE"), net.party("BOB"));
    let bob_before = bob.balance().await;
    let (front, url) = serve_rpc_front(&net.devnet.rpc_url);
    // A request may take a minute: the hang below is then not a failed call (a failed watcher
    // pass makes the node degraded, and a degraded node pays no more).
    for who in ["alice", "bob"] {
        std::fs::create_dir_all(net.data_dir(who)).unwrap();
        std::fs::write(
            net.data_dir(who).join("farthing.toml"),
            "[chain]\nrpc_timeout_secs = 60\n",
        )
        .unwrap();
    }
    let pair = Pair::start(&net, &url, &[]);
    pair.open(&bob).await;

    // The provider stops answering: every chain call waits at the front until it is let go.
    // Once both nodes' watchers are stuck in a call, payments go on regardless: they never
    // wait for the chain (until the watcher gives a pass up, after 30 s, and the node turns
    // degraded).
    front.hold(true);
    eventually(PATIENCE, "both nodes' chain calls to hang", async || {
        let held = front.held.load(SeqCst);
        done_if(held >= 2, held)
    })
    .await;
    pair.pay(0, 20).await;
    assert!(front.held.load(SeqCst) >= 1, "the chain still hangs");
    // Then it answers, slowly: 2.5 s a call (the watcher's polls, the fee reads, the receipt
    // waits). Payments go on; the close (a co-signature over the link, then a transaction
    // and its receipt) is slow, not failed: each call is within the timeout.
    front.set_delay(Duration::from_millis(2_500));
    front.hold(false);
    pair.pay(20, 10).await;
    pair.close(&alice, &bob, 30, bob_before).await;
    assert!(front.delayed.load(SeqCst) > 0, "the close met the delay");
    assert!(
        pair.alice.stop().success() && pair.bob.stop().success(),
        "both stop cleanly"
    );
}

#[tokio::test]
async fn a_rate_limited_provider_is_retried_without_the_node_degrading() {
    let net = Deployed::start().await;
    let (alice, bob) = (net.party("ALICE"), net.party("BOB"));
    let bob_before = bob.balance().await;
    let (front, url) = serve_rpc_front(&net.devnet.rpc_url);
    // Every third request is refused with 429, from the start: the nodes' start-up checks,
    // the watcher, the opening and the close all meet it.
    front.reject_every(3);
    let pair = Pair::start(&net, &url, &[]);
    pair.open(&bob).await;
    pair.pay(0, 10).await;
    pair.close(&alice, &bob, 10, bob_before).await;
    let rejected = front.rejected.load(SeqCst);
    assert!(rejected >= 10, "the front refused {rejected} requests");
    for rpc in [&pair.alice_rpc, &pair.bob_rpc] {
        let info = rpc.info().await.unwrap();
        assert_eq!(
            info.health.status,
            farthing_rpc::HealthStatus::Ok,
            "{:?}",
            info.health
        );
    }
    let Pair {
        alice: alice_node,
        bob: bob_node,
        logs,
        ..
    } = pair;
    assert!(alice_node.stop().success() && bob_node.stop().success());
    // Every 429 was answered by a retry: the watcher never saw an error, so never said the
    // node was degraded (it logs that on the first failed pass).
    let logs = logs.map(|p| std::fs::read_to_string(p).unwrap()).join("\n");
    assert!(!logs.contains("degraded"), "{logs}");
}

/// A provider that takes a transaction and answers 503: the retry layer sends it again, the
/// provider refuses the repeat (the first copy is in), and the node still answers the open
/// and the close as done, each exactly once on-chain.
#[tokio::test]
async fn a_send_whose_answer_was_lost_is_not_reported_as_failed() {
    let net = Deployed::start().await;
    let (alice, bob) = (net.party("ALICE"), net.party("BOB"));
    let bob_before = bob.balance().await;
    let (front, url) = serve_rpc_front(&net.devnet.rpc_url);
    let pair = Pair::start(&net, &url, &[]);
    // The open's transaction (alice's node sends nothing before it).
    front.lose_send_answers(1);
    pair.open(&bob).await;
    assert_eq!(front.lost_answers.load(SeqCst), 1);
    pair.pay(0, 3).await;
    front.lose_send_answers(1);
    pair.close(&alice, &bob, 3, bob_before).await;
    assert_eq!(front.lost_answers.load(SeqCst), 2);
    let Pair { alice, bob, .. } = pair;
    assert!(alice.stop().success() && bob.stop().success());
}

/// `farthing node` with `args` (after `node`) and data dir `who`: it must refuse to start;
/// returns its one `error:` line.
pub(crate) fn refusal(net: &Deployed, who: &str, args: &[&str]) -> String {
    refusal_and_log(net, who, args).0
}

/// [`refusal`], and everything the node wrote to stderr.
pub(crate) fn refusal_and_log(net: &Deployed, who: &str, args: &[&str]) -> (String, String) {
    let mut command = Command::new(farthing_bin());
    command
        .arg("--data-dir")
        .arg(net.data_dir(who))
        .arg("node")
        .args([
            "--rpc-listen",
            "127.0.0.1:0",
            "--peer-listen",
            "127.0.0.1:0",
        ])
        .args(["--log-level", "warn"]);
    if !args.contains(&"--deployment") {
        command.arg("--deployment").arg(&net.deployment);
    }
    let out = command.args(args).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "the node started: {stderr}");
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error")).collect();
    assert_eq!(errors.len(), 1, "one error line: {stderr}");
    (errors[0].to_owned(), stderr)
}

#[tokio::test]
async fn plain_http_to_another_host_is_warned_about_and_a_dead_one_times_out() {
    let net = Deployed::start().await;
    // 192.0.2.1 (TEST-NET-1) answers nothing; a one-second limit from the config file.
    let dir = net.data_dir("remote");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("farthing.toml"), "[chain]\nrpc_timeout_secs = 1\n").unwrap();
    let (line, log) = refusal_and_log(
        &net,
        "remote",
        &["--dev", "1", "--rpc-url", "http://192.0.2.1:8545/v2/SECRET"],
    );
    assert!(
        log.contains(
            "chain.rpc_url http://192.0.2.1:8545 is plain http:// to another host: the RPC's API key and every request travel in clear text; use https://"
        ),
        "{log}"
    );
    assert!(!log.contains("SECRET"), "{log}");
    assert!(
        line.starts_with("error: chain RPC http://192.0.2.1:8545: "),
        "{line}"
    );
}

#[tokio::test]
async fn an_rpc_serving_another_chain_is_refused_at_start_with_both_ids() {
    let net = Deployed::start().await;
    // A deployment file and a config for chain 84532 (Base Sepolia), against anvil's 31337,
    // with a key of the node's own (a devnet key is refused off a devnet before the RPC is
    // asked).
    let d = farthing_chain::Deployment {
        chain_id: 84_532,
        ..net.d.clone()
    };
    let deployment = net.dir.path().join("sepolia.json");
    std::fs::write(&deployment, serde_json::to_string(&d).unwrap()).unwrap();
    let key = net.dir.path().join("key.hex");
    let signer = alloy::signers::local::PrivateKeySigner::random();
    std::fs::write(&key, alloy::hex::encode(signer.to_bytes())).unwrap();
    let mut permissions = std::fs::metadata(&key).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut permissions, 0o600);
    std::fs::set_permissions(&key, permissions).unwrap();
    let args = |url: &str| {
        [
            "--rpc-url",
            url,
            "--chain-id",
            "84532",
            "--deployment",
            deployment.to_str().unwrap(),
            "--key-file",
            key.to_str().unwrap(),
        ]
        .map(str::to_owned)
    };
    // A path anvil does not serve (a provider's key in it) first: a 404, the key not shown.
    let line = refusal(
        &net,
        "sepolia",
        &args(&format!("{}/v2/SECRET", net.devnet.rpc_url))
            .each_ref()
            .map(String::as_str),
    );
    assert_eq!(
        line,
        format!(
            "error: chain RPC {}: HTTP error 404 with empty body (no JSON-RPC at that URL: check its path (a provider's API key often goes there))",
            net.devnet.rpc_url.trim_end_matches('/')
        )
    );
    let line = refusal(
        &net,
        "sepolia",
        &[
            "--rpc-url",
            &net.devnet.rpc_url,
            "--chain-id",
            "84532",
            "--deployment",
            deployment.to_str().unwrap(),
            "--key-file",
            key.to_str().unwrap(),
        ],
    );
    assert_eq!(
        line,
        format!(
            "error: the chain RPC {} serves chain 31337, but the node is configured for chain 84532: fix chain.rpc_url (--rpc-url) or chain.chain_id (--chain-id)",
            net.devnet.rpc_url.trim_end_matches('/')
        )
    );
}
