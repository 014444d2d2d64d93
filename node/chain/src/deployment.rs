//! The deployment file and the check that a chain matches it.

use std::path::{Path, PathBuf};

use alloy::primitives::Address;
use alloy::providers::Provider;
use serde::{Deserialize, Serialize};

use crate::contracts::{ChannelManager, MockUSDC};

/// Where Farthing's contracts live on one chain, as written by `scripts/deploy.sh`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Deployment {
    /// Chain id the contracts were deployed to.
    pub chain_id: u64,
    /// The `ChannelManager` holding every channel.
    pub channel_manager: Address,
    /// The ERC-20 channels are funded with (MockUSDC on the devnet).
    pub token: Address,
    /// The token's decimals (6 for USDC).
    pub token_decimals: u8,
    /// First block that can hold a channel event: the watcher starts here.
    pub deployment_block: u64,
    /// Account that deployed the contracts.
    pub deployer: Address,
    /// Shortest challenge period the `ChannelManager` accepts, in seconds.
    pub min_challenge_period: u32,
    /// Longest challenge period the `ChannelManager` accepts, in seconds.
    pub max_challenge_period: u32,
}

/// What the chain told us when it was checked against a [`Deployment`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainCheck {
    /// The chain's id (equal to the deployment's).
    pub chain_id: u64,
    /// Latest block number.
    pub block_number: u64,
    /// Channels opened so far on the `ChannelManager`.
    pub channel_count: u64,
    /// The token's symbol.
    pub token_symbol: String,
}

/// Why a deployment file or the chain behind it cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum DeploymentError {
    /// The deployment file could not be read.
    #[error("cannot read deployment file {path}: {source} (run scripts/deploy.sh to write one)")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The deployment file is not valid JSON of the expected shape.
    #[error("deployment file {path} is malformed: {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parse error.
        source: serde_json::Error,
    },
    /// The chain RPC did not answer.
    #[error("chain RPC unreachable: {0} (is the chain running and the RPC URL right?)")]
    Unreachable(String),
    /// The RPC serves another chain than the deployment's.
    #[error(
        "the RPC serves chain {actual}, but the deployment is for chain {expected}: fix the RPC URL or the deployment file"
    )]
    WrongChain {
        /// Chain id in the deployment file.
        expected: u64,
        /// Chain id the RPC reports.
        actual: u64,
    },
    /// No contract code at a configured address.
    #[error(
        "no {name} contract at {address} on chain {chain_id}: deploy with scripts/deploy.sh or fix the deployment file"
    )]
    NoCode {
        /// Which contract.
        name: &'static str,
        /// The address that holds no code.
        address: Address,
        /// The chain checked.
        chain_id: u64,
    },
    /// The contract at an address does not answer like the one expected.
    #[error("the contract at {address} does not behave like {name}: {detail}")]
    Mismatch {
        /// Which contract was expected.
        name: &'static str,
        /// Its configured address.
        address: Address,
        /// What differed.
        detail: String,
    },
}

impl Deployment {
    /// Read a deployment file.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, DeploymentError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| DeploymentError::Read {
            path: path.to_owned(),
            source,
        })?;
        serde_json::from_str(&text).map_err(|source| DeploymentError::Parse {
            path: path.to_owned(),
            source,
        })
    }

    /// Check that the chain behind `provider` is the one this deployment describes: same
    /// chain id, code at both addresses, and contracts that answer as expected.
    pub async fn check<P: Provider>(&self, provider: &P) -> Result<ChainCheck, DeploymentError> {
        let unreachable =
            |e: alloy::transports::TransportError| DeploymentError::Unreachable(e.to_string());
        let chain_id = provider.get_chain_id().await.map_err(unreachable)?;
        if chain_id != self.chain_id {
            return Err(DeploymentError::WrongChain {
                expected: self.chain_id,
                actual: chain_id,
            });
        }
        for (name, address) in [
            ("ChannelManager", self.channel_manager),
            ("token", self.token),
        ] {
            if provider
                .get_code_at(address)
                .await
                .map_err(unreachable)?
                .is_empty()
            {
                return Err(DeploymentError::NoCode {
                    name,
                    address,
                    chain_id,
                });
            }
        }
        let manager = ChannelManager::new(self.channel_manager, provider);
        let mismatch = |detail: String| DeploymentError::Mismatch {
            name: "ChannelManager",
            address: self.channel_manager,
            detail,
        };
        let bounds = (
            manager
                .minChallengePeriod()
                .call()
                .await
                .map_err(|e| mismatch(e.to_string()))?,
            manager
                .maxChallengePeriod()
                .call()
                .await
                .map_err(|e| mismatch(e.to_string()))?,
        );
        if bounds != (self.min_challenge_period, self.max_challenge_period) {
            return Err(mismatch(format!(
                "challenge period bounds are {bounds:?}, the deployment file says ({}, {})",
                self.min_challenge_period, self.max_challenge_period
            )));
        }
        let channel_count = manager
            .channelCount()
            .call()
            .await
            .map_err(|e| mismatch(e.to_string()))?;

        let token = MockUSDC::new(self.token, provider);
        let token_mismatch = |detail: String| DeploymentError::Mismatch {
            name: "an ERC-20 token",
            address: self.token,
            detail,
        };
        let decimals = token
            .decimals()
            .call()
            .await
            .map_err(|e| token_mismatch(e.to_string()))?;
        if decimals != self.token_decimals {
            return Err(token_mismatch(format!(
                "decimals() is {decimals}, the deployment file says {}",
                self.token_decimals
            )));
        }
        let token_symbol = token
            .symbol()
            .call()
            .await
            .map_err(|e| token_mismatch(e.to_string()))?;
        let block_number = provider.get_block_number().await.map_err(unreachable)?;
        Ok(ChainCheck {
            chain_id,
            block_number,
            channel_count: channel_count.saturating_to(),
            token_symbol,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"{
      "chain_id": 31337,
      "channel_manager": "0xe7f1725e7734ce288f8367e1bb143e90bb3f0512",
      "token": "0x5fbdb2315678afecb367f032d93f642f64180aa3",
      "token_decimals": 6,
      "deployment_block": 1,
      "deployer": "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266",
      "min_challenge_period": 60,
      "max_challenge_period": 2592000
    }"#;

    #[test]
    fn loads_the_file_deploy_sh_writes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("deployment.json");
        std::fs::write(&path, SAMPLE).unwrap();
        let d = Deployment::load(&path).unwrap();
        assert_eq!(d.chain_id, 31337);
        assert_eq!(d.token_decimals, 6);
        assert_eq!(d.deployment_block, 1);
        assert_eq!(
            d.channel_manager,
            "0xe7f1725e7734ce288f8367e1bb143e90bb3f0512"
                .parse::<Address>()
                .unwrap()
        );
    }

    #[test]
    fn missing_and_malformed_files_say_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        let missing = Deployment::load(dir.path().join("nope.json")).unwrap_err();
        assert!(
            missing.to_string().contains("run scripts/deploy.sh"),
            "{missing}"
        );

        let path = dir.path().join("bad.json");
        std::fs::write(&path, SAMPLE.replace("\"token_decimals\": 6,", "")).unwrap();
        let malformed = Deployment::load(&path).unwrap_err();
        assert!(matches!(malformed, DeploymentError::Parse { .. }));
        assert!(
            malformed.to_string().contains("token_decimals"),
            "{malformed}"
        );
    }
}
