//! Right after an open, each node applies the channel after its own confirmations: until the
//! partner's node has, a call there says "not ready yet" (1013), not "no such channel", and
//! `farthing_waitChannel` waits until the channel takes payments both ways.

use farthing_e2e::{Deployed, PATIENCE, eventually};
use farthing_rpc::{ClientError, FarthingApiClient, OpenParams, PayParams, code};

fn refusal(e: ClientError) -> (i32, String) {
    match e {
        ClientError::Call(call) => (call.code(), call.message().to_owned()),
        other => panic!("expected a JSON-RPC error, got {other}"),
    }
}

#[tokio::test]
async fn a_new_channel_is_not_ready_until_both_nodes_confirmed_it_and_wait_channel_waits() {
    let net = Deployed::start().await;
    let (devnet, bob) = (&net.devnet, net.party("BOB"));
    // bob's node applies an event once 3 blocks hold it; anvil mines only on demand, so it
    // cannot apply the opening before the test mines.
    let bob_node = net.daemon(2, "bob", &["--confirmations", "3"]);
    let link = format!("{}@{}", bob.address(), bob_node.peers);
    let alice_node = net.daemon(1, "alice", &["--connect", &link]);
    let alice_rpc = net.rpc("alice", &alice_node);
    let bob_rpc = net.rpc("bob", &bob_node);

    let opened = OpenParams {
        partner: bob.address(),
        amount: "20".into(),
        challenge_period: Some(600),
    }
    .call(&alice_rpc)
    .await
    .unwrap();
    let id = opened.id;

    // At bob's node: on-chain, not applied yet — said so, with what waits for it.
    let (code, message) = refusal(bob_rpc.get_channel(id).await.unwrap_err());
    assert_eq!(code, code::NOT_READY, "{message}");
    assert!(
        message.contains("not applied its opening yet (it waits for 3 confirmation(s))")
            && message.contains("farthing_waitChannel"),
        "{message}"
    );
    // A channel that is on no chain is still unknown.
    let (code, _) = refusal(bob_rpc.get_channel(id + 50).await.unwrap_err());
    assert_eq!(code, code::UNKNOWN_CHANNEL);
    let (code, _) = refusal(alice_rpc.wait_channel(id + 50, Some(1)).await.unwrap_err());
    assert_eq!(code, code::UNKNOWN_CHANNEL);
    // Even asked to wait long, it is answered without waiting (the timeout guards against a
    // hang: without the up-front check it would wait 120 s).
    let answer = tokio::time::timeout(PATIENCE, alice_rpc.wait_channel(id + 50, Some(600)))
        .await
        .expect("waitChannel on an id on no chain waited");
    let (code, message) = refusal(answer.unwrap_err());
    assert_eq!(code, code::UNKNOWN_CHANNEL, "{message}");

    // At alice's node the channel is open, but bob's node cannot have confirmed it (no block
    // is mined): each wait ends at its timeout saying what is missing — no link until alice's
    // node has dialed bob's (--connect), then bob's node not having confirmed it.
    let missing = eventually(
        PATIENCE,
        "the link, then bob's confirmation missing",
        async || {
            let (code, message) = refusal(alice_rpc.wait_channel(id, Some(1)).await.unwrap_err());
            assert_eq!(code, code::NOT_READY, "{message}");
            if message.contains("no link to the partner's node") {
                return Err(message);
            }
            Ok(message)
        },
    )
    .await;
    assert!(
        missing.contains("the partner's node has not confirmed it yet"),
        "{missing}"
    );

    // A payment now would be refused by bob's node after alice's signed it: it is refused
    // first, unsigned (the payment below is nonce 1).
    let early = PayParams {
        channel_id: Some(id),
        partner: None,
        amount: "1".into(),
        idempotency_key: None,
        memo: None,
    }
    .call(&alice_rpc)
    .await
    .unwrap_err();
    let (code, message) = refusal(early);
    assert_eq!(code, code::NOT_READY, "{message}");
    assert!(message.contains("nothing was signed"), "{message}");

    // Wait on both nodes while the blocks come: both answer once bob's node applied it.
    let waits = async {
        tokio::join!(
            alice_rpc.wait_channel(id, Some(120)),
            bob_rpc.wait_channel(id, Some(120))
        )
    };
    let mine = async {
        for _ in 0..3 {
            devnet.advance_time(1).await.unwrap();
        }
    };
    let ((at_alice, at_bob), ()) = tokio::join!(waits, mine);
    let (at_alice, at_bob) = (at_alice.unwrap(), at_bob.unwrap());
    assert_eq!((at_alice.id, at_bob.id), (id, id));
    assert_eq!(
        (
            at_alice.balance_ours.as_str(),
            at_bob.balance_partner.as_str()
        ),
        ("20", "20")
    );

    // Ready means a payment is taken at once, both ways.
    let pay = |amount: &str| PayParams {
        channel_id: Some(id),
        partner: None,
        amount: amount.into(),
        idempotency_key: None,
        memo: None,
    };
    let paid = pay("1.5").call(&alice_rpc).await.unwrap();
    assert_eq!((paid.nonce, paid.balance_ours.as_str()), (1, "18.5"));
    let back = pay("0.5").call(&bob_rpc).await.unwrap();
    assert_eq!((back.nonce, back.balance_ours.as_str()), (1, "1"));
}
