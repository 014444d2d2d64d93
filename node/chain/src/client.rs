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
//! start-up and broadcasts it again ([`ChainClient::rebroadcast`]): nothing the node sent is
//! forgotten.

use std::sync::Arc;

use alloy::eips::eip2718::Encodable2718;
use alloy::network::{Ethereum, EthereumWallet, NetworkWallet, TransactionBuilder};
use alloy::primitives::{Address, B256, Bytes, U256};
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::rpc::types::{TransactionReceipt, TransactionRequest};
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::SolInterface;
use farthing_core::{ChannelId, SignedProof};
use tokio::sync::Mutex;

use crate::contracts::ChannelManager::{self, ChannelManagerErrors};
use crate::contracts::MockUSDC;
use crate::messages::{self, Permit};

/// What a mined transaction did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxOutcome {
    /// Transaction hash.
    pub tx_hash: B256,
    /// Block it was mined in.
    pub block: u64,
    /// Gas it used.
    pub gas_used: u64,
    /// The id of the channel it opened, for opens.
    pub opened: Option<ChannelId>,
}

/// A funder's signed EIP-3009 authorization to open a channel gaslessly: anyone may submit
/// it with [`ChainClient::open_with_authorization`]; its nonce fixes partner and period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenAuthorization {
    /// The token.
    pub token: Address,
    /// Who pays the deposit (and becomes participant A).
    pub funder: Address,
    /// The partner (participant B).
    pub partner: Address,
    /// Deposit in base units.
    pub deposit: u128,
    /// Challenge period in seconds.
    pub challenge_period: u32,
    /// Valid strictly after this unix time.
    pub valid_after: u64,
    /// Valid strictly before this unix time.
    pub valid_before: u64,
    /// Makes the authorization's nonce unique.
    pub salt: B256,
    /// The funder's 65-byte signature in the token's EIP-712 domain.
    pub signature: Bytes,
}

impl OpenAuthorization {
    /// Sign, as the funder, an authorization to open and fund a channel through the
    /// `ChannelManager` at `manager` on `chain_id` (no transaction: the funder needs no gas).
    #[allow(clippy::too_many_arguments)]
    pub fn sign(
        funder: &PrivateKeySigner,
        chain_id: u64,
        manager: Address,
        token: Address,
        partner: Address,
        deposit: u128,
        challenge_period: u32,
        valid_before: u64,
        salt: B256,
    ) -> Self {
        let message = messages::ReceiveWithAuthorization {
            from: funder.address(),
            to: manager,
            value: U256::from(deposit),
            validAfter: U256::ZERO,
            validBefore: U256::from(valid_before),
            nonce: messages::open_authorization_nonce(partner, challenge_period, salt),
        };
        let signature = messages::sign(funder, &message, &messages::usdc_domain(chain_id, token));
        Self {
            token,
            funder: funder.address(),
            partner,
            deposit,
            challenge_period,
            valid_after: 0,
            valid_before,
            salt,
            signature,
        }
    }
}

/// A signed transaction the client is about to broadcast.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentTx {
    /// Its hash.
    pub tx_hash: B256,
    /// Its nonce (unique per key: the journal's key).
    pub nonce: u64,
    /// What it does (`open`, `close`, ...).
    pub what: &'static str,
    /// The signed transaction, EIP-2718 encoded, ready to broadcast again.
    pub raw: Bytes,
}

/// Where the client records transactions before broadcasting them (the node's store).
pub trait TxJournal: Send + Sync {
    /// Record `tx` durably; called before it leaves the process. An error stops the send.
    fn record(&self, tx: &SentTx) -> Result<(), String>;
    /// `tx_hash` was mined (or can never be): forget it.
    fn forget(&self, nonce: u64) -> Result<(), String>;
}

/// Why a chain operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    /// The contract (or the token) refuses the call; nothing was sent.
    #[error("{what} refused by the contract: {reason}")]
    Refused {
        /// The operation.
        what: &'static str,
        /// The decoded revert reason.
        reason: String,
    },
    /// The chain RPC failed or is unreachable.
    #[error(
        "{what}: chain RPC failed: {reason} (check the chain's RPC; the operation can be retried)"
    )]
    Rpc {
        /// The operation.
        what: &'static str,
        /// The transport error.
        reason: String,
    },
    /// The journal could not record the transaction; nothing was sent.
    #[error("{what}: cannot record the transaction before sending it: {reason}")]
    Journal {
        /// The operation.
        what: &'static str,
        /// The journal's error.
        reason: String,
    },
    /// The transaction was mined but reverted.
    #[error("{what}: transaction {tx_hash} reverted on-chain")]
    Reverted {
        /// The operation.
        what: &'static str,
        /// Its hash.
        tx_hash: B256,
    },
}

/// Sends the node's transactions; cheap to share behind an `Arc`.
pub struct ChainClient {
    provider: DynProvider,
    wallet: EthereumWallet,
    journal: Option<Arc<dyn TxJournal>>,
    address: Address,
    manager: Address,
    chain_id: u64,
    confirmations: u64,
    next_nonce: Mutex<Option<u64>>,
    /// Held across operations that spend a token-side counter or allowance (permit nonces,
    /// approve-then-top-up), so that two of them never race for it.
    token_lock: Mutex<()>,
}

impl ChainClient {
    /// A client sending as `signer` to the `ChannelManager` at `manager` over HTTP.
    pub fn new(
        rpc_url: alloy::transports::http::reqwest::Url,
        signer: PrivateKeySigner,
        chain_id: u64,
        manager: Address,
        confirmations: u64,
    ) -> Self {
        let address = signer.address();
        let provider = ProviderBuilder::new()
            .disable_recommended_fillers()
            .connect_http(rpc_url)
            .erased();
        Self {
            provider,
            wallet: EthereumWallet::from(signer),
            journal: None,
            address,
            manager,
            chain_id,
            confirmations,
            next_nonce: Mutex::new(None),
            token_lock: Mutex::new(()),
        }
    }

    /// Record every transaction in `journal` before broadcasting it.
    pub fn with_journal(mut self, journal: Arc<dyn TxJournal>) -> Self {
        self.journal = Some(journal);
        self
    }

    /// Broadcast a journaled transaction again (after a restart) and wait for its receipt;
    /// forgets it once mined, or once its nonce is used by another transaction.
    pub async fn rebroadcast(&self, tx: &SentTx) -> Result<Option<TxOutcome>, ChainError> {
        let what = tx.what;
        let rpc = |e: alloy::transports::TransportError| ChainError::Rpc {
            what,
            reason: e.to_string(),
        };
        if self
            .provider
            .get_transaction_receipt(tx.tx_hash)
            .await
            .map_err(rpc)?
            .is_none()
        {
            let sent = self.provider.send_raw_transaction(&tx.raw).await;
            if let Err(e) = sent {
                let used = self
                    .provider
                    .get_transaction_count(self.address)
                    .await
                    .map_err(rpc)?;
                if used > tx.nonce {
                    // The nonce went to another transaction: this one can never be mined.
                    self.forget(what, tx.nonce)?;
                    return Ok(None);
                }
                if !e.to_string().contains("already") {
                    return Err(rpc(e));
                }
            }
        }
        let receipt = self.receipt(what, tx.tx_hash).await?;
        self.forget(what, tx.nonce)?;
        Ok(Some(TxOutcome {
            tx_hash: tx.tx_hash,
            block: receipt.block_number.unwrap_or_default(),
            gas_used: receipt.gas_used,
            opened: None,
        }))
    }

    /// Wait for `tx_hash`'s receipt with the configured confirmations.
    async fn receipt(
        &self,
        what: &'static str,
        tx_hash: B256,
    ) -> Result<TransactionReceipt, ChainError> {
        alloy::providers::PendingTransactionBuilder::new(self.provider.root().clone(), tx_hash)
            .with_required_confirmations(self.confirmations.max(1))
            .get_receipt()
            .await
            .map_err(|e| ChainError::Rpc {
                what,
                reason: e.to_string(),
            })
    }

    fn forget(&self, what: &'static str, nonce: u64) -> Result<(), ChainError> {
        match &self.journal {
            Some(journal) => journal
                .forget(nonce)
                .map_err(|reason| ChainError::Journal { what, reason }),
            None => Ok(()),
        }
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

    /// Open a channel to `partner` funded with `deposit` of `token`, in one transaction: with
    /// an EIP-2612 permit the node signs itself (no separate approve).
    pub async fn open_with_permit(
        &self,
        signer: &PrivateKeySigner,
        token: Address,
        partner: Address,
        deposit: u128,
        challenge_period: u32,
    ) -> Result<TxOutcome, ChainError> {
        const WHAT: &str = "open";
        let _token = self.token_lock.lock().await;
        let erc20 = MockUSDC::new(token, &self.provider);
        let permit_nonce = erc20
            .nonces(self.address)
            .call()
            .await
            .map_err(|e| rpc(WHAT, e))?;
        let deadline = U256::from(u64::MAX);
        let permit = Permit {
            owner: self.address,
            spender: self.manager,
            value: U256::from(deposit),
            nonce: permit_nonce,
            deadline,
        };
        let sig = messages::sign(
            signer,
            &permit,
            &messages::usdc_domain(self.chain_id, token),
        );
        let (r, s) = (B256::from_slice(&sig[..32]), B256::from_slice(&sig[32..64]));
        let tx = self
            .manager()
            .openWithPermit(
                token,
                self.address,
                partner,
                U256::from(deposit),
                challenge_period,
                deadline,
                sig[64],
                r,
                s,
                Bytes::new(),
            )
            .into_transaction_request();
        let mut outcome = self.send(WHAT, tx).await?;
        outcome.opened = self.opened_id(outcome.tx_hash).await;
        Ok(outcome)
    }

    /// Submit a funder's gasless open (EIP-3009); the node pays the gas, the funder the deposit.
    pub async fn open_with_authorization(
        &self,
        auth: &OpenAuthorization,
    ) -> Result<TxOutcome, ChainError> {
        let sig = &auth.signature;
        if sig.len() != 65 {
            return Err(ChainError::Refused {
                what: "gasless open",
                reason: "signature is not 65 bytes".into(),
            });
        }
        let tx = self
            .manager()
            .openWithAuthorization(
                auth.token,
                auth.funder,
                auth.partner,
                U256::from(auth.deposit),
                auth.challenge_period,
                U256::from(auth.valid_after),
                U256::from(auth.valid_before),
                auth.salt,
                sig[64],
                B256::from_slice(&sig[..32]),
                B256::from_slice(&sig[32..64]),
            )
            .into_transaction_request();
        let mut outcome = self.send("gasless open", tx).await?;
        outcome.opened = self.opened_id(outcome.tx_hash).await;
        Ok(outcome)
    }

    /// Raise our total deposit in channel `id` to `total`: approves exactly the difference,
    /// then tops up (two transactions, nonces in order).
    pub async fn top_up(
        &self,
        token: Address,
        id: ChannelId,
        current: u128,
        total: u128,
    ) -> Result<TxOutcome, ChainError> {
        let _token = self.token_lock.lock().await;
        let erc20 = MockUSDC::new(token, &self.provider);
        let amount = U256::from(total.saturating_sub(current));
        self.send(
            "approve",
            erc20
                .approve(self.manager, amount)
                .into_transaction_request(),
        )
        .await?;
        let tx = self
            .manager()
            .topUp(U256::from(id), self.address, U256::from(total))
            .into_transaction_request();
        self.send("top-up", tx).await
    }

    /// Close channel `id` unilaterally with the partner's latest proof (none: they never paid).
    pub async fn close(
        &self,
        id: ChannelId,
        partner_proof: Option<&SignedProof>,
    ) -> Result<TxOutcome, ChainError> {
        let (nonce, transferred, sig) = match partner_proof {
            Some(p) => (p.nonce, p.transferred, p.signature.clone()),
            None => (0, 0, Bytes::new()),
        };
        let tx = self
            .manager()
            .close(U256::from(id), nonce, transferred, sig)
            .into_transaction_request();
        self.send("close", tx).await
    }

    /// Record a newer proof (signed by either participant) during the challenge period.
    pub async fn update_proof(
        &self,
        id: ChannelId,
        proof: &SignedProof,
    ) -> Result<TxOutcome, ChainError> {
        let tx = self
            .manager()
            .updateProof(
                U256::from(id),
                proof.nonce,
                proof.transferred,
                proof.signature.clone(),
            )
            .into_transaction_request();
        self.send("update proof", tx).await
    }

    /// Close with payouts both participants signed.
    pub async fn cooperative_close(
        &self,
        id: ChannelId,
        payout_a: u128,
        payout_b: u128,
        sig_a: Bytes,
        sig_b: Bytes,
    ) -> Result<TxOutcome, ChainError> {
        let tx = self
            .manager()
            .cooperativeClose(
                U256::from(id),
                U256::from(payout_a),
                U256::from(payout_b),
                sig_a,
                sig_b,
            )
            .into_transaction_request();
        self.send("cooperative close", tx).await
    }

    /// Withdraw while open with both participants' signatures.
    pub async fn withdraw(
        &self,
        id: ChannelId,
        participant: Address,
        total: u128,
        expiry: u64,
        sig_a: Bytes,
        sig_b: Bytes,
    ) -> Result<TxOutcome, ChainError> {
        let tx = self
            .manager()
            .withdraw(
                U256::from(id),
                participant,
                U256::from(total),
                U256::from(expiry),
                sig_a,
                sig_b,
            )
            .into_transaction_request();
        self.send("withdraw", tx).await
    }

    /// Pay out a channel whose challenge period is over.
    pub async fn settle(&self, id: ChannelId) -> Result<TxOutcome, ChainError> {
        let tx = self
            .manager()
            .settle(U256::from(id))
            .into_transaction_request();
        self.send("settle", tx).await
    }

    /// Claim what a token refused to pay `owner` at settle time.
    pub async fn claim(&self, token: Address, owner: Address) -> Result<TxOutcome, ChainError> {
        let tx = self
            .manager()
            .claim(token, owner)
            .into_transaction_request();
        self.send("claim", tx).await
    }

    /// Submit `tx` with the next nonce of the node's key and wait for its receipt.
    async fn send(
        &self,
        what: &'static str,
        tx: TransactionRequest,
    ) -> Result<TxOutcome, ChainError> {
        let rpc = |e: alloy::transports::TransportError| ChainError::Rpc {
            what,
            reason: e.to_string(),
        };
        let mut tx = tx.with_from(self.address).with_chain_id(self.chain_id);
        // Simulate first: a refused call fails here, with the contract's error, before
        // anything is signed or a nonce is taken.
        let gas = self
            .provider
            .estimate_gas(tx.clone())
            .await
            .map_err(|e| refusal_or_rpc(what, &e))?;
        let fees = self.provider.estimate_eip1559_fees().await.map_err(rpc)?;
        tx.set_gas_limit(gas + gas / 5);
        tx.set_max_fee_per_gas(fees.max_fee_per_gas);
        tx.set_max_priority_fee_per_gas(fees.max_priority_fee_per_gas);

        let sent = {
            let mut next = self.next_nonce.lock().await;
            let nonce = match *next {
                Some(nonce) => nonce,
                None => self
                    .provider
                    .get_transaction_count(self.address)
                    .pending()
                    .await
                    .map_err(rpc)?,
            };
            tx.set_nonce(nonce);
            let envelope = NetworkWallet::<Ethereum>::sign_request(&self.wallet, tx)
                .await
                .map_err(|e| ChainError::Rpc {
                    what,
                    reason: format!("signing: {e}"),
                })?;
            let sent = SentTx {
                tx_hash: *envelope.tx_hash(),
                nonce,
                what,
                raw: envelope.encoded_2718().into(),
            };
            if let Some(journal) = &self.journal {
                journal
                    .record(&sent)
                    .map_err(|reason| ChainError::Journal { what, reason })?;
            }
            match self.provider.send_raw_transaction(&sent.raw).await {
                Ok(_) => *next = Some(nonce + 1),
                Err(e) => {
                    *next = None; // resynchronise from the chain on the next send
                    self.forget(what, nonce)?;
                    return Err(refusal_or_rpc(what, &e));
                }
            }
            sent
        };
        let receipt = self.receipt(what, sent.tx_hash).await?;
        self.forget(what, sent.nonce)?;
        if !receipt.status() {
            return Err(ChainError::Reverted {
                what,
                tx_hash: sent.tx_hash,
            });
        }
        Ok(TxOutcome {
            tx_hash: sent.tx_hash,
            block: receipt.block_number.unwrap_or_default(),
            gas_used: receipt.gas_used,
            opened: None,
        })
    }

    async fn opened_id(&self, tx_hash: B256) -> Option<ChannelId> {
        let receipt = self
            .provider
            .get_transaction_receipt(tx_hash)
            .await
            .ok()??;
        receipt.inner.logs().iter().find_map(|log| {
            log.log_decode::<ChannelManager::ChannelOpened>()
                .ok()
                .and_then(|l| u64::try_from(l.inner.data.channelId).ok())
        })
    }
}

fn rpc(what: &'static str, e: impl std::fmt::Display) -> ChainError {
    ChainError::Rpc {
        what,
        reason: e.to_string(),
    }
}

/// A refusal if the node's RPC returned revert data (decoded when it is one of the contract's
/// errors or a revert string), else a transport failure.
fn refusal_or_rpc(what: &'static str, e: &alloy::transports::TransportError) -> ChainError {
    let Some(data) = e.as_error_resp().and_then(|resp| resp.as_revert_data()) else {
        return ChainError::Rpc {
            what,
            reason: e.to_string(),
        };
    };
    let reason = match ChannelManagerErrors::abi_decode(&data) {
        Ok(err) => format!("{err:?}"),
        Err(_) => alloy::sol_types::decode_revert_reason(&data)
            .unwrap_or_else(|| format!("revert data {data}")),
    };
    ChainError::Refused { what, reason }
}
