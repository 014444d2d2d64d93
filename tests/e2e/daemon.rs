//! The real `farthing` binary as a child process against a real anvil: the daemon's RPC
//! (bearer token from the data dir) drives a channel through open, top-up, close and — after
//! a clean SIGTERM shutdown and a restart — settle, with exact balances; auth and bad input
//! get the documented refusals.

use std::process::Command;

use alloy::providers::Provider as _;
use farthing_chain::contracts::MockUSDC;
use farthing_e2e::{
    Daemon, Deployed, Devnet, PATIENCE, Party, USDC, eventually, farthing_bin, send,
    watchtower_only_warns,
};
use farthing_rpc::{ClientError, FarthingApiClient, OpenParams, code};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn call_code(e: ClientError) -> i32 {
    match e {
        ClientError::Call(call) => call.code(),
        other => panic!("expected a JSON-RPC error, got {other}"),
    }
}

/// The HTTP status of a raw request with the given Authorization header (None: no header).
async fn http_status(url: &str, authorization: Option<&str>) -> u16 {
    let addr = url.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"farthing_info"}"#;
    let auth = authorization
        .map(|a| format!("Authorization: {a}\r\n"))
        .unwrap_or_default();
    let request = format!(
        "POST / HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n{auth}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    response.split(' ').nth(1).unwrap().parse().unwrap()
}

#[tokio::test]
async fn the_daemon_drives_a_channel_over_its_rpc_across_a_restart() {
    let devnet = Devnet::start().unwrap();
    let d = devnet.deploy().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let deployment = dir.path().join("deployment.json");
    std::fs::write(&deployment, serde_json::to_string(&d).unwrap()).unwrap();
    let data_dir = dir.path().join("alice");
    // The operator settles and claims below: the node's watchtower only warns, so every
    // transaction from alice's address is the operator's.
    watchtower_only_warns(&data_dir);
    let alice = Party::new(&devnet, &d, devnet.key("ALICE"));
    let bob = Party::new(&devnet, &d, devnet.key("BOB"));
    devnet.mint(&d, alice.address(), 100 * USDC).await.unwrap();
    let chain = devnet.provider(&devnet.key("DEPLOYER"));
    let sent = async || {
        chain
            .get_transaction_count(alice.address())
            .pending()
            .await
            .unwrap()
    };

    let daemon = Daemon::start(&data_dir, &devnet.rpc_url, &deployment);
    let token = farthing_rpc::read_token(&data_dir).unwrap();
    let client = farthing_rpc::connect_http(&daemon.url, &token).unwrap();

    // R1: no token, a malformed header, a wrong token: 401, nothing runs.
    assert_eq!(http_status(&daemon.url, None).await, 401);
    assert_eq!(http_status(&daemon.url, Some("Basic abc")).await, 401);
    assert_eq!(
        http_status(&daemon.url, Some(&format!("Bearer {}", "0".repeat(64)))).await,
        401
    );
    assert_eq!(
        http_status(&daemon.url, Some(&format!("Bearer {token}"))).await,
        200
    );

    let info = client.info().await.unwrap();
    assert_eq!(
        (info.address, info.chain_id, info.token_decimals),
        (alice.address(), 31337, 6)
    );
    assert_eq!(info.token_symbol, "USDC");

    // Open and top up; amounts in token units.
    let open = OpenParams {
        partner: bob.address(),
        amount: "50".into(),
        challenge_period: Some(600),
    }
    .call(&client)
    .await
    .unwrap();
    assert_eq!(
        (
            open.id,
            open.deposit_ours.as_str(),
            open.balance_ours.as_str()
        ),
        (1, "50", "50")
    );
    let topped = client.top_up(1, "12.5".into()).await.unwrap();
    assert_eq!(topped.deposit_ours, "62.5");
    assert_eq!(alice.balance().await, 37_500_000);

    // Documented refusals.
    let bad_amount = client.top_up(1, "1.2.3".into()).await.unwrap_err();
    assert_eq!(call_code(bad_amount), code::INVALID_AMOUNT);
    let too_precise = client.top_up(1, "0.0000001".into()).await.unwrap_err();
    assert_eq!(call_code(too_precise), code::INVALID_AMOUNT);
    let unknown = client.get_channel(9).await.unwrap_err();
    assert_eq!(call_code(unknown), code::UNKNOWN_CHANNEL);
    let early = client.settle(1).await.unwrap_err();
    assert_eq!(call_code(early), code::WRONG_STATE);
    let broke = client.top_up(1, "40".into()).await.unwrap_err();
    assert_eq!(call_code(broke), code::INSUFFICIENT_FUNDS);
    assert_eq!(alice.balance().await, 37_500_000, "no refusal moved money");

    let closed = client.close_channel(1).await.unwrap();
    assert_eq!(closed.state.as_str(), "closed");

    // Clean shutdown on SIGTERM; the window passes while the node is down; restart; settle.
    // The token refuses to pay alice at settle time (USDC blacklist): the settle still goes
    // through, her payout waits in the contract, and she claims it once she is unblocked.
    assert!(daemon.stop().success(), "clean exit on SIGTERM");
    devnet.advance_time(601).await.unwrap();
    let usdc_owner = MockUSDC::new(d.token, devnet.provider(&devnet.key("DEPLOYER")));
    send!(usdc_owner.blacklist(alice.address()));
    let daemon = Daemon::start(&data_dir, &devnet.rpc_url, &deployment);
    let client = farthing_rpc::connect_http(&daemon.url, &token).unwrap();
    let listed = client.list_channels().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(
        listed[0].state.as_str(),
        "closed",
        "state survived the restart"
    );
    let before = sent().await;
    let settled = client.settle(1).await.unwrap();
    assert_eq!(settled.state.as_str(), "settled");
    assert_eq!(
        sent().await,
        before + 1,
        "the operator's settle, nothing else"
    );
    assert_eq!(
        alice.balance().await,
        37_500_000,
        "payout deferred, not paid"
    );
    let balances = client.balances().await.unwrap();
    assert_eq!(
        (balances.claimable.as_str(), balances.in_channels.as_str()),
        ("62.5", "0")
    );
    send!(usdc_owner.unBlacklist(alice.address()));
    let claimed = client.claim().await.unwrap().claimed;
    assert_eq!(claimed, "62.5");
    assert_eq!(sent().await, before + 2, "the operator's claim");
    assert_eq!(alice.balance().await, 100 * USDC, "every unit back");
    assert_eq!(bob.balance().await, 0);
    let balances = client.balances().await.unwrap();
    assert_eq!(
        (balances.token.as_str(), balances.claimable.as_str()),
        ("100", "0")
    );
    assert!(
        daemon.stop().success(),
        "clean exit on SIGTERM after the restart"
    );
}

#[test]
fn a_wrong_or_unreachable_chain_stops_the_start_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let devnet = Devnet::start().unwrap();
    let deployment = dir.path().join("deployment.json");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let d = runtime.block_on(devnet.deploy()).unwrap();
    std::fs::write(&deployment, serde_json::to_string(&d).unwrap()).unwrap();
    let start = |args: &[&str], key: &[&std::ffi::OsStr]| {
        let output = Command::new(farthing_bin())
            .arg("--data-dir")
            .arg(dir.path().join("node"))
            .args(["node", "--rpc-listen", "127.0.0.1:0"])
            .arg("--deployment")
            .arg(&deployment)
            .args(args)
            .args(key)
            .output()
            .unwrap();
        assert!(!output.status.success(), "{args:?} must not start");
        String::from_utf8(output.stderr).unwrap()
    };
    let dev = [std::ffi::OsStr::new("--dev"), std::ffi::OsStr::new("1")];
    let unreachable = start(&["--rpc-url", "http://127.0.0.1:9"], &dev);
    assert_eq!(unreachable.lines().count(), 1, "{unreachable}");
    assert!(
        unreachable.starts_with("error: chain RPC http://127.0.0.1:9: ")
            && unreachable.trim_end().ends_with(
                "(nothing listens there: is the chain's RPC running and the URL right?)"
            ),
        "{unreachable}"
    );
    let wrong_chain = start(&["--rpc-url", &devnet.rpc_url, "--chain-id", "5"], &dev);
    assert_eq!(wrong_chain.lines().count(), 1, "{wrong_chain}");
    assert!(wrong_chain.contains("config says chain 5"), "{wrong_chain}");

    // A raw key file others can read is refused, without echoing the key.
    let key_file = dir.path().join("key.hex");
    std::fs::write(
        &key_file,
        "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
    )
    .unwrap();
    std::fs::set_permissions(
        &key_file,
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    )
    .unwrap();
    let insecure = start(
        &["--rpc-url", &devnet.rpc_url],
        &[std::ffi::OsStr::new("--key-file"), key_file.as_os_str()],
    );
    assert_eq!(insecure.lines().count(), 1, "{insecure}");
    assert!(insecure.contains("chmod 600"), "{insecure}");
    assert!(!insecure.contains("59c6995e"), "no key material in errors");

    // The data dir belongs to the key that first started on it (devnet account 1, above):
    // another key is refused, with what to do.
    let other_key = start(
        &["--rpc-url", &devnet.rpc_url],
        &[std::ffi::OsStr::new("--dev"), std::ffi::OsStr::new("2")],
    );
    assert_eq!(other_key.lines().count(), 1, "{other_key}");
    assert!(
        other_key.contains("belongs to 0x70997970C51812dc3A010C7d01b50e0d17dc79C8")
            && other_key.contains("not to this node's key"),
        "{other_key}"
    );

    // No key given: refused (never a public devnet key by default).
    let keyless = start(&["--rpc-url", &devnet.rpc_url], &[]);
    assert_eq!(keyless.lines().count(), 1, "{keyless}");
    assert!(keyless.starts_with("error: no key configured"), "{keyless}");

    // A config file named on the command line that is not there: refused, not ignored.
    let missing = dir.path().join("no-such.toml");
    let unconfigured = start(
        &[
            "--rpc-url",
            &devnet.rpc_url,
            "--config",
            missing.to_str().unwrap(),
        ],
        &dev,
    );
    assert_eq!(unconfigured.lines().count(), 1, "{unconfigured}");
    assert!(unconfigured.contains("does not exist"), "{unconfigured}");

    // A public devnet key on a chain that is not a local devnet (here Base, 8453): refused
    // before the node talks to the chain.
    let mut mainnet = d.clone();
    mainnet.chain_id = 8453;
    let mainnet_file = dir.path().join("base.json");
    std::fs::write(&mainnet_file, serde_json::to_string(&mainnet).unwrap()).unwrap();
    let output = Command::new(farthing_bin())
        .arg("--data-dir")
        .arg(dir.path().join("base-node"))
        .args(["node", "--rpc-listen", "127.0.0.1:0", "--chain-id", "8453"])
        .args(["--rpc-url", &devnet.rpc_url, "--dev", "1"])
        .arg("--deployment")
        .arg(&mainnet_file)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let devnet_key = String::from_utf8(output.stderr).unwrap();
    assert_eq!(devnet_key.lines().count(), 1, "{devnet_key}");
    assert!(
        devnet_key.contains("is a public devnet account") && devnet_key.contains("chain 8453"),
        "{devnet_key}"
    );
}

#[test]
fn the_log_is_plain_text_when_it_is_not_a_terminal() {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let devnet = Devnet::start().unwrap();
    let deployment = dir.path().join("deployment.json");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let d = runtime.block_on(devnet.deploy()).unwrap();
    std::fs::write(&deployment, serde_json::to_string(&d).unwrap()).unwrap();
    let mut node = Command::new(farthing_bin())
        .arg("--data-dir")
        .arg(dir.path().join("node"))
        .args(["node", "--dev", "1", "--log-level", "info"])
        .args([
            "--rpc-listen",
            "127.0.0.1:0",
            "--peer-listen",
            "127.0.0.1:0",
        ])
        .args(["--rpc-url", &devnet.rpc_url])
        .arg("--deployment")
        .arg(&deployment)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let log = BufReader::new(node.stderr.take().unwrap());
    // Read until the start line (the node's stderr ends if it exits instead).
    let started = log
        .lines()
        .map_while(Result::ok)
        .find(|line| line.contains("node started"));
    let _ = node.kill();
    let _ = node.wait();
    let started = started.expect("the node's start line");
    assert!(started.contains("INFO"), "{started:?}");
    assert!(
        !started.contains('\u{1b}'),
        "no colour codes in a log that goes to a file or a pipe: {started:?}"
    );
}

#[tokio::test]
async fn two_daemons_pay_each_other_through_their_rpc_and_a_key_pays_once() {
    let net = Deployed::start().await;
    let bob = net.party("BOB");
    let bob_node = net.daemon(2, "bob", &[]);
    let link = format!("{}@{}", bob.address(), bob_node.peers);
    let alice_node = net.daemon(1, "alice", &["--connect", &link]);
    let alice_rpc = net.rpc("alice", &alice_node);
    let bob_rpc = net.rpc("bob", &bob_node);

    OpenParams {
        partner: bob.address(),
        amount: "20".into(),
        challenge_period: Some(600),
    }
    .call(&alice_rpc)
    .await
    .unwrap();
    let pay = |key: Option<&str>, amount: &str| farthing_rpc::PayParams {
        channel_id: Some(1),
        partner: None,
        amount: amount.into(),
        idempotency_key: key.map(str::to_owned),
        memo: Some("api call".into()),
    };
    // bob's node knows the channel before it is paid on it.
    eventually(PATIENCE, "bob's node to see the channel", async || {
        bob_rpc.get_channel(1).await
    })
    .await;
    // Until alice's node has dialed bob's (--connect), the payment fails with 1010 and nothing
    // is signed; then it goes through, once.
    let first = eventually(
        PATIENCE,
        "the payment, once the link is up",
        async || match pay(Some("order-1"), "0.25").call(&alice_rpc).await {
            Ok(paid) => Ok(paid),
            Err(e) => {
                let refusal = e.to_string();
                assert_eq!(call_code(e), code::PAYMENT_FAILED, "{refusal}");
                Err(refusal)
            }
        },
    )
    .await;
    assert_eq!(
        (
            first.nonce,
            first.amount.as_str(),
            first.balance_ours.as_str()
        ),
        (1, "0.25", "19.75")
    );

    // The same key again pays once: the same payment, nothing moves.
    let again = pay(Some("order-1"), "0.25").call(&alice_rpc).await.unwrap();
    assert!(again.repeated);
    assert_eq!((again.nonce, again.balance_ours.as_str()), (1, "19.75"));
    for i in 2..22 {
        pay(Some(&format!("order-{i}")), "0.01")
            .call(&alice_rpc)
            .await
            .unwrap();
    }
    let at_bob = bob_rpc.get_channel(1).await.unwrap();
    assert_eq!(
        (
            at_bob.balance_ours.as_str(),
            at_bob.balance_partner.as_str()
        ),
        ("0.45", "19.55")
    );
    let too_much = pay(None, "100").call(&alice_rpc).await.unwrap_err();
    assert_eq!(call_code(too_much), code::INSUFFICIENT_FUNDS);
    // Channel and partner both given: they must agree, or nothing is paid (a stale channel
    // id must not pay whoever its partner is).
    let stranger = net.devnet.key("DEPLOYER").address();
    let mismatch = farthing_rpc::PayParams {
        partner: Some(stranger),
        ..pay(None, "0.01")
    }
    .call(&alice_rpc)
    .await
    .unwrap_err();
    let refusal = mismatch.to_string();
    assert_eq!(call_code(mismatch), code::INVALID_PARAMS, "{refusal}");
    assert!(refusal.contains("is shared with"), "{refusal}");
    let matching = farthing_rpc::PayParams {
        partner: Some(bob.address()),
        ..pay(None, "0.01")
    }
    .call(&alice_rpc)
    .await
    .unwrap();
    assert_eq!(matching.nonce, 22, "nothing was signed for the mismatch");
    assert!(
        alice_node.stop().success() && bob_node.stop().success(),
        "both stop cleanly"
    );
}
