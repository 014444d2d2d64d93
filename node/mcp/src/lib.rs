//! `farthing mcp`: the node served to an AI agent over the Model Context Protocol (stdio).
//!
//! The agent sees money, not channels: `fetch` gets a URL and pays for it when the site asks
//! (HTTP 402) and its price is within the `max_price` the agent gives — the node finds or opens
//! the channel — and `balances`, `channels`, `open_channel`, `pay`, `close_channel`, `info` and
//! `whoami` cover the rest. Each tool is one or two calls of the node's JSON-RPC ([`farthing_rpc`]) on a
//! connected client: this crate holds no node logic and no key. Amounts are token units as
//! decimal strings ("0.001"), as on the RPC.
//!
//! Started with an agent's credential (`farthing --credential-file F mcp`), every tool runs
//! within its limits: the node refuses a method outside its scopes (1017), a spend over its
//! per-payment max, partners, origins or budgets (1018: the limit's name, and when a budget
//! frees, as RFC 3339 and Unix seconds) and an expired or revoked credential (1019, HTTP 401).
//! `whoami` tells the agent its limits and what is left of its budgets.
//!
//! A refusal — the node's (its message says what to do), a price over the limit, an
//! unreachable node — is a tool result with `isError: true`, so the agent reads it; protocol
//! errors are left to malformed requests. Stdout belongs to the MCP transport: nothing here
//! prints, and the binary sends its log to stderr.

mod render;
mod tools;

use rmcp::ServiceExt;

pub use tools::Farthing;

/// What the server calls the node with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bearer {
    /// The node's own token (rpc.token): no limit but the node's.
    Admin,
    /// An agent's credential: the node enforces its scopes and budgets on every tool.
    Credential,
}

/// What the server tells the agent when it connects (MCP `instructions`).
pub const INSTRUCTIONS: &str = "This server spends the user's money: a stablecoin held by \
the user's Farthing node. Use `fetch` to get web resources that may ask for payment (HTTP 402): \
set `max_price` to the most the request may cost (token units, a decimal string such as \"0.01\"); \
a higher price is refused and nothing is paid. Amounts are always token units as decimal strings, \
never base units. `balances` and `channels` show where the money is; `open_channel`, `pay` and \
`close_channel` move it and are only needed when the user asks for them. A result with isError \
explains what went wrong and what to do; never retry a payment without its idempotency_key. \
The node may hold this server to a credential's limits (scopes, a per-payment maximum, budgets \
per hour, day or in total, partners, origins): `whoami` shows them and what is left; a refusal \
over a budget says when it frees, and retrying before then is refused again.";

/// Serve the tools over stdin/stdout until the client closes them, calling the node through
/// `node` (from [`farthing_rpc::connect_http`]) authenticated as `bearer` says. The node is
/// first called when a tool is: a node that is down makes each tool answer so, not the server
/// fail.
pub async fn serve_stdio(node: farthing_rpc::HttpClient, bearer: Bearer) -> eyre::Result<()> {
    let service = Farthing::new(node, bearer)
        .serve(rmcp::transport::stdio())
        .await
        .map_err(|e| eyre::eyre!("the MCP client did not initialize the session: {e}"))?;
    let reason = service
        .waiting()
        .await
        .map_err(|e| eyre::eyre!("the MCP service stopped abnormally: {e}"))?;
    tracing::debug!(?reason, "MCP session ended");
    Ok(())
}
