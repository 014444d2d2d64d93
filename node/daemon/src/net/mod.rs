//! Talking to partner nodes: accepting (within the caps of [`admission`]) and dialing
//! authenticated links ([`dial`]), strangers' links capped and timed out ([`strangers`]), and
//! reading
//! what arrives on them ([`reader`]), each frame turned into a [`command::Command`] and applied
//! by the component it is for — payments take proofs and acknowledgements, co-signing answers
//! requests. Nothing here decides a rule; it routes.

pub(crate) mod admission;
mod announce;
mod command;
mod dial;
mod reader;
pub(crate) mod strangers;

use std::sync::Arc;

use crate::chain::watcher::Watcher;
use crate::cosign::Cosign;
use crate::health::StoreHealth;
use crate::link::Links;
use crate::link::kept::Kept;
use crate::payments::Payments;
use crate::signer::Signer;
use crate::table::ChannelTable;
use crate::tasks::Tasks;

pub use announce::NotReady;
pub use dial::LinkError;

/// The peering component.
pub(crate) struct Peering {
    pub(crate) links: Arc<Links>,
    /// The partners the node keeps a link to, and how their dials go.
    pub(crate) kept: Arc<Kept>,
    pub(crate) payments: Arc<Payments>,
    pub(crate) cosign: Arc<Cosign>,
    pub(crate) table: Arc<ChannelTable>,
    pub(crate) signer: Arc<Signer>,
    pub(crate) watcher: Arc<Watcher>,
    pub(crate) store_health: Arc<StoreHealth>,
    pub(crate) tasks: Tasks,
    /// The chain both nodes must be on (checked in the handshake).
    pub(crate) chain_id: u64,
    /// The token's decimals: a refusal the partner's caller reads gives token units.
    pub(crate) decimals: u8,
    /// Handshakes in progress on the peer port, capped.
    pub(crate) admission: Arc<admission::Admission>,
    /// Links from peers that share no channel with this node, capped and timed out.
    pub(crate) strangers: Arc<strangers::Strangers>,
}
