//! Agents' budgets on the payment path (issue 15): reserved under the table's lock as the
//! proof is planned, written in the proof's own synced batch, exact under concurrency, and
//! the same after a restart (the ledgers rebuilt from the store).

use std::sync::Arc;

use farthing_credential::{Caveat, Credential, Period};
use farthing_peer::message::Message;
use farthing_rpc::Agent;
use farthing_store::{LogWalk, Store};

use super::tests::{Fixture, fixture, sent};
use crate::credentials::{ledgers_from_store, now_secs};
use crate::payments::{PayError, Payments, Spender};

const KEY: [u8; 32] = [5; 32];

fn agent(credential: &Credential) -> Spender {
    let verified = credential.verify(&KEY).expect("verifies");
    Arc::new(Agent::new(credential.clone(), verified))
}

fn caveat(text: &str) -> Caveat {
    Caveat::parse(text).expect("caveat")
}

/// Acknowledge every proof the node sends, until `until` of them carried `total` in all.
async fn ack_all(payments: &Payments, frames: &mut crate::link::queue::Receiver, total: u128) {
    loop {
        let (nonce, transferred) = match sent(frames).await {
            Message::Pay {
                nonce, transferred, ..
            }
            | Message::PayBatch {
                nonce, transferred, ..
            } => (nonce, transferred),
            other => panic!("unexpected frame {other:?}"),
        };
        payments.partner_holds(1, nonce);
        if transferred == total {
            return;
        }
    }
}

/// `count` payments of `amount` each by `spender`, all at once; their results.
async fn pay_all(
    payments: &Arc<Payments>,
    spender: &Spender,
    count: usize,
    amount: u128,
) -> Vec<Result<super::Paid, PayError>> {
    let handles: Vec<_> = (0..count)
        .map(|_| {
            let (payments, spender) = (payments.clone(), spender.clone());
            tokio::spawn(async move { payments.pay(1, amount, b"", None, Some(spender)).await })
        })
        .collect();
    let mut results = Vec::with_capacity(count);
    for handle in handles {
        results.push(handle.await.expect("payer"));
    }
    results
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_hundred_payments_at_the_edge_of_a_budget_spend_exactly_the_budget() {
    let Fixture {
        payments,
        store,
        mut frames,
    } = fixture(10_000);
    let credential = Credential::mint(&KEY, [1; 16], &[caveat("budget.day<=150")]);
    let spender = agent(&credential);
    let (results, ()) = tokio::join!(
        pay_all(&payments, &spender, 200, 1),
        ack_all(&payments, &mut frames, 150)
    );
    let paid = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(paid, 150, "exactly the budget, never a unit more");
    for refused in results.iter().filter_map(|r| r.as_ref().err()) {
        let PayError::OverBudget(over) = refused else {
            panic!("refused for another reason: {refused}");
        };
        assert_eq!(
            (over.period, over.limit, over.spent),
            (Period::Day, 150, 150)
        );
        let text = refused.to_string();
        assert!(text.contains("0.00015") && text.contains("day"), "{text}");
    }
    // The channel paid exactly that, and the durable ledger and log say so.
    assert_eq!(
        payments
            .table
            .get(1)
            .expect("channel")
            .ours
            .expect("proof")
            .transferred,
        150
    );
    payments.table.flushed().await.expect("durable");
    let spends = store.credential_spends(0).expect("read");
    assert_eq!(spends.totals.len(), 1);
    assert_eq!(spends.totals[0].1, 150);
    assert_eq!(spends.totals[0].0.cid, spender.limits().budgets[0].cid.0);
    let mut logged = 0;
    store
        .walk_payments(LogWalk::After(0), &mut |p| {
            assert_eq!(p.credential, Some(spender.id().0));
            logged += p.amount;
            true
        })
        .expect("log");
    assert_eq!(logged, 150);

    // A restart rebuilds the ledger from the store: the budget stays spent.
    let ledgers = ledgers_from_store(&*store, now_secs()).expect("ledgers");
    let left = ledgers.remaining(&spender.limits().budgets, now_secs());
    assert_eq!((left[0].1, left[0].2), (150, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_derived_credential_is_capped_by_its_own_budget_and_its_parents() {
    let Fixture {
        payments,
        mut frames,
        ..
    } = fixture(10_000);
    let parent = Credential::mint(&KEY, [2; 16], &[caveat("budget.total<=100")]);
    let child = parent
        .attenuate(&caveat("nonce=kid"))
        .attenuate(&caveat("budget.hour<=30"));
    let (parent, child) = (agent(&parent), agent(&child));
    let (by_parent, by_child, ()) = tokio::join!(
        pay_all(&payments, &parent, 100, 1),
        pay_all(&payments, &child, 100, 1),
        ack_all(&payments, &mut frames, 100)
    );
    let ok = |r: &[Result<_, PayError>]| r.iter().filter(|r| r.is_ok()).count();
    assert!(ok(&by_child) <= 30, "the child's own budget holds");
    assert_eq!(
        ok(&by_parent) + ok(&by_child),
        100,
        "the parent's budget holds for both"
    );
    let left = payments
        .table
        .budgets_left(&child.limits().budgets, now_secs());
    assert_eq!(
        left[0].1, 100,
        "the parent's ledger counts the child's spends"
    );
    assert_eq!(left[1].1, ok(&by_child) as u128);
}
