//! The node's spending ledgers (node/CREDENTIALS-PLAN.md, "Rolling windows, exact across
//! restarts"). Pure: no I/O, no clock; `now` is a parameter, Unix seconds.
//!
//! A spend through a credential is charged to every budget of its [`Kind`] in the
//! credential's chain ([`Effective::budgets`](crate::Effective)), each counted under the
//! chain id of the step that carries it: a child's budget caps the child, its ancestors'
//! budgets cap it and its siblings together. [`Ledgers::admit`] checks them all and adds the
//! spend to each only if all fit, returning the records to persist.
//!
//! A [`Ledger`] holds the total ever spent and 1-second buckets over the last day. A bucket at
//! second `s` counts in a window of `P` seconds ending at `now` while `s > now - P`, so a spend
//! leaves the window `P` seconds after its second, never earlier. Running sums for the hour and
//! the day keep [`Ledger::spent`] from scanning a busy ledger's 86 400 buckets on every payment:
//! buckets leave the sums, and then the ledger, from the front as time moves.
//!
//! Clock: time, as a ledger sees it, never goes backwards. A `now` earlier than the latest one
//! a ledger has seen (in [`Ledger::add`], [`Ledger::prune`] or a restored bucket) is counted at
//! that latest second, so a clock stepped back neither frees budget early nor loses spend. A
//! clock stepped forward frees the windows early (plan, "Risks"); nothing pure can tell.
//!
//! Counts saturate at `u128::MAX`, far above any token's supply; [`Ledgers::admit`] refuses a
//! spend that would reach it.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, VecDeque};
use std::fmt;

use crate::render::{Units, Utc};
use crate::{Budget, ChainId, Kind, Period};

/// An hour, in seconds.
pub const HOUR: u64 = 3600;
/// A day, in seconds: how long a ledger keeps its buckets.
pub const DAY: u64 = 86_400;

/// Whether a bucket at `second` counts in a window of `len` seconds ending at `now`:
/// `second > now - len` (every bucket does while `now < len`).
fn in_window(second: u64, len: u64, now: u64) -> bool {
    now.checked_sub(len).is_none_or(|edge| second > edge)
}

/// A window's running sum: the buckets from index `from` on are inside the window ending at
/// the ledger's `seen`, the ones before it are outside; `sum` adds up the inside ones.
#[derive(Clone, Default)]
struct Window {
    from: usize,
    sum: u128,
}

/// The spends counted under one chain id of one kind: the total ever, and 1-second buckets
/// over the last day. Two ledgers are equal when they hold the same total and buckets (the
/// running sums are derived from them). `Debug` summarises: a busy ledger holds 86 400
/// buckets.
#[derive(Clone, Default)]
pub struct Ledger {
    total: u128,
    /// `(second, spent in it)`, ascending, no duplicate seconds, no zero amounts.
    seconds: VecDeque<(u64, u128)>,
    /// The latest time seen; the windows' sums are computed at it. Never goes back.
    seen: u64,
    hour: Window,
    day: Window,
}

impl fmt::Debug for Ledger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ledger")
            .field("total", &self.total)
            .field("buckets", &self.seconds.len())
            .field("oldest", &self.seconds.front())
            .field("newest", &self.seconds.back())
            .field("hour", &self.hour.sum)
            .field("day", &self.day.sum)
            .field("seen", &self.seen)
            .finish()
    }
}

impl PartialEq for Ledger {
    fn eq(&self, other: &Ledger) -> bool {
        self.total == other.total && self.seconds == other.seconds
    }
}

impl Eq for Ledger {}

impl Ledger {
    /// A ledger as read from the store: its total and its buckets, `(second, absolute amount
    /// spent in it)`. Defensive about what it reads: buckets are sorted, a second given twice
    /// keeps the larger amount (the later of two absolute records), zero buckets are dropped,
    /// a total below the buckets' sum is raised to it (never forget spend), and buckets older
    /// than a day before the newest are dropped. Time as this ledger sees it starts at its
    /// newest bucket.
    pub fn restore(total: u128, seconds: impl IntoIterator<Item = (u64, u128)>) -> Ledger {
        let mut sorted: Vec<(u64, u128)> = seconds.into_iter().filter(|b| b.1 > 0).collect();
        sorted.sort_unstable();
        let mut buckets: VecDeque<(u64, u128)> = VecDeque::with_capacity(sorted.len());
        for (second, amount) in sorted {
            match buckets.back_mut() {
                Some(last) if last.0 == second => last.1 = last.1.max(amount),
                _ => buckets.push_back((second, amount)),
            }
        }
        let sum = buckets.iter().fold(0u128, |acc, b| acc.saturating_add(b.1));
        let newest = buckets.back().map_or(0, |b| b.0);
        // At `seen` = 0 every bucket is inside both windows; roll forward from there.
        let all = Window { from: 0, sum };
        let mut ledger = Ledger {
            total: total.max(sum),
            seconds: buckets,
            seen: 0,
            hour: all.clone(),
            day: all,
        };
        ledger.roll(newest);
        ledger.drop_older_than_a_day(newest);
        ledger
    }

    /// The total ever spent.
    pub fn total(&self) -> u128 {
        self.total
    }

    /// The buckets held, `(second, spent in it)`, oldest first.
    pub fn buckets(&self) -> impl ExactSizeIterator<Item = (u64, u128)> + '_ {
        self.seconds.iter().copied()
    }

    /// The second a spend at `now` is counted in: `now`, or the latest second this ledger has
    /// seen if the clock stepped back.
    pub fn floor(&self, now: u64) -> u64 {
        now.max(self.seen)
    }

    /// Spent within `period` ending at `now`: for [`Period::Total`] the total; for an hour or
    /// a day the buckets with `second > now - period` (buckets after `now` count too). Costs
    /// nothing beyond the buckets that left the window since the ledger last moved.
    pub fn spent(&self, period: Period, now: u64) -> u128 {
        let Some(len) = period.seconds() else {
            return self.total;
        };
        let w = self.window(period);
        let mut sum = w.sum;
        if now >= self.seen {
            for &(second, amount) in self.seconds.range(w.from..) {
                if in_window(second, len, now) {
                    break;
                }
                sum = sum.saturating_sub(amount);
            }
        } else {
            for &(second, amount) in self.seconds.range(..w.from).rev() {
                if !in_window(second, len, now) {
                    break;
                }
                sum = sum.saturating_add(amount);
            }
        }
        sum
    }

    /// When spending `amount` more fits under `limit` in `period` again, with no further
    /// spend: `None` if it fits at `now`; `Some(Never)` for [`Period::Total`] or an `amount`
    /// over `limit`; otherwise `Some(At(t))`, the earliest second `t` with `spent(period, t) +
    /// amount <= limit` (old buckets having left the window).
    pub fn frees_at(&self, period: Period, limit: u128, amount: u128, now: u64) -> Option<Frees> {
        let spent = self.spent(period, now);
        if spent.checked_add(amount).is_some_and(|s| s <= limit) {
            return None;
        }
        let Some(len) = period.seconds() else {
            return Some(Frees::Never);
        };
        let Some(room) = limit.checked_sub(amount) else {
            return Some(Frees::Never);
        };
        // It fits once at least `spent - room` has left the window; buckets leave oldest
        // first, bucket `s` at second `s + len`.
        let need = spent - room;
        let start = self
            .seconds
            .partition_point(|&(second, _)| !in_window(second, len, now));
        let mut left = 0u128;
        for &(second, amount) in self.seconds.range(start..) {
            left = left.saturating_add(amount);
            if left >= need {
                return Some(Frees::At(second.saturating_add(len)));
            }
        }
        // Unreachable while the sums are exact (below saturation): the whole window leaves.
        Some(Frees::Never)
    }

    /// Adds `amount` at `now` and returns what to persist: `(total, second, in_second)`, the
    /// new total and the second's new absolute amount. A `now` earlier than the latest second
    /// seen counts in that second (see the module docs); buckets older than a day leave.
    pub fn add(&mut self, amount: u128, now: u64) -> (u128, u64, u128) {
        let second = self.floor(now);
        self.roll(second);
        self.total = self.total.saturating_add(amount);
        let in_second = match self.seconds.back_mut() {
            Some(last) if last.0 == second => {
                last.1 = last.1.saturating_add(amount);
                last.1
            }
            _ => {
                if amount > 0 {
                    self.seconds.push_back((second, amount));
                }
                amount
            }
        };
        // The bucket at `seen` is inside both windows.
        for w in [&mut self.hour, &mut self.day] {
            w.sum = w.sum.saturating_add(amount);
        }
        self.drop_older_than_a_day(second);
        (self.total, second, in_second)
    }

    /// Takes back `amount` charged at `second` (a spend that definitely did not happen: a
    /// deposit whose transaction was never sent) and returns what to persist, as
    /// [`Ledger::add`]: `(total, second, in_second)`. The bucket loses at most what it holds
    /// (one that left the ledger's day gives nothing back to the windows); the total loses
    /// `amount`.
    pub fn release(&mut self, amount: u128, second: u64) -> (u128, u64, u128) {
        self.total = self.total.saturating_sub(amount);
        let Ok(at) = self.seconds.binary_search_by_key(&second, |b| b.0) else {
            return (self.total, second, 0);
        };
        let taken = amount.min(self.seconds[at].1);
        self.seconds[at].1 -= taken;
        let left = self.seconds[at].1;
        for w in [&mut self.hour, &mut self.day] {
            if at >= w.from {
                w.sum = w.sum.saturating_sub(taken);
            }
        }
        if left == 0 {
            self.seconds.remove(at);
            for w in [&mut self.hour, &mut self.day] {
                if at < w.from {
                    w.from -= 1;
                }
            }
        }
        (self.total, second, left)
    }

    /// Drops buckets older than a day before `now` (they count in no window ending at or
    /// after it). The total stays.
    pub fn prune(&mut self, now: u64) {
        self.roll(now);
        self.drop_older_than_a_day(now);
    }

    /// The running sum of a window period ([`Period::Total`] has none: callers answer it from
    /// the total first).
    fn window(&self, period: Period) -> &Window {
        match period {
            Period::Hour => &self.hour,
            Period::Day | Period::Total => &self.day,
        }
    }

    /// Moves time as the ledger sees it forward to `now` (never back): buckets that left a
    /// window leave its running sum. Changes nothing [`Ledger::spent`] reports.
    fn roll(&mut self, now: u64) {
        if now <= self.seen {
            return;
        }
        self.seen = now;
        for (w, len) in [(&mut self.hour, HOUR), (&mut self.day, DAY)] {
            while let Some(&(second, amount)) = self.seconds.get(w.from) {
                if in_window(second, len, now) {
                    break;
                }
                w.sum = w.sum.saturating_sub(amount);
                w.from += 1;
            }
        }
    }

    /// Pops the front buckets outside the day window ending at `now`. They lie before both
    /// windows' `from` (outside the day at `now <= seen` means outside it at `seen`, and the
    /// hour is inside the day).
    fn drop_older_than_a_day(&mut self, now: u64) {
        while self.day.from > 0 {
            match self.seconds.front() {
                Some(&(second, _)) if !in_window(second, DAY, now) => {
                    self.seconds.pop_front();
                    self.day.from -= 1;
                    self.hour.from -= 1;
                }
                _ => break,
            }
        }
    }
}

/// When a refused spend would fit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frees {
    /// At this second (Unix), as older spends leave the window.
    At(u64),
    /// Never: a total budget, or an amount over the whole budget.
    Never,
}

/// A refused spend: which budget, how much of it was spent, the amount, and when it frees.
/// Shown in token units; names the budget's chain id, never anything secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", Explain(self))]
pub struct OverBudget {
    /// The chain id the budget is counted under.
    pub cid: ChainId,
    /// What the budget counts.
    pub kind: Kind,
    /// The budget's period.
    pub period: Period,
    /// The budget, base units.
    pub limit: u128,
    /// Spent within the period, base units.
    pub spent: u128,
    /// The refused spend, base units.
    pub amount: u128,
    /// When the spend would fit.
    pub frees: Frees,
    /// The token's decimals, to state amounts in token units.
    pub decimals: u8,
}

struct Explain<'a>(&'a OverBudget);

impl fmt::Display for Explain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let o = self.0;
        let units = |v| Units(v, o.decimals);
        let which = match o.kind {
            Kind::Pay => "",
            Kind::Deposit => "deposit ",
        };
        write!(
            f,
            "{} of {} is over this credential's {} {which}budget ({}): {} of {} spent; ",
            o.kind.noun(),
            units(o.amount),
            o.period.as_str(),
            o.cid,
            units(o.spent),
            units(o.limit),
        )?;
        match o.frees {
            Frees::At(t) => write!(f, "budget frees enough at {} (unix {t})", Utc(t)),
            Frees::Never if o.amount > o.limit => f.write_str(
                "the amount alone is over the budget, so it never fits: spend less, or ask \
                 the operator for a new credential",
            ),
            Frees::Never => f.write_str("it never frees: ask the operator for a new credential"),
        }
    }
}

/// One ledger's records to persist after an admitted spend: the new total and the absolute
/// amount of the second the spend counted in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Update {
    /// The ledger's chain id.
    pub cid: ChainId,
    /// The ledger's kind.
    pub kind: Kind,
    /// The total ever spent, after the spend.
    pub total: u128,
    /// The second the spend counted in.
    pub second: u64,
    /// Everything spent in that second, after the spend.
    pub in_second: u128,
}

/// The ledgers of a node, by chain id and kind. A ledger that is absent has spent nothing
/// (any spend writes its records with its proof).
#[derive(Debug, Default)]
pub struct Ledgers {
    map: HashMap<(ChainId, Kind), Ledger>,
}

impl Ledgers {
    /// The ledgers as read from the store. A key given twice is merged as
    /// [`Ledger::restore`] merges a repeated second (the larger total and amounts).
    pub fn restore(rows: impl IntoIterator<Item = ((ChainId, Kind), Ledger)>) -> Ledgers {
        let mut map: HashMap<(ChainId, Kind), Ledger> = HashMap::new();
        for (key, ledger) in rows {
            match map.entry(key) {
                Entry::Vacant(e) => {
                    e.insert(ledger);
                }
                Entry::Occupied(mut e) => {
                    let old = e.get();
                    let merged = Ledger::restore(
                        old.total.max(ledger.total),
                        old.buckets().chain(ledger.buckets()),
                    );
                    e.insert(merged);
                }
            }
        }
        Ledgers { map }
    }

    /// Admits a spend of `amount` of `kind` at `now` against every budget of that kind in
    /// `budgets` (a credential's [`Effective::budgets`](crate::Effective), in chain order). If
    /// all fit, adds it once to each distinct chain id's ledger (even one carrying two
    /// periods) and returns the records to persist, in chain order; otherwise changes nothing
    /// and returns the first refusal in chain order. A spend with no budget of its kind, or
    /// of zero, returns no records. Costs O(budgets) plus amortised bucket pruning.
    pub fn admit(
        &mut self,
        budgets: &[Budget],
        kind: Kind,
        amount: u128,
        now: u64,
        decimals: u8,
    ) -> Result<Vec<Update>, OverBudget> {
        let empty = Ledger::default();
        for b in budgets.iter().filter(|b| b.kind == kind) {
            let ledger = self.map.get(&(b.cid, kind)).unwrap_or(&empty);
            let at = ledger.floor(now);
            let spent = ledger.spent(b.period, at);
            let fits = spent.checked_add(amount).is_some_and(|s| s <= b.limit)
                && ledger.total.checked_add(amount).is_some();
            if !fits {
                return Err(OverBudget {
                    cid: b.cid,
                    kind,
                    period: b.period,
                    limit: b.limit,
                    spent,
                    amount,
                    frees: ledger
                        .frees_at(b.period, b.limit, amount, at)
                        .unwrap_or(Frees::Never),
                    decimals,
                });
            }
        }
        let mut updates: Vec<Update> = Vec::new();
        if amount == 0 {
            return Ok(updates);
        }
        for b in budgets.iter().filter(|b| b.kind == kind) {
            if updates.iter().any(|u| u.cid == b.cid) {
                continue;
            }
            let ledger = self.map.entry((b.cid, kind)).or_default();
            let (total, second, in_second) = ledger.add(amount, now);
            updates.push(Update {
                cid: b.cid,
                kind,
                total,
                second,
                in_second,
            });
        }
        Ok(updates)
    }

    /// Takes back `amount` charged to ledger `cid`/`kind` at `second` (see
    /// [`Ledger::release`]); the record to persist, if the ledger exists.
    pub fn release(
        &mut self,
        cid: ChainId,
        kind: Kind,
        amount: u128,
        second: u64,
    ) -> Option<Update> {
        let ledger = self.map.get_mut(&(cid, kind))?;
        let (total, second, in_second) = ledger.release(amount, second);
        Some(Update {
            cid,
            kind,
            total,
            second,
            in_second,
        })
    }

    /// The ledger of `cid` and `kind`, if anything was ever spent under it.
    pub fn ledger(&self, cid: ChainId, kind: Kind) -> Option<&Ledger> {
        self.map.get(&(cid, kind))
    }

    /// Every ledger, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (ChainId, Kind, &Ledger)> + '_ {
        self.map.iter().map(|(&(cid, kind), l)| (cid, kind, l))
    }

    /// Drops every ledger's buckets older than a day before `now`; totals stay.
    pub fn prune(&mut self, now: u64) {
        self.map.values_mut().for_each(|l| l.prune(now));
    }

    /// Each of a credential's `budgets` (either kind) with what was spent of it and what is
    /// left at `now`: `(budget, spent, remaining)`, for `whoami` and `show`.
    pub fn remaining(&self, budgets: &[Budget], now: u64) -> Vec<(Budget, u128, u128)> {
        budgets
            .iter()
            .map(|b| {
                let spent = self
                    .map
                    .get(&(b.cid, b.kind))
                    .map_or(0, |l| l.spent(b.period, l.floor(now)));
                (b.clone(), spent, b.limit.saturating_sub(spent))
            })
            .collect()
    }
}

#[cfg(test)]
mod release_tests;
#[cfg(test)]
mod tests;
