//! The API itself: one `#[rpc]` trait for server and client, and the JSON types it carries.
//!
//! Conventions on the wire: field names in `snake_case`; amounts are decimal strings in token
//! units ("12.5", never base units, never numbers, so no precision is lost in JSON); addresses
//! are 0x hex; channel ids are JSON numbers.

// The macro turns each method's parameters into arguments (by name on the wire, so their
// number is what the API needs, not a smell here).
#![allow(clippy::too_many_arguments)]

use alloy_primitives::{Address, B256};
use farthing_core::{ChainState, Channel, ChannelId, Role, format_amount, parse_amount};
use jsonrpsee::core::SubscriptionResult;
use jsonrpsee::proc_macros::rpc;
use serde::{Deserialize, Serialize};

use std::collections::BTreeMap;

pub use crate::commerce::{Collected, FetchPaid, FetchResult, Redeemed, TransferAuthorization};
pub use crate::credentials::{
    BudgetView, CreatedCredential, CredentialSpec, CredentialView, Revoked,
};
use crate::error::{AmountProblem, ApiError};
pub use crate::peers::{Disconnected, LinkCounts, PeerView};
pub use crate::requests::{OpenParams, PayParams};
pub use crate::state::ChannelState;

/// The Farthing node's JSON-RPC API, namespace `farthing` (`farthing_info`, …).
///
/// The macro generates `FarthingApiServer` (the daemon implements it and registers
/// `into_rpc()` with [`crate::start`]) and `FarthingApiClient` (implemented for the clients
/// [`crate::connect_http`] and [`crate::connect_ws`] return; import the trait to call them).
/// A failed call carries an [`ApiError`] code (see the crate docs for the table).
#[rpc(server, client, namespace = "farthing")]
pub trait FarthingApi {
    /// `farthing_info`: who and where the node is, how far it has synced, whether it is healthy.
    #[method(name = "info")]
    async fn info(&self) -> Result<NodeInfo, ApiError>;

    /// `farthing_openChannel`: open a channel to `partner`, funded with `amount` (token units)
    /// from the node's token balance, with `challenge_period` seconds (the node's default when
    /// absent); one transaction, answered once mined.
    #[method(name = "openChannel", with_extensions)]
    async fn open_channel(
        &self,
        partner: Address,
        amount: String,
        challenge_period: Option<u32>,
    ) -> Result<ChannelView, ApiError>;

    /// `farthing_topUp`: add `amount` to our deposit in an open channel.
    #[method(name = "topUp", with_extensions)]
    async fn top_up(&self, channel_id: ChannelId, amount: String) -> Result<ChannelView, ApiError>;

    /// `farthing_withdraw`: take `amount` of our balance out of an open channel to the node's
    /// address, co-signed by the partner's node over the link (which checks it against its own
    /// books); one transaction. Answers once mined.
    #[method(name = "withdraw", with_extensions)]
    async fn withdraw(
        &self,
        channel_id: ChannelId,
        amount: String,
    ) -> Result<ChannelView, ApiError>;

    /// `farthing_listChannels`: every channel the node knows, in id order.
    #[method(name = "listChannels")]
    async fn list_channels(&self) -> Result<Vec<ChannelView>, ApiError>;

    /// `farthing_getChannel`: one channel.
    #[method(name = "getChannel")]
    async fn get_channel(&self, channel_id: ChannelId) -> Result<ChannelView, ApiError>;

    /// `farthing_waitChannel`: wait until channel `channel_id` can take payments both ways —
    /// open on this node, linked to the partner's node, and known to it (each node applies an
    /// opening after its own confirmations) — for at most `timeout_secs` (default 60, at most
    /// 120). Answers the channel, or 1013 saying what is still missing; an id the chain says
    /// is not this node's (or is in another token) gets 1001 at once. The node lets 16 calls
    /// wait at once: past them a call answers at once, as if its time were up.
    #[method(name = "waitChannel")]
    async fn wait_channel(
        &self,
        channel_id: ChannelId,
        timeout_secs: Option<u64>,
    ) -> Result<ChannelView, ApiError>;

    /// `farthing_closeChannel`: close cooperatively first — over the link, the partner's node
    /// co-signs the payouts it computes itself, one transaction, paid out at once (`settled`);
    /// if it cannot (no link, no answer, or the partner refuses), close unilaterally with the
    /// partner's latest proof (`closed`: the challenge period starts, then `farthing_settle`).
    /// A channel already closed or settled is answered as it is.
    #[method(name = "closeChannel", with_extensions)]
    async fn close_channel(&self, channel_id: ChannelId) -> Result<ChannelView, ApiError>;

    /// `farthing_settle`: pay out a closed channel once its challenge period is over.
    #[method(name = "settle", with_extensions)]
    async fn settle(&self, channel_id: ChannelId) -> Result<ChannelView, ApiError>;

    /// `farthing_claim`: collect what settles left claimable for the node (payouts the token
    /// refused at the time).
    #[method(name = "claim")]
    async fn claim(&self) -> Result<ClaimResult, ApiError>;

    /// `farthing_pay`: pay `amount` to a channel partner (by channel id or by partner address)
    /// over the peer link; returns once the partner acknowledged the payment as durable. The
    /// same `idempotency_key` twice pays once and returns the first result.
    /// Give `channel_id` or `partner` (both: they must agree).
    #[method(name = "pay", with_extensions)]
    async fn pay(
        &self,
        channel_id: Option<ChannelId>,
        partner: Option<Address>,
        amount: String,
        idempotency_key: Option<String>,
        memo: Option<String>,
    ) -> Result<PayResult, ApiError>;

    /// `farthing_redeem` (for the 402 gateway in front of this node's seller): spend the
    /// incoming payment that paid for `challenge` — a payment whose memo is `402:<challenge>`
    /// — on one request priced `price` (token units). The payment must be durable here and at
    /// least the price, and is redeemed once: the redemption is durable when this answers, and
    /// a second call for the same challenge gets 1016 (reason `redeemed`), across restarts.
    /// `paid_by` (Unix seconds, the challenge's expiry): the payment must have reached the
    /// node by then (1016 `late` otherwise), so an expired challenge paid in time is honoured.
    #[method(name = "redeem")]
    async fn redeem(
        &self,
        challenge: String,
        price: String,
        paid_by: Option<u64>,
    ) -> Result<Redeemed, ApiError>;

    /// `farthing_collectAuthorization` (for the 402 gateway: the node as its own x402
    /// facilitator): check an EIP-3009 `TransferWithAuthorization` of the node's token to the
    /// node (signature, payee, validity window, nonce unused) and submit it; answers once the
    /// transfer is mined. A bad one gets 1016 with a reason before any gas is spent.
    #[method(name = "collectAuthorization")]
    async fn collect_authorization(
        &self,
        authorization: TransferAuthorization,
    ) -> Result<Collected, ApiError>;

    /// `farthing_refundCollection` (for the 402 gateway, when the request an authorization
    /// paid for could not be served): send what collection `tx_hash` moved back to its payer,
    /// once; answered once mined. Only collections made since the node started.
    #[method(name = "refundCollection")]
    async fn refund_collection(&self, tx_hash: B256) -> Result<Collected, ApiError>;

    /// `farthing_fetch`: fetch `url` (`method`, default GET; `headers`; `body` as text) and,
    /// when it answers 402 with a `farthing` offer priced at most `max_price` (token units),
    /// pay it over the channel with its seller — opening one funded with `deposit` when there
    /// is none and the offer says how to reach the seller — and fetch again with the payment.
    /// Once it knows a route's price it pays up front. A price over `max_price` is not paid:
    /// the 402 is answered with `unpaid_reason`.
    #[method(name = "fetch", with_extensions)]
    async fn fetch(
        &self,
        url: String,
        max_price: String,
        method: Option<String>,
        headers: Option<BTreeMap<String, String>>,
        body: Option<String>,
        deposit: Option<String>,
    ) -> Result<FetchResult, ApiError>;

    /// `farthing_connectPeer`: link to a partner node at `0xADDRESS@host:port` and keep the
    /// link up: redialled whenever it drops, with backoff after failed dials (250 ms doubling
    /// to 5 min); `farthing_listPeers` shows how it goes, `farthing_disconnectPeer` stops it.
    /// Answers at once (`true`), before the first dial.
    #[method(name = "connectPeer", with_extensions)]
    async fn connect_peer(&self, peer: String) -> Result<bool, ApiError>;

    /// `farthing_listPeers`: every peer the node knows — linked, kept (redialled), or a
    /// channel partner — in address order.
    #[method(name = "listPeers")]
    async fn list_peers(&self) -> Result<Vec<PeerView>, ApiError>;

    /// `farthing_disconnectPeer`: drop the link to `peer` (`0xADDRESS`) and stop redialling
    /// it; the partner's node may still dial in. `forget`: also forget its address (for this
    /// run: one from the config's `peer.connect` is dialled again at the next start).
    #[method(name = "disconnectPeer", with_extensions)]
    async fn disconnect_peer(
        &self,
        peer: Address,
        forget: Option<bool>,
    ) -> Result<Disconnected, ApiError>;

    /// `farthing_discover` (also `rpc.discover`): this API described as an OpenRPC 1.2
    /// document — every method and subscription, its parameters, result and error codes.
    #[method(name = "discover", aliases = ["rpc.discover"])]
    async fn discover(&self) -> Result<serde_json::Value, ApiError>;

    /// `farthing_balances`: gas money, free tokens, tokens in channels, claimable tokens.
    #[method(name = "balances")]
    async fn balances(&self) -> Result<Balances, ApiError>;

    /// `farthing_listPayments`: the node's payment log — every payment made or received, once
    /// durable, numbered `seq` 1, 2, 3, … in that order, kept across restarts (the newest
    /// `history.keep_payments`) — by cursor. With `after`: the entries after that `seq`, oldest
    /// first; without: the newest ones, oldest first. At most `limit` (default 100, at most
    /// 1000); `channel_id`: only that channel's. The page's `next` is where to go on from
    /// (pass it as `after`); `more` says entries past it exist already. Parameters by position
    /// (`[channel_id, limit, after]`) or by name.
    #[method(name = "listPayments")]
    async fn list_payments(
        &self,
        channel_id: Option<ChannelId>,
        limit: Option<u32>,
        after: Option<u64>,
    ) -> Result<PaymentPage, ApiError>;

    /// `farthing_subscribePayments`: a [`PaymentView`] for every payment made or received, once
    /// it is durable, in `seq` order, until `farthing_unsubscribePayments` (WebSocket only).
    /// With `after`: first every logged payment after that `seq` (0: from the oldest kept),
    /// then the live ones — none missed, none twice, whatever the load. A subscription that can
    /// no longer go on without a gap (the entries it needs were pruned, the node stops) ends
    /// with an error naming the last `seq` it delivered: subscribe again with that `after`.
    /// Refused with 1015 once the node serves `rpc.max_subscriptions` subscriptions (-32006
    /// past `rpc.max_subscriptions_per_connection` on one connection).
    #[subscription(
        name = "subscribePayments" => "payment",
        unsubscribe = "unsubscribePayments",
        item = PaymentView,
        with_extensions
    )]
    async fn subscribe_payments(&self, after: Option<u64>) -> SubscriptionResult;

    /// `farthing_subscribeChannels`: a [`ChannelUpdate`] each time a channel changes, until
    /// `farthing_unsubscribeChannels` (WebSocket only). Limited like `subscribePayments`.
    #[subscription(
        name = "subscribeChannels" => "channelUpdate",
        unsubscribe = "unsubscribeChannels",
        item = ChannelUpdate,
        with_extensions
    )]
    async fn subscribe_channels(&self) -> SubscriptionResult;

    /// `farthing_createCredential` (admin): a credential for an agent, limited by the
    /// parameters given (amounts in token units; see [`CredentialSpec`]). Called with an
    /// agent's admin-scoped credential, the new one is derived from the caller's, so it can
    /// never allow more. The token is in the answer this once; the node keeps only its id.
    #[method(name = "createCredential", with_extensions)]
    async fn create_credential(
        &self,
        label: Option<String>,
        scopes: Option<Vec<String>>,
        max_payment: Option<String>,
        budget_hour: Option<String>,
        budget_day: Option<String>,
        budget_total: Option<String>,
        deposit_day: Option<String>,
        deposit_total: Option<String>,
        peers: Option<Vec<Address>>,
        origins: Option<Vec<String>>,
        expires_in_secs: Option<u64>,
    ) -> Result<CreatedCredential, ApiError>;

    /// `farthing_listCredentials` (admin): the credentials this node issued, with what each
    /// has spent and whether it is revoked (for an agent's admin-scoped credential: the ones
    /// issued below it).
    #[method(name = "listCredentials", with_extensions)]
    async fn list_credentials(&self) -> Result<Vec<CredentialView>, ApiError>;

    /// `farthing_showCredential` (admin): one credential, by `id` (`cid_…`, one this node
    /// issued) or by `token` (any credential of this node, also one derived offline).
    #[method(name = "showCredential", with_extensions)]
    async fn show_credential(
        &self,
        id: Option<String>,
        token: Option<String>,
    ) -> Result<CredentialView, ApiError>;

    /// `farthing_revokeCredential` (admin): revoke chain id `id` (`cid_…`): that credential
    /// and every credential derived from it, also offline, are refused from now on (HTTP 401;
    /// 1019 on a WebSocket already open). Durable when this answers. An agent's admin-scoped
    /// credential revokes only itself and what was issued below it.
    #[method(name = "revokeCredential", with_extensions)]
    async fn revoke_credential(&self, id: String) -> Result<Revoked, ApiError>;

    /// `farthing_whoami` (any caller): the caller's own credential, its limits and what is
    /// left of its budgets.
    #[method(name = "whoami", with_extensions)]
    async fn whoami(&self) -> Result<CredentialView, ApiError>;
}

/// `farthing_pay`'s answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PayResult {
    /// The channel paid on.
    pub channel_id: ChannelId,
    /// The nonce of the proof that carries the payment.
    pub nonce: u64,
    /// The amount paid, in token units.
    pub amount: String,
    /// What we can still pay on the channel.
    pub balance_ours: String,
    /// What the partner can pay us.
    pub balance_partner: String,
    /// `true` when an earlier call with the same idempotency key made this payment (this call
    /// paid nothing).
    #[serde(default)]
    pub repeated: bool,
}

/// `farthing_info`'s answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeInfo {
    /// The node's own address (its key).
    pub address: Address,
    /// The chain the node is on.
    pub chain_id: u64,
    /// The `ChannelManager` contract.
    pub channel_manager: Address,
    /// The ERC-20 the node's channels hold.
    pub token: Address,
    /// The token's symbol, e.g. "USDC".
    pub token_symbol: String,
    /// The token's decimals: amounts are shown and parsed with this many fractional digits.
    pub token_decimals: u8,
    /// The token's EIP-712 domain name (its `name()`: "USD Coin", or "USDC" on Base Sepolia),
    /// in which EIP-3009 authorizations and permits are signed.
    pub token_name: String,
    /// The token's EIP-712 domain version ("2" for USDC).
    pub token_version: String,
    /// The last block whose events the node has applied.
    pub synced_block: u64,
    /// The chain's latest block as last seen.
    pub chain_head: u64,
    /// Whether the node takes new risk.
    pub health: Health,
    /// Synced store commits made since the node started (group commit: one per burst).
    #[serde(default)]
    pub store_syncs: u64,
    /// Write batches those commits carried (payments, acknowledgements, watcher passes).
    #[serde(default)]
    pub store_batches: u64,
    /// Where the node's state is: RocksDB's directory, or PostgreSQL's database and schema
    /// with the epoch and instance that hold it (a node run as a leader and standbys).
    #[serde(default)]
    pub store: String,
    /// Links to partner nodes: how many are up, how many addresses are kept (redialled);
    /// `farthing_listPeers` has each peer.
    #[serde(default)]
    pub links: LinkCounts,
}

/// The node's health: while degraded, calls that take new risk fail with
/// [`ApiError::Degraded`]; reads keep working.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    /// `"ok"` or `"degraded"`.
    pub status: HealthStatus,
    /// Why it is degraded, one line each (empty when ok).
    pub reasons: Vec<String>,
    /// What needs the operator's attention without stopping the node: a partner's stale close
    /// near its deadline, too little gas to defend the channels.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

impl Health {
    /// Healthy, no reasons.
    pub fn ok() -> Self {
        Self {
            status: HealthStatus::Ok,
            reasons: Vec::new(),
            warnings: Vec::new(),
        }
    }

    /// Degraded for these reasons.
    pub fn degraded(reasons: Vec<String>) -> Self {
        Self {
            status: HealthStatus::Degraded,
            reasons,
            warnings: Vec::new(),
        }
    }
}

/// [`Health::status`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HealthStatus {
    /// Everything the node depends on answers.
    Ok,
    /// Something is down or behind: no new risk.
    Degraded,
}

/// A channel as the API shows it: amounts in token units, sides from the node's point of view.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelView {
    /// The contract's channel id.
    pub id: ChannelId,
    /// `"open"`, `"closed"` (challenge period running) or `"settled"`.
    pub state: ChannelState,
    /// `"A"` if the node opened the channel, `"B"` if it was opened to the node.
    pub role: ChannelRole,
    /// The other participant.
    pub partner: Address,
    /// The ERC-20 the channel holds.
    pub token: Address,
    /// Challenge period in seconds, fixed at open.
    pub challenge_period: u32,
    /// Our total deposit.
    pub deposit_ours: String,
    /// The partner's total deposit.
    pub deposit_partner: String,
    /// What we can still pay (deposit − withdrawn + received − sent).
    pub balance_ours: String,
    /// What the partner can still pay us.
    pub balance_partner: String,
    /// Unix time from which `farthing_settle` is allowed; `None` while open.
    #[serde(default)]
    pub settle_after: Option<u64>,
    /// Who closed the channel unilaterally, if anyone.
    #[serde(default)]
    pub closer: Option<Address>,
    /// What we have paid in total (our latest proof), in token units.
    #[serde(default)]
    pub sent: String,
    /// The nonce of our latest proof (0: none yet).
    #[serde(default)]
    pub sent_nonce: u64,
    /// What the partner has paid us in total (its latest proof we hold).
    #[serde(default)]
    pub received: String,
    /// The nonce of the partner's latest proof we hold.
    #[serde(default)]
    pub received_nonce: u64,
}

impl ChannelView {
    /// The view of a channel record, amounts shown with the token's `decimals`.
    pub fn from_channel(channel: &Channel, decimals: u8) -> Self {
        let on_chain = &channel.on_chain;
        let (deposit_ours, deposit_partner) = match channel.role {
            Role::A => (on_chain.deposit_a, on_chain.deposit_b),
            Role::B => (on_chain.deposit_b, on_chain.deposit_a),
        };
        Self {
            id: channel.id,
            state: on_chain.state.into(),
            role: channel.role.into(),
            partner: channel.partner,
            token: channel.token,
            challenge_period: channel.challenge_period,
            deposit_ours: format_amount(deposit_ours, decimals),
            deposit_partner: format_amount(deposit_partner, decimals),
            balance_ours: format_amount(channel.our_balance(), decimals),
            balance_partner: format_amount(channel.partner_balance(), decimals),
            settle_after: (on_chain.state != ChainState::Open && on_chain.settle_after != 0)
                .then_some(on_chain.settle_after),
            closer: on_chain.closer,
            sent: format_amount(channel.sent(), decimals),
            sent_nonce: channel.ours.as_ref().map_or(0, |p| p.nonce),
            received: format_amount(channel.received(), decimals),
            received_nonce: channel.theirs.as_ref().map_or(0, |p| p.nonce),
        }
    }
}

/// [`ChannelView::role`]: which participant the node is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ChannelRole {
    /// The opener, who funded the open.
    A,
    /// The partner the channel was opened to.
    B,
}

impl From<Role> for ChannelRole {
    fn from(role: Role) -> Self {
        match role {
            Role::A => Self::A,
            Role::B => Self::B,
        }
    }
}

/// `farthing_claim`'s answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimResult {
    /// What was paid to the node, in token units ("0" if nothing was claimable).
    pub claimed: String,
}

/// `farthing_balances`' answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Balances {
    /// The node's ether for gas, in ether ("0.05").
    pub gas: String,
    /// Tokens the node holds outside channels, in token units.
    pub token: String,
    /// Our balances in all channels that are not settled, in token units.
    pub in_channels: String,
    /// Tokens the contract holds claimable for the node (`farthing_claim` collects them).
    pub claimable: String,
}

/// A page of the payment log (`farthing_listPayments`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentPage {
    /// The entries, in `seq` order.
    pub payments: Vec<PaymentView>,
    /// Where to go on from: pass it as `after` (the last `seq` this page looked at; for the
    /// newest entries, the log's last `seq`).
    pub next: u64,
    /// Entries past `next` exist already: call again at once.
    pub more: bool,
}

/// One payment, made or received: an entry of the node's payment log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentView {
    /// Its place in the node's payment log: 1, 2, 3, … in the order payments became durable
    /// here, with no gap; kept across restarts.
    pub seq: u64,
    /// The channel.
    pub channel_id: ChannelId,
    /// `"out"` (we paid) or `"in"` (we were paid).
    pub direction: String,
    /// The nonce of the proof that carried it.
    pub nonce: u64,
    /// The amount, in token units.
    pub amount: String,
    /// Unix time in milliseconds when it became durable here.
    pub at_ms: u64,
    /// The payer's memo, if it gave one (not signed; invalid UTF-8 shown replaced).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memo: Option<String>,
    /// The idempotency key the payment was made with (our payments only), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// `true`: no payment of the proof claimed this amount — the proof moved more than its
    /// payments claimed (a payment whose own frame was lost or refused earlier, carried by
    /// this cumulative proof). With these, incoming entries add up to what was received.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub carried: bool,
    /// The agent's credential it was spent under (`cid_…`, our payments only), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
}

/// Every [`ChannelUpdate::kind`] a node sends, in the order of the core's `ChangeKind`.
pub const CHANNEL_UPDATE_KINDS: [&str; 7] = [
    "opened",
    "deposit",
    "withdrawal",
    "closed",
    "proof",
    "settled",
    "rebuilt",
];

/// One item of the `farthing_subscribeChannels` subscription.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelUpdate {
    /// The channel that changed.
    pub channel_id: ChannelId,
    /// What happened on-chain, one of [`CHANNEL_UPDATE_KINDS`]: `"opened"`, `"deposit"` (a
    /// participant's deposit rose), `"withdrawal"`, `"closed"` (unilaterally: the challenge
    /// period runs), `"proof"` (a proof recorded on-chain, or another change of the
    /// channel's record), `"settled"` (paid out, final: after the challenge period or by a
    /// cooperative close), `"rebuilt"` (re-read from the contract after a reorg). Payments
    /// are not channel updates: `farthing_subscribePayments` streams them.
    pub kind: String,
    /// The channel after the change.
    pub channel: ChannelView,
}

/// Parse an amount parameter (token units, e.g. "12.5") into base units, refusing what
/// [`farthing_core::parse_amount`] refuses (above `max` included) and zero, as
/// [`ApiError::InvalidAmount`].
pub fn parse_amount_param(text: &str, decimals: u8, max: u128) -> Result<u128, ApiError> {
    match parse_amount(text, decimals, max)? {
        0 => Err(AmountProblem::Zero.into()),
        value => Ok(value),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use farthing_core::{OnChain, SignedProof};
    use serde_json::json;

    fn channel(role: Role, state: ChainState) -> Channel {
        Channel {
            id: 7,
            token: Address::repeat_byte(0x11),
            role,
            us: Address::repeat_byte(0x22),
            partner: Address::repeat_byte(0x33),
            challenge_period: 3600,
            opened_block: 10,
            on_chain: OnChain {
                state,
                deposit_a: 100_000_000,
                deposit_b: 2_500_000,
                withdrawn_a: 0,
                withdrawn_b: 0,
                settle_after: if state == ChainState::Open {
                    0
                } else {
                    1_700_000_000
                },
                closer: (state != ChainState::Open).then_some(Address::repeat_byte(0x33)),
                proof_a: (0, 0),
                proof_b: (0, 0),
            },
            ours: Some(SignedProof {
                nonce: 1,
                transferred: 12_500_000,
                signature: Default::default(),
            }),
            theirs: Some(SignedProof {
                nonce: 1,
                transferred: 1,
                signature: Default::default(),
            }),
            withdrawal: None,
        }
    }

    #[test]
    fn channel_view_shows_amounts_in_token_units() {
        let view = ChannelView::from_channel(&channel(Role::A, ChainState::Open), 6);
        assert_eq!(view.deposit_ours, "100");
        assert_eq!(view.deposit_partner, "2.5");
        // 100 + 0.000001 received − 12.5 sent; 2.5 + 12.5 − 0.000001.
        assert_eq!(view.balance_ours, "87.500001");
        assert_eq!(view.balance_partner, "14.999999");
        assert_eq!((view.settle_after, view.closer), (None, None));

        // Another token's decimals, another rendering of the same base units.
        let view18 = ChannelView::from_channel(&channel(Role::A, ChainState::Open), 18);
        assert_eq!(view18.deposit_ours, "0.0000000001");
        let view0 = ChannelView::from_channel(&channel(Role::A, ChainState::Open), 0);
        assert_eq!(view0.deposit_partner, "2500000");
    }

    #[test]
    fn channel_view_takes_the_nodes_side() {
        let view = ChannelView::from_channel(&channel(Role::B, ChainState::Closed), 6);
        assert_eq!(view.role, ChannelRole::B);
        assert_eq!(view.deposit_ours, "2.5");
        assert_eq!(view.deposit_partner, "100");
        assert_eq!(view.state, ChannelState::Closed);
        assert_eq!(view.settle_after, Some(1_700_000_000));
        assert_eq!(view.closer, Some(Address::repeat_byte(0x33)));
    }

    #[test]
    fn channel_view_json_has_the_documented_shape() {
        let view = ChannelView::from_channel(&channel(Role::A, ChainState::Settled), 6);
        let value = serde_json::to_value(&view).unwrap();
        assert_eq!(value["id"], json!(7));
        assert_eq!(value["state"], json!("settled"));
        assert_eq!(value["role"], json!("A"));
        assert_eq!(value["deposit_ours"], json!("100"));
        assert_eq!(value["settle_after"], json!(1_700_000_000u64));
        let partner = value["partner"].as_str().unwrap().to_lowercase();
        assert_eq!(partner, format!("0x{}", "33".repeat(20)));
        // The fixture holds our proof (nonce 1, 12.5 paid) and theirs (nonce 1, 0.000001).
        assert_eq!(
            (&value["sent"], &value["sent_nonce"], &value["received"]),
            (&json!("12.5"), &json!(1), &json!("0.000001"))
        );
        let keys: Vec<_> = value.as_object().unwrap().keys().cloned().collect();
        assert_eq!(keys.len(), 16, "{keys:?}");
        assert_eq!(serde_json::from_value::<ChannelView>(value).unwrap(), view);
    }

    #[test]
    fn health_and_info_serialise_as_documented() {
        let health = Health::degraded(vec!["chain RPC down".into()]);
        assert_eq!(
            serde_json::to_value(&health).unwrap(),
            json!({ "status": "degraded", "reasons": ["chain RPC down"] })
        );
        assert_eq!(
            serde_json::to_value(Health::ok()).unwrap()["status"],
            json!("ok")
        );
    }

    #[test]
    fn amount_params_refuse_zero_and_what_the_core_refuses() {
        assert_eq!(parse_amount_param("12.5", 6, u128::MAX), Ok(12_500_000));
        assert_eq!(
            parse_amount_param("0.00", 6, u128::MAX),
            Err(ApiError::InvalidAmount(AmountProblem::Zero))
        );
        for bad in ["", "1e3", "0.0000001", "-1"] {
            let error = parse_amount_param(bad, 6, u128::MAX).unwrap_err();
            assert_eq!(error.code(), crate::code::INVALID_AMOUNT, "{bad}");
        }
        let error = parse_amount_param("2", 6, 1_000_000).unwrap_err();
        assert!(
            error.to_string().contains("larger than the maximum"),
            "{error}"
        );
    }
}
