//! Recent payments, per channel, and their live stream. Kept in memory (PROTOCOL.md: history,
//! if kept, is separate from the channel state and may lag): the channel's balances never
//! depend on it, and a restart starts it empty.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use farthing_core::ChannelId;
use tokio::sync::broadcast;

/// Payments kept per channel.
pub const RECENT_PER_CHANNEL: usize = 1_000;

/// One payment, made or received, once durable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payment {
    /// The channel.
    pub channel: ChannelId,
    /// We paid (`true`) or were paid.
    pub outgoing: bool,
    /// The nonce of the proof that carried it.
    pub nonce: u64,
    /// The amount, base units.
    pub amount: u128,
    /// Unix milliseconds when it became durable here.
    pub at_ms: u64,
    /// The payer's memo (not signed; empty if none).
    pub memo: Vec<u8>,
    /// An incoming amount no payment of its proof claimed: the proof moved more than its
    /// payments (a payment whose own frame was lost or refused earlier, carried by this
    /// cumulative proof, or a proof taken from the partner's Sync). With these, incoming
    /// entries add up to what the channel received.
    pub carried: bool,
}

/// The recent payments and their live stream.
pub(crate) struct History {
    recent: Mutex<HashMap<ChannelId, VecDeque<Payment>>>,
    events: broadcast::Sender<Payment>,
}

impl Default for History {
    fn default() -> Self {
        Self {
            recent: Mutex::default(),
            events: broadcast::channel(4_096).0,
        }
    }
}

impl History {
    pub(crate) fn record(
        &self,
        channel: ChannelId,
        outgoing: bool,
        nonce: u64,
        amount: u128,
        memo: Vec<u8>,
        carried: bool,
    ) {
        let at_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let payment = Payment {
            channel,
            outgoing,
            nonce,
            amount,
            at_ms,
            memo,
            carried,
        };
        {
            let mut recent = self.recent.lock().unwrap_or_else(PoisonError::into_inner);
            let list = recent.entry(channel).or_default();
            if list.len() == RECENT_PER_CHANNEL {
                list.pop_front();
            }
            list.push_back(payment.clone());
        }
        let _ = self.events.send(payment);
    }

    pub(crate) fn recent(&self, channel: ChannelId, limit: usize) -> Vec<Payment> {
        let recent = self.recent.lock().unwrap_or_else(PoisonError::into_inner);
        recent.get(&channel).map_or_else(Vec::new, |list| {
            list.iter()
                .skip(list.len().saturating_sub(limit))
                .cloned()
                .collect()
        })
    }

    pub(crate) fn subscribe(&self) -> broadcast::Receiver<Payment> {
        self.events.subscribe()
    }
}
