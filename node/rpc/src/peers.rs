//! The API's view of the node's peers: its links to partner nodes and the addresses it keeps
//! dialling (`farthing_listPeers`, `farthing_disconnectPeer`, `farthing_info`'s `links`).

use alloy_primitives::Address;
use farthing_core::ChannelId;
use serde::{Deserialize, Serialize};

/// `farthing_info`'s `links`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkCounts {
    /// Authenticated links up now.
    pub up: u32,
    /// Addresses the node keeps a link to (`farthing_connectPeer`, the config's
    /// `peer.connect`), dialled again whenever the link is down.
    pub kept: u32,
    /// Of those, how many are not linked now (the node is redialling them).
    pub down: u32,
}

/// One item of `farthing_listPeers`: a peer the node is linked to, keeps a link to, or shares a
/// channel with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerView {
    /// The peer node's address (its key).
    pub address: Address,
    /// Where the node dials it (`host:port`), if it keeps an address for it.
    #[serde(default)]
    pub dial: Option<String>,
    /// Whether an authenticated link is up now.
    pub linked: bool,
    /// Unix time in milliseconds the link came up (`None` while not linked).
    #[serde(default)]
    pub linked_since_ms: Option<u64>,
    /// Who dialled the link that is up: `"us"` or `"them"` (`None` while not linked).
    #[serde(default)]
    pub dialled_by: Option<String>,
    /// Whether the node keeps a link to it: it redials `dial` whenever the link is down.
    pub kept: bool,
    /// Failed dials in a row (0 once a dial succeeds).
    #[serde(default)]
    pub failed_dials: u32,
    /// Why the last dial failed, while it has not succeeded since.
    #[serde(default)]
    pub last_error: Option<String>,
    /// Unix time in milliseconds of that failure.
    #[serde(default)]
    pub last_error_at_ms: Option<u64>,
    /// Seconds until the next dial, while it is kept and not linked.
    #[serde(default)]
    pub next_dial_in_secs: Option<u64>,
    /// The channels the node shares with it, by id.
    pub channels: Vec<ChannelId>,
}

/// `farthing_disconnectPeer`'s answer: what there was to stop (all `false`: the node knew
/// nothing of the peer, and nothing changed).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Disconnected {
    /// A link was up and has been dropped.
    pub was_linked: bool,
    /// The node was redialling the peer and has stopped.
    pub was_kept: bool,
    /// Its dial address was forgotten (`forget`).
    pub forgotten: bool,
}
