//! The `ChannelManager`'s entry points as the node calls them: each builds its transaction,
//! and the client signs, journals and sends it (`client/mod.rs`).

use alloy::primitives::{Address, B256, Bytes, U256};
use farthing_core::{ChannelId, SignedProof};

use crate::client::{ChainClient, ChainError, OpenAuthorization, TxOutcome};
use crate::contracts::MockUSDC;
use crate::messages::{self, Permit};

impl ChainClient {
    /// Submit a payer's EIP-3009 `transferWithAuthorization` of `token` (the x402 `exact` and
    /// MPP `charge` payments); the node pays the gas. A refused one (used nonce, bad signature,
    /// outside its window, short balance) fails at the simulation, before anything is sent.
    pub async fn transfer_with_authorization(
        &self,
        token: Address,
        auth: &messages::TransferWithAuthorization,
        signature: &[u8],
    ) -> Result<TxOutcome, ChainError> {
        const WHAT: &str = "transferWithAuthorization";
        if signature.len() != 65 {
            return Err(ChainError::Refused {
                what: WHAT,
                reason: "signature is not 65 bytes".into(),
            });
        }
        let tx = MockUSDC::new(token, &self.provider)
            .transferWithAuthorization(
                auth.from,
                auth.to,
                auth.value,
                auth.validAfter,
                auth.validBefore,
                auth.nonce,
                signature[64],
                B256::from_slice(&signature[..32]),
                B256::from_slice(&signature[32..64]),
            )
            .into_transaction_request();
        self.send(WHAT, tx).await
    }

    /// Whether `from` has used (or cancelled) EIP-3009 nonce `nonce` of `token`.
    pub async fn authorization_used(
        &self,
        token: Address,
        from: Address,
        nonce: B256,
    ) -> Result<bool, ChainError> {
        MockUSDC::new(token, &self.provider)
            .authorizationState(from, nonce)
            .call()
            .await
            .map_err(|e| self.fail("authorizationState", e))
    }

    /// Send `amount` of `token` from the node to `to` (a refund).
    pub async fn transfer(
        &self,
        token: Address,
        to: Address,
        amount: u128,
    ) -> Result<TxOutcome, ChainError> {
        let _token = self.token_lock.lock().await;
        let tx = MockUSDC::new(token, &self.provider)
            .transfer(to, U256::from(amount))
            .into_transaction_request();
        self.send("transfer", tx).await
    }

    /// Open a channel to `partner` funded with `deposit` of `token`, in one transaction: with
    /// an EIP-2612 permit the node signs itself (no separate approve) in the token's domain.
    pub async fn open_with_permit(
        &self,
        domain: &messages::TokenDomain,
        partner: Address,
        deposit: u128,
        challenge_period: u32,
    ) -> Result<TxOutcome, ChainError> {
        const WHAT: &str = "open";
        let token = domain.token;
        let _token = self.token_lock.lock().await;
        let erc20 = MockUSDC::new(token, &self.provider);
        let permit_nonce = erc20
            .nonces(self.address)
            .call()
            .await
            .map_err(|e| self.fail(WHAT, e))?;
        let deadline = U256::from(u64::MAX);
        let permit = Permit {
            owner: self.address,
            spender: self.manager,
            value: U256::from(deposit),
            nonce: permit_nonce,
            deadline,
        };
        let sig = self.key.sign_typed(&permit, &domain.eip712());
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
        self.send(WHAT, tx).await
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
        self.send("gasless open", tx).await
    }

    /// Add `amount` to our deposit in channel `id`. The current deposit is read from the
    /// contract (not from a possibly lagging local record) under the token lock, and an
    /// approve is sent first only when the allowance does not cover the amount.
    pub async fn top_up(
        &self,
        token: Address,
        id: ChannelId,
        amount: u128,
    ) -> Result<TxOutcome, ChainError> {
        const WHAT: &str = "top-up";
        let _token = self.token_lock.lock().await;
        let info = self
            .manager()
            .getChannel(U256::from(id))
            .call()
            .await
            .map_err(|e| self.fail(WHAT, e))?;
        let current = if info.participantA == self.address {
            info.depositA.to::<u128>()
        } else if info.participantB == self.address {
            info.depositB.to::<u128>()
        } else {
            return Err(ChainError::Refused {
                what: WHAT,
                reason: format!("the node is not a participant of channel {id}"),
            });
        };
        let total = current.saturating_add(amount);
        let erc20 = MockUSDC::new(token, &self.provider);
        let allowance = erc20
            .allowance(self.address, self.manager)
            .call()
            .await
            .map_err(|e| self.fail(WHAT, e))?;
        if allowance < U256::from(amount) {
            self.send(
                "approve",
                erc20
                    .approve(self.manager, U256::from(amount))
                    .into_transaction_request(),
            )
            .await?;
        }
        let tx = self
            .manager()
            .topUp(U256::from(id), self.address, U256::from(total))
            .into_transaction_request();
        self.send(WHAT, tx).await
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
        self.send_urgent("update proof", tx).await
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
        self.send_urgent("settle", tx).await
    }

    /// Claim what a token refused to pay `owner` at settle time.
    pub async fn claim(&self, token: Address, owner: Address) -> Result<TxOutcome, ChainError> {
        let tx = self
            .manager()
            .claim(token, owner)
            .into_transaction_request();
        self.send("claim", tx).await
    }
}
