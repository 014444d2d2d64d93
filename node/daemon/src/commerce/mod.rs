//! Selling and buying over HTTP 402, at the node: the seller's side redeems the channel
//! payments that paid for a gateway's challenges ([`crate::payments::sales`]) and collects
//! EIP-3009 authorizations as its own facilitator ([`collect`]); the buyer's side fetches
//! priced URLs and pays for them ([`buy`]).

pub mod buy;
pub mod collect;
mod offers;

pub(crate) use offers::Buyer;

use alloy::primitives::{Address, B256};
use farthing_chain::TxOutcome;

use crate::node::Node;
use crate::payments::sales::{RedeemError, Sale};
use collect::{Authorization, CollectError};

impl Node {
    /// Redeem the payment for `challenge` on one request priced `price` (base units): see
    /// [`crate::payments::sales`]. Answers the sale and its payer.
    pub async fn redeem(
        &self,
        challenge: &str,
        price: u128,
        paid_by: Option<u64>,
    ) -> Result<(Sale, Address), RedeemError> {
        self.components()
            .payments
            .sales
            .redeem(challenge, price, paid_by)
            .await
    }

    /// Check and submit an EIP-3009 transfer to the node; answers once mined.
    pub async fn collect_authorization(
        &self,
        auth: Authorization,
    ) -> Result<TxOutcome, CollectError> {
        let c = self.components();
        c.collector.collect(&c.chain, auth).await
    }

    /// Send collection `tx_hash`'s amount back to its payer (once).
    pub async fn refund_collection(
        &self,
        tx_hash: B256,
    ) -> Result<(TxOutcome, Address, u128), CollectError> {
        let c = self.components();
        c.collector.refund(&c.chain, tx_hash).await
    }

    pub(crate) fn buyer(&self) -> &offers::Buyer {
        &self.components().buyer
    }
}
