//! `farthing mcp`: the node served to an AI agent over MCP (stdio), through `farthing-mcp`.
//! Stdout carries the protocol alone: the log goes to stderr, plain text (no colours: the
//! agent's host usually keeps it in a file).

use eyre::Result;

/// Connect to the node at `node_url` with `token` (the node's rpc.token, or the agent's
/// credential when `credential`: every tool then runs within its limits), then serve MCP on
/// stdin/stdout until the client closes them.
pub(crate) async fn run(token: &str, credential: bool, node_url: &str) -> Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_writer(std::io::stderr)
        .init();
    let client = farthing_rpc::connect_http(node_url, token)?;
    let bearer = if credential {
        farthing_mcp::Bearer::Credential
    } else {
        farthing_mcp::Bearer::Admin
    };
    tracing::info!(node = node_url, ?bearer, "serving MCP on stdio");
    farthing_mcp::serve_stdio(client, bearer).await
}
