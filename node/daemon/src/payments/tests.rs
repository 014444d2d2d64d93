//! The payments component alone: a real signer, the in-memory store behind the real group
//! committer, and a link whose frames the test reads — no chain, no partner node.

use std::sync::Arc;

use alloy::primitives::Address;
use alloy::signers::local::PrivateKeySigner;
use farthing_chain::NodeKey;
use farthing_chain::messages::channel_domain;
use farthing_core::{ChainEvent, Channel, apply};
use farthing_peer::message::Message;
use farthing_store::{GroupCommit, MemStore, Store};

use crate::health::StoreHealth;
use crate::link::{Link, Links};
use crate::observe::Metrics;
use crate::payments::idempotency::Keys;
use crate::payments::{Paid, PayError, Payments};
use crate::signer::Signer;
use crate::table::ChannelTable;
use crate::tasks::Tasks;

const PARTNER: Address = Address::repeat_byte(0xb);

pub(super) struct Fixture {
    pub(super) payments: Arc<Payments>,
    pub(super) store: Arc<MemStore>,
    /// What the node sends the partner.
    pub(super) frames: crate::link::queue::Receiver,
}

fn channel(us: Address, deposit: u128) -> Channel {
    let opened = ChainEvent::Opened {
        id: 1,
        a: us,
        b: PARTNER,
        token: Address::repeat_byte(7),
        deposit_a: deposit,
        challenge_period: 60,
    };
    apply(None, &opened, us, 1).expect("our channel")
}

pub(super) fn fixture(deposit: u128) -> Fixture {
    let store = Arc::new(MemStore::default());
    let key = Arc::new(NodeKey::new(PrivateKeySigner::random()));
    let signer = Arc::new(Signer::new(
        key,
        channel_domain(31337, Address::repeat_byte(0xcc)),
    ));
    let table = Arc::new(ChannelTable::new(
        vec![channel(signer.address(), deposit)],
        Vec::new(),
        GroupCommit::new(store.clone()),
    ));
    let links = Arc::new(Links::default());
    let (outgoing, frames) = crate::link::queue::queue();
    let link = Arc::new(Link::new(outgoing, PARTNER));
    // The partner's node knows the channel (its Sync arrived when the link came up).
    link.partner_knows(1);
    assert!(links.add(PARTNER, &link));
    let payments = Arc::new(Payments {
        sales: Arc::new(crate::payments::sales::Sales::new(
            store.clone(),
            table.clone(),
        )),
        table,
        signer,
        links,
        store_health: Arc::new(StoreHealth::default()),
        store: store.clone(),
        metrics: Arc::new(Metrics::default()),
        tasks: Tasks::default(),
        deliveries: Default::default(),
        outboxes: Default::default(),
        keys: Keys::new(store.clone()),
        decimals: 6,
    });
    Fixture {
        payments,
        store,
        frames,
    }
}

/// The next frame, once the write it waits for is durable (as the link's writer sends it).
pub(super) async fn sent(frames: &mut crate::link::queue::Receiver) -> Message {
    let outgoing = frames.recv().await.expect("a frame");
    if let Some(ready) = outgoing.ready {
        ready.await.expect("durable");
    }
    outgoing.message
}

#[tokio::test]
async fn a_payment_leaves_durable_signed_and_returns_on_the_partners_ack() {
    let Fixture {
        payments,
        store,
        mut frames,
    } = fixture(100);
    let paying = tokio::spawn({
        let payments = payments.clone();
        async move { payments.pay(1, 30, b"coffee", Some("k1"), None).await }
    });
    let Message::Pay {
        nonce,
        transferred,
        amount,
        signature,
        memo,
        ..
    } = sent(&mut frames).await
    else {
        panic!("a Pay frame");
    };
    assert_eq!((nonce, transferred, amount), (1, 30, 30));
    assert_eq!(memo.as_bytes(), b"coffee");
    let us = payments.signer.address();
    assert_eq!(
        payments.signer.verify_proof(1, (1, 30), &signature, us),
        Ok(())
    );
    // Durable before the frame left: the proof and the key, in the store.
    let stored = store.channel(1).expect("read").expect("stored");
    assert_eq!(stored.ours.map(|p| (p.nonce, p.transferred)), Some((1, 30)));
    let key = store.keyed_payment("k1").expect("read").expect("filed");
    assert_eq!((key.channel, key.nonce, key.amount), (1, 1, 30));
    assert!(!paying.is_finished(), "no answer before the partner's Ack");
    payments.partner_holds(1, 1);
    let paid = paying.await.expect("task").expect("paid");
    assert_eq!(
        paid,
        Paid {
            channel: 1,
            nonce: 1,
            amount: 30,
            repeated: false
        }
    );
    // The same key again pays nothing — also on a new link whose partner has said nothing
    // yet (no wait for its word) — and another amount under it is refused.
    let (outgoing, _frames) = crate::link::queue::queue();
    assert!(
        payments
            .links
            .add(PARTNER, &Arc::new(Link::new(outgoing, PARTNER)))
    );
    let again = payments
        .pay(1, 30, b"", Some("k1"), None)
        .await
        .expect("repeat");
    assert!(again.repeated && again.nonce == 1);
    let reused = payments.pay(1, 31, b"", Some("k1"), None).await;
    assert!(matches!(
        reused,
        Err(PayError::KeyReused { amount: 30, .. })
    ));
    assert_eq!(payments.table.our_nonce(1), 1, "nothing more was signed");
}

#[tokio::test]
async fn payments_queued_together_share_one_proof_and_refusals_are_one_by_one() {
    let Fixture {
        payments,
        mut frames,
        ..
    } = fixture(100);
    // On this single-threaded runtime the three payers queue before the signer runs.
    let pay = |amount| {
        let payments = payments.clone();
        async move { payments.pay(1, amount, b"", None, None).await }
    };
    let acking = async {
        let Message::PayBatch {
            nonce,
            transferred,
            payments: carried,
            ..
        } = sent(&mut frames).await
        else {
            panic!("one PayBatch for the queued payments");
        };
        assert_eq!((nonce, transferred), (1, 90));
        let amounts: Vec<u128> = carried.iter().map(|(amount, _)| *amount).collect();
        assert_eq!(
            amounts,
            vec![40, 50],
            "the 70 does not fit after the 40; the 50 does"
        );
        payments.partner_holds(1, 1);
    };
    let (a, b, c, ()) = tokio::join!(pay(40), pay(70), pay(50), acking);
    assert_eq!(a.expect("paid").nonce, 1);
    assert_eq!(c.expect("paid").nonce, 1);
    assert!(
        matches!(
            b,
            Err(PayError::Unpayable(
                farthing_core::PaymentError::Insufficient {
                    available: 60,
                    amount: 70,
                    ..
                }
            ))
        ),
        "{b:?}"
    );
}

#[tokio::test]
async fn a_channel_the_partners_node_does_not_know_yet_signs_nothing() {
    let Fixture {
        payments, store, ..
    } = fixture(100);
    let (outgoing, mut frames) = crate::link::queue::queue();
    assert!(
        payments
            .links
            .add(PARTNER, &Arc::new(Link::new(outgoing, PARTNER)))
    );
    // The new link's partner has said nothing of channel 1: after a grace, refused unsigned.
    assert!(matches!(
        payments.pay(1, 10, b"", None, None).await,
        Err(PayError::NotReady(1))
    ));
    assert_eq!(payments.table.our_nonce(1), 0);
    assert_eq!(store.channel(1).expect("read"), None, "no write either");
    // Its word arrives while a payment waits: the payment goes.
    let link = payments.links.get(PARTNER).expect("linked");
    let paying = tokio::spawn({
        let payments = payments.clone();
        async move { payments.pay(1, 10, b"", None, None).await }
    });
    // Only once the payment waits for it (so the wake-up is what lets it go).
    while link.waiting_for_partner() == 0 {
        tokio::task::yield_now().await;
    }
    assert!(!paying.is_finished());
    link.partner_knows(1);
    assert!(matches!(
        sent(&mut frames).await,
        Message::Pay { nonce: 1, .. }
    ));
    payments.partner_holds(1, 1);
    let paid = paying.await.expect("task").expect("paid");
    assert_eq!((paid.nonce, paid.amount), (1, 10));
}

#[tokio::test]
async fn without_a_link_or_a_store_nothing_is_signed() {
    let Fixture {
        payments, store, ..
    } = fixture(100);
    payments.links.close_all();
    assert!(matches!(
        payments.pay(1, 10, b"", None, None).await,
        Err(PayError::NoLink)
    ));
    assert_eq!(store.channel(1).expect("read"), None, "no write either");
    assert!(matches!(
        payments.pay(9, 10, b"", None, None).await,
        Err(PayError::UnknownChannel(9))
    ));
    assert_eq!(payments.table.our_nonce(1), 0);
}
