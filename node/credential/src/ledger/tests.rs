//! Ledger tests: exact edges, shared and nested budgets, `frees_at`, the clock, restore and
//! prune, refusal messages, a busy ledger, and a proptest against a naive model.

use std::collections::HashMap;

use proptest::prelude::*;

use super::*;
use crate::{Caveat, Credential};

const K: [u8; 32] = [0x42; 32];

fn cid(n: u8) -> ChainId {
    ChainId([n; 16])
}

fn budget(n: u8, kind: Kind, period: Period, limit: u128) -> Budget {
    Budget {
        step: usize::from(n),
        cid: cid(n),
        kind,
        period,
        limit,
    }
}

fn pay(n: u8, period: Period, limit: u128) -> Budget {
    budget(n, Kind::Pay, period, limit)
}

fn cav(s: &str) -> Caveat {
    Caveat::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
}

/// The effective budgets of `parent` attenuated by `caveats`.
fn budgets_of(parent: &Credential, caveats: &[&str]) -> Vec<Budget> {
    let mut c = parent.clone();
    for s in caveats {
        c = c.attenuate(&cav(s));
    }
    c.verify(&K)
        .unwrap_or_else(|e| panic!("{e}"))
        .effective()
        .budgets
}

fn refused(r: Result<Vec<Update>, OverBudget>) -> OverBudget {
    match r {
        Ok(u) => panic!("admitted: {u:?}"),
        Err(e) => e,
    }
}

fn admitted(r: Result<Vec<Update>, OverBudget>) -> Vec<Update> {
    r.unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn a_budget_of_n_admits_exactly_n() {
    for period in Period::ALL {
        let mut l = Ledgers::default();
        let b = [pay(1, period, 10)];
        for (i, a) in [3, 3, 4].into_iter().enumerate() {
            admitted(l.admit(&b, Kind::Pay, a, 1000 + i as u64, 6));
        }
        let e = refused(l.admit(&b, Kind::Pay, 1, 1003, 6));
        assert_eq!((e.spent, e.limit, e.amount, e.period), (10, 10, 1, period));
        // A whole budget at once, then nothing more.
        let mut l = Ledgers::default();
        admitted(l.admit(&b, Kind::Pay, 10, 5, 6));
        refused(l.admit(&b, Kind::Pay, 1, 5, 6));
        refused(l.admit(&[pay(2, period, 10)], Kind::Pay, 11, 5, 6));
    }
}

#[test]
fn siblings_share_their_parents_ledger() {
    let root = Credential::mint(&K, [1; 16], &[cav("scope=pay"), cav("budget.day<=10")]);
    let a = budgets_of(&root, &["nonce=a"]);
    let b = budgets_of(&root, &["nonce=b"]);
    assert_eq!(a, b, "both carry only the parent's budget");
    let mut l = Ledgers::default();
    admitted(l.admit(&a, Kind::Pay, 6, 100, 6));
    let e = refused(l.admit(&b, Kind::Pay, 5, 101, 6));
    assert_eq!((e.cid, e.spent), (a[0].cid, 6));
    admitted(l.admit(&b, Kind::Pay, 4, 102, 6));
    assert_eq!(l.ledger(a[0].cid, Kind::Pay).map(Ledger::total), Some(10));
    refused(l.admit(&a, Kind::Pay, 1, 103, 6));
}

#[test]
fn a_child_budget_caps_the_child_and_the_parents_caps_both() {
    let root = Credential::mint(&K, [1; 16], &[cav("budget.day<=10")]);
    let a = budgets_of(&root, &["nonce=a", "budget.day<=4"]);
    let b = budgets_of(&root, &["nonce=b"]);
    let (parent, child) = (a[0].cid, a[1].cid);
    assert_ne!(parent, child);
    let mut l = Ledgers::default();
    let u = admitted(l.admit(&a, Kind::Pay, 4, 100, 6));
    assert_eq!(
        u.iter().map(|u| (u.cid, u.total)).collect::<Vec<_>>(),
        [(parent, 4), (child, 4)]
    );
    // The child's own budget refuses it ...
    assert_eq!(refused(l.admit(&a, Kind::Pay, 1, 101, 6)).cid, child);
    // ... while its sibling spends the parent's rest.
    admitted(l.admit(&b, Kind::Pay, 6, 102, 6));
    assert_eq!(refused(l.admit(&b, Kind::Pay, 1, 103, 6)).cid, parent);
    // Both over: the first in chain order (the parent's) is reported.
    assert_eq!(refused(l.admit(&a, Kind::Pay, 1, 104, 6)).cid, parent);
    assert_eq!(l.ledger(parent, Kind::Pay).map(Ledger::total), Some(10));
    assert_eq!(l.ledger(child, Kind::Pay).map(Ledger::total), Some(4));
}

#[test]
fn two_periods_on_one_cid_share_one_ledger() {
    let b = [pay(1, Period::Hour, 5), pay(1, Period::Day, 8)];
    let mut l = Ledgers::default();
    let u = admitted(l.admit(&b, Kind::Pay, 5, 0, 6));
    assert_eq!(u.len(), 1, "the spend is added once");
    assert_eq!(l.ledger(cid(1), Kind::Pay).map(Ledger::total), Some(5));
    let e = refused(l.admit(&b, Kind::Pay, 1, 10, 6));
    assert_eq!((e.period, e.frees), (Period::Hour, Frees::At(HOUR)));
    // At HOUR the bucket at 0 has left the hour (0 > HOUR - HOUR is false).
    admitted(l.admit(&b, Kind::Pay, 3, HOUR, 6));
    let e = refused(l.admit(&b, Kind::Pay, 1, HOUR + 1, 6));
    assert_eq!(
        (e.period, e.spent, e.frees),
        (Period::Day, 8, Frees::At(DAY))
    );
    admitted(l.admit(&b, Kind::Pay, 1, DAY, 6));
}

#[test]
fn frees_at_is_the_exact_second() {
    let mut l = Ledger::default();
    l.add(7, 100);
    l.add(3, 200);
    let day = |l: &Ledger, t| l.spent(Period::Day, t);
    assert_eq!(
        l.frees_at(Period::Day, 10, 1, 300),
        Some(Frees::At(100 + DAY))
    );
    assert_eq!(100 + DAY, 86_500);
    let (amount, limit) = (1, 10);
    assert_eq!((day(&l, 86_499), day(&l, 86_500)), (10, 3));
    assert!(day(&l, 86_500) + amount <= limit);
    assert!(day(&l, 86_499) + amount > limit);
    // 8 more needs the bucket at 200 gone too.
    assert_eq!(
        l.frees_at(Period::Day, 10, 8, 300),
        Some(Frees::At(200 + DAY))
    );
    assert!(day(&l, 200 + DAY) + 8 <= 10 && day(&l, 199 + DAY) + 8 > 10);
    assert_eq!(l.frees_at(Period::Day, 10, 0, 300), None);
    assert_eq!(l.frees_at(Period::Day, 11, 1, 300), None);
    assert_eq!(l.frees_at(Period::Day, 10, 11, 300), Some(Frees::Never));
    assert_eq!(l.frees_at(Period::Total, 10, 1, 300), Some(Frees::Never));
    assert_eq!(
        l.frees_at(Period::Hour, 10, 1, 300),
        Some(Frees::At(100 + HOUR))
    );
    assert_eq!(l.frees_at(Period::Hour, 10, 1, 100 + HOUR), None);
    // Through admit, with the message in token units.
    let mut ls = Ledgers::restore([((cid(1), Kind::Pay), l)]);
    let e = refused(ls.admit(&[pay(1, Period::Day, 10)], Kind::Pay, 1, 300, 0));
    assert_eq!(e.frees, Frees::At(86_500));
    assert_eq!(
        e.to_string(),
        format!(
            "payment of 1 is over this credential's day budget ({}): 10 of 10 spent; budget \
             frees enough at 1970-01-02T00:01:40Z (unix 86500)",
            cid(1)
        )
    );
}

#[test]
fn refusals_say_what_to_do() {
    let c = cid(7);
    let at = OverBudget {
        cid: c,
        kind: Kind::Pay,
        period: Period::Day,
        limit: 10_000_000,
        spent: 9_800_000,
        amount: 500_000,
        frees: Frees::At(1_796_637_600),
        decimals: 6,
    };
    assert_eq!(
        at.to_string(),
        format!(
            "payment of 0.5 is over this credential's day budget ({c}): 9.8 of 10 spent; \
             budget frees enough at 2026-12-07T10:00:00Z (unix 1796637600)"
        )
    );
    let total = OverBudget {
        kind: Kind::Deposit,
        period: Period::Total,
        frees: Frees::Never,
        ..at.clone()
    };
    assert_eq!(
        total.to_string(),
        format!(
            "deposit of 0.5 is over this credential's total deposit budget ({c}): 9.8 of 10 \
             spent; it never frees: ask the operator for a new credential"
        )
    );
    let huge = OverBudget {
        amount: 12_000_000,
        spent: 0,
        frees: Frees::Never,
        ..at
    };
    assert!(
        huge.to_string().ends_with(
            "0 of 10 spent; the amount alone is over the budget, so it never fits: spend \
             less, or ask the operator for a new credential"
        ),
        "{huge}"
    );
}

#[test]
fn a_clock_stepped_back_counts_at_the_latest_second() {
    let mut l = Ledger::default();
    assert_eq!(l.add(5, 1000), (5, 1000, 5));
    assert_eq!(l.add(2, 500), (7, 1000, 7), "counted in the newest bucket");
    assert_eq!(l.buckets().collect::<Vec<_>>(), [(1000, 7)]);
    assert_eq!(l.spent(Period::Hour, 999 + HOUR), 7);
    assert_eq!(l.spent(Period::Hour, 1000 + HOUR), 0);
    // Earlier windows count the newer bucket too.
    assert_eq!(l.spent(Period::Hour, 0), 7);
    // A prune moves the floor: a later spend at an earlier clock counts at the prune's time.
    l.prune(5000);
    assert_eq!(l.floor(4000), 5000);
    assert_eq!(l.add(1, 4000), (8, 5000, 1));
    assert_eq!(l.spent(Period::Hour, 5000 + HOUR - 1), 1);
    // Through admit, a stepped-back clock refuses until the real time has passed.
    let b = [pay(1, Period::Hour, 8)];
    let mut ls = Ledgers::default();
    admitted(ls.admit(&b, Kind::Pay, 8, 10_000, 6));
    let e = refused(ls.admit(&b, Kind::Pay, 1, 10_000 - HOUR, 6));
    assert_eq!((e.spent, e.frees), (8, Frees::At(10_000 + HOUR)));
    refused(ls.admit(&b, Kind::Pay, 1, 10_000 + HOUR - 1, 6));
    admitted(ls.admit(&b, Kind::Pay, 1, 10_000 + HOUR, 6));
}

#[test]
fn restore_of_the_persisted_records_equals_the_live_ledger() {
    let mut live = Ledger::default();
    let mut store = HashMap::<u64, u128>::new();
    let mut now = 50_000u64;
    for i in 0..400u64 {
        now += [0, 1, 7, 900, 20_000][(i % 5) as usize];
        let at = if i % 11 == 0 { now - 300 } else { now };
        let (total, second, in_second) = live.add(u128::from(i % 13), at);
        store.insert(second, in_second);
        live.prune(now);
        // The store prunes by range like the ledger, but only now and then; the node prunes
        // a restored ledger at once.
        let pruned = i % 3 == 0;
        if pruned {
            store.retain(|&s, _| s + DAY > now);
        }
        let mut back = Ledger::restore(total, store.iter().map(|(&s, &a)| (s, a)));
        if pruned {
            assert_eq!(back.floor(0), live.buckets().last().map_or(0, |b| b.0));
        } else {
            back.prune(now);
        }
        assert_eq!(back, live, "after op {i}");
        for t in [now, now + 1, now + HOUR - 1, now + HOUR, now + DAY] {
            for p in Period::ALL {
                assert_eq!(back.spent(p, t), live.spent(p, t), "{p:?} at {t}");
            }
        }
    }
}

#[test]
fn restore_is_defensive() {
    let l = Ledger::restore(3, [(20, 4), (10, 0), (5, 2), (20, 3), (5, 1)]);
    assert_eq!(l.buckets().collect::<Vec<_>>(), [(5, 2), (20, 4)]);
    assert_eq!(l.total(), 6, "raised to the buckets' sum");
    assert_eq!(l.floor(0), 20);
    assert_eq!(Ledger::restore(9, []).total(), 9);
    // Buckets that count in no window at or after the newest are dropped.
    let old = Ledger::restore(0, [(100, 1), (101, 2), (100 + DAY, 3)]);
    assert_eq!(
        old.buckets().collect::<Vec<_>>(),
        [(101, 2), (100 + DAY, 3)]
    );
    assert_eq!(old.total(), 6);
    assert_eq!(old.spent(Period::Day, 100 + DAY), 5);
    let dbg = format!("{old:?}");
    assert!(
        dbg.contains("buckets: 2") && dbg.contains("total: 6"),
        "{dbg}"
    );
    let ls = Ledgers::restore([
        ((cid(1), Kind::Pay), Ledger::restore(5, [(1, 5)])),
        ((cid(1), Kind::Deposit), Ledger::restore(50, [])),
        ((cid(1), Kind::Pay), Ledger::restore(8, [(1, 4), (2, 3)])),
    ]);
    let pay = ls.ledger(cid(1), Kind::Pay).cloned().unwrap_or_default();
    assert_eq!(pay, Ledger::restore(8, [(1, 5), (2, 3)]));
    assert_eq!(
        ls.ledger(cid(1), Kind::Deposit).map(Ledger::total),
        Some(50)
    );
    assert_eq!(ls.iter().count(), 2);
}

#[test]
fn prune_keeps_totals() {
    let mut ls = Ledgers::default();
    let b = [pay(1, Period::Day, 1000), pay(2, Period::Total, 1000)];
    for t in (0..3 * DAY).step_by(3600) {
        admitted(ls.admit(&b, Kind::Pay, 2, t, 6));
    }
    let at = 3 * DAY;
    let before: Vec<_> = ls.remaining(&b, at);
    ls.prune(at);
    assert_eq!(ls.remaining(&b, at), before);
    for n in [1, 2] {
        let l = ls.ledger(cid(n), Kind::Pay).cloned().unwrap_or_default();
        assert_eq!(l.total(), 144);
        assert_eq!(l.buckets().len(), 23, "the day before {at}, exclusive");
        assert_eq!(l.spent(Period::Day, at), 46);
    }
    assert_eq!(before[0].1, 46);
    assert_eq!(before[1].1, 144);
}

#[test]
fn kinds_are_counted_apart() {
    let root = Credential::mint(
        &K,
        [2; 16],
        &[cav("budget.day<=10"), cav("deposit.total<=100")],
    );
    let b = budgets_of(&root, &[]);
    let mut l = Ledgers::default();
    let u = admitted(l.admit(&b, Kind::Deposit, 100, 10, 6));
    assert_eq!(
        u,
        [Update {
            cid: b[1].cid,
            kind: Kind::Deposit,
            total: 100,
            second: 10,
            in_second: 100
        }]
    );
    admitted(l.admit(&b, Kind::Pay, 10, 10, 6));
    let e = refused(l.admit(&b, Kind::Deposit, 1, DAY * 9, 6));
    assert_eq!((e.kind, e.frees), (Kind::Deposit, Frees::Never));
    let left = l.remaining(&b, 20);
    assert_eq!(
        left.iter().map(|r| (r.1, r.2)).collect::<Vec<_>>(),
        [(10, 0), (100, 0)]
    );
    assert_eq!(l.remaining(&b, 10 + DAY)[0].2, 10);
    // No budget of the kind: nothing to check, nothing to persist.
    let pay_only = budgets_of(
        &Credential::mint(&K, [3; 16], &[cav("budget.hour<=1")]),
        &[],
    );
    assert_eq!(
        l.admit(&pay_only, Kind::Deposit, 1 << 100, 0, 6),
        Ok(vec![])
    );
    assert_eq!(l.admit(&[], Kind::Pay, 5, 0, 6), Ok(vec![]));
    // A zero spend fits and writes nothing.
    assert_eq!(l.admit(&b, Kind::Pay, 0, 11, 6), Ok(vec![]));
}

#[test]
fn overflow_is_refused_not_wrapped() {
    let b = [pay(1, Period::Day, u128::MAX)];
    let mut l = Ledgers::default();
    admitted(l.admit(&b, Kind::Pay, u128::MAX, 0, 6));
    let e = refused(l.admit(&b, Kind::Pay, 1, 1, 6));
    assert_eq!(e.spent, u128::MAX);
    // The day has passed, but the total would overflow.
    let e = refused(l.admit(&b, Kind::Pay, 1, 2 * DAY, 6));
    assert_eq!((e.spent, e.frees), (0, Frees::Never));
}

/// A ledger spending every second for two days: each admit must not rescan the day's
/// buckets (this would take minutes if it did).
#[test]
fn a_busy_ledger_stays_cheap() {
    let b = [pay(1, Period::Hour, 3600), pay(1, Period::Day, 86_400)];
    let mut l = Ledgers::default();
    for t in 0..2 * DAY {
        admitted(l.admit(&b, Kind::Pay, 1, t, 6));
    }
    let ledger = l.ledger(cid(1), Kind::Pay).cloned().unwrap_or_default();
    assert_eq!(ledger.buckets().len(), DAY as usize);
    assert_eq!(ledger.spent(Period::Day, 2 * DAY - 1), 86_400);
    assert_eq!(ledger.spent(Period::Hour, 2 * DAY - 1), 3600);
    let e = refused(l.admit(&b, Kind::Pay, 1, 2 * DAY - 1, 6));
    assert_eq!((e.period, e.frees), (Period::Hour, Frees::At(2 * DAY)));
}

#[derive(Debug, Clone)]
enum Op {
    /// Admit `amount` of a kind after moving the clock by `step` (negative: stepped back).
    Admit { step: i64, pay: bool, amount: u128 },
    /// Prune every ledger after moving the clock.
    Prune { step: i64 },
}

fn arb_step() -> impl Strategy<Value = i64> {
    prop_oneof![
        6 => 0i64..40,
        2 => 500i64..4000,
        1 => 20_000i64..90_000,
        1 => -5000i64..0,
    ]
}

fn arb_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (arb_step(), any::<bool>(), 0u128..25).prop_map(|(step, pay, amount)| Op::Admit { step, pay, amount }),
        1 => arb_step().prop_map(|step| Op::Prune { step }),
    ]
}

fn arb_budgets() -> impl Strategy<Value = Vec<Budget>> {
    let kind = prop_oneof![Just(Kind::Pay), Just(Kind::Deposit)];
    let one = (
        1u8..4,
        kind,
        proptest::sample::select(Period::ALL.to_vec()),
        1u128..60,
    )
        .prop_map(|(n, k, p, limit)| budget(n, k, p, limit));
    proptest::collection::vec(one, 0..5)
}

/// What the ledgers must agree with: every admitted record, and the latest time each ledger
/// has seen.
#[derive(Default)]
struct Model {
    records: HashMap<(ChainId, Kind), Vec<(u64, u128)>>,
    seen: HashMap<(ChainId, Kind), u64>,
}

impl Model {
    fn spent(&self, key: (ChainId, Kind), period: Period, t: u64) -> u128 {
        let recs = self.records.get(&key).map_or(&[][..], |v| &v[..]);
        match period.seconds() {
            None => recs.iter().map(|r| r.1).sum(),
            Some(len) => recs
                .iter()
                .filter(|r| in_window(r.0, len, t))
                .map(|r| r.1)
                .sum(),
        }
    }

    fn floor(&self, key: (ChainId, Kind), now: u64) -> u64 {
        self.seen.get(&key).map_or(now, |&s| s.max(now))
    }
}

fn snapshot(l: &Ledgers) -> Vec<(ChainId, Kind, Ledger)> {
    let mut v: Vec<_> = l.iter().map(|(c, k, l)| (c, k, l.clone())).collect();
    v.sort_by_key(|x| (x.0, x.1));
    v
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Random budgets and spends: admit agrees with a naive model, is all-or-nothing, never
    /// lets the sum within any window exceed a limit, and reports `frees_at` exactly.
    #[test]
    fn admit_never_exceeds_and_is_all_or_nothing(
        budgets in arb_budgets(),
        ops in proptest::collection::vec(arb_op(), 1..80),
    ) {
        let mut ledgers = Ledgers::default();
        let mut model = Model::default();
        let mut now = 100_000u64;
        for op in ops {
            let step = match op { Op::Admit { step, .. } | Op::Prune { step } => step };
            now = now.saturating_add_signed(step);
            let Op::Admit { pay, amount, .. } = op else {
                ledgers.prune(now);
                for (c, k, _) in ledgers.iter() {
                    let s = model.seen.entry((c, k)).or_default();
                    *s = (*s).max(now);
                }
                continue;
            };
            let kind = if pay { Kind::Pay } else { Kind::Deposit };
            let ours: Vec<&Budget> = budgets.iter().filter(|b| b.kind == kind).collect();
            let expect_refusal = ours.iter().find(|b| {
                let key = (b.cid, kind);
                model.spent(key, b.period, model.floor(key, now)) + amount > b.limit
            });
            let before = snapshot(&ledgers);
            match ledgers.admit(&budgets, kind, amount, now, 6) {
                Ok(updates) => {
                    prop_assert!(expect_refusal.is_none());
                    let mut cids: Vec<ChainId> = Vec::new();
                    for b in &ours {
                        if !cids.contains(&b.cid) { cids.push(b.cid); }
                    }
                    if amount == 0 { cids.clear(); }
                    prop_assert_eq!(updates.iter().map(|u| u.cid).collect::<Vec<_>>(), cids);
                    for u in &updates {
                        let key = (u.cid, kind);
                        prop_assert_eq!(u.kind, kind);
                        prop_assert_eq!(u.second, model.floor(key, now));
                        model.seen.insert(key, u.second);
                        let recs = model.records.entry(key).or_default();
                        recs.push((u.second, amount));
                        prop_assert_eq!(u.total, recs.iter().map(|r| r.1).sum::<u128>());
                        let in_second: u128 = recs.iter().filter(|r| r.0 == u.second).map(|r| r.1).sum();
                        prop_assert_eq!(u.in_second, in_second);
                    }
                }
                Err(e) => {
                    prop_assert_eq!(snapshot(&ledgers), before, "a refusal changed a ledger");
                    let b = expect_refusal.ok_or_else(|| TestCaseError::fail(format!("refused: {e}")))?;
                    let key = (b.cid, kind);
                    let at = model.floor(key, now);
                    prop_assert_eq!((e.cid, e.period, e.limit, e.amount), (b.cid, b.period, b.limit, amount));
                    prop_assert_eq!(e.spent, model.spent(key, b.period, at));
                    match e.frees {
                        Frees::At(t) => {
                            prop_assert!(t > at);
                            prop_assert!(model.spent(key, b.period, t) + amount <= b.limit);
                            prop_assert!(model.spent(key, b.period, t - 1) + amount > b.limit);
                        }
                        Frees::Never => prop_assert!(b.period == Period::Total || amount > b.limit),
                    }
                }
            }
            // Every ledger agrees with the model from the time it has seen on.
            for (c, k, l) in ledgers.iter() {
                let key = (c, k);
                let seen = l.floor(0);
                prop_assert_eq!(seen, model.floor(key, 0));
                for t in [seen, seen + 1, seen + HOUR - 1, seen + HOUR, seen + DAY - 1, seen + DAY] {
                    for p in Period::ALL {
                        prop_assert_eq!(l.spent(p, t), model.spent(key, p, t), "{:?} at {}", p, t);
                    }
                }
            }
        }
        // No window of any budget ever held more than its limit.
        for b in &budgets {
            let key = (b.cid, b.kind);
            let recs = model.records.get(&key).cloned().unwrap_or_default();
            match b.period.seconds() {
                None => prop_assert!(recs.iter().map(|r| r.1).sum::<u128>() <= b.limit),
                Some(len) => {
                    for &(end, _) in &recs {
                        let within: u128 = recs
                            .iter()
                            .filter(|r| r.0 <= end && in_window(r.0, len, end))
                            .map(|r| r.1)
                            .sum();
                        prop_assert!(within <= b.limit, "{:?} window ending {} holds {}", b, end, within);
                    }
                }
            }
        }
    }

    /// `spent` in a window ending before the ledger's time (a stepped-back clock) counts every
    /// retained bucket after the window's start, like a scan does; `frees_at` is exact.
    #[test]
    fn spent_and_frees_at_match_a_scan(
        spends in proptest::collection::vec((0u64..5000, 1u128..20), 1..60),
        probes in proptest::collection::vec((0u64..200_000, 1u128..80, 1u128..200), 1..20),
    ) {
        let mut l = Ledger::default();
        let mut now = 0;
        for (step, amount) in spends {
            now += step;
            l.add(amount, now);
        }
        for (t, amount, limit) in probes {
            for p in [Period::Hour, Period::Day] {
                let Some(len) = p.seconds() else { continue };
                let scan: u128 = l.buckets().filter(|b| in_window(b.0, len, t)).map(|b| b.1).sum();
                prop_assert_eq!(l.spent(p, t), scan);
                match l.frees_at(p, limit, amount, t) {
                    None => prop_assert!(scan + amount <= limit),
                    Some(Frees::Never) => prop_assert!(amount > limit),
                    Some(Frees::At(f)) => {
                        prop_assert!(f > t);
                        prop_assert!(l.spent(p, f) + amount <= limit);
                        prop_assert!(l.spent(p, f - 1) + amount > limit);
                    }
                }
            }
        }
    }
}
