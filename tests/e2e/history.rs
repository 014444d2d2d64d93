//! The payment log across restarts (issue 12 item 7): two real `farthing node` processes with
//! their own RocksDB. Payments with memos and idempotency keys both ways; then a clean stop of
//! both nodes, a kill -9 of both, and kill -9s under load. After each restart
//! `farthing_listPayments` returns every entry exactly as before (seq, direction, nonce,
//! amount, memo, key, time); pages by cursor add up to the log; a subscription resumed after
//! some seq delivers exactly the rest, then live payments, with no gap and no repeat; and under
//! load the log stays gap-free and adds up to what each proof moved.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use farthing_e2e::{Daemon, Devnet, PATIENCE, Party, USDC, eventually, soon};
use farthing_rpc::{FarthingApiClient, HttpClient, OpenParams, PayParams, PaymentView};

struct Nodes {
    devnet_url: String,
    deployment: std::path::PathBuf,
    dir: std::path::PathBuf,
    bob_peers: String,
    bob_address: String,
}

impl Nodes {
    fn alice(&self) -> Daemon {
        let link = format!("{}@{}", self.bob_address, self.bob_peers);
        let dir = self.dir.join("alice");
        Daemon::start_as(
            1,
            &dir,
            &self.devnet_url,
            &self.deployment,
            &["--connect", &link],
        )
    }

    fn bob(&self) -> Daemon {
        let dir = self.dir.join("bob");
        let flags = ["--peer-listen", self.bob_peers.as_str()];
        Daemon::start_as(2, &dir, &self.devnet_url, &self.deployment, &flags)
    }

    fn token(&self, who: &str) -> String {
        farthing_rpc::read_token(&self.dir.join(who)).unwrap()
    }

    fn client(&self, who: &str, node: &Daemon) -> HttpClient {
        farthing_rpc::connect_http(&node.url, &self.token(who)).unwrap()
    }

    async fn ws(&self, who: &str, node: &Daemon) -> farthing_rpc::WsClient {
        let url = node.url.replacen("http://", "ws://", 1);
        farthing_rpc::connect_ws(&url, &self.token(who))
            .await
            .unwrap()
    }
}

fn units(text: &str) -> u128 {
    farthing_core::parse_amount(text, 6, u128::MAX).unwrap()
}

fn payment(units: u128, memo: &str, key: Option<String>) -> PayParams {
    PayParams {
        channel_id: Some(1),
        partner: None,
        amount: farthing_core::format_amount(units, 6),
        idempotency_key: key,
        memo: Some(memo.to_owned()),
    }
}

/// The whole log, page by page (`after` 0, 1,000 a page).
async fn log(client: &HttpClient) -> Vec<PaymentView> {
    let mut all = Vec::new();
    let mut after = 0;
    loop {
        let page = client
            .list_payments(None, Some(1_000), Some(after))
            .await
            .unwrap();
        all.extend(page.payments);
        after = page.next;
        if !page.more {
            return all;
        }
    }
}

/// What a test expects of an entry: (seq, direction, nonce, base units, memo, key).
type Entry = (u64, &'static str, u64, u128, Option<String>, Option<String>);

fn entries(log: &[PaymentView]) -> Vec<Entry> {
    log.iter()
        .map(|p| {
            assert!(!p.carried, "nothing carried here: {p:?}");
            let direction = if p.direction == "out" { "out" } else { "in" };
            let memo = p.memo.clone();
            (
                p.seq,
                direction,
                p.nonce,
                units(&p.amount),
                memo,
                p.key.clone(),
            )
        })
        .collect()
}

/// The log is numbered 1, 2, 3, … without a gap, and adds up to what the channel moved.
async fn check_adds_up(who: &str, client: &HttpClient) -> Vec<PaymentView> {
    let log = log(client).await;
    let seqs: Vec<u64> = log.iter().map(|p| p.seq).collect();
    assert_eq!(
        seqs,
        (1..=log.len() as u64).collect::<Vec<_>>(),
        "{who}: a gap"
    );
    let channel = client.get_channel(1).await.unwrap();
    let sum = |direction: &str| -> u128 {
        log.iter()
            .filter(|p| p.direction == direction)
            .map(|p| units(&p.amount))
            .sum()
    };
    assert_eq!(
        sum("out"),
        units(&channel.sent),
        "{who}: out entries vs sent"
    );
    assert_eq!(
        sum("in"),
        units(&channel.received),
        "{who}: in entries vs received"
    );
    log
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_payment_log_survives_restarts_and_kill_9_and_a_resumed_stream_has_no_gap() {
    let devnet = Devnet::start().unwrap();
    let d = devnet.deploy().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let deployment = dir.path().join("deployment.json");
    std::fs::write(&deployment, serde_json::to_string(&d).unwrap()).unwrap();
    let alice_party = Party::new(&devnet, &d, devnet.key("ALICE"));
    let bob_party = Party::new(&devnet, &d, devnet.key("BOB"));
    devnet
        .mint(&d, alice_party.address(), 10 * USDC)
        .await
        .unwrap();
    let nodes = Nodes {
        devnet_url: devnet.rpc_url.clone(),
        deployment,
        dir: dir.path().to_owned(),
        // Fixed: alice's node finds bob's again after his restarts.
        bob_peers: format!("127.0.0.1:{}", farthing_e2e::fixed_port()),
        bob_address: bob_party.address().to_string(),
    };
    let (mut bob, mut alice) = (nodes.bob(), nodes.alice());
    let (mut alice_rpc, mut bob_rpc) = (nodes.client("alice", &alice), nodes.client("bob", &bob));
    OpenParams {
        partner: bob_party.address(),
        amount: "10".into(),
        challenge_period: Some(600),
    }
    .call(&alice_rpc)
    .await
    .unwrap();

    // Five keyed payments with memos from alice (each retried under its key until the link is
    // up: one payment whatever the retries), two back from bob.
    let amount = |i: u64| u128::from(i) * 1_000 + u128::from(i);
    for i in 1..=5 {
        let params = payment(
            amount(i),
            &format!("invoice {i}"),
            Some(format!("order-{i}")),
        );
        let paid = eventually(PATIENCE, "a keyed payment", async || {
            params
                .clone()
                .call(&alice_rpc)
                .await
                .map_err(|e| e.to_string())
        })
        .await;
        assert_eq!((paid.nonce, units(&paid.amount)), (i, amount(i)));
    }
    for (i, (back, memo)) in [(250, "refund a"), (125, "refund b")]
        .into_iter()
        .enumerate()
    {
        let paid = payment(back, memo, None).call(&bob_rpc).await.unwrap();
        assert_eq!(paid.nonce, i as u64 + 1);
    }
    let (memo, key) = (
        |i| Some(format!("invoice {i}")),
        |i| Some(format!("order-{i}")),
    );
    let refund = |s: &str| Some(format!("refund {s}"));
    let mut alice_expected: Vec<Entry> = (1..=5)
        .map(|i| (i, "out", i, amount(i), memo(i), key(i)))
        .collect();
    alice_expected.push((6, "in", 1, 250, refund("a"), None));
    alice_expected.push((7, "in", 2, 125, refund("b"), None));
    // The payee sees memos, never the payer's keys.
    let mut bob_expected: Vec<Entry> = (1..=5)
        .map(|i| (i, "in", i, amount(i), memo(i), None))
        .collect();
    bob_expected.push((6, "out", 1, 250, refund("a"), None));
    bob_expected.push((7, "out", 2, 125, refund("b"), None));
    let alice_log = log(&alice_rpc).await;
    let bob_log = log(&bob_rpc).await;
    assert_eq!(entries(&alice_log), alice_expected);
    assert_eq!(entries(&bob_log), bob_expected);

    // A clean stop of both, a restart: the same log, entry for entry (times included).
    assert!(bob.stop().success());
    assert!(alice.stop().success());
    (bob, alice) = (nodes.bob(), nodes.alice());
    (alice_rpc, bob_rpc) = (nodes.client("alice", &alice), nodes.client("bob", &bob));
    assert_eq!(
        log(&alice_rpc).await,
        alice_log,
        "alice's log after a restart"
    );
    assert_eq!(log(&bob_rpc).await, bob_log, "bob's log after a restart");

    // Pages of 2 by cursor add up to the log; without a cursor, the newest.
    let mut paged = Vec::new();
    let mut cursors = Vec::new();
    let mut after = 0;
    loop {
        let page = bob_rpc
            .list_payments(None, Some(2), Some(after))
            .await
            .unwrap();
        paged.extend(page.payments);
        cursors.push((page.next, page.more));
        after = page.next;
        if !page.more {
            break;
        }
    }
    assert_eq!(paged, bob_log);
    assert_eq!(cursors, vec![(2, true), (4, true), (6, true), (7, false)]);
    let newest = bob_rpc.list_payments(Some(1), Some(3), None).await.unwrap();
    assert_eq!(newest.payments, bob_log[4..].to_vec());
    assert_eq!((newest.next, newest.more), (7, false));

    // A subscription resumed after seq 3 gets 4..=7 from the log, then the live payments; one
    // from now on gets exactly the live ones. Neither misses or repeats one at the seam.
    let ws = nodes.ws("bob", &bob).await;
    let mut resumed = ws.subscribe_payments(Some(3)).await.unwrap();
    let mut live = ws.subscribe_payments(None).await.unwrap();
    for i in 6..=8 {
        let params = payment(
            amount(i),
            &format!("invoice {i}"),
            Some(format!("order-{i}")),
        );
        eventually(PATIENCE, "a payment once the link is back", async || {
            params
                .clone()
                .call(&alice_rpc)
                .await
                .map_err(|e| e.to_string())
        })
        .await;
    }
    let mut streamed = Vec::new();
    for _ in 4..=10 {
        let p = soon("the resumed stream", resumed.next()).await.unwrap();
        streamed.push(p.unwrap());
    }
    let mut expected = bob_expected[3..].to_vec();
    expected.extend((6..=8).map(|i| (i + 2, "in", i, amount(i), memo(i), None)));
    assert_eq!(entries(&streamed), expected);
    let mut from_now = Vec::new();
    for _ in 8..=10 {
        let p = soon("the live stream", live.next()).await.unwrap();
        from_now.push(p.unwrap());
    }
    assert_eq!(from_now, streamed[4..].to_vec());
    let bob_log = log(&bob_rpc).await;
    assert_eq!(bob_log[3..], streamed[..], "the stream is the log");
    // Asking after a seq the log does not have yet is refused.
    let ahead = ws.subscribe_payments(Some(11)).await.err().unwrap();
    assert!(ahead.to_string().contains("ends at 10"), "{ahead}");
    // And so is a page after it (a cursor from a wiped or restored node must not wait forever).
    let page_ahead = bob_rpc
        .list_payments(None, Some(10), Some(11))
        .await
        .unwrap_err();
    assert!(
        page_ahead.to_string().contains("ends at 10"),
        "{page_ahead}"
    );
    drop(ws);

    // The CLI: a page after seq 7, then --follow streams what comes after it.
    let cli = |args: &[&str]| {
        let mut command = std::process::Command::new(farthing_e2e::farthing_bin());
        command
            .arg("--data-dir")
            .arg(dir.path().join("bob"))
            .args(["--node-url", &bob.url, "--json", "payments"])
            .args(args);
        command
    };
    let listed = cli(&["1", "--after", "7"]).output().unwrap();
    assert!(listed.status.success(), "{listed:?}");
    let page: farthing_rpc::PaymentPage = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(page.payments, bob_log[7..].to_vec());
    let mut follow = cli(&["--after", "9", "--follow"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = std::io::BufReader::new(follow.stdout.take().unwrap());
    let lines = std::thread::spawn(move || {
        use std::io::BufRead;
        stdout
            .lines()
            .take(2)
            .map(|l| serde_json::from_str::<PaymentView>(&l.unwrap()).unwrap())
            .collect::<Vec<_>>()
    });
    let params = payment(amount(9), "invoice 9", Some("order-9".into()));
    params.call(&alice_rpc).await.unwrap();
    let followed = soon("farthing payments --follow", async {
        tokio::task::spawn_blocking(move || lines.join().unwrap())
            .await
            .unwrap()
    })
    .await;
    follow.kill().unwrap();
    follow.wait().unwrap();
    assert_eq!(followed[0], bob_log[9]);
    assert_eq!(
        entries(&followed[1..]),
        vec![(11, "in", 9, amount(9), memo(9), None)]
    );
    let bob_log = log(&bob_rpc).await;

    // kill -9 of both once every payment is acknowledged: nothing lost.
    let alice_log = log(&alice_rpc).await;
    assert_eq!(alice_log.len(), 11);
    bob.kill();
    alice.kill();
    (bob, alice) = (nodes.bob(), nodes.alice());
    (alice_rpc, bob_rpc) = (nodes.client("alice", &alice), nodes.client("bob", &bob));
    assert_eq!(
        log(&alice_rpc).await,
        alice_log,
        "alice's log after kill -9"
    );
    assert_eq!(log(&bob_rpc).await, bob_log, "bob's log after kill -9");

    // kill -9 under load, of bob then of alice: every payment alice was told is made is in her
    // log with its memo; both logs stay gap-free and add up to what the proofs moved.
    let acked: Arc<Mutex<Vec<(u64, String)>>> = Arc::default();
    for round in 0..2 {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let payers: Vec<_> = (0..3)
            .map(|p| {
                let (client, acked, stop) = (alice_rpc.clone(), acked.clone(), stop.clone());
                tokio::spawn(async move {
                    for i in 0.. {
                        if stop.load(std::sync::atomic::Ordering::SeqCst) {
                            return;
                        }
                        let memo = format!("load {round}-{p}-{i}");
                        match payment(7, &memo, None).call(&client).await {
                            Ok(paid) => acked.lock().unwrap().push((paid.nonce, memo)),
                            Err(_) => return,
                        }
                    }
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(300)).await;
        if round == 0 {
            bob.kill();
            bob = nodes.bob();
        } else {
            alice.kill();
            alice = nodes.alice();
        }
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        for payer in payers {
            payer.await.unwrap();
        }
        (alice_rpc, bob_rpc) = (nodes.client("alice", &alice), nodes.client("bob", &bob));
        // Once a payment goes through again, both sides have settled what was in flight.
        eventually(PATIENCE, "a payment once the link is back", async || {
            payment(1, "back", None)
                .call(&alice_rpc)
                .await
                .map_err(|e| e.to_string())
        })
        .await;
        let alice_log = check_adds_up("alice", &alice_rpc).await;
        check_adds_up("bob", &bob_rpc).await;
        for (nonce, memo) in acked.lock().unwrap().iter() {
            let logged: Vec<_> = alice_log
                .iter()
                .filter(|p| p.memo.as_deref() == Some(memo.as_str()))
                .map(|p| (p.direction.as_str(), p.nonce, units(&p.amount)))
                .collect();
            assert_eq!(logged, vec![("out", *nonce, 7)], "{memo}");
        }
    }
    assert!(acked.lock().unwrap().len() > 10, "the load made payments");
}
