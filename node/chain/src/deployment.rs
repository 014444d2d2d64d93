//! The deployment file and the check that a chain matches it.

use std::path::{Path, PathBuf};

use alloy::primitives::{Address, B256};
use alloy::providers::Provider;
use serde::{Deserialize, Serialize};

use crate::contracts::{ChannelManager, MockUSDC};
use crate::messages::TokenDomain;

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
    /// The token's `name()`, the name of its EIP-712 domain ("USD Coin" for USDC on Ethereum
    /// and Base, "USDC" on Base Sepolia).
    pub token_name: String,
    /// The version of the token's EIP-712 domain (`version()`, "2" for USDC).
    pub token_version: String,
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
    #[error("deployment file {path} is malformed: {source}{hint}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parse error.
        source: serde_json::Error,
        /// What to do, when it is known.
        hint: &'static str,
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
    /// The token's EIP-712 domain is not the one the deployment file names, or not the
    /// standard hash of its own name and version: nothing the node signed would verify.
    #[error("the token at {token}: {detail}")]
    TokenDomain {
        /// The token.
        token: Address,
        /// Both values, and what to do.
        detail: String,
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
        serde_json::from_str(&text).map_err(|source| {
            let message = source.to_string();
            let hint = if message.contains("missing field `token_name`")
                || message.contains("missing field `token_version`")
            {
                " (a file written before the token's EIP-712 domain was recorded: run scripts/deploy.sh again, or add \"token_name\" and \"token_version\", the token's name() and version())"
            } else {
                ""
            };
            DeploymentError::Parse {
                path: path.to_owned(),
                source,
                hint,
            }
        })
    }

    /// The token's EIP-712 domain as this file records it.
    pub fn token_domain(&self) -> TokenDomain {
        TokenDomain {
            name: self.token_name.clone(),
            version: self.token_version.clone(),
            chain_id: self.chain_id,
            token: self.token,
        }
    }

    /// Check that the chain behind `provider` is the one this deployment describes: same
    /// chain id, code at both addresses, and contracts that answer as expected — the token's
    /// decimals, name and version those of the file, and its `DOMAIN_SEPARATOR()` the hash of
    /// that domain.
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
        let domain = read_token_domain(provider, self.token, chain_id).await?;
        self.check_token_domain(&domain)?;
        let block_number = provider.get_block_number().await.map_err(unreachable)?;
        Ok(ChainCheck {
            chain_id,
            block_number,
            channel_count: channel_count.saturating_to(),
            token_symbol,
        })
    }
}

impl Deployment {
    /// Compare the domain read from the token with the file's.
    fn check_token_domain(&self, chain: &ChainTokenDomain) -> Result<(), DeploymentError> {
        let refuse = |detail: String| {
            Err(DeploymentError::TokenDomain {
                token: self.token,
                detail,
            })
        };
        let ours = self.token_domain();
        if (chain.domain.name.as_str(), chain.domain.version.as_str())
            != (self.token_name.as_str(), self.token_version.as_str())
        {
            return refuse(format!(
                "its EIP-712 domain is name {:?}, version {:?}, but the deployment file says token_name {:?}, token_version {:?}: fix the deployment file (scripts/deploy.sh records the token's own)",
                chain.domain.name, chain.domain.version, self.token_name, self.token_version
            ));
        }
        if chain.separator != ours.separator() {
            return refuse(format!(
                "DOMAIN_SEPARATOR() is {}, but keccak(EIP712Domain{ours}) is {}: the token does not sign in the standard domain of its name and version, so the node cannot use it",
                chain.separator,
                ours.separator()
            ));
        }
        Ok(())
    }
}

/// What a token says of its EIP-712 domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainTokenDomain {
    /// Its name and version (`name()`; `version()`, or `eip712Domain()` if that reverts).
    pub domain: TokenDomain,
    /// Its `DOMAIN_SEPARATOR()`.
    pub separator: B256,
}

/// Read the EIP-712 domain of the token at `token`: `name()` and `version()` (if `version()`
/// reverts, EIP-5267's `eip712Domain()`), and `DOMAIN_SEPARATOR()`.
pub async fn read_token_domain<P: Provider>(
    provider: &P,
    token: Address,
    chain_id: u64,
) -> Result<ChainTokenDomain, DeploymentError> {
    let erc20 = MockUSDC::new(token, provider);
    let refuse = |what: &str, e: alloy::contract::Error| DeploymentError::TokenDomain {
        token,
        detail: format!(
            "{what} failed ({e}): the node signs permits and authorizations in the token's EIP-712 domain and needs it"
        ),
    };
    let name = erc20.name().call().await.map_err(|e| refuse("name()", e))?;
    let version = match erc20.version().call().await {
        Ok(version) => version,
        Err(first) => match erc20.eip712Domain().call().await {
            Ok(d) => d.version,
            Err(_) => return Err(refuse("version() (and eip712Domain())", first)),
        },
    };
    let separator = erc20
        .DOMAIN_SEPARATOR()
        .call()
        .await
        .map_err(|e| refuse("DOMAIN_SEPARATOR()", e))?;
    Ok(ChainTokenDomain {
        domain: TokenDomain {
            name,
            version,
            chain_id,
            token,
        },
        separator,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"{
      "chain_id": 31337,
      "channel_manager": "0xe7f1725e7734ce288f8367e1bb143e90bb3f0512",
      "token": "0x5fbdb2315678afecb367f032d93f642f64180aa3",
      "token_decimals": 6,
      "token_name": "USDC",
      "token_version": "2",
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
            (d.token_name.as_str(), d.token_version.as_str()),
            ("USDC", "2")
        );
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
        std::fs::write(&path, SAMPLE.replace("\"token_name\": \"USDC\",", "")).unwrap();
        let old = Deployment::load(&path).unwrap_err().to_string();
        assert!(
            old.contains("missing field `token_name`")
                && old.contains("run scripts/deploy.sh again"),
            "{old}"
        );
    }

    fn chain_says(d: &Deployment, name: &str, version: &str) -> ChainTokenDomain {
        let domain = TokenDomain {
            name: name.into(),
            version: version.into(),
            ..d.token_domain()
        };
        ChainTokenDomain {
            separator: domain.separator(),
            domain,
        }
    }

    #[test]
    fn a_token_domain_unlike_the_file_is_refused_naming_both() {
        let d: Deployment = serde_json::from_str(SAMPLE).unwrap();
        d.check_token_domain(&chain_says(&d, "USDC", "2")).unwrap();
        let err = d
            .check_token_domain(&chain_says(&d, "USD Coin", "2"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(r#"name "USD Coin", version "2", but the deployment file says token_name "USDC", token_version "2""#),
            "{err}"
        );
        // Same name and version, but the token hashes its domain some other way.
        let mut odd = chain_says(&d, "USDC", "2");
        odd.separator = B256::repeat_byte(1);
        let err = d.check_token_domain(&odd).unwrap_err().to_string();
        assert!(
            err.contains(&format!("DOMAIN_SEPARATOR() is {}", B256::repeat_byte(1)))
                && err.contains(&d.token_domain().separator().to_string()),
            "{err}"
        );
    }
}
