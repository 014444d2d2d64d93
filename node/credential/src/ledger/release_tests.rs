//! Taking back a charge that did not happen (a deposit whose transaction was never sent).

use super::*;

fn budget(limit: u128, period: Period) -> Budget {
    Budget {
        step: 1,
        cid: ChainId([3; 16]),
        kind: Kind::Deposit,
        period,
        limit,
    }
}

#[test]
fn a_released_charge_frees_its_budget_and_persists_like_a_spend() {
    let budgets = [budget(100, Period::Day), budget(150, Period::Total)];
    let mut ledgers = Ledgers::default();
    ledgers
        .admit(&budgets, Kind::Deposit, 60, 1_000, 6)
        .unwrap();
    let charged = ledgers
        .admit(&budgets, Kind::Deposit, 40, 1_005, 6)
        .unwrap();
    assert!(
        ledgers.admit(&budgets, Kind::Deposit, 1, 1_006, 6).is_err(),
        "full"
    );
    let cid = charged[0].cid;
    let update = ledgers
        .release(cid, Kind::Deposit, 40, charged[0].second)
        .unwrap();
    assert_eq!(
        (update.total, update.second, update.in_second),
        (60, 1_005, 0)
    );
    let ledger = ledgers.ledger(cid, Kind::Deposit).unwrap();
    assert_eq!(ledger.spent(Period::Day, 1_006), 60);
    assert_eq!(ledger.buckets().collect::<Vec<_>>(), [(1_000, 60)]);
    // What was persisted restores to the same ledger.
    assert_eq!(&Ledger::restore(60, [(1_000, 60)]), ledger);
    // The freed room is spendable again, and no more.
    ledgers
        .admit(&budgets, Kind::Deposit, 40, 1_010, 6)
        .unwrap();
    assert!(ledgers.admit(&budgets, Kind::Deposit, 1, 1_010, 6).is_err());
    // A release of part of a bucket, after the hour window moved past it, keeps the sums.
    let mut one = Ledger::default();
    one.add(30, 10);
    one.add(20, 5_000);
    one.prune(5_000);
    one.release(10, 10);
    assert_eq!(one.spent(Period::Hour, 5_000), 20);
    assert_eq!(one.spent(Period::Day, 5_000), 40);
    assert_eq!(one.total(), 40);
    // Nothing known: nothing to persist.
    assert!(ledgers.release(ChainId([9; 16]), Kind::Pay, 1, 1).is_none());
}
