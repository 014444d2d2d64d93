//! Off-chain payments between two real nodes (in-process, each with its own RocksDB), before
//! the peer link exists: proofs are signed by one node and accepted by the other through the
//! same calls the link will make. Then both sign the final payouts and the channel closes
//! cooperatively on anvil, with on-chain balances exact to the unit.

use std::time::{Duration, Instant};

use alloy::primitives::U256;
use farthing_chain::messages::{self, CooperativeClose};
use farthing_core::{PaymentError, Rejection, Role};
use farthing_daemon::{Node, PayError};
use farthing_e2e::{Devnet, Party, USDC, eventually, node_config};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_payments_both_ways_then_a_cooperative_close_pays_exactly() {
    let devnet = Devnet::start().unwrap();
    let d = devnet.deploy().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let alice_party = Party::new(&devnet, &d, devnet.key("ALICE"));
    let bob_party = Party::new(&devnet, &d, devnet.key("BOB"));
    devnet
        .mint(&d, alice_party.address(), 1_000 * USDC)
        .await
        .unwrap();
    devnet
        .mint(&d, bob_party.address(), 1_000 * USDC)
        .await
        .unwrap();
    let alice = Node::start(node_config(&devnet, &d, dir.path(), 1))
        .await
        .unwrap();
    let bob = Node::start(node_config(&devnet, &d, dir.path(), 2))
        .await
        .unwrap();

    // alice opens with 100 USDC; bob funds his side with 50.
    let opened = alice
        .open_channel(bob.address(), 100 * USDC as u128, Some(600))
        .await
        .unwrap();
    eventually("bob to see the channel", || {
        bob.channel_record(opened.id).is_some()
    })
    .await;
    bob.top_up(opened.id, 50 * USDC as u128).await.unwrap();
    for _ in 0..100 {
        if alice.channel_record(1).unwrap().on_chain.deposit_b == 50 * USDC as u128 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(bob.channel_record(1).unwrap().role, Role::B);

    // 5,000 payments each way at once: alice pays 1 000 base units (0.001 USDC) each time,
    // bob 700; every proof is durable at the payer before it is "sent" and at the receiver
    // before it counts.
    const EACH_WAY: u64 = 5_000;
    let started = Instant::now();
    let pay = |from: Node, to: Node, amount: u128| async move {
        for _ in 0..EACH_WAY {
            let proof = from.sign_payment(1, amount).await.unwrap();
            to.accept_payment(1, proof.nonce, proof.transferred, amount, &proof.signature)
                .await
                .unwrap();
        }
    };
    let (a, b) = tokio::join!(
        tokio::spawn(pay(alice.clone(), bob.clone(), 1_000)),
        tokio::spawn(pay(bob.clone(), alice.clone(), 700)),
    );
    a.unwrap();
    b.unwrap();
    let elapsed = started.elapsed();
    eprintln!(
        "10,000 durable payments between two nodes in {:.2} s: {:.0} payments/s",
        elapsed.as_secs_f64(),
        2.0 * EACH_WAY as f64 / elapsed.as_secs_f64()
    );

    // Both nodes agree, to the unit.
    let (at_alice, at_bob) = (
        alice.channel_record(1).unwrap(),
        bob.channel_record(1).unwrap(),
    );
    assert_eq!(
        (at_alice.sent(), at_alice.received()),
        (5_000_000, 3_500_000)
    );
    assert_eq!((at_bob.sent(), at_bob.received()), (3_500_000, 5_000_000));
    assert_eq!(at_alice.ours.as_ref().unwrap().nonce, EACH_WAY);
    assert_eq!(
        at_alice.our_balance(),
        100 * USDC as u128 - 5_000_000 + 3_500_000
    );
    assert_eq!(at_alice.our_balance(), at_bob.partner_balance());

    // Refusals: more than alice can pay; a replayed proof; a proof signed by the wrong key.
    let too_much = alice
        .sign_payment(1, 1_000 * USDC as u128)
        .await
        .unwrap_err();
    assert!(
        matches!(
            too_much,
            PayError::Payment(PaymentError::Insufficient { .. })
        ),
        "{too_much}"
    );
    let last = at_alice.ours.clone().unwrap();
    let replay = bob
        .accept_payment(1, last.nonce, last.transferred, 1_000, &last.signature)
        .await
        .unwrap_err();
    assert!(
        matches!(replay, PayError::Rejected(Rejection::Nonce { .. })),
        "{replay}"
    );
    let forged = messages::sign(
        &devnet.key("DEPLOYER"),
        &messages::BalanceProof {
            channelId: U256::from(1),
            nonce: last.nonce + 1,
            transferred: last.transferred + 1,
        },
        &messages::channel_domain(d.chain_id, d.channel_manager),
    );
    let forged = bob
        .accept_payment(1, last.nonce + 1, last.transferred + 1, 1, &forged)
        .await
        .unwrap_err();
    assert!(matches!(forged, PayError::BadSignature(_)), "{forged}");
    // The channel still works after the refusals.
    let next = alice.sign_payment(1, 1).await.unwrap();
    bob.accept_payment(1, next.nonce, next.transferred, 1, &next.signature)
        .await
        .unwrap();

    // A restart keeps every acknowledged proof.
    bob.shutdown().await;
    drop(bob);
    let bob = Node::start(node_config(&devnet, &d, dir.path(), 2))
        .await
        .unwrap();
    let reloaded = bob.channel_record(1).unwrap();
    assert_eq!(reloaded.theirs.as_ref().unwrap().nonce, EACH_WAY + 1);
    assert_eq!(reloaded.received(), 5_000_001);

    // Cooperative close on the final balances both nodes computed independently.
    let (at_alice, at_bob) = (
        alice.channel_record(1).unwrap(),
        bob.channel_record(1).unwrap(),
    );
    let payout_a = at_alice.our_balance();
    let payout_b = at_bob.our_balance();
    assert_eq!(payout_a + payout_b, 150 * USDC as u128);
    let close = CooperativeClose {
        channelId: U256::from(1),
        payoutA: U256::from(payout_a),
        payoutB: U256::from(payout_b),
        withdrawnA: Default::default(),
        withdrawnB: Default::default(),
    };
    let domain = messages::channel_domain(d.chain_id, d.channel_manager);
    let sig_a = messages::sign(&devnet.key("ALICE"), &close, &domain);
    let sig_b = messages::sign(&devnet.key("BOB"), &close, &domain);
    alice
        .client()
        .cooperative_close(1, payout_a, payout_b, sig_a, sig_b)
        .await
        .unwrap();
    assert_eq!(
        alice_party.balance().await as u128,
        900 * USDC as u128 + payout_a
    );
    assert_eq!(
        bob_party.balance().await as u128,
        950 * USDC as u128 + payout_b
    );
    assert_eq!(payout_a, 98_499_999, "100 - 5 + 3.5 - 0.000001 USDC");
    alice.shutdown().await;
    bob.shutdown().await;
}
