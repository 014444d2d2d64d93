//! The EIP-712 messages participants sign, exactly as `ChannelManager` (and `MockUSDC`/USDC
//! for the gasless paths) verify them. The end-to-end tests check every digest computed here
//! against the contract's own digest views on a real chain.

#![allow(missing_docs)]

use alloy::primitives::{Address, B256, Bytes};
use alloy::signers::SignerSync;
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::{Eip712Domain, SolStruct, eip712_domain};

alloy::sol! {
    /// What P signs for each payment: everything P has paid the partner in this channel.
    #[derive(Debug, PartialEq, Eq)]
    struct BalanceProof {
        uint256 channelId;
        uint64 nonce;
        uint128 transferred;
    }

    /// Signed by both participants: `participant` may withdraw up to `totalWithdrawn`.
    #[derive(Debug, PartialEq, Eq)]
    struct Withdraw {
        uint256 channelId;
        address participant;
        uint96 totalWithdrawn;
        uint64 expiry;
    }

    /// Signed by both participants: close now with these payouts. The withdrawal totals are the
    /// channel's at signing time, so the message is void once the channel moves on.
    #[derive(Debug, PartialEq, Eq)]
    struct CooperativeClose {
        uint256 channelId;
        uint256 payoutA;
        uint256 payoutB;
        uint96 withdrawnA;
        uint96 withdrawnB;
    }

    /// Signed by a funder whose EIP-2612 permit someone else submits to open a channel.
    #[derive(Debug, PartialEq, Eq)]
    struct OpenWithPermit {
        address token;
        address partner;
        uint96 deposit;
        uint32 challengePeriod;
        uint256 permitNonce;
    }

    /// Hashed (struct hash, no domain) into the EIP-3009 nonce of a gasless open.
    #[derive(Debug, PartialEq, Eq)]
    struct OpenAuthorization {
        address partner;
        uint32 challengePeriod;
        bytes32 salt;
    }

    /// EIP-2612, in the token's domain.
    #[derive(Debug, PartialEq, Eq)]
    struct Permit {
        address owner;
        address spender;
        uint256 value;
        uint256 nonce;
        uint256 deadline;
    }

    /// EIP-3009, in the token's domain: what x402 `exact` and MPP `charge` payers sign.
    #[derive(Debug, PartialEq, Eq)]
    struct TransferWithAuthorization {
        address from;
        address to;
        uint256 value;
        uint256 validAfter;
        uint256 validBefore;
        bytes32 nonce;
    }

    /// EIP-3009, in the token's domain.
    #[derive(Debug, PartialEq, Eq)]
    struct ReceiveWithAuthorization {
        address from;
        address to;
        uint256 value;
        uint256 validAfter;
        uint256 validBefore;
        bytes32 nonce;
    }
}

/// The `ChannelManager`'s EIP-712 domain on a chain.
pub fn channel_domain(chain_id: u64, channel_manager: Address) -> Eip712Domain {
    eip712_domain! {
        name: "Farthing",
        version: "1",
        chain_id: chain_id,
        verifying_contract: channel_manager,
    }
}

/// A token's EIP-712 domain, in which permits (EIP-2612) and authorizations (EIP-3009) are
/// signed. Circle's USDC is named "USD Coin" on Ethereum and Base but "USDC" on Base Sepolia,
/// version "2": the deployment file records what the token itself answers (`token_name`,
/// `token_version`), checked against its `DOMAIN_SEPARATOR()` at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenDomain {
    /// The token's `name()`.
    pub name: String,
    /// The token's `version()`.
    pub version: String,
    /// The chain.
    pub chain_id: u64,
    /// The token contract.
    pub token: Address,
}

impl TokenDomain {
    /// The EIP-712 domain to sign and verify in.
    pub fn eip712(&self) -> Eip712Domain {
        Eip712Domain::new(
            Some(self.name.clone().into()),
            Some(self.version.clone().into()),
            Some(alloy::primitives::U256::from(self.chain_id)),
            Some(self.token),
            None,
        )
    }

    /// keccak(EIP712Domain(name, version, chainId, token)): what the token's
    /// `DOMAIN_SEPARATOR()` must answer.
    pub fn separator(&self) -> B256 {
        self.eip712().separator()
    }
}

impl std::fmt::Display for TokenDomain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "({:?}, {:?}, chain {}, {})",
            self.name, self.version, self.chain_id, self.token
        )
    }
}

/// The EIP-3009 nonce that binds a gasless open to its partner and challenge period.
pub fn open_authorization_nonce(partner: Address, challenge_period: u32, salt: B256) -> B256 {
    OpenAuthorization {
        partner,
        challengePeriod: challenge_period,
        salt,
    }
    .eip712_hash_struct()
}

/// Who signed `message` in `domain` with the 65-byte `signature` (r | s | v), if it is one.
pub fn signer_of<T: SolStruct>(
    message: &T,
    domain: &Eip712Domain,
    signature: &[u8],
) -> Option<Address> {
    let signature = alloy::primitives::Signature::from_raw(signature).ok()?;
    signature
        .recover_address_from_prehash(&message.eip712_signing_hash(domain))
        .ok()
}

/// Sign `message` in `domain`: 65 bytes r | s | v with v in {27, 28} and low s, as the
/// contract requires.
pub fn sign<T: SolStruct>(signer: &PrivateKeySigner, message: &T, domain: &Eip712Domain) -> Bytes {
    let digest = message.eip712_signing_hash(domain);
    let signature = signer
        .sign_hash_sync(&digest)
        .expect("signing a 32-byte digest with a valid local key cannot fail");
    Bytes::copy_from_slice(&signature.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::primitives::{U256, keccak256};

    #[test]
    fn type_hashes_match_the_contract_strings() {
        assert_eq!(
            BalanceProof {
                channelId: U256::ZERO,
                nonce: 0,
                transferred: 0
            }
            .eip712_type_hash(),
            keccak256("BalanceProof(uint256 channelId,uint64 nonce,uint128 transferred)")
        );
        assert_eq!(
            CooperativeClose {
                channelId: U256::ZERO,
                payoutA: U256::ZERO,
                payoutB: U256::ZERO,
                withdrawnA: Default::default(),
                withdrawnB: Default::default(),
            }
            .eip712_type_hash(),
            keccak256(
                "CooperativeClose(uint256 channelId,uint256 payoutA,uint256 payoutB,\
                 uint96 withdrawnA,uint96 withdrawnB)"
            )
        );
    }

    #[test]
    fn signatures_are_low_s_with_electrum_v() {
        let signer = PrivateKeySigner::random();
        let domain = channel_domain(31337, Address::repeat_byte(7));
        for nonce in 1..50u64 {
            let proof = BalanceProof {
                channelId: U256::from(1),
                nonce,
                transferred: nonce as u128 * 10,
            };
            let sig = sign(&signer, &proof, &domain);
            assert_eq!(sig.len(), 65);
            assert!(sig[64] == 27 || sig[64] == 28);
            let s = U256::from_be_slice(&sig[32..64]);
            let half_n = U256::from_str_radix(
                "7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a0",
                16,
            )
            .unwrap();
            assert!(s <= half_n, "high s at nonce {nonce}");
        }
    }
}
