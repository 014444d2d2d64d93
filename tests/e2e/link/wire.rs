//! Frames a test peer sends straight over the wire: forged, stale and replayed proofs, and Acks from someone who is not the partner, refused with the reason.

use super::*;

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
