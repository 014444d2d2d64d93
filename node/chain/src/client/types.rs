//! What the chain client hands out and takes: outcomes, journaled transactions, gasless open
//! authorizations, errors, and its time limits.

use alloy::primitives::{Address, B256, Bytes, U256};
use alloy::signers::local::PrivateKeySigner;
use farthing_core::ChannelId;

use crate::messages;

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
    /// `ChannelManager` at `manager`, in the token's EIP-712 `domain` (no transaction: the
    /// funder needs no gas).
    #[allow(clippy::too_many_arguments)]
    pub fn sign(
        funder: &PrivateKeySigner,
        manager: Address,
        domain: &messages::TokenDomain,
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
        let signature = messages::sign(funder, &message, &domain.eip712());
        Self {
            token: domain.token,
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
    /// The transaction `tx_hash` (sent with `nonce`) was mined, refused, or can never be mined:
    /// forget it — only if the record under `nonce` is still that transaction.
    fn forget(&self, nonce: u64, tx_hash: B256) -> Result<(), String>;
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
    /// The chain answers, but no contract is at an address of the deployment (the call
    /// returned no data): a restarted devnet, or the wrong chain or deployment file.
    #[error(
        "{what}: no contract at {address} on the chain the RPC serves: deploy again or point the node at the chain that holds the deployment"
    )]
    NoContract {
        /// The operation.
        what: &'static str,
        /// The address without code.
        address: alloy::primitives::Address,
    },
    /// The journal could not record the transaction; nothing was sent.
    #[error("{what}: cannot record the transaction before sending it: {reason}")]
    Journal {
        /// The operation.
        what: &'static str,
        /// The journal's error.
        reason: String,
    },
    /// The transaction was broadcast but its receipt did not arrive in time. It stays in the
    /// journal and the node keeps following it: do not send it again.
    #[error(
        "{what}: transaction {tx_hash} was sent but not yet confirmed ({reason}); do not resend it: \
         the node keeps watching it and the channel's state will show the outcome"
    )]
    Unconfirmed {
        /// The operation.
        what: &'static str,
        /// Its hash.
        tx_hash: B256,
        /// Why waiting stopped.
        reason: String,
    },
    /// The chain's base fee is above the operator's cap (`chain.max_fee_per_gas_gwei`): a
    /// transaction within the cap could not be mined now, so nothing was sent.
    #[error(
        "{what} not sent: the chain's base fee is {}, above the cap chain.max_fee_per_gas_gwei = {}: raise the cap or retry when fees fall",
        crate::client::fees::gwei(*base_fee),
        crate::client::fees::gwei(*cap)
    )]
    FeeCap {
        /// The operation.
        what: &'static str,
        /// The latest block's base fee, wei per gas.
        base_fee: u128,
        /// The cap, wei per gas.
        cap: u128,
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

/// How long an operation waits for its receipt before answering `Unconfirmed`.
pub const RECEIPT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);

/// How long an urgent transaction (the watchtower's: a proof update, a settle) waits to be
/// mined before it is signed again, same nonce, with its fees raised by half.
pub const URGENT_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// How many times an urgent transaction's fees are raised before the call gives up (it stays
/// journaled and the caller tries again).
pub const URGENT_BUMPS: u32 = 20;

/// `url` without path, query or credentials (an RPC URL often carries an API key).
pub fn redact_url(url: &str) -> String {
    match url.parse::<alloy::transports::http::reqwest::Url>() {
        Ok(u) => format!(
            "{}://{}{}",
            u.scheme(),
            u.host_str().unwrap_or("?"),
            u.port().map(|p| format!(":{p}")).unwrap_or_default()
        ),
        Err(_) => "<rpc url>".into(),
    }
}
