//! Co-signed operations over the link: a withdrawal while the channel stays open, a cooperative close that holds across a restart.

use super::*;

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
