//! Payments over the real peer link: two nodes with their own RocksDB, an authenticated TCP
//! link, many payments in flight at once in both directions, each call returning only once the
//! partner acknowledged it as durable; a forged proof sent straight over the wire by a test
//! peer is refused with the reason and the channel keeps working.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::time::{Duration, Instant};

use alloy::primitives::U256;
use farthing_chain::messages;
use farthing_core::{PaymentError, WithdrawError};
use farthing_daemon::{CosignError, Node, OpError, PayError};
use farthing_e2e::{Devnet, PATIENCE, Party, USDC, done_if, eventually, node_config, soon};
use farthing_peer::message::{Memo, Message};
use farthing_peer::{PeerAddr, handshake};
use farthing_store::Store as _;
use futures::FutureExt as _;

/// A devnet with the contracts, alice's node (funded with 100 USDC) and bob's node listening
/// for partners at `peer`. Keep `_dir` bound while the nodes run: it holds their databases.
struct Pair {
    devnet: Devnet,
    d: farthing_chain::Deployment,
    _dir: tempfile::TempDir,
    alice: Node,
    bob: Node,
    peer: PeerAddr,
}

async fn pair() -> Pair {
    let devnet = Devnet::start().unwrap();
    let d = devnet.deploy().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    devnet
        .mint(&d, devnet.key("ALICE").address(), 100 * USDC)
        .await
        .unwrap();
    let alice = Node::start(node_config(&devnet, &d, dir.path(), 1))
        .await
        .unwrap();
    let bob = Node::start(node_config(&devnet, &d, dir.path(), 2))
        .await
        .unwrap();
    let bob_addr = bob
        .listen_peers("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let peer = format!("{}@{}", bob.address(), bob_addr).parse().unwrap();
    Pair {
        devnet,
        d,
        _dir: dir,
        alice,
        bob,
        peer,
    }
}

/// [`pair`], linked, with channel 1 open from alice (10 USDC) and seen by bob's node.
async fn linked() -> Pair {
    let pair = pair().await;
    pair.alice.connect_peer(&pair.peer).await.unwrap();
    // bob's side of the link comes up once its own handshake is through.
    eventually(PATIENCE, "bob's side of the link", async || {
        pair.bob.is_linked(pair.alice.address())
    })
    .await;
    pair.alice
        .open_channel(pair.bob.address(), 10 * USDC as u128, Some(600))
        .await
        .unwrap();
    eventually(PATIENCE, "bob to see the channel", async || {
        pair.bob.channel_record(1)
    })
    .await;
    pair
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_payments_in_flight_over_the_link_then_a_cooperative_close() {
    let Pair {
        _dir,
        devnet,
        d,
        alice,
        bob,
        peer,
        ..
    } = pair().await;
    let bob_addr = format!("{}:{}", peer.host, peer.port);
    let alice_party = Party::new(&devnet, &d, devnet.key("ALICE"));
    let bob_party = Party::new(&devnet, &d, devnet.key("BOB"));
    // alice holds 1,000 USDC in all (100 from the pair), bob 1,000.
    devnet
        .mint(&d, alice_party.address(), 900 * USDC)
        .await
        .unwrap();
    devnet
        .mint(&d, bob_party.address(), 1_000 * USDC)
        .await
        .unwrap();
    alice.connect_peer(&peer).await.unwrap();
    eventually(PATIENCE, "the link at bob", async || {
        bob.is_linked(alice.address())
    })
    .await;

    alice
        .open_channel(bob.address(), 100 * USDC as u128, Some(600))
        .await
        .unwrap();
    eventually(PATIENCE, "bob to see the channel", async || {
        bob.channel_record(1)
    })
    .await;
    bob.top_up(1, 50 * USDC as u128).await.unwrap();
    eventually(PATIENCE, "alice to see bob's deposit", async || {
        let deposit = alice.channel_record(1).unwrap().on_chain.deposit_b;
        done_if(deposit == 50 * USDC as u128, deposit)
    })
    .await;

    // 8 concurrent payers each way, 625 payments each: 10,000 payments.
    const PAYERS: usize = 8;
    const EACH: usize = 625;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (from, amount) in [(alice.clone(), 1_000u128), (bob.clone(), 700u128)] {
        for _ in 0..PAYERS {
            let from = from.clone();
            tasks.push(tokio::spawn(async move {
                for _ in 0..EACH {
                    from.pay(1, amount, b"", None).await.unwrap();
                }
            }));
        }
    }
    for task in tasks {
        task.await.unwrap();
    }
    let elapsed = started.elapsed();
    eprintln!(
        "10,000 payments over the link, 16 payers: {:.2} s, {:.0} acknowledged durable payments/s",
        elapsed.as_secs_f64(),
        10_000.0 / elapsed.as_secs_f64()
    );
    let (a, b) = (
        alice.channel_record(1).unwrap(),
        bob.channel_record(1).unwrap(),
    );
    assert_eq!((a.sent(), a.received()), (5_000_000, 3_500_000));
    assert_eq!((b.sent(), b.received()), (3_500_000, 5_000_000));
    // Payments queued while a proof was being signed share the next one: at most one proof
    // per payment, and both nodes hold the same latest.
    let nonce = a.ours.as_ref().unwrap().nonce;
    assert!((1..=5_000).contains(&nonce), "{nonce}");
    assert_eq!(b.theirs.as_ref().unwrap(), a.ours.as_ref().unwrap());
    eprintln!("alice's 5,000 payments took {nonce} proofs");
    let too_much = alice
        .pay(1, 1_000 * USDC as u128, b"", None)
        .await
        .unwrap_err();
    assert!(matches!(too_much, PayError::Unpayable(_)), "{too_much}");

    // A test peer speaking the wire protocol with carol's key claims to pay on alice's channel.
    let stream = tokio::net::TcpStream::connect(bob_addr).await.unwrap();
    let carol = devnet.key("DEPLOYER");
    let (_, mut conn) = handshake(stream, &carol, d.chain_id, Some(bob.address()), PATIENCE)
        .await
        .unwrap();
    let forged = messages::sign(
        &carol,
        &messages::BalanceProof {
            channelId: U256::from(1),
            nonce: 5_001,
            transferred: 5_000_001,
        },
        &messages::channel_domain(d.chain_id, d.channel_manager),
    );
    conn.send(&Message::Pay {
        channel_id: 1,
        nonce: 5_001,
        transferred: 5_000_001,
        amount: 1,
        signature: forged.as_ref().try_into().unwrap(),
        payment_id: [0; 16],
        memo: Memo::empty(),
    })
    .await
    .unwrap();
    // carol shares no channel with bob: no Sync comes first.
    match soon("bob's node to answer carol", conn.recv())
        .await
        .unwrap()
    {
        Message::Reject {
            channel_id: 1,
            nonce: 5_001,
            reason,
            ..
        } => {
            assert!(
                reason.as_str().contains("not shared"),
                "{}",
                reason.as_str()
            );
        }
        other => panic!("expected a Reject, got {other:?}"),
    }
    assert_eq!(
        bob.channel_record(1).unwrap().received(),
        5_000_000,
        "nothing stored from the forgery"
    );
    alice.pay(1, 1, b"", None).await.unwrap();

    // Cooperative close over the link: alice's node asks, bob's node checks the payouts
    // against its own balances, co-signs, and alice's node submits one transaction.
    let (a, b) = (
        alice.channel_record(1).unwrap(),
        bob.channel_record(1).unwrap(),
    );
    let (payout_a, payout_b) = (a.our_balance(), b.our_balance());
    assert_eq!(payout_a + payout_b, 150 * USDC as u128);
    let closed = alice.close_channel(1).await.unwrap();
    assert_eq!(
        closed.on_chain.state,
        farthing_core::ChainState::Settled,
        "paid out at once"
    );
    assert!(
        alice.is_frozen(1) && bob.is_frozen(1),
        "no payment after a signed close"
    );
    assert_eq!(
        alice_party.balance().await as u128,
        900 * USDC as u128 + payout_a
    );
    assert_eq!(
        bob_party.balance().await as u128,
        950 * USDC as u128 + payout_b
    );
    assert_eq!(payout_b, 51_500_001);

    // With the partner's node gone, a close falls back to the unilateral path.
    alice
        .open_channel(bob.address(), 10 * USDC as u128, Some(600))
        .await
        .unwrap();
    eventually(PATIENCE, "bob to see channel 2", async || {
        bob.channel_record(2)
    })
    .await;
    alice.pay(2, 1_000, b"", None).await.unwrap();
    bob.shutdown().await;
    eventually(PATIENCE, "the link to drop", async || {
        !alice.is_linked(bob.address())
    })
    .await;
    let closed = alice.close_channel(2).await.unwrap();
    assert_eq!(
        closed.on_chain.state,
        farthing_core::ChainState::Closed,
        "unilateral: the challenge period runs"
    );
    alice.shutdown().await;
}

/// Payments made at the same instant share one proof (one signature at alice's node, one
/// recovery at bob's) and each keeps its own amount, memo and answer; the one the channel
/// cannot afford is refused on its own while the others go through.
///
/// One task polls all the calls (a current-thread runtime, `join_all`): every payment is queued
/// before the signer runs, so the batch is exactly these payments.
#[tokio::test]
async fn payments_queued_together_share_one_proof_and_keep_their_own_answers() {
    let Pair {
        _dir,
        devnet: _devnet,
        alice,
        bob,
        ..
    } = linked().await;
    let mut incoming = bob.subscribe_payments(None).await.unwrap();

    const CALLS: usize = 30;
    const TOO_MUCH: usize = 17;
    let amount = |i: usize| {
        if i == TOO_MUCH {
            11 * USDC as u128
        } else {
            1_000 + i as u128
        }
    };
    let memos: Vec<Vec<u8>> = (0..CALLS)
        .map(|i| format!("call {i}").into_bytes())
        .collect();
    let outcomes =
        futures::future::join_all((0..CALLS).map(|i| alice.pay(1, amount(i), &memos[i], None)))
            .await;

    let mut total = 0;
    for (i, outcome) in outcomes.into_iter().enumerate() {
        if i == TOO_MUCH {
            assert!(
                matches!(
                    outcome,
                    Err(PayError::Unpayable(PaymentError::Insufficient { .. }))
                ),
                "{outcome:?}"
            );
            continue;
        }
        let paid = outcome.unwrap();
        assert_eq!(
            (paid.nonce, paid.amount, paid.repeated),
            (1, amount(i), false)
        );
        total += amount(i);
    }
    let (a, b) = (
        alice.channel_record(1).unwrap(),
        bob.channel_record(1).unwrap(),
    );
    let proof = a.ours.unwrap();
    assert_eq!((proof.nonce, proof.transferred), (1, total));
    assert_eq!(b.theirs.unwrap(), proof, "bob holds the one proof");
    // Each payment is in bob's stream and log on its own, with its memo, in order (logged in
    // the proof's synced write, published as soon as it is durable).
    let expected: Vec<(u128, Vec<u8>)> = (0..CALLS)
        .filter(|&i| i != TOO_MUCH)
        .map(|i| (amount(i), memos[i].clone()))
        .collect();
    for (amount, memo) in &expected {
        let streamed = incoming.next().await.unwrap();
        assert_eq!((&streamed.amount, &streamed.memo), (amount, memo));
    }
    let got: Vec<(u128, Vec<u8>)> = bob
        .recent_payments(1, 100)
        .await
        .iter()
        .map(|p| {
            assert_eq!((p.nonce, p.outgoing), (1, false));
            (p.amount, p.memo.clone())
        })
        .collect();
    assert_eq!(got, expected);

    // The next payment is a proof of its own, on top of the batch.
    let next = alice.pay(1, 5, b"", None).await.unwrap();
    assert_eq!(next.nonce, 2);
    assert_eq!(bob.channel_record(1).unwrap().received(), total + 5);
    alice.shutdown().await;
    bob.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proof_that_never_arrived_is_settled_by_the_sync_when_the_link_comes_back() {
    let Pair {
        _dir,
        devnet,
        d,
        alice,
        bob,
        peer,
    } = linked().await;
    for _ in 0..5 {
        alice.pay(1, 100_000, b"", None).await.unwrap();
    }
    // alice's node dials what it takes for bob's node (bob's key, another port): its link to
    // bob is now that one (the newest link wins), which takes the next Pay frame and dies
    // without storing or acknowledging it. So alice's node holds a proof, signed and made
    // durable, that never reached bob's node.
    let fake = FakeBob {
        listener: tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
        key: devnet.key("BOB"),
        chain_id: d.chain_id,
    };
    let fake_peer: PeerAddr = format!("{}@{}", bob.address(), fake.listener.local_addr().unwrap())
        .parse()
        .unwrap();
    let (dialed, mut wire) = tokio::join!(alice.connect_peer(&fake_peer), fake.accept());
    dialed.unwrap();
    let paying = {
        let alice = alice.clone();
        tokio::spawn(async move { alice.pay(1, 250_000, b"", None).await })
    };
    assert_eq!(next_pay(&mut wire).await, (6, 750_000));
    drop(wire);
    // Nothing dials bob's node again on its own here: once its grace for a redial is over, the
    // call says the payment is signed and stored, not acknowledged.
    let err = paying.await.unwrap().unwrap_err();
    assert!(
        matches!(
            err,
            PayError::Undelivered {
                channel: 1,
                nonce: 6
            }
        ),
        "{err}"
    );
    assert_eq!(bob.channel_record(1).unwrap().received(), 500_000);

    // The link comes back: both sides send their latest proof; bob takes the missing one.
    alice.connect_peer(&peer).await.unwrap();
    eventually(PATIENCE, "bob to receive the lost payment", async || {
        let received = bob.channel_record(1).unwrap().received();
        done_if(received == 750_000, received)
    })
    .await;
    assert_eq!(bob.channel_record(1).unwrap().theirs.unwrap().nonce, 6);
    // And payments go on from there.
    let next = alice.pay(1, 1, b"", None).await.unwrap();
    assert_eq!(next.nonce, 7);
    assert_eq!(bob.channel_record(1).unwrap().received(), 750_001);
    alice.shutdown().await;
    bob.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disconnect_in_the_middle_of_a_burst_leaves_both_nodes_agreeing() {
    let Pair {
        _dir,
        devnet: _devnet,
        alice,
        bob,
        peer,
        ..
    } = pair().await;
    alice.keep_linked(peer.clone());
    alice
        .open_channel(bob.address(), 50 * USDC as u128, Some(600))
        .await
        .unwrap();
    eventually(PATIENCE, "bob to see the channel", async || {
        bob.channel_record(1)
    })
    .await;
    eventually(PATIENCE, "the link", async || {
        alice.is_linked(bob.address())
    })
    .await;

    // 8 payers keep paying until told to stop; the link is cut twice in the middle of the
    // burst, each time once the payers have made progress since the last cut (whatever the
    // machine's speed), so every cut finds them at work (not done, as a fixed delay could).
    // Payments caught by a cut wait for the keep-alive to dial again and the Sync to say bob
    // holds them; payments tried while the link is down answer LinkDown (nothing signed). The
    // Sync brings bob up to everything alice signed.
    // Each cut bumps `cuts`: a payment that saw it change was in flight during a cut.
    let cuts = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let payers: Vec<_> = (0..8)
        .map(|_| {
            let (alice, cuts, stop) = (alice.clone(), cuts.clone(), stop.clone());
            tokio::spawn(async move {
                // (acknowledged, acknowledged across a cut, signed but not acknowledged, not
                // made for want of a link)
                let (mut acked, mut resynced, mut undelivered, mut unlinked) = (0u64, 0, 0, 0);
                let seen = || cuts.load(SeqCst);
                while !stop.load(SeqCst) {
                    let before = seen();
                    match alice.pay(1, 1_000, b"", None).await {
                        Ok(_) => {
                            acked += 1;
                            // Its link was cut while it waited: the Sync on the new link
                            // settled it.
                            if seen() != before {
                                resynced += 1;
                            }
                        }
                        // Signed, not acknowledged before the redial's grace ran out (bob gets
                        // it by the Sync all the same).
                        Err(PayError::Undelivered { .. }) => undelivered += 1,
                        Err(PayError::NoLink) => {
                            unlinked += 1;
                            // Pacing, not a proof: give the keep-alive a moment to dial.
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                        Err(e) => panic!("unexpected: {e}"),
                    }
                }
                (acked, resynced, undelivered, unlinked)
            })
        })
        .collect();
    let sent = || alice.channel_record(1).unwrap().sent();
    let progress = async |what: &str| {
        let from = sent();
        eventually(PATIENCE, what, async || {
            let now = sent();
            done_if(now >= from + 200 * 1_000, now)
        })
        .await;
    };
    for cut in 1..=2 {
        progress(&format!("200 payments signed before cut {cut}")).await;
        cuts.fetch_add(1, SeqCst);
        alice.drop_links();
    }
    progress("200 payments signed after the last cut").await;
    stop.store(true, SeqCst);
    let (mut acked, mut resynced, mut undelivered, mut unlinked) = (0, 0, 0, 0);
    for payer in payers {
        let (a, r, u, l) = payer.await.unwrap();
        acked += a;
        resynced += r;
        undelivered += u;
        unlinked += l;
    }
    assert!(
        resynced + undelivered + unlinked > 0,
        "the cuts hit payments in flight (else this test proves nothing)"
    );
    eprintln!(
        "{acked} acknowledged ({resynced} of them after a reconnect, by the Sync), \
         {undelivered} signed but not acknowledged, {unlinked} not made for want of a link"
    );
    // Every payment that was signed (acknowledged or not) is in alice's latest proof, and
    // nothing else is.
    let sent = sent();
    assert_eq!(
        u128::from(acked + undelivered) * 1_000,
        sent,
        "every signed payment is counted once"
    );
    eventually(PATIENCE, "the link back", async || {
        alice.is_linked(bob.address())
    })
    .await;
    eventually(
        PATIENCE,
        "bob to hold everything alice signed",
        async || {
            let received = bob.channel_record(1).unwrap().received();
            done_if(received == sent, received)
        },
    )
    .await;
    assert_eq!(
        alice.channel_record(1).unwrap().ours.unwrap().nonce,
        bob.channel_record(1).unwrap().theirs.unwrap().nonce,
        "both nodes agree on the latest proof"
    );
    alice.shutdown().await;
    bob.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payments_stream_to_agents_and_are_listed() {
    use farthing_rpc::{FarthingApiClient, FarthingApiServer, RpcServerConfig};

    let Pair {
        _dir,
        devnet: _devnet,
        alice,
        bob,
        ..
    } = linked().await;

    // bob's agent listens on bob's node's WebSocket.
    let token = farthing_rpc::ensure_token(&bob.config().data_dir).unwrap();
    let (addr, server) = farthing_rpc::start(
        &RpcServerConfig::ephemeral(),
        &token,
        farthing_daemon::RpcHandler::new(bob.clone()).into_rpc(),
    )
    .await
    .unwrap();
    let ws = farthing_rpc::connect_ws(&format!("ws://{addr}"), &token)
        .await
        .unwrap();
    let mut incoming = ws.subscribe_payments(None).await.unwrap();

    for amount in [100_000, 250_000, 1] {
        alice.pay(1, amount, b"", None).await.unwrap();
    }
    let mut seen = Vec::new();
    for _ in 0..3 {
        let p = soon("a payment on bob's stream", incoming.next())
            .await
            .unwrap()
            .unwrap();
        seen.push((p.direction, p.nonce, p.amount));
    }
    assert_eq!(
        seen,
        vec![
            ("in".into(), 1, "0.1".into()),
            ("in".into(), 2, "0.25".into()),
            ("in".into(), 3, "0.000001".into())
        ]
    );
    let listed = ws.list_payments(Some(1), Some(2), None).await.unwrap();
    assert_eq!(
        listed.payments.iter().map(|p| p.nonce).collect::<Vec<_>>(),
        vec![2, 3],
        "the 2 most recent"
    );
    let out = alice.recent_payments(1, 10).await;
    assert_eq!(
        out.iter()
            .map(|p| (p.outgoing, p.amount))
            .collect::<Vec<_>>(),
        vec![(true, 100_000), (true, 250_000), (true, 1)]
    );

    // The same payments in both nodes' Prometheus metrics.
    async fn scrape(node: &Node) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let addr = node
            .serve_metrics("127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        stream
            .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut body = String::new();
        stream.read_to_string(&mut body).await.unwrap();
        assert!(body.starts_with("HTTP/1.1 200 OK"), "{body}");
        body
    }
    let at_alice = scrape(&alice).await;
    for line in [
        "farthing_payments_total{direction=\"out\"} 3",
        "farthing_payment_amount_base_units_total{direction=\"out\"} 350001",
        "farthing_payment_latency_seconds_count 3",
        "farthing_channels{state=\"open\"} 1",
        "farthing_peer_links 1",
        "farthing_peer_links_established_total 1",
    ] {
        assert!(
            at_alice.lines().any(|l| l == line),
            "{line} missing:\n{at_alice}"
        );
    }
    let at_bob = scrape(&bob).await;
    assert!(
        at_bob
            .lines()
            .any(|l| l == "farthing_payments_total{direction=\"in\"} 3"),
        "{at_bob}"
    );
    server.stop().unwrap();
    alice.shutdown().await;
    bob.shutdown().await;
}

/// Pay once, over a link the node's keep-alive (re)dials: with an idempotency key of its own,
/// so that trying again never pays twice. LinkDown (no link yet) signed nothing; Undelivered
/// (the payment went out on a link that was already dying, and no Sync settled it within the
/// node's grace) is answered by the repeat once the new link's Sync or Ack covers it.
async fn pay_when_linked(node: &Node, channel: u64, amount: u128) -> farthing_daemon::Paid {
    static KEYS: AtomicU64 = AtomicU64::new(0);
    let key = format!("when-linked-{}", KEYS.fetch_add(1, SeqCst));
    eventually(
        PATIENCE,
        "a payment over the (re)dialed link",
        async || match node.pay(channel, amount, b"", Some(&key)).await {
            Err(e @ (PayError::NoLink | PayError::Undelivered { .. })) => Err(e),
            paid => Ok(paid.unwrap()),
        },
    )
    .await
}

/// bob's side of the link played by the test, with bob's key: it decides what alice's node
/// hears back (or not).
struct FakeBob {
    listener: tokio::net::TcpListener,
    key: alloy::signers::local::PrivateKeySigner,
    chain_id: u64,
}

type Wire = farthing_peer::FramedConnection<tokio::net::TcpStream>;

impl FakeBob {
    /// The next link alice's node dials, past the handshake, greeted as a node greets a link:
    /// a Sync for channel 1 (nothing signed, nothing received), which tells alice's node that
    /// bob's knows the channel. A dial alice's node gave up on while it waited in the backlog
    /// (its handshake timed out) fails the handshake here: the next one is taken.
    async fn accept(&self) -> Wire {
        soon("alice's node to dial bob", async {
            loop {
                let (stream, _) = self.listener.accept().await.unwrap();
                if let Ok((_, mut wire)) =
                    handshake(stream, &self.key, self.chain_id, None, PATIENCE).await
                {
                    let hello = Message::Sync {
                        channel_id: 1,
                        sent: None,
                        received_nonce: 0,
                    };
                    if wire.send(&hello).await.is_ok() {
                        return wire;
                    }
                }
            }
        })
        .await
    }
}

/// The next message on `wire` that is not a Sync or Ping.
async fn next_pay(wire: &mut Wire) -> (u64, u128) {
    loop {
        match soon("a Pay from alice's node", wire.recv()).await.unwrap() {
            Message::Pay {
                nonce, transferred, ..
            } => return (nonce, transferred),
            Message::Sync { .. } | Message::Ping { .. } => {}
            other => panic!("expected a Pay, got {other:?}"),
        }
    }
}

/// The next message on `wire` that is not a Sync (a node greets every link with its Syncs).
async fn next_reply(wire: &mut Wire) -> Message {
    loop {
        match soon("an answer from the node", wire.recv()).await.unwrap() {
            Message::Sync { .. } => {}
            other => return other,
        }
    }
}

/// Read everything alice's node queued on `wire` so far: it answers a Ping behind every frame
/// it queued before (a link-up Sync may be queued after a Pay signed at the same moment, and
/// carry an older proof). Only Syncs may be pending.
async fn drain(wire: &mut Wire, nonce: u64) {
    wire.send(&Message::Ping { nonce }).await.unwrap();
    loop {
        match soon("alice's node's Pong", wire.recv()).await.unwrap() {
            Message::Pong { nonce: n } if n == nonce => return,
            Message::Sync { .. } => {}
            other => panic!("expected only Syncs before the Pong, got {other:?}"),
        }
    }
}

/// The next Sync alice's node sends: its latest proof's nonce.
async fn next_sync(wire: &mut Wire) -> u64 {
    loop {
        if let Message::Sync {
            sent: Some(latest), ..
        } = soon("a Sync from alice's node", wire.recv()).await.unwrap()
        {
            return latest.nonce;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_ack_is_settled_by_the_sync_and_an_idempotency_key_survives_a_restart() {
    let devnet = Devnet::start().unwrap();
    let d = devnet.deploy().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    devnet
        .mint(&d, devnet.key("ALICE").address(), 100 * USDC)
        .await
        .unwrap();
    let config = node_config(&devnet, &d, dir.path(), 1);
    let alice = Node::start(config.clone()).await.unwrap();
    let bob = FakeBob {
        listener: tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
        key: devnet.key("BOB"),
        chain_id: d.chain_id,
    };
    let bob_addr = bob.key.address();
    let peer: PeerAddr = format!("{bob_addr}@{}", bob.listener.local_addr().unwrap())
        .parse()
        .unwrap();
    alice
        .open_channel(bob_addr, 10 * USDC as u128, Some(600))
        .await
        .unwrap();
    alice.keep_linked(peer.clone());

    // 1. bob's node stores the proof but the link drops before its Ack: alice's call waits,
    //    and the Sync on the next link (bob holds nonce 1) answers it: delivered.
    let mut wire = bob.accept().await;
    eventually(PATIENCE, "alice's link", async || alice.is_linked(bob_addr)).await;
    let paying = {
        let alice = alice.clone();
        tokio::spawn(async move { alice.pay(1, 1_000, b"", None).await })
    };
    assert_eq!(next_pay(&mut wire).await, (1, 1_000));
    drop(wire);
    let mut wire = bob.accept().await;
    wire.send(&Message::Sync {
        channel_id: 1,
        sent: None,
        received_nonce: 1,
    })
    .await
    .unwrap();
    let paid = paying.await.unwrap().unwrap();
    assert_eq!((paid.nonce, paid.repeated), (1, false));

    // 2. The link drops and bob's node does not come back in time: signed and stored, not
    //    acknowledged — the call says so (not "failed": it must not be paid again).
    let paying = {
        let alice = alice.clone();
        tokio::spawn(async move { alice.pay(1, 1_000, b"", None).await })
    };
    assert_eq!(next_pay(&mut wire).await, (2, 2_000));
    drop(wire);
    let err = paying.await.unwrap().unwrap_err();
    assert!(
        matches!(
            err,
            PayError::Undelivered {
                channel: 1,
                nonce: 2
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("do not pay again"), "{err}");

    // 3. With a key: bob's node refuses the proof; the key is filed with it, so repeating
    //    the call signs nothing new: alice's node offers its latest proof again, bob takes it.
    let mut wire = bob.accept().await;
    eventually(PATIENCE, "alice's link", async || alice.is_linked(bob_addr)).await;
    let paying = {
        let alice = alice.clone();
        tokio::spawn(async move { alice.pay(1, 500, b"order 7", Some("order-7")).await })
    };
    let (nonce, transferred) = next_pay(&mut wire).await;
    assert_eq!((nonce, transferred), (3, 2_500));
    wire.send(&Message::Reject {
        channel_id: 1,
        nonce: 3,
        code: 1,
        reason: farthing_peer::message::Reason::truncated("try again later"),
    })
    .await
    .unwrap();
    let err = paying.await.unwrap().unwrap_err();
    assert!(err.to_string().contains("try again later"), "{err}");
    // Nothing older left on the wire: the next Sync is the repeat's.
    drain(&mut wire, 3).await;
    let repeating = {
        let alice = alice.clone();
        tokio::spawn(async move { alice.pay(1, 500, b"order 7", Some("order-7")).await })
    };
    assert_eq!(
        next_sync(&mut wire).await,
        3,
        "the latest proof, offered again"
    );
    wire.send(&Message::Ack {
        channel_id: 1,
        nonce: 3,
    })
    .await
    .unwrap();
    let repeat = repeating.await.unwrap().unwrap();
    assert_eq!(
        (repeat.nonce, repeat.amount, repeat.repeated),
        (3, 500, true)
    );
    assert_eq!(alice.channel_record(1).unwrap().sent(), 2_500, "paid once");
    let reused = alice.pay(1, 499, b"", Some("order-7")).await.unwrap_err();
    assert!(matches!(reused, PayError::KeyReused { .. }), "{reused}");

    // 4. The key is durable: after a restart the same call still pays nothing.
    alice.shutdown().await;
    drop(wire);
    let alice = Node::start(config).await.unwrap();
    alice.keep_linked(peer);
    let mut wire = bob.accept().await;
    let repeating = {
        let alice = alice.clone();
        tokio::spawn(async move { alice.pay(1, 500, b"", Some("order-7")).await })
    };
    assert_eq!(next_sync(&mut wire).await, 3);
    wire.send(&Message::Ack {
        channel_id: 1,
        nonce: 3,
    })
    .await
    .unwrap();
    let repeat = repeating.await.unwrap().unwrap();
    assert_eq!((repeat.nonce, repeat.repeated), (3, true));
    let channel = alice.channel_record(1).unwrap();
    assert_eq!(
        (channel.sent(), channel.ours.unwrap().nonce),
        (2_500, 3),
        "nothing signed twice"
    );
    alice.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cooperative_withdrawal_over_the_link_pays_out_while_the_channel_stays_open() {
    let Pair {
        _dir,
        devnet,
        d,
        alice,
        bob,
        peer,
    } = pair().await;
    let usdc = USDC as u128;
    let bob_party = Party::new(&devnet, &d, devnet.key("BOB"));
    let alice_party = Party::new(&devnet, &d, devnet.key("ALICE"));
    // Dialed by hand, not kept up: a redial would replace the test peer's link below.
    alice.connect_peer(&peer).await.unwrap();
    eventually(PATIENCE, "the link", async || {
        bob.is_linked(alice.address())
    })
    .await;
    alice
        .open_channel(bob.address(), 10 * usdc, Some(600))
        .await
        .unwrap();
    eventually(PATIENCE, "bob to see the channel", async || {
        bob.channel_record(1)
    })
    .await;
    alice.pay(1, 3 * usdc, b"", None).await.unwrap();

    // More than bob's node can pay: refused by bob's own node, nothing asked.
    let err = bob.withdraw(1, 3 * usdc + 1).await.unwrap_err();
    assert!(
        matches!(
            &err,
            OpError::Cosign(CosignError::Refused(WithdrawError::Insufficient { available, .. }))
                if *available == 3 * usdc
        ),
        "{err}"
    );

    // bob's node asks, alice's node checks its own books and co-signs, bob's node submits.
    let channel = bob.withdraw(1, 2 * usdc).await.unwrap();
    assert_eq!(
        (channel.on_chain.withdrawn_b, channel.withdrawal.clone()),
        (2 * usdc, None),
        "executed on-chain: no longer pending"
    );
    assert_eq!(channel.our_balance(), usdc);
    assert_eq!(bob_party.balance().await as u128, 2 * usdc);
    eventually(PATIENCE, "alice to see the withdrawal", async || {
        let c = alice.channel_record(1).unwrap();
        let seen = (c.on_chain.withdrawn_b, c.withdrawal);
        done_if(seen == (2 * usdc, None), seen)
    })
    .await;
    assert_eq!(alice.channel_record(1).unwrap().partner_balance(), usdc);

    // A test peer speaking for alice asks bob's node directly. Past alice's balance (7): refused
    // with the reason. Within it: co-signed, and held back by bob's node until it executes or
    // expires.
    let bob_addr = format!("{}:{}", peer.host, peer.port);
    let alice_key = devnet.key("ALICE");
    let stream = tokio::net::TcpStream::connect(bob_addr).await.unwrap();
    let (_, mut conn) = handshake(
        stream,
        &alice_key,
        d.chain_id,
        Some(bob.address()),
        PATIENCE,
    )
    .await
    .unwrap();
    let domain = messages::channel_domain(d.chain_id, d.channel_manager);
    let expiry = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 2_000;
    let request = |total: u128| Message::WithdrawRequest {
        channel_id: 1,
        participant: alice.address(),
        total_withdrawn: total,
        expiry,
        signature: messages::sign(
            &alice_key,
            &messages::Withdraw {
                channelId: U256::from(1),
                participant: alice.address(),
                totalWithdrawn: alloy::primitives::Uint::from(total),
                expiry,
            },
            &domain,
        )
        .as_ref()
        .try_into()
        .unwrap(),
    };
    conn.send(&request(7 * usdc + 1)).await.unwrap();
    let reply = next_reply(&mut conn).await;
    match reply {
        Message::Reject {
            channel_id: 1,
            code: 3,
            reason,
            ..
        } => assert!(
            reason
                .as_str()
                .contains("can withdraw at most 7 more (it has withdrawn 0)"),
            "{}",
            reason.as_str()
        ),
        other => panic!("expected a Reject, got {other:?}"),
    }
    conn.send(&request(usdc)).await.unwrap();
    assert!(
        matches!(
            next_reply(&mut conn).await,
            Message::WithdrawAccept { channel_id: 1, .. }
        ),
        "co-signed"
    );
    let held = bob.channel_record(1).unwrap();
    assert_eq!(
        (
            held.partner_balance(),
            held.withdrawal.as_ref().map(|w| w.total)
        ),
        (6 * usdc, Some(usdc)),
        "alice may take 1 USDC out at any moment: bob's node counts it as gone"
    );
    // One withdrawal at a time, on either side: a second is refused with when to retry, in
    // token units, on both nodes.
    conn.send(&request(2 * usdc)).await.unwrap();
    match next_reply(&mut conn).await {
        Message::Reject {
            code: 3, reason, ..
        } => assert!(
            reason
                .as_str()
                .contains("a new total withdrawn of 1) is pending")
                && reason
                    .as_str()
                    .contains(&format!("after unix time {expiry}")),
            "{}",
            reason.as_str()
        ),
        other => panic!("expected a Reject, got {other:?}"),
    }
    let err = bob.withdraw(1, usdc / 2).await.unwrap_err();
    let OpError::Cosign(CosignError::Refused(pending)) = &err else {
        panic!("expected a pending withdrawal, got {err}");
    };
    assert!(
        pending.explain(6).contains("retry once it has executed"),
        "{}",
        pending.explain(6)
    );
    drop(conn);
    // alice's node dials again (bob's node dropped its link for the test peer's).
    alice.connect_peer(&peer).await.unwrap();
    alice.pay(1, 1, b"", None).await.unwrap();
    // Never executed: once the chain passes its expiry, the amount is alice's to pay again.
    devnet.advance_time(3_000).await.unwrap();
    bob.sync().await.unwrap();
    let released = bob.channel_record(1).unwrap();
    assert_eq!(
        (released.partner_balance(), released.withdrawal),
        (7 * usdc - 1, None)
    );

    // The cooperative close uses the on-chain totals (a close signed now is void if the
    // withdrawal executes first): alice 7, bob 1, on top of bob's 2 withdrawn.
    let closed = alice.close_channel(1).await.unwrap();
    assert_eq!(closed.on_chain.state, farthing_core::ChainState::Settled);
    assert_eq!(
        alice_party.balance().await as u128,
        90 * usdc + 7 * usdc - 1
    );
    assert_eq!(bob_party.balance().await as u128, 3 * usdc + 1);
    alice.shutdown().await;
    bob.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_stale_and_replayed_proofs_on_the_wire_are_refused_with_the_reason() {
    let Pair {
        _dir,
        devnet,
        d,
        alice,
        bob,
        peer,
    } = pair().await;
    let usdc = USDC as u128;
    // Dialed by hand, not kept up: a redial would replace the test peer's link below.
    alice.connect_peer(&peer).await.unwrap();
    eventually(PATIENCE, "the link", async || {
        bob.is_linked(alice.address())
    })
    .await;
    for _ in 0..2 {
        alice
            .open_channel(bob.address(), 10 * usdc, Some(600))
            .await
            .unwrap();
    }
    eventually(PATIENCE, "bob to see both channels", async || {
        bob.channel_record(2)
    })
    .await;
    let first = alice.pay(1, 1_000, b"", None).await.unwrap();
    assert_eq!(first.nonce, 1);

    // A test peer that holds alice's key speaks to bob's node directly (bob's node drops
    // alice's own link for it: the newest link of a partner wins).
    let alice_key = devnet.key("ALICE");
    let stream = tokio::net::TcpStream::connect(format!("{}:{}", peer.host, peer.port))
        .await
        .unwrap();
    let (_, mut conn) = handshake(
        stream,
        &alice_key,
        d.chain_id,
        Some(bob.address()),
        PATIENCE,
    )
    .await
    .unwrap();
    let domain = messages::channel_domain(d.chain_id, d.channel_manager);
    let sign = |key: &alloy::signers::local::PrivateKeySigner, channel: u64, nonce, transferred| {
        <[u8; 65]>::try_from(
            messages::sign(
                key,
                &messages::BalanceProof {
                    channelId: U256::from(channel),
                    nonce,
                    transferred,
                },
                &domain,
            )
            .as_ref(),
        )
        .unwrap()
    };
    let pay = |channel_id, nonce, transferred, amount, signature| Message::Pay {
        channel_id,
        nonce,
        transferred,
        amount,
        signature,
        payment_id: [0; 16],
        memo: Memo::empty(),
    };
    let batch = |channel_id, nonce, transferred, amounts: &[u128], signature| {
        let mut payments = farthing_peer::Payments::new();
        for &amount in amounts {
            payments.push(amount, Memo::empty()).unwrap();
        }
        Message::PayBatch {
            channel_id,
            nonce,
            transferred,
            signature,
            payments,
        }
    };
    let carol = devnet.key("DEPLOYER");
    let cases = [
        // Signed by another key than the partner's.
        (
            pay(1, 2, 2_000, 1_000, sign(&carol, 1, 2, 2_000)),
            "not by the partner",
        ),
        // The proof bob already holds, again (stale nonce).
        (
            pay(1, 1, 1_000, 1_000, sign(&alice_key, 1, 1, 1_000)),
            "not newer",
        ),
        // alice's proof for channel 2, presented on channel 1: it recovers to someone else.
        (
            pay(1, 2, 2_000, 1_000, sign(&alice_key, 2, 2, 2_000)),
            "not by the partner",
        ),
        // Claims more than the proof moves.
        (
            pay(1, 2, 1_500, 1_000, sign(&alice_key, 1, 2, 1_500)),
            "the proof moves 0.0005, the payment claims 0.001",
        ),
        // More than alice has in the channel.
        (
            pay(
                1,
                2,
                11 * usdc,
                11 * usdc - 1_000,
                sign(&alice_key, 1, 2, 11 * usdc),
            ),
            "the payer can pay at most 9.999, the payment is 10.999",
        ),
        // A batch whose payments add up to more than the proof moves.
        (
            batch(1, 2, 2_000, &[600, 500], sign(&alice_key, 1, 2, 2_000)),
            "the proof moves 0.001, the payment claims 0.0011",
        ),
        // A batch with an empty payment in it (it would show up as a payment of nothing).
        (
            batch(1, 2, 2_000, &[1_000, 0], sign(&alice_key, 1, 2, 2_000)),
            "must be positive",
        ),
        // A batch signed by another key.
        (
            batch(1, 2, 2_000, &[600, 400], sign(&carol, 1, 2, 2_000)),
            "not by the partner",
        ),
    ];
    for (forged, why) in cases {
        let (Message::Pay { nonce: sent, .. } | Message::PayBatch { nonce: sent, .. }) = forged
        else {
            unreachable!()
        };
        conn.send(&forged).await.unwrap();
        let reply = next_reply(&mut conn).await;
        match reply {
            Message::Reject {
                channel_id: 1,
                nonce,
                reason,
                ..
            } => {
                assert_eq!(nonce, sent);
                // What the payer's caller reads: amounts in token units, never base units.
                assert!(reason.as_str().contains(why), "{why}: {}", reason.as_str());
                assert!(
                    !reason.as_str().contains("base units"),
                    "{}",
                    reason.as_str()
                );
            }
            other => panic!("{why}: expected a Reject, got {other:?}"),
        }
        let held = bob.channel_record(1).unwrap();
        assert_eq!(
            (held.received(), held.theirs.unwrap().nonce),
            (1_000, 1),
            "nothing stored from a refused proof ({why})"
        );
    }
    drop(conn);
    // The channel keeps working once alice's node has dialed again.
    alice.connect_peer(&peer).await.unwrap();
    let next = alice.pay(1, 1_000, b"", None).await.unwrap();
    assert_eq!(next.nonce, 2);
    assert_eq!(bob.channel_record(1).unwrap().received(), 2_000);

    // A proof that moves more than its payment claims (0.1 USDC for a claimed 999 units): bob
    // takes it, and his history records what it moved — the claimed payment and the carried
    // rest — so the incoming entries add up to what he received.
    let stream = tokio::net::TcpStream::connect(format!("{}:{}", peer.host, peer.port))
        .await
        .unwrap();
    let (_, mut conn) = handshake(
        stream,
        &alice_key,
        d.chain_id,
        Some(bob.address()),
        PATIENCE,
    )
    .await
    .unwrap();
    let transferred = 2_000 + 100_000;
    conn.send(&pay(
        1,
        3,
        transferred,
        999,
        sign(&alice_key, 1, 3, transferred),
    ))
    .await
    .unwrap();
    assert_eq!(
        next_reply(&mut conn).await,
        Message::Ack {
            channel_id: 1,
            nonce: 3
        }
    );
    assert_eq!(bob.channel_record(1).unwrap().received(), transferred);
    // History entries are recorded once durable, beside the Ack: wait for them.
    let expected = vec![
        (1, 1_000, false),
        (2, 1_000, false),
        (3, 999, false),
        (3, 99_001, true),
    ];
    let incoming = eventually(PATIENCE, "bob's history of nonce 3", async || {
        let incoming: Vec<(u64, u128, bool)> = bob
            .recent_payments(1, 10)
            .await
            .iter()
            .filter(|p| !p.outgoing)
            .map(|p| (p.nonce, p.amount, p.carried))
            .collect();
        done_if(incoming == expected, incoming)
    })
    .await;
    assert_eq!(
        incoming.iter().map(|(_, amount, _)| amount).sum::<u128>(),
        transferred,
        "the entries add up to what bob received"
    );
    alice.shutdown().await;
    bob.shutdown().await;
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_restored_from_an_old_copy_notices_and_signs_nothing() {
    let Pair {
        _dir,
        devnet,
        d,
        alice,
        bob,
        peer,
    } = pair().await;
    let config = alice.config().clone();
    alice.connect_peer(&peer).await.unwrap();
    alice
        .open_channel(bob.address(), 10 * USDC as u128, Some(600))
        .await
        .unwrap();
    eventually(PATIENCE, "bob to see the channel", async || {
        bob.channel_record(1)
    })
    .await;
    for _ in 0..5 {
        alice.pay(1, 1_000, b"", None).await.unwrap();
    }
    // A backup of alice's data directory, taken while her node is stopped.
    alice.shutdown().await;
    drop(alice);
    let backup = _dir.path().join("alice-backup");
    copy_dir(&config.data_dir, &backup);
    let alice = Node::start(config.clone()).await.unwrap();
    alice.connect_peer(&peer).await.unwrap();
    for _ in 0..5 {
        alice.pay(1, 1_000, b"", None).await.unwrap();
    }
    alice.shutdown().await;
    drop(alice);

    // The operator restores the old copy: the node believes it has signed nonce 5 only.
    std::fs::remove_dir_all(&config.data_dir).unwrap();
    copy_dir(&backup, &config.data_dir);
    let alice = Node::start(config).await.unwrap();
    assert_eq!(alice.channel_record(1).unwrap().ours.unwrap().nonce, 5);
    alice.connect_peer(&peer).await.unwrap();
    // bob's Sync says he holds our nonce 10: alice's node learns its data is stale.
    let reason = eventually(PATIENCE, "alice's node to notice", async || {
        alice.stale_reason(1)
    })
    .await;
    assert!(
        reason.contains("nonce 10") && reason.contains("latest is 5") && reason.contains("backup"),
        "{reason}"
    );
    // Signing nonce 6 again with other contents would let bob pick the proof that pays him
    // more: nothing is signed, and the channel is not closed on the stale data.
    let refused = alice.pay(1, 1_000, b"", None).await.unwrap_err();
    assert!(matches!(refused, PayError::Stale(_)), "{refused}");
    let refused = alice.close_channel(1).await.unwrap_err();
    assert!(matches!(refused, OpError::Stale(_)), "{refused}");
    assert_eq!(
        alice.channel_record(1).unwrap().ours.unwrap().nonce,
        5,
        "nothing signed"
    );
    assert!(alice.warnings().iter().any(|w| w.contains("nonce 10")));
    let held = bob.channel_record(1).unwrap();
    assert_eq!((held.received(), held.theirs.unwrap().nonce), (10_000, 10));
    let _ = (devnet, d);
    alice.shutdown().await;
    bob.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_store_stops_signing_and_acknowledging_until_it_recovers() {
    let FailingPair {
        _devnet,
        _dir,
        alice,
        bob,
        store: bob_store,
    } = failing_pair(false).await;
    let switch = bob_store.switch();
    for _ in 0..3 {
        pay_when_linked(&alice, 1, 1_000).await;
    }
    let durable_at_bob = || bob_store.inner().channel(1).unwrap().unwrap().received();
    assert_eq!(durable_at_bob(), 3_000);

    // bob's disk fails: his node must not acknowledge the next payment (it cannot store it).
    switch.fail();
    let unacked = alice.pay(1, 1_000, b"", None).await.unwrap_err();
    assert!(
        matches!(unacked, PayError::Undelivered { nonce: 4, .. }),
        "{unacked}"
    );
    assert_eq!(
        durable_at_bob(),
        3_000,
        "nothing durable, nothing acknowledged"
    );
    let health = bob.health();
    assert!(
        health.problems.iter().any(|p| p.contains("store")),
        "{:?}",
        health.problems
    );
    let refused = bob.pay(1, 1, b"", None).await.unwrap_err();
    assert!(matches!(refused, PayError::Store(_)), "{refused}");
    assert!(!bob.is_linked(alice.address()), "links are dropped");

    // The disk comes back: bob's node reloads its table from it and resumes; alice's node
    // dials again and the Sync brings bob up to everything alice signed.
    switch.recover();
    eventually(PATIENCE, "bob's node healthy again", async || {
        let problems = bob.health().problems;
        done_if(problems.is_empty(), problems)
    })
    .await;
    let paid = pay_when_linked(&alice, 1, 1_000).await;
    assert_eq!(paid.nonce, 5);
    assert_eq!(
        durable_at_bob(),
        5_000,
        "the unacknowledged 1,000 travels with nonce 5"
    );
    assert_eq!(bob.channel_record(1).unwrap().received(), 5_000);
    assert!(switch.refused() > 0);
    alice.shutdown().await;
    bob.shutdown().await;
}

/// A disk that stops answering (RELIABILITY D3, "stalls") at the receiver, then at the payer:
/// nothing is acknowledged or sent before it is durable, the node says its store is stalled
/// (and takes no new payment over its RPC), and everything completes once the disk answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_store_acknowledges_and_sends_nothing_until_it_answers() {
    for payer_stalls in [false, true] {
        let FailingPair {
            _devnet,
            _dir,
            alice,
            bob,
            store,
        } = failing_pair(payer_stalls).await;
        let (stalled_node, switch) = (if payer_stalls { &alice } else { &bob }, store.switch());
        pay_when_linked(&alice, 1, 1_000).await;
        // A keyed payment before the stall (nonce 2): its repeat is asked for below.
        let first = alice.pay(1, 1_000, b"", Some("order-1")).await.unwrap();
        assert_eq!(first.nonce, 2);
        let at_bob = || bob.channel_record(1).unwrap().received();
        assert_eq!(at_bob(), 2_000);

        switch.stall();
        let paying = {
            let alice = alice.clone();
            tokio::spawn(async move { alice.pay(1, 500, b"", None).await })
        };
        eventually(PATIENCE, "a commit held by the stalled disk", async || {
            switch.held() > 0
        })
        .await;
        eventually(PATIENCE, "the node to report the stall", async || {
            stalled_node
                .health()
                .problems
                .iter()
                .any(|p| p.contains("has not finished"))
        })
        .await;
        assert!(!paying.is_finished(), "nothing acknowledged while stalled");
        if payer_stalls {
            // Over its RPC the stalled node takes no new payment, but a repeat of a key
            // already paid learns the earlier outcome (it signs nothing).
            use farthing_rpc::FarthingApiServer as _;
            let rpc = farthing_daemon::RpcHandler::new(alice.clone());
            let keyed = |key: &str| rpc.pay(Some(1), None, "0.001".into(), Some(key.into()), None);
            let repeat = keyed("order-1").await.unwrap();
            assert_eq!((repeat.nonce, repeat.repeated), (2, true));
            let refused = keyed("order-2").await.unwrap_err();
            assert!(refused.to_string().contains("degraded"), "{refused}");
        }
        let durable_bob = if payer_stalls {
            bob.channel_record(1).unwrap().received()
        } else {
            store.inner().channel(1).unwrap().unwrap().received()
        };
        assert_eq!(durable_bob, 2_000, "the proof has not reached bob's disk");
        if payer_stalls {
            assert_eq!(
                store.inner().channel(1).unwrap().unwrap().sent(),
                2_000,
                "alice's disk holds only the earlier proofs"
            );
        }

        switch.release();
        let paid = paying.await.unwrap().unwrap();
        assert_eq!((paid.nonce, paid.amount), (3, 500));
        assert_eq!(at_bob(), 2_500);
        eventually(PATIENCE, "the node healthy again", async || {
            let problems = stalled_node.health().problems;
            done_if(problems.is_empty(), problems)
        })
        .await;
        alice.shutdown().await;
        bob.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payer_whose_store_fails_sends_nothing_it_did_not_persist() {
    let FailingPair {
        _devnet,
        _dir,
        alice,
        bob,
        store: alice_store,
    } = failing_pair(true).await;
    let switch = alice_store.switch();
    pay_when_linked(&alice, 1, 1_000).await;

    // alice's disk fails between signing and sending: the proof is never sent (it is not
    // durable), the call says the store failed, and the node refuses further payments.
    switch.fail();
    let failed = alice.pay(1, 2_000, b"", None).await.unwrap_err();
    assert!(matches!(failed, PayError::Store(_)), "{failed}");
    let refused = alice.pay(1, 2_000, b"", None).await.unwrap_err();
    assert!(matches!(refused, PayError::Store(_)), "{refused}");
    assert_eq!(
        bob.channel_record(1).unwrap().received(),
        1_000,
        "nothing reached bob"
    );

    // Recovered: alice's node resumes from what is on its disk (nonce 1) and signs nonce 2
    // afresh — safe, the first nonce 2 never left the process.
    switch.recover();
    eventually(PATIENCE, "alice's node healthy again", async || {
        let problems = alice.health().problems;
        done_if(problems.is_empty(), problems)
    })
    .await;
    let paid = pay_when_linked(&alice, 1, 500).await;
    assert_eq!(paid.nonce, 2);
    let (a, b) = (
        alice_store.inner().channel(1).unwrap().unwrap(),
        bob.channel_record(1).unwrap(),
    );
    assert_eq!((a.sent(), b.received()), (1_500, 1_500));
    alice.shutdown().await;
    bob.shutdown().await;
}

/// alice's node and bob's, one of them (alice's if `alice_fails`) on a RocksDB store the test
/// can make fail; alice keeps a link to bob; channel 1 opened by alice with 10 USDC and seen
/// by bob. Keep `_devnet` and `_dir` bound while the nodes run.
struct FailingPair {
    _devnet: Devnet,
    _dir: tempfile::TempDir,
    alice: Node,
    bob: Node,
    store: Arc<farthing_store::testing::FailingStore<farthing_store::RocksStore>>,
}

async fn failing_pair(alice_fails: bool) -> FailingPair {
    let devnet = Devnet::start().unwrap();
    let d = devnet.deploy().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    devnet
        .mint(&d, devnet.key("ALICE").address(), 100 * USDC)
        .await
        .unwrap();
    let failing = if alice_fails { 1 } else { 2 };
    let config = node_config(&devnet, &d, dir.path(), failing);
    std::fs::create_dir_all(&config.data_dir).unwrap();
    let store = Arc::new(farthing_store::testing::FailingStore::new(
        farthing_store::RocksStore::open(config.data_dir.join("db")).unwrap(),
    ));
    let on_failing = Node::start_with_store(config, store.clone()).await.unwrap();
    let other = Node::start(node_config(&devnet, &d, dir.path(), 3 - failing))
        .await
        .unwrap();
    let (alice, bob) = if alice_fails {
        (on_failing, other)
    } else {
        (other, on_failing)
    };
    let at = bob
        .listen_peers("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    alice.keep_linked(format!("{}@{at}", bob.address()).parse().unwrap());
    alice
        .open_channel(bob.address(), 10 * USDC as u128, Some(600))
        .await
        .unwrap();
    eventually(PATIENCE, "bob to see the channel", async || {
        bob.channel_record(1)
    })
    .await;
    FailingPair {
        _devnet: devnet,
        _dir: dir,
        alice,
        bob,
        store,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ack_from_someone_who_is_not_the_partner_acknowledges_nothing() {
    let devnet = Devnet::start().unwrap();
    let d = devnet.deploy().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    devnet
        .mint(&d, devnet.key("ALICE").address(), 100 * USDC)
        .await
        .unwrap();
    let alice = Node::start(node_config(&devnet, &d, dir.path(), 1))
        .await
        .unwrap();
    let at_alice = alice
        .listen_peers("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let bob = FakeBob {
        listener: tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
        key: devnet.key("BOB"),
        chain_id: d.chain_id,
    };
    let bob_addr = bob.key.address();
    alice
        .open_channel(bob_addr, 10 * USDC as u128, Some(600))
        .await
        .unwrap();
    let peer: PeerAddr = format!("{bob_addr}@{}", bob.listener.local_addr().unwrap())
        .parse()
        .unwrap();
    let (dialed, mut wire) = tokio::join!(alice.connect_peer(&peer), bob.accept());
    dialed.unwrap();

    // alice pays; bob's side stays silent: the payment waits for its acknowledgement.
    let mut paying = Box::pin(alice.pay(1, 1_000, b"", None));
    let sent = tokio::select! {
        paid = &mut paying => panic!("answered before any Ack: {paid:?}"),
        sent = next_pay(&mut wire) => sent,
    };
    assert_eq!(sent, (1, 1_000));

    // carol, a stranger with a valid handshake, claims bob's channel is acknowledged to the end,
    // then pings. alice's node answers one connection's frames in order: its Pong says it has
    // read the Ack.
    let stream = tokio::net::TcpStream::connect(at_alice).await.unwrap();
    let (_, mut carol) = handshake(
        stream,
        &devnet.key("DEPLOYER"),
        d.chain_id,
        Some(alice.address()),
        PATIENCE,
    )
    .await
    .unwrap();
    carol
        .send(&Message::Ack {
            channel_id: 1,
            nonce: u64::MAX,
        })
        .await
        .unwrap();
    carol.send(&Message::Ping { nonce: 7 }).await.unwrap();
    assert_eq!(next_reply(&mut carol).await, Message::Pong { nonce: 7 });
    // Had the Ack counted, the payment's answer would be ready now: one poll would finish it.
    assert!(
        paying.as_mut().now_or_never().is_none(),
        "acknowledged by a stranger's Ack"
    );
    assert_eq!(
        alice.stale_reason(1),
        None,
        "a stranger's word makes nothing stale"
    );
    // bob's real Ack settles it.
    wire.send(&Message::Ack {
        channel_id: 1,
        nonce: 1,
    })
    .await
    .unwrap();
    let paid = soon("the payment's answer after bob's Ack", paying)
        .await
        .unwrap();
    assert_eq!(paid.nonce, 1);
    alice.shutdown().await;
}

/// A caller that goes away after its payment was queued (an HTTP client gone, a timeout): an
/// unkeyed payment not yet signed is not made; a keyed one is made and its key filed, so the
/// retry with the same key pays nothing and answers with the first payment (regression: the
/// key was filed by the caller after the signer answered, so a retry paid twice).
#[tokio::test]
async fn a_caller_that_goes_away_pays_once_or_not_at_all() {
    let Pair {
        _dir,
        devnet: _devnet,
        alice,
        bob,
        ..
    } = linked().await;
    // Poll once (queued; on this one-thread runtime the signer has not run yet), then drop.
    let poll_once_then_drop = |call: std::pin::Pin<Box<dyn Future<Output = _> + '_>>| {
        let mut call = call;
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        assert!(call.as_mut().poll(&mut cx).is_pending());
    };

    poll_once_then_drop(Box::pin(alice.pay(1, 700, b"gone", None)));
    let next = alice.pay(1, 1, b"", None).await.unwrap();
    assert_eq!(
        (next.nonce, next.amount),
        (1, 1),
        "the dropped payment was not made"
    );
    assert_eq!(alice.channel_record(1).unwrap().sent(), 1);

    poll_once_then_drop(Box::pin(alice.pay(1, 1_000, b"first", Some("order-1"))));
    let again = alice
        .pay(1, 1_000, b"retry", Some("order-1"))
        .await
        .unwrap();
    assert_eq!(
        (again.nonce, again.amount, again.repeated),
        (2, 1_000, true)
    );
    assert_eq!(alice.channel_record(1).unwrap().sent(), 1_001, "paid once");
    eventually(PATIENCE, "bob to hold it", async || {
        let received = bob.channel_record(1).unwrap().received();
        done_if(received == 1_001, received)
    })
    .await;
    alice.shutdown().await;
    bob.shutdown().await;
}

/// A co-signed cooperative close has no expiry: once bob's node signed one, it takes no payment
/// on the channel any more — also after a restart (the mark is stored before the signature
/// leaves). Otherwise alice could be paid again and undo it with the signed close.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_co_signed_a_close_takes_no_payment_after_a_restart() {
    let Pair {
        _dir,
        devnet,
        d,
        alice,
        bob,
        peer,
    } = pair().await;
    alice
        .open_channel(bob.address(), 10 * USDC as u128, Some(600))
        .await
        .unwrap();
    eventually(PATIENCE, "bob to see the channel", async || {
        bob.channel_record(1)
    })
    .await;
    alice.shutdown().await;

    // alice's side is played by the test, with alice's key.
    let alice_key = devnet.key("ALICE");
    let bob_address = bob.address();
    let dial = async |at: &str| {
        let stream = tokio::net::TcpStream::connect(at).await.unwrap();
        let (_, conn) = handshake(stream, &alice_key, d.chain_id, Some(bob_address), PATIENCE)
            .await
            .unwrap();
        conn
    };
    let domain = messages::channel_domain(d.chain_id, d.channel_manager);
    let close = messages::CooperativeClose {
        channelId: U256::from(1),
        payoutA: U256::from(10 * USDC),
        payoutB: U256::ZERO,
        withdrawnA: alloy::primitives::Uint::ZERO,
        withdrawnB: alloy::primitives::Uint::ZERO,
    };
    let request = Message::CloseRequest {
        channel_id: 1,
        payout_a: 10 * USDC as u128,
        payout_b: 0,
        withdrawn_a: 0,
        withdrawn_b: 0,
        signature: messages::sign(&alice_key, &close, &domain)
            .as_ref()
            .try_into()
            .unwrap(),
    };
    let mut conn = dial(&format!("{}:{}", peer.host, peer.port)).await;
    conn.send(&request).await.unwrap();
    let reply = next_reply(&mut conn).await;
    assert!(
        matches!(reply, Message::CloseAccept { channel_id: 1, .. }),
        "expected bob's co-signature, got {reply:?}"
    );
    assert!(bob.is_frozen(1));
    drop(conn);

    // bob's node restarts: the channel is still closing, and a payment to it is refused.
    let config = bob.config().clone();
    bob.shutdown().await;
    let bob = Node::start(config).await.unwrap();
    assert!(bob.is_frozen(1), "frozen across the restart");
    // On a new port: the old one may have been taken while bob's node was down.
    let at = bob
        .listen_peers("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let mut conn = dial(&at.to_string()).await;
    let proof = messages::sign(
        &alice_key,
        &messages::BalanceProof {
            channelId: U256::from(1),
            nonce: 1,
            transferred: 1_000,
        },
        &domain,
    );
    conn.send(&Message::Pay {
        channel_id: 1,
        nonce: 1,
        transferred: 1_000,
        amount: 1_000,
        signature: proof.as_ref().try_into().unwrap(),
        payment_id: [0; 16],
        memo: Memo::empty(),
    })
    .await
    .unwrap();
    match next_reply(&mut conn).await {
        Message::Reject {
            channel_id: 1,
            nonce: 1,
            reason,
            ..
        } => assert!(reason.as_str().contains("closing"), "{}", reason.as_str()),
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(bob.channel_record(1).unwrap().received(), 0);
    bob.shutdown().await;
}

/// Two nodes that dial each other at the same moment (each operator configured its partner)
/// settle on one link, the one the lower address dialed, instead of each dropping the link the
/// other kept; a payment then goes through. Ten rounds, to meet both orders of arrival.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_that_dial_each_other_at_once_keep_one_link() {
    let Pair {
        _dir,
        devnet: _devnet,
        alice,
        bob,
        peer,
        ..
    } = linked().await;
    let alice_at = alice
        .listen_peers("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let alice_peer: PeerAddr = format!("{}@{alice_at}", alice.address()).parse().unwrap();
    let lower = alice.address().min(bob.address());
    // Every link that passed the handshake is counted once at a node: kept (established) or
    // closed at once for the partner's simultaneous dial (declined).
    let handled = |node: &Node| node.links_established() + node.links_declined();
    // linked(): alice's node dialed bob's once.
    assert_eq!((handled(&alice), handled(&bob)), (1, 1));
    for round in 1..=10u64 {
        alice.drop_links();
        bob.drop_links();
        eventually(PATIENCE, "both links gone", async || {
            let counts = (alice.link_count(), bob.link_count());
            done_if(counts == (0, 0), counts)
        })
        .await;
        let (a, b) = tokio::join!(alice.connect_peer(&peer), bob.connect_peer(&alice_peer));
        a.unwrap();
        b.unwrap();
        // Each node handles two links this round, its own dial and the partner's (which may
        // still be in its handshake when both dials have returned). Once both nodes have
        // handled both, nothing else comes: each must hold the link the lower address dialed.
        let what = format!("round {round}: both dials handled at both nodes");
        eventually(PATIENCE, &what, async || {
            let counts = (handled(&alice), handled(&bob));
            done_if(counts == (1 + 2 * round, 1 + 2 * round), counts)
        })
        .await;
        assert_eq!(
            (
                alice.link_dialer(bob.address()),
                bob.link_dialer(alice.address())
            ),
            (Some(lower), Some(lower)),
            "round {round}: both nodes keep the link the lower address dialed"
        );
        let paid = alice.pay(1, 1, b"", None).await.unwrap();
        assert_eq!(paid.nonce, round, "round {round}");
    }
    assert_eq!(bob.channel_record(1).unwrap().received(), 10);
    alice.shutdown().await;
    bob.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_silent_connections_is_capped_and_leaves_room_for_the_partner() {
    use tokio::io::AsyncReadExt as _;
    let Pair {
        _dir,
        devnet: _devnet,
        alice,
        bob,
        peer,
        ..
    } = pair().await;
    let port: std::net::SocketAddr = format!("{}:{}", peer.host, peer.port).parse().unwrap();
    // 100 connections from another loopback address that never say a word. bob's node starts
    // a handshake (its Hello arrives) for the first 8 — the cap per source address — and
    // closes the others at once (a read sees the end of the stream). The 8 hold their slots
    // for the 10 s handshake timeout, far longer than these 100 connects take.
    let mut flood = Vec::new();
    let (mut greeted, mut closed) = (0, 0);
    for _ in 0..100 {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.2:0".parse().unwrap()).unwrap();
        let mut stream = soon("a connection", socket.connect(port)).await.unwrap();
        let mut first = [0u8; 1];
        match soon("bob's node to greet or close", stream.read(&mut first)).await {
            Ok(0) | Err(_) => closed += 1,
            Ok(_) => greeted += 1,
        }
        flood.push(stream);
    }
    assert_eq!(
        (greeted, closed),
        (8, 92),
        "8 handshakes from one address at once"
    );
    // The partner, from another address, gets its link while the flood holds its slots.
    alice.connect_peer(&peer).await.unwrap();
    eventually(PATIENCE, "bob's side of alice's link", async || {
        bob.is_linked(alice.address())
    })
    .await;
    assert!(bob.health().problems.is_empty(), "{:?}", bob.health());
    drop(flood);
    alice.shutdown().await;
    bob.shutdown().await;
}
