//! A fake node behind the server trait, and a helper that serves it.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use alloy_primitives::{Address, B256};
use farthing_core::{AmountError, ChannelId};
use farthing_rpc::{
    ApiError, Balances, ChannelRole, ChannelState, ChannelUpdate, ChannelView, ClaimResult,
    Collected, Disconnected, FarthingApiServer, FetchResult, Health, NodeInfo, PeerView, Redeemed,
    RpcServerConfig, ServerHandle, Shortfall, TransferAuthorization,
};
use jsonrpsee::core::{SubscriptionResult, async_trait};
use jsonrpsee::{Extensions, PendingSubscriptionSink};
use tokio::sync::broadcast;

/// The token the tests' servers accept.
pub(crate) const TOKEN: &str = "5f0c9a1e3b7d2468ace013579bdf2468ace013579bdf2468ace013579bdf2468";

/// Records each method it is called with; `get_channel(id)` fails with the error whose code
/// is `id` (see [`error_for`]), and succeeds for id 1.
#[derive(Clone)]
pub(crate) struct Fake {
    calls: Arc<Mutex<Vec<&'static str>>>,
    updates: broadcast::Sender<ChannelUpdate>,
}

impl Fake {
    pub(crate) fn new() -> Self {
        Self {
            calls: Arc::default(),
            updates: broadcast::channel(16).0,
        }
    }

    /// The methods called so far, in order.
    pub(crate) fn calls(&self) -> Vec<&'static str> {
        self.calls.lock().unwrap().clone()
    }

    /// Send an update to every subscriber.
    pub(crate) fn publish(&self, update: ChannelUpdate) {
        self.updates.send(update).unwrap();
    }

    fn record(&self, method: &'static str) {
        self.calls.lock().unwrap().push(method);
    }
}

pub(crate) fn view(id: ChannelId, deposit: &str) -> ChannelView {
    ChannelView {
        id,
        state: ChannelState::Open,
        role: ChannelRole::A,
        partner: Address::repeat_byte(0xbb),
        token: Address::repeat_byte(0x70),
        challenge_period: 3600,
        deposit_ours: deposit.to_owned(),
        deposit_partner: "0".into(),
        balance_ours: deposit.to_owned(),
        balance_partner: "0".into(),
        settle_after: None,
        closer: None,
        sent: "0".into(),
        sent_nonce: 0,
        received: "0".into(),
        received_nonce: 0,
    }
}

/// The error `get_channel(code)` fails with: one per documented code.
pub(crate) fn error_for(code: ChannelId) -> Option<ApiError> {
    Some(match code {
        1001 => ApiError::UnknownChannel { id: code },
        1002 => ApiError::WrongState {
            id: code,
            state: ChannelState::Settled,
            call: "farthing_getChannel",
        },
        1003 => ApiError::InsufficientFunds {
            kind: Shortfall::Allowance,
            needed: 3_000_000,
            available: 1_000_000,
            decimals: 6,
        },
        1004 => AmountError::TooPrecise {
            amount: "0.0000001".into(),
            decimals: 6,
        }
        .into(),
        1005 => ApiError::InvalidParams("partner is the node itself".into()),
        1006 => ApiError::ChainUnavailable("connection refused".into()),
        1007 => ApiError::Degraded {
            reasons: vec!["chain RPC down".into()],
        },
        1008 => ApiError::Unconfirmed {
            tx_hash: "0x01".into(),
            reason: "timeout".into(),
        },
        1009 => ApiError::Refused("ChannelNotOpen(1, 2)".into()),
        1099 => ApiError::Internal("store error".into()),
        _ => return None,
    })
}

pub(crate) const ERROR_CODES: [ChannelId; 10] =
    [1001, 1002, 1003, 1004, 1005, 1006, 1007, 1008, 1009, 1099];

#[async_trait]
impl FarthingApiServer for Fake {
    async fn redeem(
        &self,
        _challenge: String,
        _price: String,
        _paid_by: Option<u64>,
    ) -> Result<Redeemed, ApiError> {
        self.record("redeem");
        Err(ApiError::PaymentRejected {
            reason: "unpaid".into(),
            message: "no payment".into(),
        })
    }

    async fn collect_authorization(
        &self,
        _authorization: TransferAuthorization,
    ) -> Result<Collected, ApiError> {
        self.record("collectAuthorization");
        Err(ApiError::Internal("fake".into()))
    }

    async fn refund_collection(&self, _tx_hash: B256) -> Result<Collected, ApiError> {
        self.record("refundCollection");
        Err(ApiError::Internal("fake".into()))
    }

    async fn fetch(
        &self,
        _ext: &Extensions,
        _url: String,
        _max_price: String,
        _method: Option<String>,
        _headers: Option<std::collections::BTreeMap<String, String>>,
        _body: Option<String>,
        _deposit: Option<String>,
    ) -> Result<FetchResult, ApiError> {
        self.record("fetch");
        Err(ApiError::Internal("fake".into()))
    }

    async fn info(&self) -> Result<NodeInfo, ApiError> {
        self.record("info");
        Ok(NodeInfo {
            address: Address::repeat_byte(0xaa),
            chain_id: 31337,
            channel_manager: Address::repeat_byte(0xcc),
            token: Address::repeat_byte(0x70),
            token_symbol: "USDC".into(),
            token_decimals: 6,
            token_name: "USD Coin".into(),
            token_version: "2".into(),
            synced_block: 41,
            chain_head: 42,
            health: Health::ok(),
            store_syncs: 0,
            store_batches: 0,
            store: String::new(),
            links: Default::default(),
        })
    }

    async fn open_channel(
        &self,
        _ext: &Extensions,
        _partner: Address,
        amount: String,
        challenge_period: Option<u32>,
    ) -> Result<ChannelView, ApiError> {
        self.record("openChannel");
        Ok(ChannelView {
            challenge_period: challenge_period.unwrap_or(3600),
            ..view(1, &amount)
        })
    }

    async fn top_up(
        &self,
        _ext: &Extensions,
        channel_id: ChannelId,
        amount: String,
    ) -> Result<ChannelView, ApiError> {
        self.record("topUp");
        Ok(view(channel_id, &amount))
    }

    async fn list_channels(&self) -> Result<Vec<ChannelView>, ApiError> {
        self.record("listChannels");
        Ok(vec![view(1, "100"), view(2, "2.5")])
    }

    async fn get_channel(&self, channel_id: ChannelId) -> Result<ChannelView, ApiError> {
        self.record("getChannel");
        match error_for(channel_id) {
            Some(error) => Err(error),
            None => Ok(view(channel_id, "100")),
        }
    }

    async fn wait_channel(
        &self,
        channel_id: ChannelId,
        _timeout_secs: Option<u64>,
    ) -> Result<ChannelView, ApiError> {
        self.record("waitChannel");
        match error_for(channel_id) {
            Some(error) => Err(error),
            None => Ok(view(channel_id, "100")),
        }
    }

    async fn close_channel(
        &self,
        _ext: &Extensions,
        channel_id: ChannelId,
    ) -> Result<ChannelView, ApiError> {
        self.record("closeChannel");
        Ok(view(channel_id, "100"))
    }

    async fn settle(
        &self,
        _ext: &Extensions,
        channel_id: ChannelId,
    ) -> Result<ChannelView, ApiError> {
        self.record("settle");
        Ok(view(channel_id, "100"))
    }

    async fn claim(&self) -> Result<ClaimResult, ApiError> {
        self.record("claim");
        Ok(ClaimResult {
            claimed: "0".into(),
        })
    }

    async fn withdraw(
        &self,
        _ext: &Extensions,
        channel_id: ChannelId,
        _amount: String,
    ) -> Result<ChannelView, ApiError> {
        self.record("withdraw");
        Err(ApiError::UnknownChannel { id: channel_id })
    }

    async fn pay(
        &self,
        _ext: &Extensions,
        channel_id: Option<ChannelId>,
        _partner: Option<Address>,
        amount: String,
        _idempotency_key: Option<String>,
        memo: Option<String>,
    ) -> Result<farthing_rpc::PayResult, ApiError> {
        self.record("pay");
        Ok(farthing_rpc::PayResult {
            // The memo's length stands for the nonce, so tests see it arrived.
            channel_id: channel_id.unwrap_or(1),
            nonce: memo.map_or(1, |m| m.len() as u64),
            amount,
            balance_ours: "99".into(),
            balance_partner: "1".into(),
            repeated: false,
        })
    }

    async fn list_payments(
        &self,
        channel_id: Option<ChannelId>,
        _limit: Option<u32>,
        after: Option<u64>,
    ) -> Result<farthing_rpc::PaymentPage, ApiError> {
        self.record("listPayments");
        let seq = after.unwrap_or(0) + 1;
        Ok(farthing_rpc::PaymentPage {
            payments: vec![farthing_rpc::PaymentView {
                seq,
                channel_id: channel_id.unwrap_or(1),
                direction: "out".into(),
                nonce: 1,
                amount: "0.5".into(),
                at_ms: 0,
                memo: None,
                key: None,
                carried: false,
                credential: None,
            }],
            next: seq,
            more: false,
        })
    }

    async fn subscribe_payments(
        &self,
        pending: PendingSubscriptionSink,
        ext: &Extensions,
        _after: Option<u64>,
    ) -> SubscriptionResult {
        self.record("subscribePayments");
        let _slot = match farthing_rpc::subscription_slot(ext) {
            Ok(slot) => slot,
            Err(error) => {
                pending.reject(error).await;
                return Ok(());
            }
        };
        let sink = pending.accept().await?;
        sink.closed().await;
        Ok(())
    }

    async fn connect_peer(&self, _ext: &Extensions, _peer: String) -> Result<bool, ApiError> {
        self.record("connectPeer");
        Ok(true)
    }

    async fn list_peers(&self) -> Result<Vec<PeerView>, ApiError> {
        self.record("listPeers");
        Ok(Vec::new())
    }

    async fn disconnect_peer(
        &self,
        _ext: &Extensions,
        _peer: Address,
        forget: Option<bool>,
    ) -> Result<Disconnected, ApiError> {
        self.record("disconnectPeer");
        Ok(Disconnected {
            forgotten: forget.unwrap_or(false),
            ..Disconnected::default()
        })
    }

    async fn create_credential(
        &self,
        _ext: &Extensions,
        _label: Option<String>,
        _scopes: Option<Vec<String>>,
        _max_payment: Option<String>,
        _budget_hour: Option<String>,
        _budget_day: Option<String>,
        _budget_total: Option<String>,
        _deposit_day: Option<String>,
        _deposit_total: Option<String>,
        _peers: Option<Vec<Address>>,
        _origins: Option<Vec<String>>,
        _expires_in_secs: Option<u64>,
    ) -> Result<farthing_rpc::CreatedCredential, ApiError> {
        self.record("createCredential");
        Err(ApiError::Internal("fake".into()))
    }

    async fn list_credentials(
        &self,
        _ext: &Extensions,
    ) -> Result<Vec<farthing_rpc::CredentialView>, ApiError> {
        self.record("listCredentials");
        Ok(Vec::new())
    }

    async fn show_credential(
        &self,
        _ext: &Extensions,
        _id: Option<String>,
        _token: Option<String>,
    ) -> Result<farthing_rpc::CredentialView, ApiError> {
        self.record("showCredential");
        Err(ApiError::InvalidParams("fake".into()))
    }

    async fn revoke_credential(
        &self,
        _ext: &Extensions,
        id: String,
    ) -> Result<farthing_rpc::Revoked, ApiError> {
        self.record("revokeCredential");
        Ok(farthing_rpc::Revoked { id, revoked_at: 0 })
    }

    /// The caller as the auth layer saw it: its id in `id` (none for the admin token).
    async fn whoami(&self, ext: &Extensions) -> Result<farthing_rpc::CredentialView, ApiError> {
        self.record("whoami");
        let agent = ext
            .get::<farthing_rpc::Principal>()
            .and_then(|p| p.agent().cloned());
        Ok(farthing_rpc::CredentialView {
            id: agent.as_ref().map(|a| a.id().to_string()),
            admin: agent.is_none(),
            label: None,
            parent: None,
            created: None,
            caveats: agent
                .map(|a| a.caveats().iter().map(ToString::to_string).collect())
                .unwrap_or_default(),
            scopes: None,
            expires: None,
            max_payment: None,
            peers: None,
            origins: None,
            budgets: Vec::new(),
            revoked: false,
        })
    }

    async fn discover(&self) -> Result<serde_json::Value, ApiError> {
        self.record("discover");
        Ok(farthing_rpc::discover::document())
    }

    async fn balances(&self) -> Result<Balances, ApiError> {
        self.record("balances");
        Ok(Balances {
            gas: "0.05".into(),
            token: "900".into(),
            in_channels: "100".into(),
            claimable: "0".into(),
        })
    }

    async fn subscribe_channels(
        &self,
        pending: PendingSubscriptionSink,
        ext: &Extensions,
    ) -> SubscriptionResult {
        self.record("subscribeChannels");
        let _slot = match farthing_rpc::subscription_slot(ext) {
            Ok(slot) => slot,
            Err(error) => {
                pending.reject(error).await;
                return Ok(());
            }
        };
        // Subscribe before accepting: no update published after the client's call returns
        // can be missed.
        let mut updates = self.updates.subscribe();
        let sink = pending.accept().await?;
        loop {
            tokio::select! {
                () = sink.closed() => return Ok(()),
                update = updates.recv() => match update {
                    Ok(update) => sink.send(serde_json::value::to_raw_value(&update)?).await?,
                    Err(_) => return Ok(()),
                },
            }
        }
    }
}

/// A server for a new fake with these limits, on a free loopback port.
pub(crate) async fn serve(config: RpcServerConfig) -> (Fake, SocketAddr, ServerHandle) {
    let fake = Fake::new();
    let (addr, handle) = farthing_rpc::start(&config, TOKEN, fake.clone().into_rpc())
        .await
        .unwrap();
    (fake, addr, handle)
}

/// `serve` with the default limits.
pub(crate) async fn serve_default() -> (Fake, SocketAddr, ServerHandle) {
    serve(RpcServerConfig::ephemeral()).await
}
