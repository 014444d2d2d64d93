//! Off-chain payments between two real nodes (in-process, each with its own RocksDB) over their
//! peer link, the production path: 5,000 payments each way at once, one payer per direction,
//! so each payment is a proof of its own and every nonce is known. Refusals — more than the
//! channel holds, a replayed proof, a proof signed by another key — change nothing; the
//! receiver's restart keeps every acknowledged proof and its own nonces; then the channel
//! closes cooperatively over the link, with on-chain balances exact to the unit.

use std::time::Instant;

use alloy::primitives::U256;
use farthing_chain::messages;
use farthing_core::{ChainState, PaymentError, Role};
use farthing_daemon::{Node, PayError};
use farthing_e2e::{Devnet, PATIENCE, Party, USDC, done_if, eventually, node_config, soon};
use farthing_peer::message::{Memo, Message};
use farthing_peer::{PeerAddr, handshake};

const USDC_U: u128 = USDC as u128;

/// bob's node listening for partners on a fresh port (after a restart too: the old one may be
/// taken meanwhile); alice's node dials it.
async fn link(alice: &Node, bob: &Node) -> PeerAddr {
    let at = bob
        .listen_peers("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let peer: PeerAddr = format!("{}@{at}", bob.address()).parse().unwrap();
    alice.connect_peer(&peer).await.unwrap();
    // bob's side of the link comes up once its own handshake is through.
    eventually(PATIENCE, "bob's side of the link", async || {
        bob.is_linked(alice.address())
    })
    .await;
    peer
}

/// Send `pay` to bob's node on `conn` and return the reason of its Reject.
async fn refused(
    conn: &mut farthing_peer::FramedConnection<tokio::net::TcpStream>,
    pay: Message,
) -> String {
    let Message::Pay { nonce: sent, .. } = pay else {
        unreachable!()
    };
    conn.send(&pay).await.unwrap();
    loop {
        // A node greets every link with a Sync per shared channel.
        match soon("bob's node to answer", conn.recv()).await.unwrap() {
            Message::Sync { .. } | Message::Ping { .. } => {}
            Message::Reject {
                channel_id: 1,
                nonce,
                reason,
                ..
            } => {
                assert_eq!(nonce, sent);
                return reason.as_str().to_owned();
            }
            other => panic!("expected a Reject, got {other:?}"),
        }
    }
}

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
    let peer = link(&alice, &bob).await;

    // alice opens with 100 USDC; bob funds his side with 50.
    let opened = alice
        .open_channel(bob.address(), 100 * USDC_U, Some(600))
        .await
        .unwrap();
    eventually(PATIENCE, "bob to see the channel", async || {
        bob.channel_record(opened.id)
    })
    .await;
    bob.top_up(opened.id, 50 * USDC_U).await.unwrap();
    eventually(PATIENCE, "alice to see bob's deposit", async || {
        let deposit = alice.channel_record(1).unwrap().on_chain.deposit_b;
        done_if(deposit == 50 * USDC_U, deposit)
    })
    .await;
    assert_eq!(bob.channel_record(1).unwrap().role, Role::B);

    // 5,000 payments each way at once: alice pays 1 000 base units (0.001 USDC) each time, bob
    // 700. Each call returns once the partner acknowledged the proof as durable, and the next
    // is made only then: one payment per proof, nonces 1, 2, 3, ... in each direction.
    const EACH_WAY: u64 = 5_000;
    let started = Instant::now();
    let pay = |from: Node, amount: u128| async move {
        for n in 1..=EACH_WAY {
            let paid = from.pay(1, amount, b"", None).await.unwrap();
            assert_eq!(
                (paid.channel, paid.nonce, paid.amount, paid.repeated),
                (1, n, amount, false)
            );
        }
    };
    let (a, b) = tokio::join!(
        tokio::spawn(pay(alice.clone(), 1_000)),
        tokio::spawn(pay(bob.clone(), 700)),
    );
    a.unwrap();
    b.unwrap();
    let elapsed = started.elapsed();
    eprintln!(
        "10,000 acknowledged durable payments over the link in {:.2} s: {:.0} payments/s",
        elapsed.as_secs_f64(),
        2.0 * EACH_WAY as f64 / elapsed.as_secs_f64()
    );

    // Both nodes agree, to the unit: each holds the other's latest proof.
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
    assert_eq!(at_bob.ours.as_ref().unwrap().nonce, EACH_WAY);
    assert_eq!(at_bob.theirs, at_alice.ours);
    assert_eq!(at_alice.theirs, at_bob.ours);
    assert_eq!(at_alice.our_balance(), 100 * USDC_U - 5_000_000 + 3_500_000);
    assert_eq!(at_alice.our_balance(), at_bob.partner_balance());

    // Refusals. More than alice can pay: refused by her own node, nothing signed.
    let too_much = alice.pay(1, 1_000 * USDC_U, b"", None).await.unwrap_err();
    assert!(
        matches!(
            too_much,
            PayError::Unpayable(PaymentError::Insufficient { .. })
        ),
        "{too_much}"
    );
    assert_eq!(alice.channel_record(1).unwrap().ours, at_alice.ours);
    // A replayed proof and a proof signed by another key, sent to bob's node by a test peer
    // holding alice's key (bob's node drops alice's own link for it: the newest link wins).
    let alice_key = devnet.key("ALICE");
    let (_, mut conn) = handshake(
        tokio::net::TcpStream::connect(format!("{}:{}", peer.host, peer.port))
            .await
            .unwrap(),
        &alice_key,
        d.chain_id,
        Some(bob.address()),
        PATIENCE,
    )
    .await
    .unwrap();
    let last = at_alice.ours.clone().unwrap();
    let replay = Message::Pay {
        channel_id: 1,
        nonce: last.nonce,
        transferred: last.transferred,
        amount: 1_000,
        signature: last.signature.as_ref().try_into().unwrap(),
        payment_id: [0; 16],
        memo: Memo::empty(),
    };
    let reason = refused(&mut conn, replay).await;
    assert!(reason.contains("not newer"), "{reason}");
    let forged = messages::sign(
        &devnet.key("DEPLOYER"),
        &messages::BalanceProof {
            channelId: U256::from(1),
            nonce: last.nonce + 1,
            transferred: last.transferred + 1,
        },
        &messages::channel_domain(d.chain_id, d.channel_manager),
    );
    let forged = Message::Pay {
        channel_id: 1,
        nonce: last.nonce + 1,
        transferred: last.transferred + 1,
        amount: 1,
        signature: forged.as_ref().try_into().unwrap(),
        payment_id: [0; 16],
        memo: Memo::empty(),
    };
    let reason = refused(&mut conn, forged).await;
    assert!(reason.contains("not by the partner"), "{reason}");
    drop(conn);
    assert_eq!(
        bob.channel_record(1).unwrap().theirs,
        at_bob.theirs,
        "nothing stored from a refused proof"
    );
    // The channel still works after the refusals, once alice's node has dialed again.
    alice.connect_peer(&peer).await.unwrap();
    let next = alice.pay(1, 1, b"", None).await.unwrap();
    assert_eq!(next.nonce, EACH_WAY + 1);

    // A restart keeps every acknowledged proof, and bob's node goes on from its own latest
    // nonce (it never signs one twice).
    bob.shutdown().await;
    drop(bob);
    let bob = Node::start(node_config(&devnet, &d, dir.path(), 2))
        .await
        .unwrap();
    let reloaded = bob.channel_record(1).unwrap();
    assert_eq!(reloaded.theirs.as_ref().unwrap().nonce, EACH_WAY + 1);
    assert_eq!(reloaded.received(), 5_000_001);
    assert_eq!(reloaded.ours.as_ref().unwrap().nonce, EACH_WAY);
    assert_eq!(reloaded.sent(), 3_500_000);
    link(&alice, &bob).await;
    let back = bob.pay(1, 1, b"", None).await.unwrap();
    assert_eq!(back.nonce, EACH_WAY + 1);
    assert_eq!(alice.channel_record(1).unwrap().received(), 3_500_001);

    // Cooperative close over the link: alice's node asks, bob's node checks the payouts against
    // its own balances and co-signs, alice's node submits one transaction.
    let (at_alice, at_bob) = (
        alice.channel_record(1).unwrap(),
        bob.channel_record(1).unwrap(),
    );
    let (payout_a, payout_b) = (at_alice.our_balance(), at_bob.our_balance());
    assert_eq!(payout_a, 98_500_000, "100 - 5.000001 + 3.500001 USDC");
    assert_eq!(payout_b, 51_500_000, "50 + 5.000001 - 3.500001 USDC");
    let closed = alice.close_channel(1).await.unwrap();
    assert_eq!(
        closed.on_chain.state,
        ChainState::Settled,
        "paid out at once"
    );
    assert_eq!(alice_party.balance().await as u128, 900 * USDC_U + payout_a);
    assert_eq!(bob_party.balance().await as u128, 950 * USDC_U + payout_b);
    alice.shutdown().await;
    bob.shutdown().await;
}
