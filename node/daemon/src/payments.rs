//! Off-chain payments at the node: signing our next balance proof, accepting our partner's.
//!
//! Durability (PROTOCOL.md rules 1 and 2): our new proof is queued for a synced write under the
//! channel table's lock and the signature is handed out only once that write is durable, so
//! no nonce is ever signed twice across crashes; an incoming proof is made durable before
//! [`Node::accept_payment`] returns, which is when the caller may acknowledge it. Writes of
//! many payments and channels share fsyncs through the group committer.

use alloy::primitives::{Address, B256, Bytes, U256};
use farthing_core::{ChannelId, PaymentError, Rejection, SignedProof};
use farthing_store::StoreError;

use farthing_store::Write;

use crate::node::Node;

/// A write on its way to disk: resolves once it is durable.
pub(crate) type Durable =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), StoreError>> + Send>>;

/// Why a payment could not be made or accepted.
#[derive(Debug, thiserror::Error)]
pub enum PayError {
    /// No channel of the node has this id.
    #[error("no channel {0}")]
    UnknownChannel(ChannelId),
    /// The node refuses to sign it (amount, balance, state).
    #[error(transparent)]
    Payment(#[from] PaymentError),
    /// An incoming proof breaks the payment rules; the reason goes back to the payer.
    #[error("proof refused: {0}")]
    Rejected(#[from] Rejection),
    /// An incoming proof's signature is malformed or not the partner's.
    #[error("proof refused: {0}")]
    BadSignature(String),
    /// The store could not make it durable; nothing was signed or acknowledged.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// No link to the channel's partner (or it dropped before the acknowledgement): the
    /// payment may or may not have arrived; it is settled when the link resynchronises.
    #[error("no link to the channel's partner: connect to it (0xADDRESS@host:port) and retry")]
    LinkDown,
    /// The channel is closing (a cooperative close was signed): no more payments either way.
    #[error("channel {0} is closing: no more payments")]
    Frozen(ChannelId),
    /// The link dropped (or the partner stayed silent) before it acknowledged the payment.
    /// The proof is signed and stored: it reaches the partner when the link is back.
    #[error(
        "the partner has not acknowledged payment nonce {nonce} on channel {channel} (the link dropped or it did not answer); \
         the proof is signed and stored and reaches the partner when the link is back: do not pay again — \
         repeat the call with the same idempotency key to learn the outcome"
    )]
    Undelivered {
        /// The channel.
        channel: ChannelId,
        /// The proof's nonce.
        nonce: u64,
    },
    /// The idempotency key was used for a different payment.
    #[error(
        "idempotency key {key:?} was used for a payment of {amount} base units on channel {channel}: use a new key for a new payment"
    )]
    KeyReused {
        /// The key.
        key: String,
        /// The channel of the payment made under it.
        channel: ChannelId,
        /// Its amount, base units.
        amount: u128,
    },
    /// The memo does not fit a frame.
    #[error("memo refused: {0}")]
    BadMemo(String),
    /// The partner or the chain knows a newer proof of ours than this node: it signs nothing.
    #[error("{0}")]
    Stale(String),
    /// The task signing the channel's payments stopped before this one was signed (a bug:
    /// see the node's log). Nothing was signed for it.
    #[error(
        "the payment signer of channel {0} stopped before this payment was signed (see the node's log): it was not made; retry"
    )]
    SignerStopped(ChannelId),
    /// The chain refused or failed.
    #[error(transparent)]
    Chain(#[from] farthing_chain::ChainError),
    /// The partner refused the payment, with its reason. The proof stays signed (a signature
    /// cannot be taken back), so its amount travels with the next payment on the channel.
    #[error(
        "the partner refused the payment: {0}; its amount is already signed and reaches the partner with the next payment"
    )]
    Refused(String),
}

impl Node {
    /// The EIP-712 digest of a balance proof in this node's contract domain.
    pub fn proof_digest(&self, id: ChannelId, nonce: u64, transferred: u128) -> B256 {
        self.digester().digest(id, nonce, transferred)
    }

    /// The channel with our next proof for paying `amount`, and that proof (signed; the caller
    /// makes the record durable before the signature leaves the process).
    pub(crate) fn next_proof(
        &self,
        channel: &farthing_core::Channel,
        amount: u128,
    ) -> Result<(farthing_core::Channel, SignedProof), PayError> {
        self.may_sign(channel.id)?;
        let (nonce, transferred) = channel.next_payment(amount)?;
        let digest = self.proof_digest(channel.id, nonce, transferred);
        let proof = SignedProof {
            nonce,
            transferred,
            signature: Bytes::copy_from_slice(&self.fast_signer().sign(&digest)),
        };
        let mut next = channel.clone();
        next.ours = Some(proof.clone());
        Ok((next, proof))
    }

    /// Pay `amount` on channel `id`: our next proof, durable before it is returned.
    pub async fn sign_payment(&self, id: ChannelId, amount: u128) -> Result<SignedProof, PayError> {
        if self.channel_record(id).is_none() {
            return Err(PayError::UnknownChannel(id));
        }
        let durable = self.update_channel(id, |channel| self.next_proof(channel, amount))?;
        durable.await
    }

    /// Accept the partner's proof `(nonce, transferred, signature)` paying us `amount` on
    /// channel `id`. When this returns `Ok`, the proof is durable: acknowledge it.
    pub async fn accept_payment(
        &self,
        id: ChannelId,
        nonce: u64,
        transferred: u128,
        amount: u128,
        signature: &[u8],
    ) -> Result<(), PayError> {
        let partner = self.partner_of(id).ok_or(PayError::UnknownChannel(id))?;
        self.queue_incoming(partner, id, nonce, transferred, amount, signature)?
            .await?;
        Ok(())
    }

    /// Check an incoming proof from `peer` (signature, the payment rules, the channel not
    /// frozen) and queue it as the partner's latest; the returned future resolves once it is
    /// durable. The one path every incoming proof takes (peer link, Sync, in-process).
    pub(crate) fn queue_incoming(
        &self,
        peer: Address,
        id: ChannelId,
        nonce: u64,
        transferred: u128,
        amount: u128,
        signature: &[u8],
    ) -> Result<Durable, PayError> {
        let partner = self.partner_of(id).ok_or(PayError::UnknownChannel(id))?;
        if partner != peer {
            return Err(PayError::BadSignature(format!(
                "channel {id} is not shared with {peer}"
            )));
        }
        self.require_store()?;
        verify(self.proof_digest(id, nonce, transferred), signature, peer)?;
        let signature = Bytes::copy_from_slice(signature);
        self.with_channel(id, |channel, group| {
            // Under the table's lock, where a co-signed close freezes the channel.
            if self.is_frozen(id) {
                return Err(PayError::Frozen(id));
            }
            channel.check_incoming(nonce, transferred, amount)?;
            let mut next = channel.clone();
            next.theirs = Some(SignedProof {
                nonce,
                transferred,
                signature,
            });
            let durable: Durable = Box::pin(group.submit(vec![Write::Channel(next.clone())]));
            Ok::<_, PayError>((next, durable))
        })
    }
}

impl Node {
    /// Whether the node may sign a new proof of channel `id`: not closing, not stale, its store
    /// working.
    pub(crate) fn may_sign(&self, id: ChannelId) -> Result<(), PayError> {
        if self.is_frozen(id) {
            return Err(PayError::Frozen(id));
        }
        if let Some(reason) = self.stale_reason(id) {
            return Err(PayError::Stale(reason));
        }
        self.require_store()
    }

    /// Nothing is signed or accepted while the store fails.
    pub(crate) fn require_store(&self) -> Result<(), PayError> {
        // One atomic load on the hot path; the reason's lock only when failing.
        if !self.store_health().is_failing() {
            return Ok(());
        }
        let reason = self
            .store_health()
            .problem()
            .unwrap_or_else(|| "the store is failing".into());
        Err(PayError::Store(StoreError::Unavailable { reason }))
    }
}

/// The contract's rules for a signature (and the node's): 65 bytes `r | s | v`, low s,
/// `v` 27 or 28, recovering to `expected`.
pub(crate) fn verify(digest: B256, signature: &[u8], expected: Address) -> Result<(), PayError> {
    const HALF_N: U256 = U256::from_be_slice(&[
        0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0x5d, 0x57, 0x6e, 0x73, 0x57, 0xa4, 0x50, 0x1d, 0xdf, 0xe9, 0x2f, 0x46, 0x68, 0x1b,
        0x20, 0xa0,
    ]);
    let bad = |why: &str| Err(PayError::BadSignature(why.into()));
    let [body @ .., v] = signature else {
        return bad("empty signature");
    };
    if body.len() != 64 {
        return bad("a signature is 65 bytes");
    }
    if *v != 27 && *v != 28 {
        return bad("v must be 27 or 28");
    }
    if U256::from_be_slice(&body[32..]) > HALF_N {
        return bad("high-s signature");
    }
    let raw: &[u8; 65] = signature
        .try_into()
        .map_err(|_| PayError::BadSignature("a signature is 65 bytes".into()))?;
    match farthing_chain::fast::recover(&digest, raw) {
        Some(signer) if signer == expected => Ok(()),
        Some(signer) => Err(PayError::BadSignature(format!(
            "signed by {signer}, not by the partner {expected}"
        ))),
        None => bad("the signature does not recover to any address"),
    }
}
