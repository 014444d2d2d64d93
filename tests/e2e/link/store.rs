//! A store that fails, stalls or was restored from an old copy: the node signs and acknowledges nothing it did not persist.

use super::*;

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
            let admin = farthing_rpc::Principal::Admin.extensions();
            let keyed = |key: &str| {
                rpc.pay(
                    &admin,
                    Some(1),
                    None,
                    "0.001".into(),
                    Some(key.into()),
                    None,
                )
            };
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
