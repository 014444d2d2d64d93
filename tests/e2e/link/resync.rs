//! What a dropped link, a lost frame or a caller that goes away leaves behind: the Sync on the next link settles it, and both nodes agree.

use super::*;

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
