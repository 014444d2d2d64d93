//! Payments in flight over a real link, their answers and streams, and how links come up (simultaneous dials, a flood of silent connections).

use super::*;

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
