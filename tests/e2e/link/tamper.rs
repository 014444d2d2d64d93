//! A man in the middle of the encrypted peer link (a proxy on the test's loopback) flips,
//! drops, reorders, replays and injects bytes, forging a clear `Ack` for the very payment it
//! dropped: each time the link drops (at once, or after the idle Ping when the middle holds a
//! message back) and alice's node redials, no payer is resolved by anything the middle wrote,
//! and both nodes end up agreeing to the unit, on-chain too.

use farthing_e2e::tamper::{Fault, TamperProxy, Way};
use farthing_peer::encode;

use super::*;

/// A Noise message's shape (length | 40 bytes | 16-byte tag) under a key the middle made up.
fn fake_ciphertext() -> Vec<u8> {
    let mut wire = Vec::new();
    farthing_peer::CipherState::new([0x5a; 32])
        .seal(&encode(&Message::Ping { nonce: 1 }), &mut wire)
        .unwrap();
    wire
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_a_man_in_the_middle_injects_is_accepted() {
    let Pair {
        _dir,
        devnet,
        d,
        alice,
        bob,
        peer,
    } = pair().await;
    let alice_party = Party::new(&devnet, &d, devnet.key("ALICE"));
    let bob_party = Party::new(&devnet, &d, devnet.key("BOB"));
    let target = format!("{}:{}", peer.host, peer.port).parse().unwrap();
    // A clear Ack alice's node would take, were the link not encrypted: it acknowledges
    // more than any payment made yet.
    let forged_ack = encode(&Message::Ack {
        channel_id: 1,
        nonce: 1_000,
    });
    // Connection i suffers plan[i]; the ones after are left alone.
    let plan = vec![
        Fault::DropAndForge(Way::ToListener, 4, forged_ack.clone()),
        Fault::Flip(Way::ToListener, 3),
        Fault::Replay(Way::ToDialler, 2),
        Fault::Reorder(Way::ToListener, 2),
        Fault::Inject(Way::ToDialler, 2, forged_ack),
        Fault::Flip(Way::ToDialler, 3),
        // A well-formed message that is not the peer's: its tag fails.
        Fault::Inject(Way::ToListener, 3, fake_ciphertext()),
    ];
    let proxy = TamperProxy::start(target, plan.clone()).await;
    let through: PeerAddr = format!("{}@{}", bob.address(), proxy.addr).parse().unwrap();
    // Kept linked: redialled (through the middle) whenever the link drops.
    alice.keep_linked(through);
    alice
        .open_channel(bob.address(), 10 * USDC as u128, Some(600))
        .await
        .unwrap();
    eventually(PATIENCE, "bob to see the channel", async || {
        bob.channel_record(1)
    })
    .await;

    // Pay one at a time until every fault has had its connection (and a few more).
    let mut total = 0u128;
    let mut payments = 0u64;
    while proxy.accepted() <= plan.len() || payments < 20 {
        assert!(payments < 2_000, "the faults were not all used up");
        payments += 1;
        let amount = 1_000 + u128::from(payments);
        let paid = pay_when_linked(&alice, 1, amount).await;
        total += amount;
        assert_eq!(paid.nonce, payments, "one proof per payment");
        // A payment resolves only once bob's node holds it: no forged Ack resolved it.
        assert_eq!(bob.channel_record(1).unwrap().received(), total);
    }
    let (a, b) = (
        alice.channel_record(1).unwrap(),
        bob.channel_record(1).unwrap(),
    );
    assert_eq!((a.sent(), b.received()), (total, total));
    assert_eq!(b.theirs.unwrap().nonce, payments);

    // Closed cooperatively over the (clean by now) link: paid out exactly.
    let closed = alice.close_channel(1).await.unwrap();
    assert_eq!(closed.on_chain.state, farthing_core::ChainState::Settled);
    assert_eq!(
        alice_party.balance().await as u128,
        100 * USDC as u128 - total
    );
    assert_eq!(bob_party.balance().await as u128, total);
    alice.shutdown().await;
    bob.shutdown().await;
}
