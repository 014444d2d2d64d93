//! A channel's state as the API shows it.

use farthing_core::ChainState;
use serde::{Deserialize, Serialize};

/// [`ChannelView::state`]: the contract's view of the channel's life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChannelState {
    /// Payments, top-ups and closing are possible.
    Open,
    /// Closed unilaterally: the challenge period runs until `settle_after`.
    Closed,
    /// Paid out; final.
    Settled,
}

impl ChannelState {
    /// The name on the wire: `"open"`, `"closed"`, `"settled"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Closed => "closed",
            Self::Settled => "settled",
        }
    }
}

impl std::fmt::Display for ChannelState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<ChainState> for ChannelState {
    fn from(state: ChainState) -> Self {
        match state {
            ChainState::Open => Self::Open,
            ChainState::Closed => Self::Closed,
            ChainState::Settled => Self::Settled,
        }
    }
}
