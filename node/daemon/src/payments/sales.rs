//! Sales: incoming payments that pay for a gateway's challenge, and their redemption.
//!
//! A buyer pays for one HTTP request through its channel with a memo `402:<challenge>` (plus,
//! after a space, the URL, for the history). The receiver files each such payment here when
//! it queues the proof's synced write (before any acknowledgement can leave), and the gateway
//! in front of the seller's API redeems the challenge before it lets the request through:
//! the payment must be durable, pay at least the price, and serve one request only — the
//! redemption is written (`rdm/<challenge>`) and durable before it is answered, so a replayed
//! header is refused across restarts too.
//!
//! Unredeemed sales are kept for [`KEEP`] (at most [`MAX_OPEN`] of them, oldest dropped
//! first): a buyer that paid and never came back can be refunded by the seller from the
//! history, where every payment stays with its memo.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use alloy::primitives::Address;
use farthing_core::ChannelId;
use farthing_store::{KeyedPayment, LogWalk, Store, StoreError, Write};

use crate::table::ChannelTable;

/// The memo prefix of a payment for a gateway's challenge.
pub const SALE_MEMO_PREFIX: &[u8] = b"402:";

/// How long an unredeemed sale stays redeemable.
pub const KEEP: Duration = Duration::from_secs(3600);

/// Most unredeemed sales kept at once.
pub const MAX_OPEN: usize = 200_000;

/// The challenge a memo pays for, if it is a sale's: `402:<challenge>[ <anything>]`.
pub fn challenge_of(memo: &[u8]) -> Option<&str> {
    let rest = memo.strip_prefix(SALE_MEMO_PREFIX)?;
    let end = rest.iter().position(|&b| b == b' ').unwrap_or(rest.len());
    let challenge = std::str::from_utf8(&rest[..end]).ok()?;
    (!challenge.is_empty() && challenge.len() <= farthing_store::records::MAX_PAYMENT_KEY_LEN)
        .then_some(challenge)
}

/// A sale: the incoming payment that paid for a challenge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sale {
    /// The channel it came on.
    pub channel: ChannelId,
    /// The nonce of the proof that carried it.
    pub nonce: u64,
    /// The amount, base units.
    pub amount: u128,
    /// When it was filed (Unix ms): when it reached this node.
    pub at_ms: u64,
}

/// Why a challenge cannot be redeemed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RedeemError {
    /// No payment for it arrived (or it was kept past [`KEEP`]).
    #[error("no payment for challenge {0} has reached this node")]
    Unpaid(String),
    /// It already served a request.
    #[error("challenge {0} was already redeemed: its payment served a request already")]
    Redeemed(String),
    /// Another call is redeeming it right now.
    #[error("challenge {0} is being redeemed by another request")]
    Busy(String),
    /// Its payment is below the price.
    #[error("the payment for challenge {challenge} is {paid} base units, below the price {price}")]
    Short {
        /// The challenge.
        challenge: String,
        /// What was paid, base units.
        paid: u128,
        /// The price, base units.
        price: u128,
    },
    /// It reached this node after the time it had to (the challenge's expiry).
    #[error(
        "the payment for challenge {challenge} arrived at {at_ms} ms, after the challenge expired ({by} s)"
    )]
    Late {
        /// The challenge.
        challenge: String,
        /// When the payment arrived, Unix ms.
        at_ms: u64,
        /// When it had to, Unix seconds.
        by: u64,
    },
    /// The store failed: nothing was redeemed.
    #[error("the store failed: {0}")]
    Store(String),
}

impl From<StoreError> for RedeemError {
    fn from(e: StoreError) -> Self {
        Self::Store(e.to_string())
    }
}

#[derive(Default)]
struct Open {
    sales: HashMap<String, (Sale, bool)>,
    /// Arrival order, for expiry: (Unix ms, challenge).
    order: VecDeque<(u64, String)>,
}

/// The sales component.
pub(crate) struct Sales {
    open: Mutex<Open>,
    store: Arc<dyn Store>,
    table: Arc<ChannelTable>,
}

impl Sales {
    pub(crate) fn new(store: Arc<dyn Store>, table: Arc<ChannelTable>) -> Self {
        Self {
            open: Mutex::default(),
            store,
            table,
        }
    }

    fn open(&self) -> MutexGuard<'_, Open> {
        self.open.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// File a sale whose proof's write was just queued (a leaf lock: callable under the
    /// table's). A challenge filed twice keeps its first payment (the second is a gift,
    /// logged like any payment).
    pub(crate) fn file(&self, challenge: &str, sale: Sale, now_ms: u64) {
        let mut open = self.open();
        let expired = now_ms.saturating_sub(KEEP.as_millis() as u64);
        while let Some((at, _)) = open.order.front() {
            if *at >= expired && open.order.len() < MAX_OPEN {
                break;
            }
            // A sale being redeemed is left to its redemption (which always ends).
            if let Some((_, old)) = open.order.pop_front()
                && open.sales.get(&old).is_some_and(|(_, busy)| !busy)
            {
                open.sales.remove(&old);
            }
        }
        if !open.sales.contains_key(challenge) {
            open.sales.insert(challenge.to_owned(), (sale, false));
            open.order.push_back((now_ms, challenge.to_owned()));
        }
    }

    /// Redeem `challenge` for a request priced `price` (base units): its payment is durable,
    /// at least the price, and never redeemed before; the redemption is durable when this
    /// answers. The payer is the channel's partner.
    pub(crate) async fn redeem(
        self: &Arc<Self>,
        challenge: &str,
        price: u128,
        paid_by: Option<u64>,
    ) -> Result<(Sale, Address), RedeemError> {
        let sale = {
            let mut open = self.open();
            match open.sales.get_mut(challenge) {
                Some((_, true)) => return Err(RedeemError::Busy(challenge.into())),
                Some((sale, busy)) => {
                    if let Some(by) = paid_by
                        && sale.at_ms > by.saturating_mul(1_000)
                    {
                        return Err(RedeemError::Late {
                            challenge: challenge.into(),
                            at_ms: sale.at_ms,
                            by,
                        });
                    }
                    if sale.amount < price {
                        return Err(RedeemError::Short {
                            challenge: challenge.into(),
                            paid: sale.amount,
                            price,
                        });
                    }
                    *busy = true;
                    *sale
                }
                None => {
                    drop(open);
                    return Err(match self.store.redeemed(challenge)? {
                        Some(_) => RedeemError::Redeemed(challenge.into()),
                        None => RedeemError::Unpaid(challenge.into()),
                    });
                }
            }
        };
        // The write and the state change after it run in a task of their own: a caller that
        // goes away (its connection dropped) cannot leave the sale marked busy for good, nor a
        // redemption written but still redeemable here.
        let (sales, key) = (self.clone(), challenge.to_owned());
        tokio::spawn(async move {
            let done = sales.write_redemption(&key, sale).await;
            let mut open = sales.open();
            match done {
                Ok(payer) => {
                    open.sales.remove(&key);
                    Ok((sale, payer))
                }
                Err(e) => {
                    if let Some((_, busy)) = open.sales.get_mut(&key) {
                        *busy = false;
                    }
                    Err(e)
                }
            }
        })
        .await
        .unwrap_or_else(|e| {
            Err(RedeemError::Store(format!(
                "the redemption task failed: {e}"
            )))
        })
    }

    async fn write_redemption(&self, challenge: &str, sale: Sale) -> Result<Address, RedeemError> {
        // The payment's own write was queued before it was filed: once everything queued so
        // far is durable, so is it.
        self.table.flushed().await?;
        let payer = self
            .table
            .partner_of(sale.channel)
            .ok_or_else(|| RedeemError::Unpaid(challenge.into()))?;
        let record = KeyedPayment {
            channel: sale.channel,
            nonce: sale.nonce,
            amount: sale.amount,
        };
        self.table
            .group()
            .commit(vec![Write::Redeemed(challenge.to_owned(), record)])
            .await?;
        Ok(payer)
    }

    /// Refile the unredeemed sales of the last [`KEEP`] from the payment log (at start, and
    /// after the table was reloaded from the store).
    pub(crate) fn reload(&self, now_ms: u64) -> Result<usize, StoreError> {
        let since = now_ms.saturating_sub(KEEP.as_millis() as u64);
        let mut found = Vec::new();
        self.store
            .walk_payments(LogWalk::Before(u64::MAX), &mut |p| {
                if p.at_ms < since || found.len() >= MAX_OPEN {
                    return false;
                }
                if !p.outgoing
                    && let Some(challenge) = challenge_of(&p.memo)
                {
                    let sale = Sale {
                        channel: p.channel,
                        nonce: p.nonce,
                        amount: p.amount,
                        at_ms: p.at_ms,
                    };
                    found.push((p.at_ms, challenge.to_owned(), sale));
                }
                true
            })?;
        *self.open() = Open::default();
        let mut filed = 0;
        for (at, challenge, sale) in found.into_iter().rev() {
            if self.store.redeemed(&challenge)?.is_none() {
                self.file(&challenge, sale, at.max(since));
                filed += 1;
            }
        }
        Ok(filed)
    }
}

#[cfg(test)]
mod tests {
    use farthing_core::{ChainEvent, apply};
    use farthing_store::{GroupCommit, LoggedPayment, MemStore};

    use super::*;

    const US: Address = Address::repeat_byte(0xa);
    const PAYER: Address = Address::repeat_byte(0xb);

    fn sales() -> (Arc<Sales>, Arc<MemStore>) {
        let opened = ChainEvent::Opened {
            id: 1,
            a: PAYER,
            b: US,
            token: Address::repeat_byte(7),
            deposit_a: 1_000,
            challenge_period: 60,
        };
        let channel = apply(None, &opened, US, 1).expect("a channel");
        let store = Arc::new(MemStore::default());
        let table = Arc::new(ChannelTable::new(
            vec![channel],
            Vec::new(),
            GroupCommit::new(store.clone()),
        ));
        (Arc::new(Sales::new(store.clone(), table)), store)
    }

    fn sale(nonce: u64, amount: u128, at_ms: u64) -> Sale {
        Sale {
            channel: 1,
            nonce,
            amount,
            at_ms,
        }
    }

    #[tokio::test]
    async fn a_sale_is_redeemed_once_at_its_price_and_the_redemption_survives_a_reload() {
        let (sales, store) = sales();
        let err = sales
            .redeem("c1", 10, None)
            .await
            .expect_err("nothing paid");
        assert_eq!(err, RedeemError::Unpaid("c1".into()));
        sales.file("c1", sale(1, 10, 1_000), 1_000);
        sales.file("c2", sale(2, 5, 1_000), 1_000);
        // Below the price: refused, and still redeemable at its own price.
        let err = sales.redeem("c2", 10, None).await.expect_err("short");
        assert!(
            matches!(
                err,
                RedeemError::Short {
                    paid: 5,
                    price: 10,
                    ..
                }
            ),
            "{err:?}"
        );
        // Arrived after the time it had (1 s): refused as late.
        let err = sales.redeem("c1", 10, Some(0)).await.expect_err("late");
        assert!(matches!(err, RedeemError::Late { .. }), "{err:?}");
        let (got, payer) = sales.redeem("c1", 10, Some(1)).await.expect("redeemed");
        assert_eq!((got, payer), (sale(1, 10, 1_000), PAYER));
        assert_eq!(
            store.redeemed("c1").expect("read"),
            Some(KeyedPayment {
                channel: 1,
                nonce: 1,
                amount: 10
            })
        );
        let err = sales.redeem("c1", 10, None).await.expect_err("twice");
        assert_eq!(err, RedeemError::Redeemed("c1".into()));
        assert!(sales.redeem("c2", 5, None).await.is_ok());

        // The log holds both sales and a third one never redeemed: a reload (a restart)
        // refiles only that one.
        let now = 10_000_000;
        let logged = |seq, nonce, memo: &str| {
            Write::Payment(LoggedPayment {
                seq,
                channel: 1,
                nonce,
                amount: 10,
                at_ms: now - 1_000,
                memo: memo.as_bytes().to_vec(),
                ..LoggedPayment::default()
            })
        };
        store
            .commit(&[
                logged(1, 1, "402:c1 GET http://x/a"),
                logged(2, 2, "402:c2"),
                logged(3, 3, "402:c3 GET http://x/b"),
                logged(4, 4, "a gift"),
            ])
            .expect("log");
        assert_eq!(sales.reload(now).expect("reload"), 1);
        assert_eq!(
            sales.redeem("c1", 10, None).await.expect_err("still once"),
            RedeemError::Redeemed("c1".into())
        );
        assert_eq!(sales.redeem("c3", 10, None).await.expect("c3").0.nonce, 3);
    }

    #[tokio::test]
    async fn concurrent_redemptions_of_one_sale_serve_one_request() {
        let (sales, _) = sales();
        sales.file("c", sale(1, 10, 1_000), 1_000);
        let tries: Vec<_> = (0..8)
            .map(|_| {
                let sales = sales.clone();
                tokio::spawn(async move { sales.redeem("c", 10, None).await })
            })
            .collect();
        let mut served = 0;
        for attempt in tries {
            match attempt.await.expect("task") {
                Ok(_) => served += 1,
                Err(RedeemError::Busy(_) | RedeemError::Redeemed(_)) => {}
                Err(other) => panic!("{other:?}"),
            }
        }
        assert_eq!(served, 1);
    }

    #[test]
    fn unredeemed_sales_expire_and_are_bounded() {
        let (sales, _) = sales();
        sales.file("old", sale(1, 10, 0), 0);
        let later = KEEP.as_millis() as u64 + 1;
        sales.file("new", sale(2, 10, later), later);
        let open = sales.open();
        assert!(!open.sales.contains_key("old"), "kept past KEEP");
        assert!(open.sales.contains_key("new"));
    }

    #[test]
    fn a_sale_memo_names_its_challenge() {
        assert_eq!(challenge_of(b"402:abc"), Some("abc"));
        assert_eq!(challenge_of(b"402:abc GET http://x/y"), Some("abc"));
        assert_eq!(challenge_of(b"402:"), None);
        assert_eq!(challenge_of(b"402: x"), None);
        assert_eq!(challenge_of(b"refund:abc"), None);
        assert_eq!(challenge_of(b"402:\xff"), None);
        assert_eq!(
            challenge_of(&[b"402:".as_slice(), &[b'a'; 129]].concat()),
            None
        );
    }
}
