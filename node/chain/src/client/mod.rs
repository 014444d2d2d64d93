//! Sending the node's transactions to the `ChannelManager`.
//!
//! One key, many concurrent operations: the client hands out transaction nonces itself, one
//! after the other under a lock held only while a transaction is submitted (never while it
//! waits for its receipt), so concurrent operations never collide. A failed submission forgets
//! the local nonce, and the next one re-reads the chain's pending count: the client
//! resynchronises instead of leaving a gap. Receipts are awaited with the configured
//! confirmations. A call the contract would refuse fails before anything is sent (gas
//! estimation simulates it), with the contract's custom error decoded into words.
//!
//! Every transaction is signed here and handed to the [`TxJournal`] (the node's store) before
//! it is broadcast, so a node that dies between sending and the receipt finds it again at
//! start-up and broadcasts it again ([`ChainClient::resend`]): nothing the node sent is
//! forgotten. The key is the node's one [`NodeKey`], shared, never copied.

mod calls;
mod fees;
mod types;

use std::sync::Arc;

use alloy::eips::eip2718::Encodable2718;
use alloy::network::TransactionBuilder;
use alloy::primitives::{Address, B256};
use alloy::providers::{DynProvider, Provider};
use alloy::rpc::types::{TransactionReceipt, TransactionRequest};
use alloy::sol_types::SolInterface;
use tokio::sync::Mutex;

use crate::contracts::ChannelManager::{self, ChannelManagerErrors};
use crate::key::NodeKey;

pub use types::{
    ChainError, OpenAuthorization, RECEIPT_TIMEOUT, SentTx, TxJournal, TxOutcome, URGENT_BUMPS,
    URGENT_WAIT, redact_url,
};

/// Sends the node's transactions; cheap to share behind an `Arc`.
pub struct ChainClient {
    provider: DynProvider,
    /// The RPC URL as configured, and as it may appear in messages.
    url: (String, String),
    /// The node's key (shared with the payment signer, never copied).
    key: Arc<NodeKey>,
    journal: Option<Arc<dyn TxJournal>>,
    address: Address,
    manager: Address,
    chain_id: u64,
    confirmations: u64,
    next_nonce: Mutex<Option<u64>>,
    /// How long an urgent transaction waits before its fees are raised.
    urgent_wait: std::time::Duration,
    /// The most the node offers per gas, in wei (`chain.max_fee_per_gas_gwei`); none: no cap.
    max_fee_per_gas: Option<u128>,
    /// Held across operations that spend a token-side counter or allowance (permit nonces,
    /// approve-then-top-up), so that two of them never race for it.
    token_lock: Mutex<()>,
}

impl ChainClient {
    /// A client sending as `key` to the `ChannelManager` at `manager` through `provider`
    /// (from [`crate::rpc::connect`]: no fillers, TLS, rate-limit retries), the RPC at
    /// `rpc_url` (named, without its secrets, in errors).
    pub fn new(
        provider: DynProvider,
        rpc_url: &str,
        key: Arc<NodeKey>,
        chain_id: u64,
        manager: Address,
        confirmations: u64,
    ) -> Self {
        let address = key.address();
        let url = (rpc_url.to_owned(), redact_url(rpc_url));
        Self {
            provider,
            url,
            key,
            journal: None,
            address,
            manager,
            chain_id,
            confirmations,
            next_nonce: Mutex::new(None),
            urgent_wait: URGENT_WAIT,
            max_fee_per_gas: None,
            token_lock: Mutex::new(()),
        }
    }

    /// Never offer more than `cap` wei per gas (none: no cap). An estimate above it is cut to
    /// it (logged); while the chain's base fee is above it nothing is sent
    /// ([`ChainError::FeeCap`]); an urgent transaction's raised fees stop at it.
    pub fn with_max_fee_per_gas(mut self, cap: Option<u128>) -> Self {
        self.max_fee_per_gas = cap;
        self
    }

    /// Raise an urgent transaction's fees after `wait` instead of [`URGENT_WAIT`] (tests).
    pub fn with_urgent_wait(mut self, wait: std::time::Duration) -> Self {
        self.urgent_wait = wait;
        self
    }

    /// Record every transaction in `journal` before broadcasting it.
    pub fn with_journal(mut self, journal: Arc<dyn TxJournal>) -> Self {
        self.journal = Some(journal);
        self
    }

    /// Broadcast a journaled transaction again after a restart, under the nonce lock (so no
    /// new transaction can take its nonce meanwhile). Returns whether it still needs waiting
    /// for: `false` when it is already mined, or can never be (its nonce went to another
    /// transaction; it is then forgotten).
    pub async fn resend(&self, tx: &SentTx) -> Result<bool, ChainError> {
        let what = tx.what;
        let mut next = self.next_nonce.lock().await;
        if self
            .provider
            .get_transaction_receipt(tx.tx_hash)
            .await
            .map_err(|e| self.fail(what, e))?
            .is_some()
        {
            return Ok(false);
        }
        let used = self
            .provider
            .get_transaction_count(self.address)
            .await
            .map_err(|e| self.fail(what, e))?;
        if used > tx.nonce {
            // Mined transactions took this nonce, and this one has no receipt: it never will.
            self.forget(what, tx).await?;
            return Ok(false);
        }
        if let Err(e) = self.provider.send_raw_transaction(&tx.raw).await
            && !e.to_string().contains("already")
        {
            return Err(self.fail(what, e));
        }
        let pending = self
            .provider
            .get_transaction_count(self.address)
            .pending()
            .await
            .map_err(|e| self.fail(what, e))?;
        *next = Some(pending.max(tx.nonce + 1).max(next.unwrap_or(0)));
        Ok(true)
    }

    /// Read the account's next nonce from the chain again before the next transaction (after a
    /// reorg took some of the node's transactions away, the cached one would leave a gap).
    pub async fn resync_nonce(&self) {
        *self.next_nonce.lock().await = None;
    }

    /// Wait for a journaled transaction's receipt and forget it once mined.
    pub async fn finish(&self, tx: &SentTx) -> Result<TxOutcome, ChainError> {
        let receipt = self.receipt(tx.what, tx.tx_hash).await?;
        self.forget(tx.what, tx).await?;
        if !receipt.status() {
            return Err(ChainError::Reverted {
                what: tx.what,
                tx_hash: tx.tx_hash,
            });
        }
        Ok(outcome(tx.tx_hash, &receipt))
    }

    /// Wait for `tx_hash`'s receipt with the configured confirmations, at most
    /// [`RECEIPT_TIMEOUT`]; after that the answer is [`ChainError::Unconfirmed`].
    async fn receipt(
        &self,
        what: &'static str,
        tx_hash: B256,
    ) -> Result<TransactionReceipt, ChainError> {
        alloy::providers::PendingTransactionBuilder::new(self.provider.root().clone(), tx_hash)
            .with_required_confirmations(self.confirmations.max(1))
            .with_timeout(Some(RECEIPT_TIMEOUT))
            .get_receipt()
            .await
            .map_err(|e| ChainError::Unconfirmed {
                what,
                tx_hash,
                reason: self.redact(e.to_string()),
            })
    }

    /// Forget a journaled transaction (a blocking, synced store write: off the async workers).
    async fn forget(&self, what: &'static str, tx: &SentTx) -> Result<(), ChainError> {
        let Some(journal) = self.journal.clone() else {
            return Ok(());
        };
        let (nonce, hash) = (tx.nonce, tx.tx_hash);
        tokio::task::spawn_blocking(move || journal.forget(nonce, hash))
            .await
            .map_err(|e| ChainError::Journal {
                what,
                reason: e.to_string(),
            })?
            .map_err(|reason| ChainError::Journal { what, reason })
    }

    /// Record a transaction in the journal before it is broadcast (synced; off the workers).
    async fn record(&self, what: &'static str, tx: &SentTx) -> Result<(), ChainError> {
        let Some(journal) = self.journal.clone() else {
            return Ok(());
        };
        let tx = tx.clone();
        tokio::task::spawn_blocking(move || journal.record(&tx))
            .await
            .map_err(|e| ChainError::Journal {
                what,
                reason: e.to_string(),
            })?
            .map_err(|reason| ChainError::Journal { what, reason })
    }

    /// A transport failure, with the RPC URL's secrets (path, query) removed from the text.
    fn fail(&self, what: &'static str, e: impl std::fmt::Display) -> ChainError {
        ChainError::Rpc {
            what,
            reason: self.redact(e.to_string()),
        }
    }

    fn redact(&self, text: String) -> String {
        let (full, safe) = &self.url;
        text.replace(full.as_str(), safe)
            .replace(full.trim_end_matches('/'), safe)
    }

    /// The node's address.
    pub fn address(&self) -> Address {
        self.address
    }

    /// The provider (for reads).
    pub fn provider(&self) -> &DynProvider {
        &self.provider
    }

    fn manager(&self) -> ChannelManager::ChannelManagerInstance<&DynProvider> {
        ChannelManager::new(self.manager, &self.provider)
    }

    /// Submit `tx` with the next nonce of the node's key and wait for its receipt.
    async fn send(
        &self,
        what: &'static str,
        tx: TransactionRequest,
    ) -> Result<TxOutcome, ChainError> {
        let tx = self.prepare(what, tx).await?;
        let sent = self.submit(what, &tx).await?;
        self.finish(&sent).await
    }

    /// Simulate `tx` (a refused call fails here, with the contract's error, before anything
    /// is signed or a nonce is taken) and fill in its gas limit and fees.
    async fn prepare(
        &self,
        what: &'static str,
        tx: TransactionRequest,
    ) -> Result<TransactionRequest, ChainError> {
        let mut tx = tx.with_from(self.address).with_chain_id(self.chain_id);
        let gas = self
            .provider
            .estimate_gas(tx.clone())
            .await
            .map_err(|e| self.refusal_or_rpc(what, &e))?;
        let estimate = self
            .provider
            .estimate_eip1559_fees()
            .await
            .map_err(|e| self.fail(what, e))?;
        let estimate = fees::Fees {
            max_fee: estimate.max_fee_per_gas,
            tip: estimate.max_priority_fee_per_gas,
        };
        let (fees, capped) = estimate.capped(self.max_fee_per_gas);
        if capped {
            self.within_cap(what, estimate, fees.max_fee).await?;
        }
        tx.set_gas_limit(gas.saturating_add(gas / 5));
        tx.set_max_fee_per_gas(fees.max_fee);
        tx.set_max_priority_fee_per_gas(fees.tip);
        Ok(tx)
    }

    /// The fee estimate is above the cap: refuse when the latest base fee is too (no
    /// transaction within the cap could be mined), else say that the cap binds.
    async fn within_cap(
        &self,
        what: &'static str,
        estimate: fees::Fees,
        cap: u128,
    ) -> Result<(), ChainError> {
        let latest = self
            .provider
            .get_block_by_number(alloy::eips::BlockNumberOrTag::Latest)
            .await
            .map_err(|e| self.fail(what, e))?;
        let base_fee = latest
            .and_then(|block| block.header.base_fee_per_gas)
            .map_or(0, u128::from);
        if base_fee > cap {
            let refused = ChainError::FeeCap {
                what,
                base_fee,
                cap,
            };
            tracing::error!("{refused}");
            return Err(refused);
        }
        tracing::warn!(
            what,
            "fee cap binds: the estimate is {} per gas, offering {} (chain.max_fee_per_gas_gwei; base fee {})",
            fees::gwei(estimate.max_fee),
            fees::gwei(cap),
            fees::gwei(base_fee)
        );
        Ok(())
    }

    /// Sign `tx` with the key's next nonce, journal it (synced) and broadcast it, under the
    /// nonce lock. A send that fails resynchronises the nonce from the chain next time; one the
    /// chain refused outright is forgotten, any other stays journaled (it may have arrived).
    async fn submit(
        &self,
        what: &'static str,
        tx: &TransactionRequest,
    ) -> Result<SentTx, ChainError> {
        let mut next = self.next_nonce.lock().await;
        let nonce = match *next {
            Some(nonce) => nonce,
            None => self
                .provider
                .get_transaction_count(self.address)
                .pending()
                .await
                .map_err(|e| self.fail(what, e))?,
        };
        let sent = self.sign_as(what, tx, nonce).await?;
        // Durable before it leaves the process.
        self.record(what, &sent).await?;
        if let Err(e) = self.provider.send_raw_transaction(&sent.raw).await {
            // A send the retry layer repeated (say, after a 503) whose first copy the provider
            // took: the repeat is refused ("already known", or "nonce too low" once mined), but
            // the transaction is out. Asked by its hash, not by the error's wording.
            if let Ok(Some(_)) = self.provider.get_transaction_by_hash(sent.tx_hash).await {
                tracing::debug!(what, tx = %sent.tx_hash, "the provider had the transaction already: {e}");
                *next = Some(nonce.saturating_add(1));
                return Ok(sent);
            }
            *next = None;
            let refused = self.refusal_or_rpc(what, &e);
            if matches!(refused, ChainError::Refused { .. }) {
                self.forget(what, &sent).await?;
            }
            return Err(refused);
        }
        *next = Some(nonce.saturating_add(1));
        Ok(sent)
    }

    /// Like `send`, for a transaction that must land by a deadline: when it is not mined within
    /// the urgent wait, the same transaction (same nonce) is signed again with its fees raised
    /// by half and replaces it, up to [`URGENT_BUMPS`] times. Whichever version is mined
    /// answers; the journal always holds the newest.
    async fn send_urgent(
        &self,
        what: &'static str,
        tx: TransactionRequest,
    ) -> Result<TxOutcome, ChainError> {
        let mut tx = self.prepare(what, tx).await?;
        let (mut max_fee, mut tip) = (
            tx.max_fee_per_gas.unwrap_or_default(),
            tx.max_priority_fee_per_gas.unwrap_or_default(),
        );
        let mut sent = self.submit(what, &tx).await?;
        let nonce = sent.nonce;
        let mut hashes = vec![sent.tx_hash];
        for bump in 0..=URGENT_BUMPS {
            let deadline = tokio::time::Instant::now() + self.urgent_wait;
            loop {
                for &hash in &hashes {
                    // A failed poll is not a verdict: keep waiting (the RPC may be back soon).
                    let mined = match self.provider.get_transaction_receipt(hash).await {
                        Ok(mined) => mined,
                        Err(e) => {
                            tracing::warn!(what, "receipt poll: {}", self.redact(e.to_string()));
                            None
                        }
                    };
                    if mined.is_some() {
                        let receipt = self.receipt(what, hash).await?;
                        self.forget(what, &sent).await?;
                        if !receipt.status() {
                            return Err(ChainError::Reverted {
                                what,
                                tx_hash: hash,
                            });
                        }
                        return Ok(outcome(hash, &receipt));
                    }
                }
                if tokio::time::Instant::now() >= deadline {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(250)).await;
            }
            if bump == URGENT_BUMPS {
                break;
            }
            let (raised, capped) = fees::Fees {
                max_fee: max_fee.saturating_mul(3) / 2 + 1,
                tip: tip.saturating_mul(3) / 2 + 1,
            }
            .capped(self.max_fee_per_gas);
            if raised.max_fee <= max_fee {
                // At the cap already: the pool would not take the same fees as a replacement.
                tracing::error!(
                    what,
                    nonce,
                    "not mined within {} s and the fees are at the cap chain.max_fee_per_gas_gwei ({}): not raised; raise the cap if the chain stays this expensive",
                    self.urgent_wait.as_secs_f64(),
                    fees::gwei(max_fee)
                );
                continue;
            }
            if capped {
                tracing::warn!(
                    what,
                    nonce,
                    "fee raise stops at the cap chain.max_fee_per_gas_gwei ({})",
                    fees::gwei(raised.max_fee)
                );
            }
            (max_fee, tip) = (raised.max_fee, raised.tip);
            tx.set_max_fee_per_gas(max_fee);
            tx.set_max_priority_fee_per_gas(tip);
            let replacement = self.sign_as(what, &tx, nonce).await?;
            self.record(what, &replacement).await?;
            match self.provider.send_raw_transaction(&replacement.raw).await {
                Ok(_) => {
                    tracing::warn!(
                        what,
                        nonce,
                        max_fee,
                        "not mined within {} s: sent again with fees raised by half",
                        self.urgent_wait.as_secs_f64()
                    );
                    hashes.push(replacement.tx_hash);
                    sent = replacement;
                }
                // Mined meanwhile (nonce too low), or the pool refuses the replacement: the
                // receipts decide.
                Err(e) => tracing::warn!(
                    what,
                    nonce,
                    "fee raise not accepted: {}",
                    self.redact(e.to_string())
                ),
            }
        }
        Err(ChainError::Unconfirmed {
            what,
            tx_hash: sent.tx_hash,
            reason: format!("not mined after {URGENT_BUMPS} fee raises"),
        })
    }

    /// Sign `tx` with `nonce` as the node's key.
    async fn sign_as(
        &self,
        what: &'static str,
        tx: &TransactionRequest,
        nonce: u64,
    ) -> Result<SentTx, ChainError> {
        let mut tx = tx.clone();
        tx.set_nonce(nonce);
        let envelope = self
            .key
            .sign_transaction(tx)
            .map_err(|e| self.fail(what, format!("signing: {e}")))?;
        Ok(SentTx {
            tx_hash: *envelope.tx_hash(),
            nonce,
            what,
            raw: envelope.encoded_2718().into(),
        })
    }

    /// A refusal if the node's RPC returned revert data (decoded when it is one of the
    /// contract's errors or a revert string), else a transport failure.
    fn refusal_or_rpc(
        &self,
        what: &'static str,
        e: &alloy::transports::TransportError,
    ) -> ChainError {
        let Some(data) = e.as_error_resp().and_then(|resp| resp.as_revert_data()) else {
            return self.fail(what, e);
        };
        let reason = match ChannelManagerErrors::abi_decode(&data) {
            Ok(err) => format!("{err:?}"),
            Err(_) => alloy::sol_types::decode_revert_reason(&data)
                .unwrap_or_else(|| format!("revert data {data}")),
        };
        ChainError::Refused { what, reason }
    }
}

/// What a mined transaction did, read from its receipt (including an opened channel's id).
fn outcome(tx_hash: B256, receipt: &TransactionReceipt) -> TxOutcome {
    let opened = receipt.inner.logs().iter().find_map(|log| {
        log.log_decode::<ChannelManager::ChannelOpened>()
            .ok()
            .and_then(|l| u64::try_from(l.inner.data.channelId).ok())
    });
    TxOutcome {
        tx_hash,
        block: receipt.block_number.unwrap_or_default(),
        gas_used: receipt.gas_used,
        opened,
    }
}
