//! The node's protocol signatures and the one check every signature it receives passes.
//!
//! [`Signer`] holds the node's key (shared with the chain client, never copied), the
//! `ChannelManager`'s EIP-712 domain and the balance-proof digester (domain separator computed
//! once). It signs exactly the protocol's messages — balance proofs, co-signed withdrawals and
//! closes — never arbitrary data. [`verify`] applies the contract's rules to a partner's
//! signature: 65 bytes `r | s | v`, low s, `v` 27 or 28, recovering to the expected signer.

use std::sync::Arc;

use alloy::primitives::{Address, B256, U256};
use alloy::sol_types::{Eip712Domain, SolStruct};
use farthing_chain::NodeKey;
use farthing_chain::fast::{ProofDigester, recover};
use farthing_core::ChannelId;

/// Why a partner's signature is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// Not 65 bytes.
    #[error("a signature is 65 bytes")]
    Length,
    /// `v` is not 27 or 28.
    #[error("v must be 27 or 28")]
    V,
    /// `s` is in the upper half of the curve order (malleable).
    #[error("high-s signature")]
    HighS,
    /// No public key recovers from it.
    #[error("the signature does not recover to any address")]
    NoSigner,
    /// Someone else signed it.
    #[error("signed by {signer}, not by the partner {expected}")]
    WrongSigner {
        /// Who signed.
        signer: Address,
        /// Who should have.
        expected: Address,
    },
}

/// Signs the node's protocol messages with its key.
pub(crate) struct Signer {
    key: Arc<NodeKey>,
    domain: Eip712Domain,
    digester: ProofDigester,
}

impl Signer {
    /// Sign with `key` in the `ChannelManager`'s `domain`.
    pub(crate) fn new(key: Arc<NodeKey>, domain: Eip712Domain) -> Self {
        Self {
            digester: ProofDigester::new(&domain),
            key,
            domain,
        }
    }

    /// The node's address.
    pub(crate) fn address(&self) -> Address {
        self.key.address()
    }

    /// The key, for the handshake (it proves the node's address to a partner).
    pub(crate) fn key(&self) -> &NodeKey {
        &self.key
    }

    /// The EIP-712 digest of a balance proof in the contract's domain.
    pub(crate) fn proof_digest(&self, id: ChannelId, nonce: u64, transferred: u128) -> B256 {
        self.digester.digest(id, nonce, transferred)
    }

    /// Sign our balance proof (the caller makes its record durable before it leaves).
    pub(crate) fn sign_proof(&self, id: ChannelId, nonce: u64, transferred: u128) -> [u8; 65] {
        self.key
            .sign_digest(&self.proof_digest(id, nonce, transferred))
    }

    /// Check that `expected` signed the balance proof.
    pub(crate) fn verify_proof(
        &self,
        id: ChannelId,
        (nonce, transferred): (u64, u128),
        signature: &[u8],
        expected: Address,
    ) -> Result<(), SignatureError> {
        verify(
            self.proof_digest(id, nonce, transferred),
            signature,
            expected,
        )
    }

    /// Sign a co-signed message (a withdrawal, a cooperative close).
    pub(crate) fn sign<T: SolStruct>(&self, message: &T) -> [u8; 65] {
        self.key.sign_typed(message, &self.domain)
    }

    /// Check that `expected` signed a co-signed message.
    pub(crate) fn verify<T: SolStruct>(
        &self,
        message: &T,
        signature: &[u8],
        expected: Address,
    ) -> Result<(), SignatureError> {
        verify(
            message.eip712_signing_hash(&self.domain),
            signature,
            expected,
        )
    }
}

/// The contract's rules for a signature (and the node's): 65 bytes `r | s | v`, low s, `v` 27
/// or 28, recovering to `expected`.
pub(crate) fn verify(
    digest: B256,
    signature: &[u8],
    expected: Address,
) -> Result<(), SignatureError> {
    const HALF_N: U256 = U256::from_be_slice(&[
        0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0x5d, 0x57, 0x6e, 0x73, 0x57, 0xa4, 0x50, 0x1d, 0xdf, 0xe9, 0x2f, 0x46, 0x68, 0x1b,
        0x20, 0xa0,
    ]);
    let raw: &[u8; 65] = signature.try_into().map_err(|_| SignatureError::Length)?;
    if raw[64] != 27 && raw[64] != 28 {
        return Err(SignatureError::V);
    }
    if U256::from_be_slice(&raw[32..64]) > HALF_N {
        return Err(SignatureError::HighS);
    }
    match recover(&digest, raw) {
        Some(signer) if signer == expected => Ok(()),
        Some(signer) => Err(SignatureError::WrongSigner { signer, expected }),
        None => Err(SignatureError::NoSigner),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::signers::local::PrivateKeySigner;
    use farthing_chain::messages::channel_domain;

    fn signer() -> Signer {
        let key = Arc::new(NodeKey::new(PrivateKeySigner::random()));
        Signer::new(key, channel_domain(31337, Address::repeat_byte(0xcc)))
    }

    #[test]
    fn a_proof_verifies_for_its_signer_only() {
        let s = signer();
        let sig = s.sign_proof(4, 9, 1_000);
        assert_eq!(s.verify_proof(4, (9, 1_000), &sig, s.address()), Ok(()));
        assert!(matches!(
            s.verify_proof(4, (9, 1_001), &sig, s.address()),
            Err(SignatureError::WrongSigner { .. })
        ));
        assert!(matches!(
            s.verify_proof(4, (9, 1_000), &sig, Address::repeat_byte(1)),
            Err(SignatureError::WrongSigner { signer, .. }) if signer == s.address()
        ));
    }

    #[test]
    fn malformed_signatures_are_refused_by_the_contract_rules() {
        let s = signer();
        let sig = s.sign_proof(1, 1, 1);
        let digest = s.proof_digest(1, 1, 1);
        assert_eq!(
            verify(digest, &sig[..64], s.address()),
            Err(SignatureError::Length)
        );
        assert_eq!(
            verify(digest, &[], s.address()),
            Err(SignatureError::Length)
        );
        let mut bad_v = sig;
        bad_v[64] = 1;
        assert_eq!(verify(digest, &bad_v, s.address()), Err(SignatureError::V));
        // The malleable twin (n - s, v flipped) recovers the same signer but is refused.
        let n: U256 = "0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141"
            .parse()
            .expect("the curve order");
        let mut high = sig;
        let s_value = U256::from_be_slice(&sig[32..64]);
        high[32..64].copy_from_slice(&(n - s_value).to_be_bytes::<32>());
        high[64] = if sig[64] == 27 { 28 } else { 27 };
        assert_eq!(
            verify(digest, &high, s.address()),
            Err(SignatureError::HighS)
        );
    }
}
