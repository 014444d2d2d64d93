//! Agents' credentials on real `farthing node` processes (issue 15): an agent pays under a
//! credential the operator created, within its scopes, per-payment max and day budget, and
//! not a unit more — 200 payments at once over one WebSocket at the edge of a budget spend it
//! exactly; a credential derived offline is capped by its own budget and its parent's; revoked,
//! expired or tampered credentials get HTTP 401 (1019 on a WebSocket opened before); a kill -9
//! never lets a restart forget spend; and no token ever reaches the node's log, even at trace.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use farthing_credential::{Caveat, Credential};
use farthing_e2e::{Deployed, PATIENCE, base_units, done_if, eventually};
use farthing_rpc::{
    ClientError, CreatedCredential, FarthingApiClient, HttpClient, connect_http, connect_ws,
    refused_with,
};

/// The JSON-RPC error code of a failed call.
fn code<T: std::fmt::Debug>(result: Result<T, ClientError>) -> (i32, String, String) {
    match result {
        Err(ClientError::Call(e)) => (
            e.code(),
            e.message().to_owned(),
            e.data().map(|d| d.get().to_owned()).unwrap_or_default(),
        ),
        other => panic!("expected a call error, got {other:?}"),
    }
}

/// A credential made by the operator (`admin`) with these limits.
async fn create(
    admin: &HttpClient,
    label: &str,
    scopes: &[&str],
    max: Option<&str>,
    day: Option<&str>,
    total: Option<&str>,
    expires_in: Option<u64>,
) -> CreatedCredential {
    admin
        .create_credential(
            Some(label.into()),
            Some(scopes.iter().map(|s| (*s).to_owned()).collect()),
            max.map(Into::into),
            None,
            day.map(Into::into),
            total.map(Into::into),
            None,
            None,
            None,
            None,
            expires_in,
        )
        .await
        .unwrap()
}

/// alice's and bob's nodes, linked, with channel 1 (alice → bob, 20 USDC) ready both ways.
async fn linked(
    net: &Deployed,
    alice_extra: &[&str],
) -> (farthing_e2e::Daemon, farthing_e2e::Daemon) {
    let (alice, bob, id) = net.linked_pair("20", alice_extra).await;
    assert_eq!(id, 1);
    (alice, bob)
}

async fn sent(admin: &HttpClient) -> String {
    admin.get_channel(1).await.unwrap().sent
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_pays_within_its_credential_and_not_a_unit_more() {
    let net = Deployed::start().await;
    let metrics_at = format!("127.0.0.1:{}", farthing_e2e::fixed_port());
    let (alice, _bob) = linked(&net, &["--metrics-listen", &metrics_at]).await;
    let admin = net.rpc("alice", &alice);
    let bob = net.party("BOB").address();

    let made = create(
        &admin,
        "agent",
        &["pay", "read"],
        Some("0.5"),
        Some("1"),
        None,
        None,
    )
    .await;
    assert!(made.token.starts_with("fth1_"));
    assert_eq!(
        made.credential.caveats[..3],
        ["scope=pay,read", "max<=500000", "budget.day<=1000000"]
    );
    let agent = connect_http(&alice.url, &made.token).unwrap();
    let me = agent.whoami().await.unwrap();
    assert_eq!(me.id, made.credential.id);
    assert_eq!(me.budgets[0].remaining, "1");

    // Over the per-payment max: refused, nothing signed.
    let (c, message, data) = code(agent.pay(Some(1), None, "0.6".into(), None, None).await);
    assert_eq!(c, 1018, "{message}");
    assert!(
        data.contains(r#""limit":"max""#) && message.contains("0.6") && message.contains("0.5"),
        "{message}"
    );
    // Within it, twice; the third would pass the day budget.
    for _ in 0..2 {
        agent
            .pay(Some(1), None, "0.4".into(), None, Some("agent".into()))
            .await
            .unwrap();
    }
    let (c, message, data) = code(agent.pay(Some(1), None, "0.4".into(), None, None).await);
    assert_eq!(c, 1018);
    assert!(data.contains(r#""limit":"budget.day""#), "{data}");
    assert!(message.contains("0.8 of 1 spent"), "{message}");
    let frees_at: serde_json::Value = serde_json::from_str(&data).unwrap();
    let frees_at = frees_at["frees_at"].as_u64().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(
        (now + 86_300..=now + 86_401).contains(&frees_at),
        "{frees_at} vs {now}"
    );
    assert_eq!(sent(&admin).await, "0.8");
    // Out of its scopes: open, top up, create credentials.
    for (c, _, _) in [
        code(agent.open_channel(bob, "1".into(), None).await),
        code(agent.top_up(1, "1".into()).await),
        code(agent.list_credentials().await),
    ] {
        assert_eq!(c, 1017);
    }
    // History names the credential; reads are in its scopes.
    let page = agent.list_payments(Some(1), None, None).await.unwrap();
    let mine: Vec<_> = page
        .payments
        .iter()
        .filter(|p| p.credential == made.credential.id)
        .map(|p| p.amount.as_str())
        .collect();
    assert_eq!(mine, ["0.4", "0.4"]);

    // 200 payments at once over one WebSocket, at the edge of a fresh budget of 0.15: exactly
    // 150 of 0.001 go through.
    let edge = create(&admin, "edge", &["pay"], None, Some("0.15"), None, None).await;
    let ws = Arc::new(
        connect_ws(&alice.url.replace("http", "ws"), &edge.token)
            .await
            .unwrap(),
    );
    let payers: Vec<_> = (0..200)
        .map(|_| {
            let ws = ws.clone();
            tokio::spawn(async move { ws.pay(Some(1), None, "0.001".into(), None, None).await })
        })
        .collect();
    let (mut paid, mut refused) = (0, 0);
    for payer in payers {
        match payer.await.unwrap() {
            Ok(_) => paid += 1,
            Err(e) => {
                assert_eq!(code::<()>(Err(e)).0, 1018);
                refused += 1;
            }
        }
    }
    assert_eq!((paid, refused), (150, 50));
    assert_eq!(sent(&admin).await, "0.95");
    let edge_view = admin
        .show_credential(edge.credential.id.clone(), None)
        .await
        .unwrap();
    assert_eq!(
        (
            edge_view.budgets[0].spent.as_str(),
            edge_view.budgets[0].remaining.as_str()
        ),
        ("0.15", "0")
    );

    // Derived offline, narrower: capped by its own 0.1, and by its parent's day (0.2 of 1 is
    // left). A caveat that tries to widen the parent's budget only adds a cap.
    let parent: Credential = made.token.parse().unwrap();
    let child = parent
        .attenuate(&Caveat::parse("nonce=sub1").unwrap())
        .attenuate(&Caveat::parse("budget.day<=100000").unwrap())
        .attenuate(&Caveat::parse("budget.day<=999000000").unwrap());
    let sub = connect_http(&alice.url, &child.encode()).unwrap();
    sub.pay(Some(1), None, "0.1".into(), None, None)
        .await
        .unwrap();
    let (c, message, _) = code(sub.pay(Some(1), None, "0.001".into(), None, None).await);
    assert_eq!(c, 1018);
    assert!(message.contains("0.1 of 0.1 spent"), "{message}");
    agent
        .pay(Some(1), None, "0.1".into(), None, None)
        .await
        .unwrap();
    let (_, message, _) = code(agent.pay(Some(1), None, "0.001".into(), None, None).await);
    assert!(
        message.contains("1 of 1 spent"),
        "the child's spend counts for the parent: {message}"
    );
    assert_eq!(sent(&admin).await, "1.15");

    // Revoking the parent revokes the child derived offline: 401 on a new request, 1019 on a
    // WebSocket opened before.
    let sub_ws = connect_ws(&alice.url.replace("http", "ws"), &child.encode())
        .await
        .unwrap();
    sub_ws.whoami().await.unwrap();
    let mut updates = sub_ws.subscribe_channels().await.unwrap();
    let revoked = admin
        .revoke_credential(made.credential.id.clone().unwrap())
        .await
        .unwrap();
    assert_eq!(Some(revoked.id), made.credential.id);
    for client in [&agent, &sub] {
        let err = client.whoami().await.unwrap_err();
        assert_eq!(refused_with(&err), Some(401), "{err}");
    }
    assert_eq!(code(sub_ws.info().await).0, 1019);
    // A subscription opened before the revocation ends with it.
    let ended = farthing_e2e::soon("the subscription to end", updates.next()).await;
    assert!(!matches!(ended, Some(Ok(_))), "{ended:?}");
    let listed = admin.list_credentials().await.unwrap();
    assert!(
        listed
            .iter()
            .any(|c| c.id == made.credential.id && c.revoked)
    );
    assert!(
        listed
            .iter()
            .any(|c| c.id == edge.credential.id && !c.revoked)
    );

    // A tampered token and one of another node: 401. An expired one: 401 once its time passes.
    let mut tampered = edge.token.clone().into_bytes();
    let last = tampered.len() - 1;
    tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
    let foreign = Credential::mint(&[1; 32], [1; 16], &[]).encode();
    for token in [String::from_utf8(tampered).unwrap(), foreign] {
        let err = connect_http(&alice.url, &token)
            .unwrap()
            .info()
            .await
            .unwrap_err();
        assert_eq!(refused_with(&err), Some(401), "{err}");
    }
    let brief = create(&admin, "brief", &["read"], None, None, None, Some(2)).await;
    let brief = connect_http(&alice.url, &brief.token).unwrap();
    brief.info().await.unwrap();
    eventually(PATIENCE, "the brief credential to expire", async || {
        let answer = brief.info().await;
        done_if(
            answer.as_ref().err().and_then(refused_with) == Some(401),
            format!("{answer:?}"),
        )
    })
    .await;
    // An agent's idempotency keys are its own: the operator's payment under the same key is
    // another payment, and the agent's repeat answers with its own, paying nothing.
    let keyed = create(&admin, "keys", &["pay"], None, None, None, None).await;
    let keyed = connect_http(&alice.url, &keyed.token).unwrap();
    let k1 = || Some("k1".to_owned());
    let by_admin = admin
        .pay(Some(1), None, "0.001".into(), k1(), None)
        .await
        .unwrap();
    let by_agent = keyed
        .pay(Some(1), None, "0.001".into(), k1(), None)
        .await
        .unwrap();
    assert!(!by_agent.repeated && by_agent.nonce != by_admin.nonce);
    let again = keyed
        .pay(Some(1), None, "0.001".into(), k1(), None)
        .await
        .unwrap();
    assert!(again.repeated && again.nonce == by_agent.nonce);
    let again = admin
        .pay(Some(1), None, "0.001".into(), k1(), None)
        .await
        .unwrap();
    assert!(again.repeated && again.nonce == by_admin.nonce);
    // The history shows the agent's key as it gave it, with its credential; under a credential
    // a key has 91 bytes at most (the rest of 128 is its namespace).
    let keyed_id = keyed.whoami().await.unwrap().id;
    let page = admin.list_payments(Some(1), Some(3), None).await.unwrap();
    assert!(
        page.payments
            .iter()
            .any(|p| p.key.as_deref() == Some("k1") && p.credential == keyed_id)
    );
    let long = |n: usize| Some("k".repeat(n));
    let (c, message, _) = code(
        keyed
            .pay(Some(1), None, "0.001".into(), long(92), None)
            .await,
    );
    assert_eq!(c, 1005, "{message}");
    assert!(
        message.contains("1 to 91 bytes under a credential"),
        "{message}"
    );
    keyed
        .pay(Some(1), None, "0.001".into(), long(91), None)
        .await
        .unwrap();
    // Metrics name what each budget spent (base units) and what each credential was refused.
    let text = metrics(&metrics_at).await;
    let edge_budget = &edge_view.budgets[0].counted_under;
    assert!(
        text.contains(&format!(
            "farthing_credential_spent_base_units{{credential=\"{edge_budget}\",kind=\"pay\"}} 150000\n"
        )),
        "{text}"
    );
    let edge_id = edge.credential.id.clone().unwrap();
    assert!(
        text.contains(&format!(
            "farthing_credential_refused_total{{credential=\"{edge_id}\",reason=\"budget.day\"}} 50\n"
        )),
        "{text}"
    );
    assert_eq!(
        sent(&admin).await,
        "1.153",
        "nothing was paid by a refused call"
    );
}

/// `GET /metrics` from the node's metrics server at `addr`.
async fn metrics(addr: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!("GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    response
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_never_lets_a_restart_forget_what_a_credential_spent() {
    let net = Deployed::start().await;
    let bob_peers = format!("127.0.0.1:{}", farthing_e2e::fixed_port());
    let bob = net.daemon(2, "bob", &["--peer-listen", &bob_peers]);
    let link = format!("{}@{}", net.party("BOB").address(), bob.peers);
    let mut alice = net.daemon(1, "alice", &["--connect", &link]);
    let admin = net.rpc("alice", &alice);
    admin
        .open_channel(net.party("BOB").address(), "60".into(), Some(600))
        .await
        .unwrap();
    // 30 in all, in payments of 0.001..0.007: far more than the rounds below spend.
    let made = create(
        &admin,
        "crash",
        &["pay", "read"],
        None,
        None,
        Some("30"),
        None,
    )
    .await;
    let acked = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut spent_before = 0u128;
    for round in 0..6u64 {
        net.rpc("alice", &alice)
            .wait_channel(1, Some(120))
            .await
            .unwrap();
        let ws = Arc::new(
            connect_ws(&alice.url.replace("http", "ws"), &made.token)
                .await
                .unwrap(),
        );
        let payers: Vec<_> = (0..8u64)
            .map(|p| {
                let (ws, acked) = (ws.clone(), acked.clone());
                tokio::spawn(async move {
                    for i in 0u64.. {
                        let units = (i + p + round) % 7 + 1;
                        let paid = ws.pay(Some(1), None, format!("0.00{units}"), None, None);
                        if paid.await.is_err() {
                            return;
                        }
                        acked.fetch_add(units * 1_000, std::sync::atomic::Ordering::SeqCst);
                    }
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(100 + 80 * round)).await;
        alice.kill();
        for payer in payers {
            payer.await.unwrap();
        }
        alice = net.daemon(1, "alice", &["--connect", &link]);
        let admin = net.rpc("alice", &alice);
        let view = admin
            .show_credential(made.credential.id.clone(), None)
            .await
            .unwrap();
        let spent = base_units(&view.budgets[0].spent);
        let acked = u128::from(acked.load(std::sync::atomic::Ordering::SeqCst));
        eprintln!("kill -9 round {round}: {acked} acknowledged, {spent} spent (base units)");
        assert!(
            spent >= spent_before,
            "round {round}: spend went back from {spent_before} to {spent}"
        );
        assert!(
            spent >= acked,
            "round {round}: {acked} acknowledged but {spent} counted"
        );
        // What the ledger counts is what alice's proofs carried (only this credential pays).
        let sent = base_units(&admin.get_channel(1).await.unwrap().sent);
        assert_eq!(spent, sent, "round {round}");
        spent_before = spent;
    }
    assert!(spent_before > 0, "the rounds paid something");
    // Paying on until refused ends exactly at the budget.
    let admin = net.rpc("alice", &alice);
    admin.wait_channel(1, Some(120)).await.unwrap();
    let agent = connect_http(&alice.url, &made.token).unwrap();
    for step in ["1", "0.01", "0.001"] {
        loop {
            match agent.pay(Some(1), None, step.into(), None, None).await {
                Ok(_) => {}
                Err(e) => {
                    let (c, message, _) = code::<()>(Err(e));
                    assert_eq!(c, 1018, "{message}");
                    break;
                }
            }
        }
    }
    assert_eq!(admin.get_channel(1).await.unwrap().sent, "30");
    assert_eq!(
        admin
            .show_credential(made.credential.id.clone(), None)
            .await
            .unwrap()
            .budgets[0]
            .remaining,
        "0"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_token_reaches_the_log_even_at_trace_level() {
    let net = Deployed::start().await;
    let log = net.dir.path().join("alice.log");
    let bob = net.daemon(2, "bob", &[]);
    let link = format!("{}@{}", net.party("BOB").address(), bob.peers);
    let alice = farthing_e2e::Daemon::from_process(
        farthing_devnet::NodeCommand::new(
            &farthing_e2e::farthing_bin(),
            1,
            &net.data_dir("alice"),
            &net.devnet.rpc_url,
            &net.deployment,
        )
        .args(&["--connect", &link, "--log-level", "trace"])
        .log_to(&log)
        .start()
        .unwrap(),
    );
    let admin = net.rpc("alice", &alice);
    admin
        .open_channel(net.party("BOB").address(), "5".into(), Some(600))
        .await
        .unwrap();
    admin.wait_channel(1, Some(120)).await.unwrap();
    let made = create(
        &admin,
        "secret",
        &["pay"],
        Some("0.1"),
        Some("0.2"),
        None,
        None,
    )
    .await;
    let agent = connect_http(&alice.url, &made.token).unwrap();
    agent
        .pay(Some(1), None, "0.1".into(), None, None)
        .await
        .unwrap();
    let _ = agent
        .pay(Some(1), None, "0.2".into(), None, None)
        .await
        .unwrap_err();
    let _ = agent
        .open_channel(net.party("BOB").address(), "1".into(), None)
        .await
        .unwrap_err();
    let ws = connect_ws(&alice.url.replace("http", "ws"), &made.token)
        .await
        .unwrap();
    ws.whoami().await.unwrap();
    let child: Credential = made.token.parse().unwrap();
    let child = child.attenuate(&Caveat::parse("nonce=x").unwrap()).encode();
    connect_http(&alice.url, &child)
        .unwrap()
        .whoami()
        .await
        .unwrap();
    admin
        .revoke_credential(made.credential.id.clone().unwrap())
        .await
        .unwrap();
    let _ = connect_http(&alice.url, &child)
        .unwrap()
        .whoami()
        .await
        .unwrap_err();
    let admin_token = farthing_rpc::read_token(&net.data_dir("alice")).unwrap();
    drop(alice);
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.lines().count() > 50,
        "the log was written at trace level"
    );
    assert_no_secret(&text, &[&made.token, &child, &admin_token], &log);
}

fn assert_no_secret(text: &str, secrets: &[&str], log: &Path) {
    assert!(!text.contains("fth1_"), "a credential in {}", log.display());
    for secret in secrets {
        // Any 24-character piece of it (a token split or re-encoded would still show one).
        let body = secret.trim_start_matches("fth1_");
        for start in (0..body.len().saturating_sub(24)).step_by(12) {
            let piece = &body[start..start + 24];
            assert!(
                !text.contains(piece),
                "a piece of a secret in {}",
                log.display()
            );
        }
    }
}

/// Sets the next block's base fee and mines it.
async fn base_fee(net: &Deployed, gwei: u128) {
    use alloy::providers::Provider as _;
    let chain = net.devnet.reader();
    let _: serde_json::Value = chain
        .raw_request(
            "anvil_setNextBlockBaseFeePerGas".into(),
            (alloy::primitives::U256::from(gwei * 1_000_000_000),),
        )
        .await
        .unwrap();
    let _: serde_json::Value = chain.raw_request("evm_mine".into(), ()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deposit_budget_counts_what_was_deposited_and_gives_back_what_was_never_sent() {
    let net = Deployed::start().await;
    // Above the node's fee cap nothing is sent: the open definitely moves nothing.
    base_fee(&net, 100).await;
    let config = net.dir.path().join("capped.toml");
    std::fs::write(&config, "[chain]\nmax_fee_per_gas_gwei = 2.5\n").unwrap();
    let alice = net.daemon(1, "alice", &["--config", config.to_str().unwrap()]);
    let admin = net.rpc("alice", &alice);
    let made = admin
        .create_credential(
            Some("opener".into()),
            Some(vec!["channel".into(), "read".into()]),
            None,
            None,
            None,
            None,
            None,
            Some("6".into()),
            None,
            None,
            None,
        )
        .await
        .unwrap();
    let agent = connect_http(&alice.url, &made.token).unwrap();
    let bob = net.party("BOB").address();
    let (c, message, _) = code(agent.open_channel(bob, "5".into(), Some(600)).await);
    assert_eq!(c, 1006, "{message}");
    let left = agent.whoami().await.unwrap().budgets;
    assert_eq!(
        (left[0].kind.as_str(), left[0].remaining.as_str()),
        ("deposit", "6"),
        "given back"
    );

    base_fee(&net, 1).await;
    let opened = agent
        .open_channel(bob, "5".into(), Some(600))
        .await
        .unwrap();
    assert_eq!(opened.deposit_ours, "5");
    assert_eq!(agent.whoami().await.unwrap().budgets[0].remaining, "1");
    let (c, message, data) = code(agent.top_up(opened.id, "2".into()).await);
    assert_eq!(c, 1018, "{message}");
    assert!(data.contains(r#""limit":"deposit.total""#), "{data}");
    assert!(message.contains("5 of 6 spent"), "{message}");
    agent.top_up(opened.id, "1".into()).await.unwrap();
    assert_eq!(
        admin.get_channel(opened.id).await.unwrap().deposit_ours,
        "6"
    );
    // Without the pay scope it cannot pay on the channel it opened.
    assert_eq!(
        code(
            agent
                .pay(Some(opened.id), None, "0.1".into(), None, None)
                .await
        )
        .0,
        1017
    );
}
