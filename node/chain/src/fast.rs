//! The payment hot path's cryptography: balance-proof digests with the EIP-712 domain
//! separator computed once, and libsecp256k1 (one precomputed, once-randomised context) for
//! signing and recovering. Same bytes as the alloy/k256 path (`messages::sign`, alloy's
//! recovery) — the tests check both ways — at a fraction of the cost.

use std::sync::OnceLock;

use alloy::primitives::{Address, B256, U256, keccak256};
use alloy::sol_types::SolStruct;
use secp256k1::ecdsa::{RecoverableSignature, RecoveryId};
use secp256k1::{All, Message, Secp256k1, SecretKey};

use crate::messages::BalanceProof;

/// The process's one signing/verification context: built once (precomputed tables), blinded
/// once with a random seed.
fn context() -> &'static Secp256k1<All> {
    static CONTEXT: OnceLock<Secp256k1<All>> = OnceLock::new();
    CONTEXT.get_or_init(|| {
        let mut ctx = Secp256k1::new();
        let mut seed = [0u8; 32];
        if getrandom::fill(&mut seed).is_ok() {
            ctx.seeded_randomize(&seed);
        }
        ctx
    })
}

/// The digest of `BalanceProof{channelId, nonce, transferred}` under a domain whose separator
/// was computed once: `keccak256(0x1901 || separator || structHash)`.
#[derive(Debug, Clone, Copy)]
pub struct ProofDigester {
    separator: B256,
    typehash: B256,
}

impl ProofDigester {
    /// For the contract's EIP-712 `domain`.
    pub fn new(domain: &alloy::sol_types::Eip712Domain) -> Self {
        Self {
            separator: domain.separator(),
            typehash: BalanceProof {
                channelId: U256::ZERO,
                nonce: 0,
                transferred: 0,
            }
            .eip712_type_hash(),
        }
    }

    /// The digest both the node and the contract sign and verify.
    pub fn digest(&self, channel_id: u64, nonce: u64, transferred: u128) -> B256 {
        let mut data = [0u8; 128];
        data[..32].copy_from_slice(self.typehash.as_slice());
        data[56..64].copy_from_slice(&channel_id.to_be_bytes());
        data[88..96].copy_from_slice(&nonce.to_be_bytes());
        data[112..128].copy_from_slice(&transferred.to_be_bytes());
        let struct_hash = keccak256(data);
        let mut outer = [0u8; 66];
        outer[..2].copy_from_slice(&[0x19, 0x01]);
        outer[2..34].copy_from_slice(self.separator.as_slice());
        outer[34..].copy_from_slice(struct_hash.as_slice());
        keccak256(outer)
    }
}

/// A key for signing digests with libsecp256k1; overwritten when dropped. The node's own key
/// lives in [`crate::NodeKey`], which holds one of these.
pub struct FastSigner(SecretKey);

impl Drop for FastSigner {
    fn drop(&mut self) {
        self.0.non_secure_erase();
    }
}

impl std::fmt::Debug for FastSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FastSigner(..)")
    }
}

impl FastSigner {
    /// The same key as `signer`.
    pub fn new(signer: &alloy::signers::local::PrivateKeySigner) -> Self {
        let mut bytes: [u8; 32] = signer.credential().to_bytes().into();
        let key = SecretKey::from_byte_array(bytes).expect("a k256 key is a valid secp256k1 key");
        bytes.fill(0);
        std::hint::black_box(&mut bytes);
        Self(key)
    }

    /// A 65-byte `r | s | v` signature of `digest` (low s, v 27 or 28), as the contract wants.
    pub fn sign(&self, digest: &B256) -> [u8; 65] {
        let signature = context().sign_ecdsa_recoverable(Message::from_digest(digest.0), &self.0);
        let (id, compact) = signature.serialize_compact();
        let mut out = [0u8; 65];
        out[..64].copy_from_slice(&compact);
        out[64] = 27 + i32::from(id) as u8;
        out
    }
}

/// The address that signed `digest` with the 65-byte `r | s | v` `signature` (v 27 or 28),
/// if it recovers to one. The caller checks low s and v first.
pub fn recover(digest: &B256, signature: &[u8; 65]) -> Option<Address> {
    let id = RecoveryId::try_from(i32::from(signature[64]) - 27).ok()?;
    let signature = RecoverableSignature::from_compact(&signature[..64], id).ok()?;
    let key = context()
        .recover_ecdsa(Message::from_digest(digest.0), &signature)
        .ok()?;
    let uncompressed = key.serialize_uncompressed();
    Some(Address::from_slice(&keccak256(&uncompressed[1..])[12..]))
}

#[cfg(test)]
mod tests {
    use alloy::primitives::Signature;
    use alloy::signers::local::PrivateKeySigner;

    use super::*;
    use crate::messages::{self, channel_domain};

    #[test]
    fn digests_signatures_and_recovery_match_the_alloy_path() {
        let domain = channel_domain(31337, Address::repeat_byte(0xcc));
        let digester = ProofDigester::new(&domain);
        let key = PrivateKeySigner::random();
        let fast = FastSigner::new(&key);
        for (id, nonce, transferred) in [(1, 1, 1), (7, u64::MAX, u128::MAX), (u64::MAX, 42, 0)] {
            let message = BalanceProof {
                channelId: U256::from(id),
                nonce,
                transferred,
            };
            let digest = digester.digest(id, nonce, transferred);
            assert_eq!(digest, message.eip712_signing_hash(&domain));
            // libsecp256k1 signs exactly what k256 signs (RFC 6979, low s).
            let ours = fast.sign(&digest);
            assert_eq!(&ours[..], &messages::sign(&key, &message, &domain)[..]);
            assert_eq!(recover(&digest, &ours), Some(key.address()));
            let parsed = Signature::from_raw(&ours).unwrap();
            assert_eq!(
                parsed.recover_address_from_prehash(&digest).unwrap(),
                key.address()
            );
            let mut bad = ours;
            bad[64] = 29;
            assert_eq!(recover(&digest, &bad), None);
            bad[64] = ours[64] ^ 1; // the other recovery id: someone else
            assert_ne!(recover(&digest, &bad), Some(key.address()));
        }
    }
}
