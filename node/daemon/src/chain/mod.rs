//! The node's view of the chain: reads (chain time, balances, claimable payouts), the chain
//! client that sends the node's transactions ([`ChainClient`], journaled in the store:
//! [`journal`]), and the watcher that folds the contract's events into the channel table
//! ([`watcher`], with the reorg rebuild in [`rebuild`]).

pub(crate) mod journal;
pub(crate) mod rebuild;
pub(crate) mod watcher;

use std::sync::Arc;

use alloy::eips::BlockNumberOrTag;
use alloy::primitives::Address;
use alloy::providers::{DynProvider, Provider};
use farthing_chain::contracts::{ChannelManager, MockUSDC};
use farthing_chain::{ChainClient, ChainError, Deployment};

/// The chain: what the node reads and the client it sends with.
pub(crate) struct Chain {
    /// A provider for reads.
    pub(crate) reader: DynProvider,
    /// Sends the node's transactions (holds the node's key handle).
    pub(crate) client: Arc<ChainClient>,
    /// The contracts and the chain they are on.
    pub(crate) deployment: Deployment,
    /// The token's symbol, as the chain reported it at start-up.
    pub(crate) token_symbol: String,
    /// The node's address.
    pub(crate) us: Address,
    /// (the configured RPC URL, its form without secrets) for error texts.
    pub(crate) rpc_url: (String, String),
}

impl Chain {
    /// `text` with the RPC URL's secrets (path, credentials) taken out.
    pub(crate) fn redact(&self, text: &str) -> String {
        let (full, safe) = &self.rpc_url;
        text.replace(full.as_str(), safe)
            .replace(full.trim_end_matches('/'), safe)
    }

    fn read_failed(&self, what: &'static str, e: &dyn std::fmt::Display) -> ChainError {
        ChainError::Rpc {
            what,
            reason: self.redact(&e.to_string()),
        }
    }

    /// The chain's time: the latest block's timestamp.
    pub(crate) async fn time(&self, what: &'static str) -> Result<u64, ChainError> {
        Ok(self
            .reader
            .get_block_by_number(BlockNumberOrTag::Latest)
            .await
            .map_err(|e| self.read_failed(what, &e))?
            .map(|b| b.header.timestamp)
            .unwrap_or_default())
    }

    /// A contract read at `address` failed: no code there (the call returned no data), or
    /// the RPC failed.
    fn call_failed(
        &self,
        what: &'static str,
        address: Address,
        e: &alloy::contract::Error,
    ) -> ChainError {
        match e {
            alloy::contract::Error::ZeroData(..) => ChainError::NoContract { what, address },
            _ => self.read_failed(what, e),
        }
    }

    /// The node's token balance, in base units.
    pub(crate) async fn token_balance(&self) -> Result<u128, ChainError> {
        let address = self.deployment.token;
        let balance = MockUSDC::new(address, &self.reader)
            .balanceOf(self.us)
            .call()
            .await
            .map_err(|e| self.call_failed("balance", address, &e))?;
        Ok(balance.saturating_to())
    }

    /// Whether channel `id` is on-chain with the node as a participant, in the deployment's
    /// token (whatever this node has applied so far): one the watcher applies once confirmed.
    pub(crate) async fn is_ours_on_chain(
        &self,
        id: farthing_core::ChannelId,
    ) -> Result<bool, ChainError> {
        let address = self.deployment.channel_manager;
        let info = ChannelManager::new(address, &self.reader)
            .getChannel(alloy::primitives::U256::from(id))
            .call()
            .await
            .map_err(|e| self.call_failed("channel", address, &e))?;
        Ok(applies(
            (info.participantA, info.participantB),
            info.token,
            self.us,
            self.deployment.token,
        ))
    }

    /// What the token refused to pay the node at settle time, claimable now.
    pub(crate) async fn claimable(&self) -> Result<u128, ChainError> {
        let address = self.deployment.channel_manager;
        let claimable = ChannelManager::new(address, &self.reader)
            .claimable(self.deployment.token, self.us)
            .call()
            .await
            .map_err(|e| self.call_failed("claimable", address, &e))?;
        Ok(claimable.saturating_to())
    }

    /// The node's gas balance (wei) and the current gas price (wei).
    pub(crate) async fn gas(&self) -> Result<(u128, u128), ChainError> {
        let balance = self
            .reader
            .get_balance(self.us)
            .await
            .map_err(|e| self.read_failed("gas balance", &e))?;
        let price = self
            .reader
            .get_gas_price()
            .await
            .map_err(|e| self.read_failed("gas price", &e))?;
        Ok((balance.saturating_to(), price))
    }

    /// Claim whatever the token refused to pay the node at settle time; returns the amount.
    pub(crate) async fn claim(&self) -> Result<u128, ChainError> {
        let claimable = self.claimable().await?;
        if claimable > 0 {
            self.client.claim(self.deployment.token, self.us).await?;
        }
        Ok(claimable)
    }
}

/// Whether a channel on-chain between `participants` in `token` is one the node at `us`
/// applies: it is a participant, and the token is the deployment's (`our_token`; the watcher
/// ignores channels of any other token, so waiting for one would never end).
fn applies(
    participants: (Address, Address),
    token: Address,
    us: Address,
    our_token: Address,
) -> bool {
    (participants.0 == us || participants.1 == us) && token == our_token
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_channel_applies_only_with_the_node_in_it_and_in_the_deployments_token() {
        let [us, them, other, usdc, another_token] = [1u8, 2, 3, 4, 5].map(Address::repeat_byte);
        assert!(applies((us, them), usdc, us, usdc));
        assert!(applies((them, us), usdc, us, usdc));
        assert!(!applies((them, other), usdc, us, usdc));
        // Ours, but in another token: the watcher never applies it.
        assert!(!applies((us, them), another_token, us, usdc));
        assert!(!applies((them, us), another_token, us, usdc));
        // Nothing at that id (all zero).
        assert!(!applies(
            (Address::ZERO, Address::ZERO),
            Address::ZERO,
            us,
            usdc
        ));
    }
}
