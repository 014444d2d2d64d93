//! Idempotency keys: a payment made under a key is made once, across retries and restarts.
//!
//! The key is written in the same synced batch as the proof it pays with (durability rule 10).
//! Between signing and that write being durable, the key is filed in memory; the store answers
//! for it afterwards. One keyed payment is checked, signed and filed at a time, in a task of its
//! own: a caller that goes away cannot leave a payment signed whose key is not filed.

use std::collections::HashMap;
use std::sync::Arc;

use alloy::primitives::Address;
use farthing_core::ChannelId;
use farthing_peer::message::Memo;
use farthing_store::{KeyedPayment, Store};

use crate::payments::delivery::Delivered;
use crate::payments::{Paid, PayError, Payments, Spender};

/// A keyed payment: made now (signed, its key filed), or made earlier under the same key.
pub(crate) enum Keyed {
    /// Signed now; its delivery is awaited.
    New(Paid, Delivered),
    /// Made earlier: nothing is signed.
    Earlier(KeyedPayment),
}

/// The keys filed in memory until their record is durable, over the store's durable ones.
pub(crate) struct Keys {
    filed: tokio::sync::Mutex<HashMap<String, KeyedPayment>>,
    store: Arc<dyn Store>,
}

impl Keys {
    /// Keys over `store`'s records.
    pub(crate) fn new(store: Arc<dyn Store>) -> Self {
        Self {
            filed: tokio::sync::Mutex::default(),
            store,
        }
    }

    /// Whether a payment was already made under `key` (filed in memory or in the store).
    pub(crate) async fn used(&self, key: &str) -> bool {
        if self.filed.lock().await.contains_key(key) {
            return true;
        }
        matches!(self.store.keyed_payment(key), Ok(Some(_)))
    }

    /// Forget the keys never made durable (the table was reloaded from the store).
    pub(crate) async fn forget_undurable(&self) {
        self.filed.lock().await.clear();
    }
}

impl Payments {
    /// Pay under idempotency `key` unless it was used, in a task of its own (see the module
    /// docs).
    pub(crate) async fn pay_keyed(
        self: &Arc<Self>,
        id: ChannelId,
        partner: Address,
        amount: u128,
        memo: Memo,
        key: &str,
        spender: Option<Spender>,
    ) -> Result<Keyed, PayError> {
        let (payments, key) = (self.clone(), key.to_owned());
        self.tasks
            .run("keyed payment", async move {
                payments
                    .file_keyed(id, partner, amount, memo, key, spender)
                    .await
            })
            .await
            .unwrap_or(Err(PayError::SignerStopped(id)))
    }

    /// The key is filed in memory (until its record, written with the proof, is durable)
    /// before the keys' lock goes.
    async fn file_keyed(
        self: Arc<Self>,
        id: ChannelId,
        partner: Address,
        amount: u128,
        memo: Memo,
        key: String,
        spender: Option<Spender>,
    ) -> Result<Keyed, PayError> {
        let mut filed = self.keys.filed.lock().await;
        let earlier = match filed.get(&key) {
            Some(earlier) => Some(*earlier),
            None => self.keys.store.keyed_payment(&key)?,
        };
        if let Some(earlier) = earlier {
            return Ok(Keyed::Earlier(earlier));
        }
        let (paid, delivered) = self
            .sign_queued(id, partner, amount, memo, Some(&key), spender)
            .await?;
        let record = KeyedPayment {
            channel: id,
            nonce: paid.nonce,
            amount,
        };
        filed.insert(key.clone(), record);
        drop(filed);
        // Once the key's record is durable the store answers for it (whether or not the caller
        // still waits).
        let durable = self.table.flushed();
        let payments = self.clone();
        self.tasks
            .spawn_counted("idempotency key filing", async move {
                if durable.await.is_ok() {
                    let mut filed = payments.keys.filed.lock().await;
                    if filed.get(&key) == Some(&record) {
                        filed.remove(&key);
                    }
                }
            });
        Ok(Keyed::New(paid, delivered))
    }
}
