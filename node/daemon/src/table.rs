//! The channel table: every channel of the node as last made durable or being made durable,
//! with the two flags that stop a channel from signing (frozen by a co-signed close, stale data).
//! The one place the watcher, payments and co-signing change channels.
//!
//! A change happens under the table's lock and queues its synced write (through the group
//! committer) before the lock is released ([`Locked::commit`] does both, so no caller can do one
//! without the other): writes reach the store in the order the table changed, and a newer
//! record is never overwritten by an older snapshot. What a change produced — a signature, an
//! acknowledgement — leaves the process only once the returned [`Durable`] resolves
//! (ARCHITECTURE.md, durability rule 1).
//!
//! ## Lock order
//!
//! This is the only place the daemon's lock order is written; every other lock is a leaf.
//!
//! 1. The watcher's turn (`chain::watcher`, a tokio mutex: one pass at a time). The store
//!    guard holds it while it reloads the table and forgets undurable idempotency keys.
//! 2. The idempotency keys (`payments::idempotency`, a tokio mutex held while one keyed payment
//!    is checked and signed).
//! 3. **The table** (this std mutex, never held across an `.await`).
//! 4. Leaves, never held while taking another lock; some are taken briefly under the table's
//!    lock: the group committer's queue, the link registry's map (and a replaced link's
//!    pending answers), a link's outgoing queue (lock-free), the delivery tracker
//!    (`payments::delivery`), the store's health, the task set. Never under it: the outboxes,
//!    the kept partners (`link::kept`: its map, then an entry's state, nothing else).

use std::collections::{BTreeMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Mutex, MutexGuard, PoisonError};

use alloy::primitives::Address;
use farthing_core::{Channel, ChannelId};
use farthing_credential::ledger::{Ledgers, OverBudget};
use farthing_credential::{Budget, Kind};
use farthing_store::{CredentialSpend, GroupCommit, LedgerId, StoreError, Write};

/// A write on its way to disk: resolves once it is durable (with every write queued before it).
pub(crate) type Durable = Pin<Box<dyn Future<Output = Result<(), StoreError>> + Send>>;

/// Why the node may not sign on a channel (the store's health is checked apart).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Blocked {
    /// A cooperative close was signed: no payment either way, for good.
    Frozen,
    /// The partner or the chain holds a newer proof of ours than this node: why.
    Stale(String),
}

/// The table. Shared behind an `Arc` by the components that read or change channels.
pub(crate) struct ChannelTable {
    inner: Mutex<Inner>,
    group: GroupCommit,
}

struct Inner {
    channels: BTreeMap<ChannelId, Channel>,
    /// Channels whose cooperative close this node signed (or asked for): durable as `clos/ID`.
    frozen: HashSet<ChannelId>,
    /// Channels whose data is older than what the partner or the chain holds: why (in memory;
    /// found again after a restart by the next Sync or watcher pass).
    stale: BTreeMap<ChannelId, String>,
    /// Every partner of a channel here (a channel's partner never changes), so that whether a
    /// peer shares a channel is one lookup, not a scan under the lock.
    partners: HashSet<Address>,
    /// What agents' credentials have spent (issue 15): changed with the proofs and deposits
    /// that spend, under this lock, and written in their synced batches.
    ledgers: Ledgers,
}

/// The table while locked: what a change reads and how it commits.
pub(crate) struct Locked<'a> {
    inner: MutexGuard<'a, Inner>,
    group: &'a GroupCommit,
}

impl ChannelTable {
    /// The table holding `channels`, `frozen` ones frozen, writing through `group`.
    #[cfg(test)]
    pub(crate) fn new(channels: Vec<Channel>, frozen: Vec<ChannelId>, group: GroupCommit) -> Self {
        Self::with_ledgers(channels, frozen, Ledgers::default(), group)
    }

    /// [`ChannelTable::new`], with the credentials' ledgers as read from the store.
    pub(crate) fn with_ledgers(
        channels: Vec<Channel>,
        frozen: Vec<ChannelId>,
        ledgers: Ledgers,
        group: GroupCommit,
    ) -> Self {
        Self {
            inner: Mutex::new(Inner {
                partners: channels.iter().map(|c| c.partner).collect(),
                channels: channels.into_iter().map(|c| (c.id, c)).collect(),
                frozen: frozen.into_iter().collect(),
                stale: BTreeMap::new(),
                ledgers,
            }),
            group,
        }
    }

    /// Each of `budgets` with what was spent of it and what is left at `now`.
    pub(crate) fn budgets_left(&self, budgets: &[Budget], now: u64) -> Vec<(Budget, u128, u128)> {
        self.lock().inner.ledgers.remaining(budgets, now)
    }

    /// Every ledger's total spent, by chain id and kind (for the metrics).
    pub(crate) fn ledger_totals(&self) -> Vec<(farthing_credential::ChainId, Kind, u128)> {
        let table = self.lock();
        table
            .inner
            .ledgers
            .iter()
            .map(|(cid, kind, ledger)| (cid, kind, ledger.total()))
            .collect()
    }

    /// Lock the table for a change (never hold it across an `.await`).
    pub(crate) fn lock(&self) -> Locked<'_> {
        Locked {
            inner: self.inner.lock().unwrap_or_else(PoisonError::into_inner),
            group: &self.group,
        }
    }

    /// One channel, as it stands (including changes being made durable).
    pub(crate) fn get(&self, id: ChannelId) -> Option<Channel> {
        self.lock().channel(id).cloned()
    }

    /// Every channel, by id.
    pub(crate) fn all(&self) -> Vec<Channel> {
        self.lock().channels().cloned().collect()
    }

    /// The partner of channel `id` (without copying the record).
    pub(crate) fn partner_of(&self, id: ChannelId) -> Option<Address> {
        self.lock().channel(id).map(|c| c.partner)
    }

    /// Whether `peer` is the partner of a channel here (any state).
    pub(crate) fn shares_channel_with(&self, peer: Address) -> bool {
        self.lock().inner.partners.contains(&peer)
    }

    /// The nonce of our latest proof on channel `id` (0: none).
    #[cfg(test)]
    pub(crate) fn our_nonce(&self, id: ChannelId) -> u64 {
        self.lock().channel(id).map_or(0, Channel::our_nonce)
    }

    /// Whether channel `id` is frozen.
    pub(crate) fn is_frozen(&self, id: ChannelId) -> bool {
        self.lock().is_frozen(id)
    }

    /// Why channel `id` is stale, if it is.
    pub(crate) fn stale_reason(&self, id: ChannelId) -> Option<String> {
        self.lock().stale(id).map(str::to_owned)
    }

    /// Why each stale channel is stale.
    pub(crate) fn stale_reasons(&self) -> Vec<String> {
        self.lock().inner.stale.values().cloned().collect()
    }

    /// The partner or the chain (`by`) holds our proof `seen` of channel `id`: if that is newer
    /// than the latest this node knows, its data is stale (restored from an old copy?). The
    /// channel then signs nothing and will not close until the operator acts (a nonce signed
    /// again with other contents would let the partner pick the proof that pays it more).
    pub(crate) fn note_seen(&self, id: ChannelId, seen: u64, by: &str) {
        let mut table = self.lock();
        let Some(holds) = table.channel(id).map(|c| c.partner_holds(seen)) else {
            return;
        };
        if !holds.ahead {
            return;
        }
        let ours = table.channel(id).map_or(0, Channel::our_nonce);
        let reason = format!(
            "channel {id}: {by} holds our proof nonce {seen} but this node's latest is {ours}: \
             its data is older than what it signed (restored from an old backup?); it signs \
             nothing and will not close this channel with stale data: restore the latest data \
             directory, or close from the node that holds it"
        );
        if table.inner.stale.get(&id) != Some(&reason) {
            tracing::error!("{reason}");
            table.inner.stale.insert(id, reason);
        }
    }

    /// Resolves once every write queued so far is durable (an empty group commit).
    pub(crate) fn flushed(&self) -> Durable {
        Box::pin(self.group.submit(Vec::new()))
    }

    /// The group committer (its statistics, resuming it after a store failure).
    pub(crate) fn group(&self) -> &GroupCommit {
        &self.group
    }

    /// Replace every channel and the frozen set with what the store holds (after a store
    /// failure: whatever was changed in memory but never made durable is dropped — a freeze
    /// whose closing mark never landed too, since no close signature left before it).
    pub(crate) fn reload(&self, channels: Vec<Channel>, frozen: Vec<ChannelId>, ledgers: Ledgers) {
        let mut table = self.lock();
        table.inner.partners = channels.iter().map(|c| c.partner).collect();
        table.inner.channels = channels.into_iter().map(|c| (c.id, c)).collect();
        table.inner.frozen = frozen.into_iter().collect();
        table.inner.ledgers = ledgers;
    }
}

impl Locked<'_> {
    /// One channel.
    pub(crate) fn channel(&self, id: ChannelId) -> Option<&Channel> {
        self.inner.channels.get(&id)
    }

    /// Every channel, by id.
    pub(crate) fn channels(&self) -> impl Iterator<Item = &Channel> {
        self.inner.channels.values()
    }

    /// The table as a map, for the watcher to fold events into a copy.
    pub(crate) fn snapshot(&self) -> BTreeMap<ChannelId, Channel> {
        self.inner.channels.clone()
    }

    /// Whether channel `id` is frozen.
    pub(crate) fn is_frozen(&self, id: ChannelId) -> bool {
        self.inner.frozen.contains(&id)
    }

    /// Why channel `id` is stale, if it is.
    pub(crate) fn stale(&self, id: ChannelId) -> Option<&str> {
        self.inner.stale.get(&id).map(String::as_str)
    }

    /// Whether the node may sign a new proof or co-signature on channel `id`.
    pub(crate) fn may_sign(&self, id: ChannelId) -> Result<(), Blocked> {
        if self.is_frozen(id) {
            return Err(Blocked::Frozen);
        }
        match self.stale(id) {
            Some(reason) => Err(Blocked::Stale(reason.to_owned())),
            None => Ok(()),
        }
    }

    /// Charge a spend of `amount` of `kind` at `now` to every budget in `budgets` (a
    /// credential's, in chain order) if all of them allow it: the writes to put in the
    /// spend's own synced batch. Refused, nothing changes.
    pub(crate) fn charge(
        &mut self,
        budgets: &[Budget],
        kind: Kind,
        amount: u128,
        now: u64,
        decimals: u8,
    ) -> Result<Vec<Write>, OverBudget> {
        let updates = self
            .inner
            .ledgers
            .admit(budgets, kind, amount, now, decimals)?;
        Ok(updates.iter().map(spend_write).collect())
    }

    /// Take back a charge of `amount` whose records were `charged` (from [`Locked::charge`]):
    /// the writes that persist the release.
    pub(crate) fn release(&mut self, charged: &[Write], amount: u128) -> Vec<Write> {
        charged
            .iter()
            .filter_map(|w| match w {
                Write::CredentialSpend(spend) => Some(spend),
                _ => None,
            })
            .filter_map(|spend| {
                let kind = Kind::from_tag(spend.ledger.kind)?;
                let cid = farthing_credential::ChainId(spend.ledger.cid);
                self.inner
                    .ledgers
                    .release(cid, kind, amount, spend.second)
                    .map(|u| spend_write(&u))
            })
            .collect()
    }

    /// Queue `writes` alone as one synced batch (a deposit's budget charge, made durable
    /// before its transaction leaves).
    pub(crate) fn commit_writes(&mut self, writes: Vec<Write>) -> Durable {
        Box::pin(self.group.submit(writes))
    }

    /// Replace the channel's record with `channel` and queue its synced write, with `extra`
    /// writes in the same batch (idempotency keys written with the proof they pay with).
    pub(crate) fn commit(&mut self, channel: Channel, extra: Vec<Write>) -> Durable {
        let mut writes = Vec::with_capacity(1 + extra.len());
        writes.push(Write::Channel(channel.clone()));
        writes.extend(extra);
        self.inner.partners.insert(channel.partner);
        self.inner.channels.insert(channel.id, channel);
        Box::pin(self.group.submit(writes))
    }

    /// Replace several records and queue their writes with `extra` (a watcher pass: the
    /// changed channels and the new cursor) as one synced batch.
    pub(crate) fn commit_all(&mut self, channels: Vec<Channel>, extra: Vec<Write>) -> Durable {
        let mut writes: Vec<Write> = Vec::with_capacity(channels.len() + extra.len());
        for channel in channels {
            writes.push(Write::Channel(channel.clone()));
            self.inner.partners.insert(channel.partner);
            self.inner.channels.insert(channel.id, channel);
        }
        writes.extend(extra);
        Box::pin(self.group.submit(writes))
    }

    /// Stop every payment on channel `id` for good: a cooperative close of it is being signed
    /// (a co-signed close has no expiry, so a later payment could be undone by it). At once in
    /// memory; the returned write makes it durable, and no close signature may leave before it
    /// is (across a restart the channel stays frozen).
    pub(crate) fn freeze(&mut self, id: ChannelId) -> Durable {
        self.inner.frozen.insert(id);
        Box::pin(self.group.submit(vec![Write::Closing(id)]))
    }
}

/// The record of a ledger's new state.
fn spend_write(u: &farthing_credential::ledger::Update) -> Write {
    Write::CredentialSpend(CredentialSpend {
        ledger: LedgerId {
            cid: u.cid.0,
            kind: u.kind.tag(),
        },
        total: u.total,
        second: u.second,
        in_second: u.in_second,
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use farthing_core::{ChainEvent, apply};
    use farthing_store::{MemStore, Store};

    use super::*;

    const US: Address = Address::repeat_byte(0xa);
    const PARTNER: Address = Address::repeat_byte(0xb);

    fn channel(id: ChannelId) -> Channel {
        let opened = ChainEvent::Opened {
            id,
            a: US,
            b: PARTNER,
            token: Address::repeat_byte(7),
            deposit_a: 100,
            challenge_period: 60,
        };
        apply(None, &opened, US, 1).expect("our channel")
    }

    fn table(store: &Arc<MemStore>) -> ChannelTable {
        ChannelTable::new(
            vec![channel(1), channel(2)],
            vec![2],
            GroupCommit::new(store.clone()),
        )
    }

    #[tokio::test]
    async fn a_commit_changes_the_table_at_once_and_the_store_once_durable() {
        let store = Arc::new(MemStore::default());
        let table = table(&store);
        let mut next = channel(1);
        next.on_chain.deposit_b = 5;
        let durable = table.lock().commit(next.clone(), Vec::new());
        assert_eq!(
            table.get(1),
            Some(next.clone()),
            "visible before it is durable"
        );
        durable.await.expect("durable");
        assert_eq!(store.channel(1).expect("read"), Some(next));
    }

    #[tokio::test]
    async fn whether_a_peer_shares_a_channel_is_kept_with_the_records() {
        let store = Arc::new(MemStore::default());
        let table = table(&store);
        assert!(table.shares_channel_with(PARTNER));
        let carol = Address::repeat_byte(0xc);
        assert!(!table.shares_channel_with(carol));
        let mut with_carol = channel(7);
        with_carol.partner = carol;
        let durable = table.lock().commit(with_carol.clone(), Vec::new());
        durable.await.expect("durable");
        assert!(table.shares_channel_with(carol));
        table.reload(vec![channel(1)], Vec::new(), Ledgers::default());
        assert!(!table.shares_channel_with(carol), "reloaded without it");
        assert!(table.shares_channel_with(PARTNER));
    }

    #[tokio::test]
    async fn frozen_and_stale_channels_sign_nothing() {
        let store = Arc::new(MemStore::default());
        let table = table(&store);
        assert_eq!(table.lock().may_sign(1), Ok(()));
        assert_eq!(table.lock().may_sign(2), Err(Blocked::Frozen));
        let frozen = table.lock().freeze(1);
        frozen.await.expect("durable");
        assert_eq!(store.closing_channels().expect("read"), vec![1]);
        assert!(table.is_frozen(1));

        // Seen at or below our nonce: nothing; above it: stale, with the reason.
        let fresh = ChannelTable::new(vec![channel(3)], vec![], GroupCommit::new(store.clone()));
        fresh.note_seen(3, 0, "the partner");
        assert_eq!(fresh.lock().may_sign(3), Ok(()));
        fresh.note_seen(3, 4, "the partner");
        let Err(Blocked::Stale(reason)) = fresh.lock().may_sign(3) else {
            panic!("stale expected");
        };
        assert!(reason.contains("the partner holds our proof nonce 4 but this node's latest is 0"));
        assert_eq!(fresh.stale_reasons(), vec![reason]);
    }
}
