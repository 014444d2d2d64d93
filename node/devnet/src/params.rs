//! The devnet's parameters: `anvil-config/devnet.env`, the file the scripts source, compiled
//! into the binary so the tests and a release `farthing bench` (run from anywhere) use exactly
//! the chain the scripts start.

use std::collections::HashMap;

use alloy::signers::local::PrivateKeySigner;

use crate::{Error, Result};

/// `anvil-config/devnet.env` as it was when this crate was built.
const DEVNET_ENV: &str = include_str!("../../../anvil-config/devnet.env");

/// The devnet's chain, accounts and contract settings (`anvil-config/devnet.env`).
///
/// Blocks are always mined per transaction here, whatever `DEVNET_BLOCK_TIME` says: the tests
/// and the benchmark wait on receipts.
#[derive(Debug, Clone)]
pub struct DevnetParams {
    /// Chain id (`DEVNET_CHAIN_ID`).
    pub chain_id: u64,
    /// The public test mnemonic the accounts derive from (`DEVNET_MNEMONIC`).
    pub mnemonic: String,
    /// How many accounts anvil funds with ether (`DEVNET_ACCOUNTS`).
    pub accounts: u32,
    /// Ether per account (`DEVNET_BALANCE_ETH`).
    pub balance_eth: u64,
    /// The pinned EVM rules (`DEVNET_HARDFORK`).
    pub hardfork: String,
    /// Account 0: deploys the contracts and mints (`DEVNET_DEPLOYER_KEY`).
    pub deployer: PrivateKeySigner,
    /// Account 1 (`DEVNET_ALICE_KEY`).
    pub alice: PrivateKeySigner,
    /// Account 2 (`DEVNET_BOB_KEY`).
    pub bob: PrivateKeySigner,
    /// Shortest challenge period the deployed `ChannelManager` accepts, in seconds.
    pub min_challenge_period: u32,
    /// Longest challenge period the deployed `ChannelManager` accepts, in seconds.
    pub max_challenge_period: u32,
}

impl DevnetParams {
    /// The parameters compiled in from `anvil-config/devnet.env`.
    pub fn builtin() -> Result<Self> {
        Self::parse(DEVNET_ENV)
    }

    /// Parse a `devnet.env` file (shell `KEY=value` lines, `#` comments, optional quotes).
    pub fn parse(text: &str) -> Result<Self> {
        let vars: HashMap<&str, &str> = text
            .lines()
            .filter(|l| !l.trim_start().starts_with('#'))
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.trim(), v.trim().trim_matches('"')))
            .collect();
        let get = |key: &str| {
            vars.get(key)
                .copied()
                .ok_or_else(|| Error::Params(format!("{key} is missing")))
        };
        fn parsed<T: std::str::FromStr>(key: &str, value: &str) -> Result<T> {
            value
                .parse()
                .map_err(|_| Error::Params(format!("{key}={value} does not parse")))
        }
        let number = |key: &str| get(key).and_then(|v| parsed::<u64>(key, v));
        let period = |key: &str| get(key).and_then(|v| parsed::<u32>(key, v));
        // Never echo a key's value, even a public test key's.
        let key = |name: &str| {
            get(name).and_then(|v| {
                v.parse::<PrivateKeySigner>()
                    .map_err(|_| Error::Params(format!("{name} is not a private key")))
            })
        };
        Ok(Self {
            chain_id: number("DEVNET_CHAIN_ID")?,
            mnemonic: get("DEVNET_MNEMONIC")?.to_owned(),
            accounts: get("DEVNET_ACCOUNTS").and_then(|v| parsed("DEVNET_ACCOUNTS", v))?,
            balance_eth: number("DEVNET_BALANCE_ETH")?,
            hardfork: get("DEVNET_HARDFORK")?.to_owned(),
            deployer: key("DEVNET_DEPLOYER_KEY")?,
            alice: key("DEVNET_ALICE_KEY")?,
            bob: key("DEVNET_BOB_KEY")?,
            min_challenge_period: period("DEVNET_MIN_CHALLENGE_PERIOD")?,
            max_challenge_period: period("DEVNET_MAX_CHALLENGE_PERIOD")?,
        })
    }

    /// A key by its name in `devnet.env`: `DEPLOYER`, `ALICE` or `BOB`.
    pub fn key(&self, name: &str) -> Option<&PrivateKeySigner> {
        match name {
            "DEPLOYER" => Some(&self.deployer),
            "ALICE" => Some(&self.alice),
            "BOB" => Some(&self.bob),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_compiled_in_devnet_env_parses_and_its_keys_are_anvils_accounts_0_to_2() {
        let params = DevnetParams::builtin().unwrap();
        assert_eq!(params.chain_id, 31337);
        assert_eq!(params.hardfork, "prague");
        assert!(params.min_challenge_period < params.max_challenge_period);
        // anvil's well-known accounts of the public test mnemonic.
        let addresses = [
            "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266",
            "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
            "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC",
        ];
        for (name, address) in ["DEPLOYER", "ALICE", "BOB"].into_iter().zip(addresses) {
            assert_eq!(
                params.key(name).unwrap().address().to_string(),
                address,
                "{name}"
            );
        }
        assert!(params.key("CAROL").is_none());
    }

    #[test]
    fn a_missing_or_bad_value_is_named() {
        let text = DEVNET_ENV.replace("DEVNET_CHAIN_ID=31337", "DEVNET_CHAIN_ID=x");
        let err = DevnetParams::parse(&text).unwrap_err().to_string();
        assert!(err.contains("DEVNET_CHAIN_ID=x"), "{err}");
        let text = DEVNET_ENV.replace("DEVNET_BOB_KEY", "#");
        let err = DevnetParams::parse(&text).unwrap_err().to_string();
        assert!(err.contains("DEVNET_BOB_KEY is missing"), "{err}");
    }
}
