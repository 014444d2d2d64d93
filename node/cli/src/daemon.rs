//! `farthing node`: the daemon's flags, folded into the node's [`Config`], and its run until
//! a signal (or a fatal failure of the node) stops it.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;
use eyre::{Context, Result, eyre};
use farthing_daemon::config::cluster::StoreBackend;
use farthing_daemon::{Config, KeySource, Node, RpcHandler};
use farthing_rpc::FarthingApiServer;

/// `farthing node` flags; each overrides the config file.
#[derive(Debug, Args)]
pub(crate) struct NodeArgs {
    /// Config file (default: DATA_DIR/farthing.toml if it exists).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Chain RPC URL.
    #[arg(long)]
    rpc_url: Option<String>,
    /// PEM file of a CA trusted for an https:// or wss:// chain RPC on top of the system's roots.
    #[arg(long)]
    ca_file: Option<PathBuf>,
    /// Expected chain id.
    #[arg(long)]
    chain_id: Option<u64>,
    /// Deployment file.
    #[arg(long)]
    deployment: Option<PathBuf>,
    /// Confirmations before an event is applied.
    #[arg(long)]
    confirmations: Option<u64>,
    /// Listen address of the RPC.
    #[arg(long)]
    rpc_listen: Option<SocketAddr>,
    /// Listen address for partner nodes.
    #[arg(long)]
    peer_listen: Option<SocketAddr>,
    /// Serve Prometheus metrics (GET /metrics) on this address.
    #[arg(long)]
    metrics_listen: Option<SocketAddr>,
    /// A partner node to keep a link to (0xADDRESS@host:port); repeatable (several with one
    /// address: its instances, dialled in turn).
    #[arg(long = "connect", value_name = "PEER")]
    connect: Vec<String>,
    /// Use devnet account N of the public test mnemonic (devnets only).
    #[arg(long, value_name = "N", conflicts_with_all = ["key_file", "keystore"])]
    dev: Option<u32>,
    /// Raw key file (64 hex digits, mode 0600).
    #[arg(long, conflicts_with = "keystore")]
    key_file: Option<PathBuf>,
    /// Ethereum keystore; password from --password-file or FARTHING_KEY_PASSWORD.
    #[arg(long)]
    keystore: Option<PathBuf>,
    /// File holding the keystore password.
    #[arg(long, requires = "keystore")]
    password_file: Option<PathBuf>,
    /// Log filter (info, debug, ...).
    #[arg(long)]
    log_level: Option<String>,
    /// Where the state lives: rocksdb (in the data directory) or postgres.
    #[arg(long, value_enum)]
    store: Option<StoreArg>,
    /// PostgreSQL connection string for --store postgres (a password is better given in
    /// FARTHING_POSTGRES, which overrides this).
    #[arg(long, value_name = "CONNINFO")]
    postgres: Option<String>,
    /// PostgreSQL schema of this node's tables.
    #[arg(long, value_name = "NAME")]
    postgres_schema: Option<String>,
    /// etcd endpoint (http://host:port) of the election among this node's instances;
    /// repeatable. Set: this instance waits as a standby until it leads.
    #[arg(long = "etcd", value_name = "URL")]
    etcd: Vec<String>,
    /// This instance's name in the election and the store's fence.
    #[arg(long)]
    instance: Option<String>,
    /// The leader's etcd lease in seconds: a leader that stops answering is replaced after
    /// about this long.
    #[arg(long, value_name = "SECS")]
    lease_ttl: Option<u64>,
}

/// `--store`.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum StoreArg {
    Rocksdb,
    Postgres,
}

impl NodeArgs {
    /// `node`'s flags with the defaults they fall back to in their help, taken from
    /// [`Config::default`] so the help cannot drift from what the node does. The flags stay
    /// without clap defaults: a flag not given must leave the config file's value in force.
    pub(crate) fn describe_defaults(node: clap::Command) -> clap::Command {
        let config = Config::default();
        let defaults = [
            ("rpc_url", config.chain.rpc_url.clone()),
            ("chain_id", config.chain.chain_id.to_string()),
            ("deployment", config.chain.deployment.display().to_string()),
            ("confirmations", config.chain.confirmations.to_string()),
            ("rpc_listen", config.rpc.listen.to_string()),
            ("peer_listen", config.peer.listen.to_string()),
            ("metrics_listen", "none (metrics off)".to_owned()),
            ("log_level", config.log_level.clone()),
        ];
        defaults.into_iter().fold(node, |node, (id, default)| {
            node.mut_arg(id, |arg| {
                let help = arg.get_help().map(ToString::to_string).unwrap_or_default();
                arg.help(format!("{help} [default: {default}, or the config file's]"))
            })
        })
    }
}

pub(crate) async fn run_node(data_dir: &std::path::Path, args: NodeArgs) -> Result<()> {
    // A config file named on the command line must be there: falling back to defaults while
    // the operator believes their file is in force is how a node runs on the wrong settings.
    if let Some(named) = &args.config
        && !named.exists()
    {
        return Err(eyre!(
            "config file {} does not exist: create it, or leave --config out to use DATA_DIR/farthing.toml",
            named.display()
        ));
    }
    let file = args
        .config
        .clone()
        .unwrap_or_else(|| data_dir.join("farthing.toml"));
    let mut config = if file.exists() {
        Config::from_file(&file)?
    } else {
        Config::default()
    };
    config.data_dir = data_dir.to_owned();
    if let Some(v) = args.rpc_url {
        config.chain.rpc_url = v;
    }
    if let Some(v) = args.ca_file {
        config.chain.ca_file = Some(v);
    }
    if let Some(v) = args.chain_id {
        config.chain.chain_id = v;
    }
    if let Some(v) = args.deployment {
        config.chain.deployment = v;
    }
    if let Some(v) = args.confirmations {
        config.chain.confirmations = v;
    }
    if let Some(v) = args.rpc_listen {
        config.rpc.listen = v;
    }
    if let Some(v) = args.peer_listen {
        config.peer.listen = v;
    }
    if let Some(v) = args.metrics_listen {
        config.metrics.listen = Some(v);
    }
    config.peer.connect.extend(args.connect);
    if let Some(n) = args.dev {
        config.key = Some(KeySource::DevAccount(n));
    }
    if let Some(path) = args.key_file {
        config.key = Some(KeySource::RawKeyFile(path));
    }
    if let Some(path) = args.keystore {
        config.key = Some(KeySource::Keystore {
            path,
            password_file: args.password_file,
        });
    }
    if let Some(v) = args.log_level {
        config.log_level = v;
    }
    if let Some(v) = args.store {
        config.store.backend = match v {
            StoreArg::Rocksdb => StoreBackend::Rocksdb,
            StoreArg::Postgres => StoreBackend::Postgres,
        };
    }
    if let Some(v) = args.postgres {
        config.store.postgres = Some(v);
    }
    if let Some(v) = args.postgres_schema {
        config.store.schema = v;
    }
    config.cluster.etcd.extend(args.etcd);
    if let Some(v) = args.instance {
        config.cluster.instance = Some(v);
    }
    if let Some(v) = args.lease_ttl {
        config.cluster.lease_ttl_secs = v;
    }
    config.validate()?;
    init_logging(&config.log_level)?;

    // One signal listener for the whole run: a SIGTERM while the standby waits, takes the
    // store over or starts the node is not lost between listeners.
    let (stop_tx, mut stop) = tokio::sync::watch::channel(None);
    tokio::spawn(async move {
        let signal = wait_for_signal().await.map_err(|e| e.to_string());
        let _ = stop_tx.send(Some(signal));
    });
    let mut stopped = stop.clone();
    let signalled = async move {
        match stopped.wait_for(Option::is_some).await {
            Ok(signal) => signal.clone().unwrap_or(Ok(())),
            Err(_) => std::future::pending().await,
        }
    };
    tokio::pin!(signalled);

    // On PostgreSQL with an election: a standby until this instance leads.
    let Some(postgres) = crate::cluster::take_store(&config, &mut stop).await? else {
        return Ok(());
    };
    let (node, leader) = match postgres {
        None => (Node::start(config.clone()).await?, None),
        Some(pg) => {
            let start = Node::start_with_store(config.clone(), pg.store);
            let node = match &pg.leader {
                // A leadership lost while the node starts (a slow chain RPC) ends the start.
                Some(leader) => tokio::select! {
                    node = start => node?,
                    reason = leader.lost() => {
                        return Err(eyre!("this instance lost the leadership while starting ({reason}): it steps down"));
                    }
                },
                None => start.await?,
            };
            (node, pg.leader)
        }
    };
    let token = farthing_rpc::ensure_token(&config.data_dir)?;
    // The admin token, and agents' credentials the node's root key (cred.key) verifies.
    let (addr, server) = farthing_rpc::start_with(
        &config.rpc,
        &token,
        Some(node.authority()),
        RpcHandler::new(node.clone()).into_rpc(),
    )
    .await?;
    let peers = node
        .listen_peers(config.peer.listen)
        .await
        .wrap_err_with(|| format!("cannot listen for peers on {}", config.peer.listen))?;
    // Several entries for one partner are its addresses (a node run as a leader and
    // standbys), dialled in turn.
    let mut partners: Vec<Vec<farthing_peer::PeerAddr>> = Vec::new();
    for entry in &config.peer.connect {
        let peer: farthing_peer::PeerAddr = entry.parse()?;
        match partners.iter_mut().find(|p| p[0].address == peer.address) {
            Some(addrs) => addrs.push(peer),
            None => partners.push(vec![peer]),
        }
    }
    for addrs in partners {
        node.keep_linked_at(addrs);
    }
    if let Some(listen) = config.metrics.listen {
        let bound = node
            .serve_metrics(listen)
            .await
            .wrap_err_with(|| format!("cannot serve metrics on {listen}"))?;
        tracing::info!(metrics = %bound, "Prometheus metrics at http://{bound}/metrics");
    }
    tracing::info!(rpc = %addr, %peers, token_file = %farthing_rpc::token_path(&config.data_dir).display(), "listening");
    println!(
        "farthing node {} peers on {peers} listening on {addr}",
        node.address()
    );

    // A task the node cannot run without (the store guard) failing stops it too, non-zero;
    // so does the end of its leadership (it steps down: a standby took or takes over).
    let lost = async {
        match &leader {
            Some(leader) => leader.lost().await,
            None => std::future::pending().await,
        }
    };
    let fatal = tokio::select! {
        signal = &mut signalled => {
            signal.map_err(|e| eyre!("installing signal handlers: {e}"))?;
            None
        }
        reason = node.fatal() => Some(reason),
        reason = lost => Some(format!("this instance no longer leads ({reason}): it steps down")),
    };
    tracing::info!("shutting down");
    let _ = server.stop();
    server.stopped().await;
    node.shutdown().await;
    if let Some(leader) = leader
        && fatal.is_none()
    {
        // A clean stop hands over at once instead of after the lease.
        leader.resign().await;
    }
    match fatal {
        None => Ok(()),
        Some(reason) => Err(eyre!("the node stopped: {reason}")),
    }
}

async fn wait_for_signal() -> std::io::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    Ok(())
}

fn init_logging(filter: &str) -> Result<()> {
    use tracing_subscriber::Layer as _;
    use tracing_subscriber::filter::FilterExt as _;
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .map_err(|e| eyre!("log_level {filter:?} is not a valid filter: {e}"))?;
    // Colours only for a person at a terminal: a log file or a journal gets plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    // jsonrpsee logs whole requests and responses at trace level: a response to
    // farthing_createCredential carries a new credential, which must never reach a log.
    let no_bodies = tracing_subscriber::filter::filter_fn(|meta| {
        !(*meta.level() == tracing::Level::TRACE && meta.target().starts_with("jsonrpsee"))
    });
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_ansi(ansi)
                .with_writer(std::io::stderr)
                .with_filter(filter.and(no_bodies)),
        )
        .init();
    Ok(())
}
