//! The node behind the JSON-RPC API: `farthing_rpc::FarthingApiServer` implemented by calling
//! [`Node`]'s façade, with amounts parsed and shown in token units and every failure mapped to
//! the API's stable error codes ([`errors`]), counted in the node's own metrics.

mod commerce;
mod credentials;
mod errors;
mod pay;
mod wait;

use std::future::Future;

use std::collections::BTreeMap;

use alloy::primitives::{Address, B256};
use farthing_core::{ChainState, ChannelId, MAX_DEPOSIT, format_amount};
use farthing_rpc::{
    ApiError, Balances, ChannelUpdate, ChannelView, ClaimResult, Collected, CreatedCredential,
    CredentialSpec, CredentialView, Disconnected, FarthingApiServer, FetchResult, Health,
    LinkCounts, NodeInfo, PayParams, PayResult, PaymentPage, PaymentView, PeerView, Principal,
    Redeemed, Revoked, TransferAuthorization, parse_amount_param,
};
use jsonrpsee::core::{SubscriptionResult, async_trait};
use jsonrpsee::{Extensions, PendingSubscriptionSink};

use crate::net::NotReady;
use crate::node::Node;
use crate::observe::{MAX_PAGE, PageQuery};
use crate::ops::OpError;
use credentials::principal;
use farthing_credential::Scope;

/// The RPC face of a [`Node`].
#[derive(Clone)]
pub struct RpcHandler {
    node: Node,
    /// `farthing_waitChannel` calls that may wait at once (the daemon has one handler).
    waits: std::sync::Arc<tokio::sync::Semaphore>,
}

impl RpcHandler {
    /// Serve `node`.
    pub fn new(node: Node) -> Self {
        Self {
            node,
            waits: std::sync::Arc::new(tokio::sync::Semaphore::new(wait::MAX_WAITING)),
        }
    }

    fn decimals(&self) -> u8 {
        self.node.deployment().token_decimals
    }

    fn view(&self, channel: &farthing_core::Channel) -> ChannelView {
        ChannelView::from_channel(channel, self.decimals())
    }

    /// Run a call, counting its error (if any) in the node's metrics by code.
    async fn counted<T>(
        &self,
        call: impl Future<Output = Result<T, ApiError>>,
    ) -> Result<T, ApiError> {
        let mut result = call.await;
        // A channel the node does not know may be one it has not applied yet (the partner's
        // node waits for its confirmations after an open): say so, and what waits for it.
        if let Err(ApiError::UnknownChannel { id }) = result
            && self.node.is_ours_on_chain(id).await
        {
            result = Err(self.not_ready(id, NotReady::NotHere));
        }
        if let Err(e) = &result {
            self.node.count_rpc_error(e.code());
        }
        result
    }

    /// [`RpcHandler::counted`] for a call an agent may make: a refusal by its credential is
    /// counted for it too (the credentials' metrics).
    async fn counted_as<T>(
        &self,
        ext: &Extensions,
        call: impl Future<Output = Result<T, ApiError>>,
    ) -> Result<T, ApiError> {
        let result = self.counted(call).await;
        if let (Err(e), Some(Principal::Agent(agent))) = (&result, ext.get::<Principal>()) {
            let reason = match e {
                ApiError::OverLimit { limit, .. } => Some(limit.as_str()),
                ApiError::ScopeDenied { .. } => Some("scope"),
                ApiError::CredentialInvalid { reason, .. } => Some(reason.as_str()),
                _ => None,
            };
            if let Some(reason) = reason {
                farthing_rpc::Authority::refused(self.node.credentials(), agent, reason);
            }
        }
        result
    }

    /// Resolves once an agent's credential expires or is revoked (never for the admin token),
    /// with why: a subscription opened under it ends then.
    async fn credential_ends(&self, caller: &Principal) -> String {
        let Principal::Agent(agent) = caller else {
            return std::future::pending().await;
        };
        let mut every = tokio::time::interval(std::time::Duration::from_secs(1));
        loop {
            every.tick().await;
            if let Err(denied) = farthing_rpc::Authority::recheck(self.node.credentials(), agent) {
                return format!("credential no longer valid ({}): {denied}", denied.reason());
            }
        }
    }

    fn not_ready(&self, id: ChannelId, missing: NotReady) -> ApiError {
        let confirmations = self.node.config().chain.confirmations;
        let reason = match missing {
            NotReady::NotHere => format!(
                "it is on-chain, but this node has not applied its opening yet (it waits for {confirmations} confirmation(s))"
            ),
            other => other.to_string(),
        };
        ApiError::NotReady { id, reason }
    }

    /// A payment-log cursor must be one this node gave: not past the log's end.
    async fn check_cursor(&self, after: u64) -> Result<(), ApiError> {
        let newest = PageQuery {
            after: None,
            limit: 1,
            channel: None,
        };
        let last = self.node.list_payments(newest).await.map_or(0, |p| p.next);
        if after > last {
            return Err(ApiError::InvalidParams(format!(
                "after = {after}, but the payment log ends at {last}: pass a seq this node gave \
                 (0: from the oldest kept)"
            )));
        }
        Ok(())
    }

    /// New risk (opening, funding) only while healthy.
    fn require_healthy(&self) -> Result<(), ApiError> {
        let health = self.node.health();
        if health.problems.is_empty() {
            Ok(())
        } else {
            Err(ApiError::Degraded {
                reasons: health.problems,
            })
        }
    }

    fn payment_view(&self, p: &crate::observe::Payment) -> PaymentView {
        PaymentView {
            seq: p.seq,
            channel_id: p.channel,
            direction: if p.outgoing { "out" } else { "in" }.into(),
            nonce: p.nonce,
            amount: format_amount(p.amount, self.decimals()),
            at_ms: p.at_ms,
            memo: (!p.memo.is_empty()).then(|| String::from_utf8_lossy(&p.memo).into_owned()),
            // An agent's key is stored under its credential's namespace (`cid_…/KEY`): shown
            // as the agent gave it, next to the credential.
            key: p.key.as_ref().map(|key| match p.credential {
                Some(c) => key
                    .strip_prefix(&format!("{}/", farthing_credential::ChainId(c)))
                    .unwrap_or(key)
                    .to_owned(),
                None => key.clone(),
            }),
            carried: p.carried,
            credential: p
                .credential
                .map(|c| farthing_credential::ChainId(c).to_string()),
        }
    }
}

#[async_trait]
impl FarthingApiServer for RpcHandler {
    async fn info(&self) -> Result<NodeInfo, ApiError> {
        let d = self.node.deployment();
        let health = self.node.health();
        let (store_syncs, store_batches) = self.node.store_stats();
        let kept = self.node.kept_count();
        let peers = self.node.peers();
        let down = peers
            .iter()
            .filter(|p| p.kept && p.linked_since_ms.is_none())
            .count();
        Ok(NodeInfo {
            links: LinkCounts {
                up: u32::try_from(self.node.link_count()).unwrap_or(u32::MAX),
                kept: u32::try_from(kept).unwrap_or(u32::MAX),
                down: u32::try_from(down).unwrap_or(u32::MAX),
            },
            store_syncs,
            store_batches,
            store: self.node.store_location(),
            address: self.node.address(),
            chain_id: d.chain_id,
            channel_manager: d.channel_manager,
            token: d.token,
            token_symbol: self.node.token_symbol().to_owned(),
            token_decimals: d.token_decimals,
            token_name: d.token_name.clone(),
            token_version: d.token_version.clone(),
            synced_block: health.synced_block,
            chain_head: health.chain_head,
            health: Health {
                warnings: self.node.warnings(),
                ..if health.problems.is_empty() {
                    Health::ok()
                } else {
                    Health::degraded(health.problems)
                }
            },
        })
    }

    async fn open_channel(
        &self,
        ext: &Extensions,
        partner: Address,
        amount: String,
        challenge_period: Option<u32>,
    ) -> Result<ChannelView, ApiError> {
        self.counted_as(ext, async {
            self.require_healthy()?;
            let amount = parse_amount_param(&amount, self.decimals(), MAX_DEPOSIT)?;
            let caller = principal(ext);
            self.allowed(
                &caller,
                "farthing_openChannel",
                Scope::Channel,
                Some(partner),
            )?;
            let channel = self
                .node
                .open_channel_as(caller.agent(), partner, amount, challenge_period)
                .await
                .map_err(|e| self.map_op("openChannel", e))?;
            Ok(self.view(&channel))
        })
        .await
    }

    async fn top_up(
        &self,
        ext: &Extensions,
        channel_id: ChannelId,
        amount: String,
    ) -> Result<ChannelView, ApiError> {
        self.counted_as(ext, async {
            self.require_healthy()?;
            let amount = parse_amount_param(&amount, self.decimals(), MAX_DEPOSIT)?;
            let caller = principal(ext);
            let partner = self.node.partner_of(channel_id);
            self.allowed(&caller, "farthing_topUp", Scope::Channel, partner)?;
            let channel = self
                .node
                .top_up_as(caller.agent(), channel_id, amount)
                .await
                .map_err(|e| self.map_op("topUp", e))?;
            Ok(self.view(&channel))
        })
        .await
    }

    async fn withdraw(
        &self,
        ext: &Extensions,
        channel_id: ChannelId,
        amount: String,
    ) -> Result<ChannelView, ApiError> {
        self.counted_as(ext, async {
            self.require_healthy()?;
            let partner = self.node.partner_of(channel_id);
            self.allowed(
                &principal(ext),
                "farthing_withdraw",
                Scope::Channel,
                partner,
            )?;
            let amount = parse_amount_param(&amount, self.decimals(), MAX_DEPOSIT)?;
            let channel = self
                .node
                .withdraw(channel_id, amount)
                .await
                .map_err(|e| match e {
                    OpError::Cosign(e) => self.map_cosign(e),
                    e => self.map_op("withdraw", e),
                })?;
            Ok(self.view(&channel))
        })
        .await
    }

    async fn list_channels(&self) -> Result<Vec<ChannelView>, ApiError> {
        let channels = self.node.channel_records();
        Ok(channels.iter().map(|c| self.view(c)).collect())
    }

    async fn get_channel(&self, channel_id: ChannelId) -> Result<ChannelView, ApiError> {
        self.counted(async {
            let channel = self
                .node
                .channel(channel_id)
                .map_err(|e| self.map_op("getChannel", e))?;
            Ok(self.view(&channel))
        })
        .await
    }

    async fn wait_channel(
        &self,
        channel_id: ChannelId,
        timeout_secs: Option<u64>,
    ) -> Result<ChannelView, ApiError> {
        self.counted(self.wait_channel_uncounted(channel_id, timeout_secs))
            .await
    }

    async fn close_channel(
        &self,
        ext: &Extensions,
        channel_id: ChannelId,
    ) -> Result<ChannelView, ApiError> {
        self.counted_as(ext, async {
            let partner = self.node.partner_of(channel_id);
            self.allowed(
                &principal(ext),
                "farthing_closeChannel",
                Scope::Channel,
                partner,
            )?;
            let channel = self
                .node
                .close_channel(channel_id)
                .await
                .map_err(|e| self.map_op("closeChannel", e))?;
            Ok(self.view(&channel))
        })
        .await
    }

    async fn settle(
        &self,
        ext: &Extensions,
        channel_id: ChannelId,
    ) -> Result<ChannelView, ApiError> {
        self.counted_as(ext, async {
            let partner = self.node.partner_of(channel_id);
            self.allowed(&principal(ext), "farthing_settle", Scope::Channel, partner)?;
            let channel = self
                .node
                .settle_channel(channel_id)
                .await
                .map_err(|e| self.map_op("settle", e))?;
            Ok(self.view(&channel))
        })
        .await
    }

    async fn claim(&self) -> Result<ClaimResult, ApiError> {
        self.counted(async {
            let claimed = self
                .node
                .claim()
                .await
                .map_err(|e| self.map_op("claim", e))?;
            Ok(ClaimResult {
                claimed: format_amount(claimed, self.decimals()),
            })
        })
        .await
    }

    async fn pay(
        &self,
        ext: &Extensions,
        channel_id: Option<ChannelId>,
        partner: Option<Address>,
        amount: String,
        idempotency_key: Option<String>,
        memo: Option<String>,
    ) -> Result<PayResult, ApiError> {
        let params = PayParams {
            channel_id,
            partner,
            amount,
            idempotency_key,
            memo,
        };
        self.counted_as(ext, self.pay_counted(principal(ext), params))
            .await
    }

    async fn redeem(
        &self,
        challenge: String,
        price: String,
        paid_by: Option<u64>,
    ) -> Result<Redeemed, ApiError> {
        self.counted(self.redeem_uncounted(challenge, price, paid_by))
            .await
    }

    async fn collect_authorization(
        &self,
        authorization: TransferAuthorization,
    ) -> Result<Collected, ApiError> {
        self.counted(self.collect_uncounted(authorization)).await
    }

    async fn refund_collection(&self, tx_hash: B256) -> Result<Collected, ApiError> {
        self.counted(self.refund_uncounted(tx_hash)).await
    }

    async fn fetch(
        &self,
        ext: &Extensions,
        url: String,
        max_price: String,
        method: Option<String>,
        headers: Option<BTreeMap<String, String>>,
        body: Option<String>,
        deposit: Option<String>,
    ) -> Result<FetchResult, ApiError> {
        self.counted_as(
            ext,
            self.fetch_uncounted(
                principal(ext),
                url,
                max_price,
                method,
                headers,
                body,
                deposit,
            ),
        )
        .await
    }

    async fn list_payments(
        &self,
        channel_id: Option<ChannelId>,
        limit: Option<u32>,
        after: Option<u64>,
    ) -> Result<PaymentPage, ApiError> {
        self.counted(async {
            if let Some(id) = channel_id {
                self.node
                    .channel(id)
                    .map_err(|e| self.map_op("listPayments", e))?;
            }
            let query = PageQuery {
                after,
                limit: limit.map_or(100, |l| l as usize).clamp(1, MAX_PAGE),
                channel: channel_id,
            };
            let page = self
                .node
                .list_payments(query)
                .await
                .map_err(|e| ApiError::Degraded {
                    reasons: vec![format!("payment log: {e}")],
                })?;
            // A cursor past the log's end (a restored or wiped node) would wait forever.
            if let Some(after) = after
                && page.payments.is_empty()
            {
                self.check_cursor(after).await?;
            }
            Ok(PaymentPage {
                payments: page.payments.iter().map(|p| self.payment_view(p)).collect(),
                next: page.next,
                more: page.more,
            })
        })
        .await
    }

    async fn subscribe_payments(
        &self,
        pending: PendingSubscriptionSink,
        ext: &Extensions,
        after: Option<u64>,
    ) -> SubscriptionResult {
        // The node's share of rpc.max_subscriptions, held while the subscription runs.
        let _slot = match farthing_rpc::subscription_slot(ext) {
            Ok(slot) => slot,
            Err(error) => {
                self.node.count_rpc_error(error.code());
                pending.reject(error).await;
                return Ok(());
            }
        };
        // The feed listens before the subscription is accepted: nothing durable from the
        // client's call on is missed, and with `after` the log fills in what came before.
        let mut feed = match self.node.subscribe_payments(after).await {
            Ok(feed) => feed,
            Err(e) => {
                let refusal = ApiError::Degraded {
                    reasons: vec![e.to_string()],
                };
                pending.reject(refusal).await;
                return Ok(());
            }
        };
        if let Some(after) = after
            && let Err(refusal) = self.check_cursor(after).await
        {
            pending.reject(refusal).await;
            return Ok(());
        }
        let sink = pending.accept().await?;
        let caller = principal(ext);
        loop {
            tokio::select! {
                biased;
                denied = self.credential_ends(&caller) => return Err(denied.into()),
                () = sink.closed() => return Ok(()),
                payment = feed.next() => match payment {
                    Ok(payment) => sink.send(serde_json::value::to_raw_value(&self.payment_view(&payment))?).await?,
                    // Ends the subscription with an error notification naming the last seq
                    // delivered: the client subscribes again after it.
                    Err(e) => return Err(e.to_string().into()),
                },
            }
        }
    }

    async fn connect_peer(&self, ext: &Extensions, peer: String) -> Result<bool, ApiError> {
        self.counted_as(ext, async {
            let peer: farthing_peer::PeerAddr = peer
                .parse()
                .map_err(|e| ApiError::InvalidParams(format!("{e}")))?;
            self.allowed(
                &principal(ext),
                "farthing_connectPeer",
                Scope::Channel,
                Some(peer.address),
            )?;
            self.node.keep_linked(peer);
            Ok(true)
        })
        .await
    }

    async fn list_peers(&self) -> Result<Vec<PeerView>, ApiError> {
        Ok(self.node.peers().into_iter().map(peer_view).collect())
    }

    async fn disconnect_peer(
        &self,
        ext: &Extensions,
        peer: Address,
        forget: Option<bool>,
    ) -> Result<Disconnected, ApiError> {
        self.counted_as(ext, async {
            self.allowed(
                &principal(ext),
                "farthing_disconnectPeer",
                Scope::Channel,
                Some(peer),
            )?;
            let (was_linked, was_kept, forgotten) =
                self.node.disconnect_peer(peer, forget.unwrap_or(false));
            Ok(Disconnected {
                was_linked,
                was_kept,
                forgotten,
            })
        })
        .await
    }

    async fn create_credential(
        &self,
        ext: &Extensions,
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
    ) -> Result<CreatedCredential, ApiError> {
        let spec = CredentialSpec {
            label,
            scopes,
            max_payment,
            budget_hour,
            budget_day,
            budget_total,
            deposit_day,
            deposit_total,
            peers,
            origins,
            expires_in_secs,
        };
        self.counted(self.create_credential_uncounted(principal(ext), spec))
            .await
    }

    async fn list_credentials(&self, ext: &Extensions) -> Result<Vec<CredentialView>, ApiError> {
        self.counted(self.list_credentials_uncounted(principal(ext)))
            .await
    }

    async fn show_credential(
        &self,
        ext: &Extensions,
        id: Option<String>,
        token: Option<String>,
    ) -> Result<CredentialView, ApiError> {
        self.counted(self.show_credential_uncounted(principal(ext), id, token))
            .await
    }

    async fn revoke_credential(&self, ext: &Extensions, id: String) -> Result<Revoked, ApiError> {
        self.counted(self.revoke_credential_uncounted(principal(ext), id))
            .await
    }

    async fn whoami(&self, ext: &Extensions) -> Result<CredentialView, ApiError> {
        self.counted(async { Ok(self.principal_view(&principal(ext))) })
            .await
    }

    async fn discover(&self) -> Result<serde_json::Value, ApiError> {
        Ok(farthing_rpc::discover::document())
    }

    async fn balances(&self) -> Result<Balances, ApiError> {
        self.counted(async {
            let unavailable = |e: &dyn std::fmt::Display| ApiError::ChainUnavailable(e.to_string());
            let gas =
                alloy::providers::Provider::get_balance(self.node.reader(), self.node.address())
                    .await
                    .map_err(|e| unavailable(&e))?;
            let token = self
                .node
                .token_balance()
                .await
                .map_err(|e| self.map_op("balances", e))?;
            let claimable = self
                .node
                .claimable()
                .await
                .map_err(|e| self.map_op("balances", e))?;
            let in_channels: u128 = self
                .node
                .channel_records()
                .iter()
                .filter(|c| c.on_chain.state != ChainState::Settled)
                .map(|c| c.our_balance())
                .sum();
            Ok(Balances {
                gas: format_amount(gas.saturating_to(), 18),
                token: format_amount(token, self.decimals()),
                in_channels: format_amount(in_channels, self.decimals()),
                claimable: format_amount(claimable, self.decimals()),
            })
        })
        .await
    }

    async fn subscribe_channels(
        &self,
        pending: PendingSubscriptionSink,
        ext: &Extensions,
    ) -> SubscriptionResult {
        // The node's share of rpc.max_subscriptions, held while the subscription runs.
        let _slot = match farthing_rpc::subscription_slot(ext) {
            Ok(slot) => slot,
            Err(error) => {
                self.node.count_rpc_error(error.code());
                pending.reject(error).await;
                return Ok(());
            }
        };
        // Subscribe before accepting, so nothing published after the client's call is missed.
        let mut changes = self.node.subscribe();
        let sink = pending.accept().await?;
        let caller = principal(ext);
        loop {
            tokio::select! {
                biased;
                denied = self.credential_ends(&caller) => return Err(denied.into()),
                () = sink.closed() => return Ok(()),
                change = changes.recv() => match change {
                    Ok(change) => {
                        let update = ChannelUpdate {
                            channel_id: change.channel.id,
                            kind: change.kind.as_str().to_owned(),
                            channel: self.view(&change.channel),
                        };
                        sink.send(serde_json::value::to_raw_value(&update)?).await?;
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(_) => return Ok(()),
                },
            }
        }
    }
}

/// A peer as `farthing_listPeers` shows it.
fn peer_view(p: crate::PeerStatus) -> PeerView {
    let (last_error, last_error_at_ms) = p.last_error.unzip();
    PeerView {
        address: p.address,
        dial: p.dial,
        linked: p.linked_since_ms.is_some(),
        linked_since_ms: p.linked_since_ms,
        dialled_by: p
            .dialled_by_us
            .map(|us| if us { "us" } else { "them" }.to_owned()),
        kept: p.kept,
        failed_dials: p.failed_dials,
        last_error,
        last_error_at_ms,
        // Rounded up: "0" would read as "now" while a dial is still ahead.
        next_dial_in_secs: p.next_dial_in.map(|d| d.as_millis().div_ceil(1000) as u64),
        channels: p.channels,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_documented_channel_update_kinds_are_the_ones_sent() {
        // farthing_subscribeChannels sends `ChangeKind::as_str`; the API documents this list.
        let sent: Vec<&str> = farthing_core::ChangeKind::ALL
            .iter()
            .map(|kind| kind.as_str())
            .collect();
        assert_eq!(sent, farthing_rpc::CHANNEL_UPDATE_KINDS);
    }
}
