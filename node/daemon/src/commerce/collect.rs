//! The node as its own x402 facilitator: an EIP-3009 `TransferWithAuthorization` of the node's
//! token to the node (what x402 `exact` and MPP `charge` payers sign) is checked here and
//! submitted; answered once mined, so the payment is on-chain before the gateway lets the
//! request through. Checked before any gas is spent: the payee, the signature, the validity
//! window, the nonce (used on-chain, or being collected by another call right now) and the
//! payer's balance. A collection can be refunded once (an upstream that failed), by a
//! transfer back.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use alloy::primitives::{Address, B256, U256};
use farthing_chain::messages::{TransferWithAuthorization, signer_of};
use farthing_chain::{ChainError, TxOutcome, contracts::MockUSDC};

use crate::chain::Chain;

/// Most collections remembered for a refund (the oldest are forgotten first).
const REMEMBERED: usize = 100_000;

/// An authorization must stay valid this long past its check (a few blocks).
const MIN_VALIDITY_SECS: u64 = 6;

/// Why an authorization is not collected (nothing was spent), or a refund not made.
#[derive(Debug, thiserror::Error)]
pub enum CollectError {
    /// The authorization is not acceptable: `reason` is a stable name.
    #[error("{message}")]
    Rejected {
        /// `wrong_payee`, `invalid_signature`, `not_yet_valid`, `expired`, `nonce_used`,
        /// `insufficient_funds`, `invalid_amount`, `unknown_collection`.
        reason: &'static str,
        /// What was wrong.
        message: String,
    },
    /// The chain refused or failed.
    #[error(transparent)]
    Chain(#[from] ChainError),
}

fn rejected(reason: &'static str, message: String) -> CollectError {
    CollectError::Rejected { reason, message }
}

/// What was collected: (payer, base units), by transaction, for a refund.
#[derive(Default)]
struct Book {
    in_flight: HashSet<(Address, B256)>,
    collected: HashMap<B256, (Address, u128)>,
    order: std::collections::VecDeque<B256>,
}

/// The collector component.
#[derive(Default)]
pub(crate) struct Collector {
    book: Mutex<Book>,
}

/// An authorization as the gateway hands it over.
pub struct Authorization {
    /// The payer.
    pub from: Address,
    /// The payee.
    pub to: Address,
    /// Base units.
    pub value: u128,
    /// Unix seconds.
    pub valid_after: u64,
    /// Unix seconds.
    pub valid_before: u64,
    /// EIP-3009 nonce.
    pub nonce: B256,
    /// 65 bytes.
    pub signature: Vec<u8>,
}

impl Collector {
    fn book(&self) -> MutexGuard<'_, Book> {
        self.book.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Check `auth` and submit it; answers once mined.
    pub(crate) async fn collect(
        self: &Arc<Self>,
        chain: &Arc<Chain>,
        auth: Authorization,
    ) -> Result<TxOutcome, CollectError> {
        if auth.to != chain.us {
            return Err(rejected(
                "wrong_payee",
                format!(
                    "the authorization pays {}, not this node ({})",
                    auth.to, chain.us
                ),
            ));
        }
        if auth.value == 0 {
            return Err(rejected(
                "invalid_amount",
                "the authorization moves nothing".into(),
            ));
        }
        let message = TransferWithAuthorization {
            from: auth.from,
            to: auth.to,
            value: U256::from(auth.value),
            validAfter: U256::from(auth.valid_after),
            validBefore: U256::from(auth.valid_before),
            nonce: auth.nonce,
        };
        let domain = chain.deployment.token_domain();
        if signer_of(&message, &domain.eip712(), &auth.signature) != Some(auth.from) {
            return Err(rejected(
                "invalid_signature",
                format!(
                    "the signature is not {}'s over this TransferWithAuthorization in the token's EIP-712 domain {domain}",
                    auth.from
                ),
            ));
        }
        let now = crate::link::kept::now_ms() / 1_000;
        if now <= auth.valid_after {
            return Err(rejected(
                "not_yet_valid",
                format!("valid only after {}, now {now}", auth.valid_after),
            ));
        }
        // Not one about to expire: it could revert once mined, with the node paying the gas.
        if now + MIN_VALIDITY_SECS >= auth.valid_before {
            return Err(rejected(
                "expired",
                format!(
                    "valid only before {}, now {now}: the node takes authorizations valid for {MIN_VALIDITY_SECS} s more at least",
                    auth.valid_before
                ),
            ));
        }
        let key = (auth.from, auth.nonce);
        if !self.book().in_flight.insert(key) {
            return Err(rejected(
                "nonce_used",
                format!(
                    "authorization nonce {} is being collected already",
                    auth.nonce
                ),
            ));
        }
        // In a task of its own: a caller that goes away cannot leave the nonce marked in
        // flight, nor a mined collection out of the refund book.
        let (collector, chain) = (self.clone(), chain.clone());
        tokio::spawn(async move {
            let outcome = collector.submit(&chain, &message, &auth).await;
            let mut book = collector.book();
            book.in_flight.remove(&key);
            if let Ok(done) = &outcome {
                if book.order.len() >= REMEMBERED
                    && let Some(old) = book.order.pop_front()
                {
                    book.collected.remove(&old);
                }
                book.collected.insert(done.tx_hash, (auth.from, auth.value));
                book.order.push_back(done.tx_hash);
            }
            outcome
        })
        .await
        .unwrap_or_else(|e| {
            Err(CollectError::Chain(ChainError::Rpc {
                what: "transferWithAuthorization",
                reason: format!("the collection task failed: {e}"),
            }))
        })
    }

    async fn submit(
        &self,
        chain: &Chain,
        message: &TransferWithAuthorization,
        auth: &Authorization,
    ) -> Result<TxOutcome, CollectError> {
        let token = chain.deployment.token;
        if chain
            .client
            .authorization_used(token, auth.from, auth.nonce)
            .await?
        {
            return Err(rejected(
                "nonce_used",
                format!(
                    "authorization nonce {} of {} was used already",
                    auth.nonce, auth.from
                ),
            ));
        }
        let balance = MockUSDC::new(token, &chain.reader)
            .balanceOf(auth.from)
            .call()
            .await
            .map_err(|e| ChainError::Rpc {
                what: "balanceOf",
                reason: e.to_string(),
            })?;
        if balance < U256::from(auth.value) {
            return Err(rejected(
                "insufficient_funds",
                format!(
                    "{} holds {balance} base units of the token, the authorization moves {}",
                    auth.from, auth.value
                ),
            ));
        }
        Ok(chain
            .client
            .transfer_with_authorization(token, message, &auth.signature)
            .await?)
    }

    /// Refund collection `tx_hash` (once): its amount goes back to its payer by a transfer.
    pub(crate) async fn refund(
        &self,
        chain: &Chain,
        tx_hash: B256,
    ) -> Result<(TxOutcome, Address, u128), CollectError> {
        let (payer, amount) = self.book().collected.remove(&tx_hash).ok_or_else(|| {
            rejected(
                "unknown_collection",
                format!(
                    "transaction {tx_hash} is no collection this node made since it started, or it was refunded already"
                ),
            )
        })?;
        match chain
            .client
            .transfer(chain.deployment.token, payer, amount)
            .await
        {
            Ok(done) => Ok((done, payer, amount)),
            Err(e) => {
                self.book().collected.insert(tx_hash, (payer, amount));
                Err(e.into())
            }
        }
    }
}
