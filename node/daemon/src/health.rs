//! The node's health as the RPC reports it, and the store's: what makes the node degraded (it
//! takes no new risk and says why).
//!
//! Every commit goes through [`Watched`], which notices a failed commit and sets
//! [`StoreHealth`] failing: from then on the node signs and acknowledges nothing (RELIABILITY
//! D3) until the store guard (`storeguard.rs`) sees a real synced write land again.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use farthing_core::{Channel, ChannelId};
use farthing_store::{Cursor, KeyedPayment, PendingTx, Store, StoreError, Write};

/// The node's health, as the RPC reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Health {
    /// Newest block whose events are applied.
    pub synced_block: u64,
    /// Newest block the chain reported.
    pub chain_head: u64,
    /// Why the node is degraded (empty when healthy).
    pub problems: Vec<String>,
}

/// The store's state as the node sees it.
#[derive(Debug, Default)]
pub(crate) struct StoreHealth {
    /// A commit failed and the node has not recovered yet.
    failing: AtomicBool,
    /// The first failure's text.
    problem: Mutex<Option<String>>,
}

impl StoreHealth {
    /// Whether the node must sign and acknowledge nothing.
    pub(crate) fn is_failing(&self) -> bool {
        self.failing.load(Ordering::SeqCst)
    }

    /// Why the store fails, if it does (one atomic load when it does not: the hot path).
    pub(crate) fn failing(&self) -> Option<String> {
        if !self.is_failing() {
            return None;
        }
        Some(
            self.problem()
                .unwrap_or_else(|| "the store is failing".into()),
        )
    }

    /// Nothing is signed or accepted while the store fails.
    pub(crate) fn require(&self) -> Result<(), StoreError> {
        match self.failing() {
            None => Ok(()),
            Some(reason) => Err(StoreError::Unavailable { reason }),
        }
    }

    /// The problem, for the health report.
    pub(crate) fn problem(&self) -> Option<String> {
        self.problem
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn failed(&self, e: &StoreError) {
        let mut problem = self.problem.lock().unwrap_or_else(PoisonError::into_inner);
        if problem.is_none() {
            let text = format!(
                "store: {e}; the node signs and acknowledges nothing until a write succeeds again"
            );
            tracing::error!("{text}");
            *problem = Some(text);
        }
        self.failing.store(true, Ordering::SeqCst);
    }

    /// A probe write landed and the table is reloaded: the node resumes.
    pub(crate) fn recovered(&self) {
        *self.problem.lock().unwrap_or_else(PoisonError::into_inner) = None;
        self.failing.store(false, Ordering::SeqCst);
    }
}

/// A store that reports failed commits to the node's [`StoreHealth`].
pub(crate) struct Watched {
    pub(crate) inner: Arc<dyn Store>,
    pub(crate) health: Arc<StoreHealth>,
}

impl Store for Watched {
    fn channel(&self, id: ChannelId) -> farthing_store::Result<Option<Channel>> {
        self.inner.channel(id)
    }
    fn channels(&self) -> farthing_store::Result<Vec<Channel>> {
        self.inner.channels()
    }
    fn cursor(&self) -> farthing_store::Result<Option<Cursor>> {
        self.inner.cursor()
    }
    fn pending_txs(&self) -> farthing_store::Result<Vec<PendingTx>> {
        self.inner.pending_txs()
    }
    fn keyed_payment(&self, key: &str) -> farthing_store::Result<Option<KeyedPayment>> {
        self.inner.keyed_payment(key)
    }
    fn redeemed(&self, challenge: &str) -> farthing_store::Result<Option<KeyedPayment>> {
        self.inner.redeemed(challenge)
    }
    fn closing_channels(&self) -> farthing_store::Result<Vec<ChannelId>> {
        self.inner.closing_channels()
    }
    fn owner(&self) -> farthing_store::Result<Option<alloy::primitives::Address>> {
        self.inner.owner()
    }
    fn walk_payments(
        &self,
        walk: farthing_store::LogWalk,
        each: &mut dyn FnMut(farthing_store::LoggedPayment) -> bool,
    ) -> farthing_store::Result<()> {
        self.inner.walk_payments(walk, each)
    }
    fn credential_spends(
        &self,
        since: u64,
    ) -> farthing_store::Result<farthing_store::CredentialSpends> {
        self.inner.credential_spends(since)
    }
    fn revoked_credentials(&self) -> farthing_store::Result<Vec<([u8; 16], u64)>> {
        self.inner.revoked_credentials()
    }
    fn issued_credentials(&self) -> farthing_store::Result<Vec<farthing_store::IssuedCredential>> {
        self.inner.issued_credentials()
    }
    fn commit(&self, writes: &[Write]) -> farthing_store::Result<()> {
        let result = self.inner.commit(writes);
        if let Err(e) = &result
            && !matches!(e, StoreError::Unencodable(_))
        {
            self.health.failed(e);
        }
        result
    }
    fn close(&self) {
        self.inner.close();
    }
    fn location(&self) -> String {
        self.inner.location()
    }
}

#[cfg(test)]
mod tests {
    use farthing_store::MemStore;
    use farthing_store::testing::FailingStore;

    use super::*;

    #[test]
    fn a_failed_commit_makes_the_store_failing_until_it_recovers() {
        let health = Arc::new(StoreHealth::default());
        let failing = FailingStore::new(MemStore::default());
        let switch = failing.switch();
        let store = Watched {
            inner: Arc::new(failing),
            health: health.clone(),
        };
        assert!(store.commit(&[Write::RemovePendingTx(1)]).is_ok());
        assert_eq!(health.failing(), None);
        switch.fail();
        assert!(store.commit(&[Write::RemovePendingTx(1)]).is_err());
        let reason = health.failing().expect("failing");
        assert!(
            reason.contains("signs and acknowledges nothing"),
            "{reason}"
        );
        assert!(health.require().is_err());
        health.recovered();
        assert!(health.require().is_ok());
    }
}
