//! The node's key, held in one place: one secp256k1 key signs the node's transactions, its
//! balance proofs and its co-signatures (PROTOCOL.md: one key, one domain).
//!
//! [`NodeKey`] is shared behind an `Arc` by the chain client and the payment signer; nothing
//! else keeps a copy. Both representations it holds (k256's for alloy, libsecp256k1's for the
//! payment hot path) are wiped when the last handle drops. It never prints itself: `Debug`
//! shows the address only. It signs typed protocol messages and transactions, never arbitrary
//! bytes handed in from outside.

use alloy::consensus::{SignableTransaction as _, TxEnvelope};
use alloy::network::{Ethereum, NetworkTransactionBuilder, TxSignerSync as _};
use alloy::primitives::{Address, B256};
use alloy::rpc::types::TransactionRequest;
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::{Eip712Domain, SolStruct};

use crate::fast::FastSigner;

/// The node's key. Share it as `Arc<NodeKey>`.
pub struct NodeKey {
    /// alloy's signer (k256): transactions and the EIP-712 messages of rare operations. k256's
    /// signing key zeroizes itself on drop.
    signer: PrivateKeySigner,
    /// The same key for libsecp256k1 (the payment hot path), erased on drop.
    fast: FastSigner,
    address: Address,
}

impl std::fmt::Debug for NodeKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "NodeKey({})", self.address)
    }
}

impl NodeKey {
    /// Take `signer` as the node's key (it is moved in: no other copy remains with the caller).
    pub fn new(signer: PrivateKeySigner) -> Self {
        let fast = FastSigner::new(&signer);
        Self {
            address: signer.address(),
            signer,
            fast,
        }
    }

    /// The node's address.
    pub fn address(&self) -> Address {
        self.address
    }

    /// A 65-byte `r | s | v` signature of a protocol `digest` (low s, v 27 or 28), as the
    /// contract wants, with libsecp256k1.
    pub fn sign_digest(&self, digest: &B256) -> [u8; 65] {
        self.fast.sign(digest)
    }

    /// Sign one of the protocol's EIP-712 messages (`crate::messages`) in `domain`.
    pub fn sign_typed<T: SolStruct>(&self, message: &T, domain: &Eip712Domain) -> [u8; 65] {
        self.sign_digest(&message.eip712_signing_hash(domain))
    }

    /// Sign a transaction request (nonce, fees and gas already set) into its envelope.
    pub fn sign_transaction(&self, tx: TransactionRequest) -> Result<TxEnvelope, String> {
        let mut unsigned = NetworkTransactionBuilder::<Ethereum>::build_unsigned(tx)
            .map_err(|e| format!("incomplete transaction: {e}"))?;
        let signature = self
            .signer
            .sign_transaction_sync(&mut unsigned)
            .map_err(|e| e.to_string())?;
        Ok(unsigned.into_signed(signature).into())
    }

    /// alloy's signer, borrowed for the peer handshake (it signs its challenge with it).
    /// Never clone it: the key lives here only.
    pub fn signer(&self) -> &PrivateKeySigner {
        &self.signer
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::{self, BalanceProof, channel_domain};
    use alloy::primitives::U256;

    #[test]
    fn both_representations_sign_the_same_bytes() {
        let signer = PrivateKeySigner::random();
        let reference = signer.clone();
        let key = NodeKey::new(signer);
        let domain = channel_domain(31337, Address::repeat_byte(0xcc));
        let message = BalanceProof {
            channelId: U256::from(7),
            nonce: 3,
            transferred: 1_000,
        };
        assert_eq!(
            &key.sign_typed(&message, &domain)[..],
            &messages::sign(&reference, &message, &domain)[..]
        );
        assert_eq!(key.address(), reference.address());
        assert_eq!(
            format!("{key:?}"),
            format!("NodeKey({})", reference.address()),
            "the key never prints itself"
        );
    }
}
