//! `farthing gateway`: the HTTP 402 gateway in front of a seller's API (see the
//! `farthing-gateway` crate), configured by the `[gateway]` table of the node's TOML file and
//! by flags (a flag wins).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use eyre::{Result, eyre};
use farthing_gateway::{GatewayConfig, RouteConfig};

/// `farthing gateway`'s flags.
#[derive(Debug, clap::Args)]
pub(crate) struct GatewayArgs {
    /// The node's TOML file; its `[gateway]` table holds the settings (flags override them).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Where buyers connect (default 127.0.0.1:8402).
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// The seller's API, http://host:port.
    #[arg(long)]
    upstream: Option<String>,
    /// The seller's node's peer address 0xADDRESS@host:port, offered to buyers without a
    /// channel so that they can link and open one.
    #[arg(long)]
    peer: Option<String>,
    /// A priced route, "[METHOD ]/path=PRICE" (token units; /prefix/* for a prefix);
    /// repeatable. Replaces the file's routes.
    #[arg(long = "route")]
    routes: Vec<String>,
    /// A free route, "[METHOD ]/path"; repeatable. Replaces the file's free routes.
    #[arg(long = "free")]
    free: Vec<String>,
    /// The deposit suggested to a buyer without a channel (token units).
    #[arg(long)]
    suggested_deposit: Option<String>,
    /// How long the upstream may take, seconds (past it the buyer is refunded).
    #[arg(long)]
    upstream_timeout_secs: Option<u64>,
}

/// The settings from the file, the flags and the global --node-url / --data-dir /
/// --credential-file.
pub(crate) fn config(
    args: &GatewayArgs,
    node_url: &str,
    data_dir: &Path,
    credential: Option<&Path>,
) -> Result<GatewayConfig> {
    let mut config = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| eyre!("cannot read {}: {e}", path.display()))?;
            farthing_gateway::config::from_toml(&text)
                .map_err(|e| eyre!("{}: {e}", path.display()))?
        }
        None => GatewayConfig::default(),
    };
    config.node_url = node_url
        .replacen("http://", "ws://", 1)
        .replacen("https://", "wss://", 1);
    config.node_data_dir = data_dir.to_path_buf();
    if let Some(file) = credential {
        config.node_credential_file = Some(file.to_path_buf());
    }
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    if let Some(upstream) = &args.upstream {
        config.upstream.clone_from(upstream);
    }
    if args.peer.is_some() {
        config.peer.clone_from(&args.peer);
    }
    if let Some(deposit) = &args.suggested_deposit {
        config.suggested_deposit.clone_from(deposit);
    }
    if let Some(secs) = args.upstream_timeout_secs {
        config.upstream_timeout_secs = secs;
    }
    if !args.routes.is_empty() {
        config.routes = args
            .routes
            .iter()
            .map(|r| RouteConfig::parse_priced(r))
            .collect::<std::result::Result<_, _>>()
            .map_err(|e| eyre!("--route {e}"))?;
    }
    if !args.free.is_empty() {
        config.free = args
            .free
            .iter()
            .map(|r| RouteConfig::parse_free(r))
            .collect::<std::result::Result<_, _>>()
            .map_err(|e| eyre!("--free {e}"))?;
    }
    if config.routes.is_empty() {
        return Err(eyre!(
            "no priced route: give --route \"GET /path/*=0.001\" (or [gateway] routes in --config)"
        ));
    }
    Ok(config)
}

/// Run the gateway until SIGINT or SIGTERM.
pub(crate) async fn run(
    args: GatewayArgs,
    node_url: &str,
    data_dir: &Path,
    credential: Option<&Path>,
) -> Result<()> {
    let config = config(&args, node_url, data_dir, credential)?;
    let routes: Vec<String> = config
        .routes
        .iter()
        .map(|r| {
            format!(
                "{} {} = {}",
                r.method,
                r.path,
                r.price.as_deref().unwrap_or("?")
            )
        })
        .collect();
    let upstream = config.upstream.clone();
    let gateway = farthing_gateway::start(config).await?;
    tracing::info!(listen = %gateway.addr, %upstream, routes = %routes.join(", "), "gateway listening");
    eprintln!("gateway listening on http://{} -> {upstream}", gateway.addr);
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    gateway.stop();
    Ok(())
}
