//! The tools: their parameters (the JSON schema the agent reads, descriptions included), and
//! one method each that calls the node and renders its answer ([`crate::render`]).

use std::collections::BTreeMap;
use std::sync::OnceLock;

use alloy_primitives::Address;
use farthing_rpc::{ClientError, FarthingApiClient, HttpClient, code};
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{CallToolResult, ServerCapabilities, ServerConfig};
use rmcp::schemars::JsonSchema;
use rmcp::{ErrorData, ServerHandler, tool, tool_handler, tool_router};
use serde::Deserialize;

use crate::{Bearer, render};

/// How long `open_channel` (and a `pay` the node found not ready) waits for a channel to take
/// payments, in seconds.
const READY_WAIT_SECS: u64 = 60;

/// `fetch`'s parameters.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
pub(crate) struct FetchArgs {
    /// The http:// or https:// URL to fetch.
    url: String,
    /// The most this request may cost, in token units as a decimal string (e.g. "0.01"). A
    /// site asking more is refused and nothing is paid. Use "0" only when nothing may be paid.
    max_price: String,
    /// The HTTP method (default GET).
    #[serde(default)]
    method: Option<String>,
    /// Request headers, name to value.
    #[serde(default)]
    headers: Option<BTreeMap<String, String>>,
    /// The request body, as text.
    #[serde(default)]
    body: Option<String>,
    /// Only when the node has no channel with the seller yet and opens one to pay: how much of
    /// the user's tokens to lock in it (token units; default: the node's configured amount).
    /// What is not spent stays the user's and comes back when the channel is closed.
    #[serde(default)]
    deposit: Option<String>,
}

/// `open_channel`'s parameters.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
pub(crate) struct OpenArgs {
    /// The partner: the 0x address of the other Farthing node.
    partner: String,
    /// How much of the user's free tokens to lock in the channel, token units (e.g. "5").
    amount: String,
}

/// `pay`'s parameters.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
pub(crate) struct PayArgs {
    /// The amount to pay, token units as a decimal string (e.g. "0.001").
    amount: String,
    /// Whom to pay: the 0x address of a partner the node has an open channel with. Give this
    /// or channel_id.
    #[serde(default)]
    partner: Option<String>,
    /// The channel to pay on (its id, from `channels`). Give this or partner.
    #[serde(default)]
    channel_id: Option<u64>,
    /// Free text the partner sees with the payment (not signed, at most 256 bytes).
    #[serde(default)]
    memo: Option<String>,
    /// A unique key for this payment: calling again with the same key pays once and returns
    /// the first result. Use one whenever a retry is possible.
    #[serde(default)]
    idempotency_key: Option<String>,
}

/// `close_channel`'s parameters.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
pub(crate) struct CloseArgs {
    /// The channel to close (its id, from `channels`).
    channel_id: u64,
}

/// The MCP server: a connected node RPC client and the tools that call it.
#[derive(Clone)]
pub struct Farthing {
    node: HttpClient,
    /// What the node is called with (for what a 401 means).
    bearer: Bearer,
    /// The token's symbol ("USDC"), once the node told it.
    symbol: std::sync::Arc<OnceLock<String>>,
    tool_router: ToolRouter<Self>,
}

impl std::fmt::Debug for Farthing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Farthing").finish_non_exhaustive()
    }
}

type ToolResult = Result<CallToolResult, ErrorData>;

#[tool_router]
impl Farthing {
    /// The server for the node behind `node`, called with `bearer`.
    pub fn new(node: HttpClient, bearer: Bearer) -> Self {
        Self {
            node,
            bearer,
            symbol: std::sync::Arc::default(),
            tool_router: Self::tool_router(),
        }
    }

    #[tool(
        description = "Fetch a URL over HTTP, paying for it from the user's money when the site asks to be paid (HTTP 402) and its price is at most max_price. Amounts are token units (the node's stablecoin, e.g. USDC) as decimal strings such as \"0.01\". max_price is required: the most this one request may cost; a higher price is refused (isError) and nothing is paid. When the node has no channel with the seller yet it may open one, locking `deposit` (or its configured amount) of the user's tokens in it; what is not spent stays the user's. Returns the HTTP status, what was paid (amount, channel, proof nonce), the headers and the body as text.",
        annotations(open_world_hint = true)
    )]
    async fn fetch(&self, Parameters(args): Parameters<FetchArgs>) -> ToolResult {
        let max_price = args.max_price.clone();
        let url = args.url.clone();
        let fetched = self
            .node
            .fetch(
                args.url,
                args.max_price,
                args.method,
                args.headers,
                args.body,
                args.deposit,
            )
            .await;
        Ok(match fetched {
            Ok(result) => render::fetched(&url, &max_price, &result, &self.unit().await),
            Err(e) => self.refused("fetch", e),
        })
    }

    #[tool(
        description = "The user's money, in token units: tokens free in the wallet (token), still spendable in open payment channels (in_channels), claimable from the contract (claimable), and ether for transaction fees (gas). Reads only; moves nothing.",
        annotations(read_only_hint = true, open_world_hint = false)
    )]
    async fn balances(&self) -> ToolResult {
        Ok(match self.node.balances().await {
            Ok(b) => render::balances(&b, &self.unit().await),
            Err(e) => self.refused("balances", e),
        })
    }

    #[tool(
        description = "The node's payment channels: id, partner (0x address), state (open, closed: paying out after its challenge period, settled: paid out), what the user can still pay on it (balance_ours) and what the partner can pay the user (balance_partner), in token units. Reads only.",
        annotations(read_only_hint = true, open_world_hint = false)
    )]
    async fn channels(&self) -> ToolResult {
        Ok(match self.node.list_channels().await {
            Ok(list) => render::channels(&list, &self.unit().await),
            Err(e) => self.refused("channels", e),
        })
    }

    #[tool(
        description = "Open a payment channel to partner (the 0x address of another Farthing node) and lock amount (token units, e.g. \"5\") of the user's free tokens in it: one on-chain transaction, paid for in gas. The tokens stay the user's until paid with `pay`; `close_channel` returns what is left. Waits (up to a minute) until the channel can take payments.",
        annotations(
            destructive_hint = false,
            idempotent_hint = false,
            open_world_hint = true
        )
    )]
    async fn open_channel(&self, Parameters(args): Parameters<OpenArgs>) -> ToolResult {
        let partner = match address(&args.partner, "partner") {
            Ok(partner) => partner,
            Err(refusal) => return Ok(refusal),
        };
        let opened = match self.node.open_channel(partner, args.amount, None).await {
            Ok(view) => view,
            Err(e) => return Ok(self.refused("open_channel", e)),
        };
        let unit = self.unit().await;
        Ok(
            match self
                .node
                .wait_channel(opened.id, Some(READY_WAIT_SECS))
                .await
            {
                Ok(ready) => render::opened(&ready, None, &unit),
                Err(e) => render::opened(&opened, Some(render::error_text(&e, self.bearer)), &unit),
            },
        )
    }

    #[tool(
        description = "Pay amount (token units as a decimal string, e.g. \"0.001\") to a partner over an open channel: instant, no transaction. Give channel_id or partner (the channel partner's 0x address). This spends the user's money; it is final once the partner acknowledged it. Give an idempotency_key whenever a retry is possible: the same key twice pays once. memo is free text the partner sees.",
        annotations(
            destructive_hint = true,
            idempotent_hint = false,
            open_world_hint = true
        )
    )]
    async fn pay(&self, Parameters(args): Parameters<PayArgs>) -> ToolResult {
        let partner = match args.partner.as_deref().map(|p| address(p, "partner")) {
            None => None,
            Some(Ok(partner)) => Some(partner),
            Some(Err(refusal)) => return Ok(refusal),
        };
        let call = || {
            self.node.pay(
                args.channel_id,
                partner,
                args.amount.clone(),
                args.idempotency_key.clone(),
                args.memo.clone(),
            )
        };
        let mut paid = call().await;
        // Not ready (just opened, the partner's node has not confirmed it yet): nothing was
        // signed; wait for the channel once and pay again.
        if let Err(ClientError::Call(e)) = &paid
            && e.code() == code::NOT_READY
            && let Some(id) = e
                .data()
                .and_then(|d| serde_json::from_str::<serde_json::Value>(d.get()).ok())
                .and_then(|d| d["channel_id"].as_u64())
            && self
                .node
                .wait_channel(id, Some(READY_WAIT_SECS))
                .await
                .is_ok()
        {
            paid = call().await;
        }
        Ok(match paid {
            Ok(paid) => render::paid(&paid, &self.unit().await),
            Err(e) => self.refused("pay", e),
        })
    }

    #[tool(
        description = "Close channel channel_id and pay its balances out on-chain: cooperatively with the partner (one transaction, paid out at once: state settled), or, when the partner does not answer, unilaterally (state closed: paid out after the challenge period). Costs gas; the channel takes no more payments. Returns what comes back to the user's wallet.",
        annotations(
            destructive_hint = true,
            idempotent_hint = true,
            open_world_hint = true
        )
    )]
    async fn close_channel(&self, Parameters(args): Parameters<CloseArgs>) -> ToolResult {
        Ok(match self.node.close_channel(args.channel_id).await {
            Ok(view) => render::closed(&view, &self.unit().await),
            Err(e) => self.refused("close_channel", e),
        })
    }

    #[tool(
        description = "What this server may spend: the credential the node holds it to (its id, scopes, the largest single payment, budgets per hour, day or in total with what is spent and left, partners, origins, expiry), or that it runs with the node's own token and no limit but the user's money. Reads only.",
        annotations(read_only_hint = true, open_world_hint = false)
    )]
    async fn whoami(&self) -> ToolResult {
        Ok(match self.node.whoami().await {
            Ok(view) => render::whoami(&view, &self.unit().await),
            Err(e) => self.refused("whoami", e),
        })
    }

    #[tool(
        description = "The user's Farthing node: its address (the account that pays), the chain, the token (symbol, decimals), how far it has synced, its health (while degraded it makes no new payments) and its links to partner nodes. Reads only.",
        annotations(read_only_hint = true, open_world_hint = false)
    )]
    async fn info(&self) -> ToolResult {
        Ok(match self.node.info().await {
            Ok(info) => {
                let _ = self.symbol.set(info.token_symbol.clone());
                render::info(&info)
            }
            Err(e) => self.refused("info", e),
        })
    }
}

impl Farthing {
    /// A failed node call of `tool`, as the refusal the agent reads.
    fn refused(&self, tool: &str, e: ClientError) -> CallToolResult {
        render::node_error(tool, e, self.bearer)
    }

    /// The token's symbol, asked of the node once; empty while it cannot be asked.
    async fn unit(&self) -> String {
        if let Some(symbol) = self.symbol.get() {
            return symbol.clone();
        }
        match self.node.info().await {
            Ok(info) => self.symbol.get_or_init(|| info.token_symbol).clone(),
            Err(_) => String::new(),
        }
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for Farthing {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(rmcp::model::Implementation::new(
                "farthing",
                env!("CARGO_PKG_VERSION"),
            ))
            .with_instructions(crate::INSTRUCTIONS)
    }
}

/// `text` as an address, or the refusal to hand back.
fn address(text: &str, what: &str) -> Result<Address, CallToolResult> {
    text.trim().parse().map_err(|_| {
        render::refusal(format!(
            "{what} {text:?} is not a 0x address (20 bytes, hex): nothing was done"
        ))
    })
}
