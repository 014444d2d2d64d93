//! `farthing`: the Farthing payment-channel node's command line.
//!
//! `farthing node` runs the daemon; every other command talks to a running node over its
//! JSON-RPC (the bearer token is read from the data directory, or an agent's credential from
//! `--credential-file`). The binary stays thin: it parses arguments, sets up logging and
//! calls the library crates.

use std::path::PathBuf;
use std::process::ExitCode;

use alloy::primitives::Address;
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use eyre::{Result, eyre};
use farthing_chain::Deployment;
use farthing_rpc::{ChannelView, FarthingApiClient, OpenParams, PayParams};
use serde::Serialize;

mod bench;
mod cluster;
mod credential;
mod daemon;
mod fetch;
mod gateway;
mod mcp;
mod payments;
mod peers;
mod report;
mod stream;

/// Farthing: a stablecoin payment-channel node.
#[derive(Debug, Parser)]
#[command(name = "farthing", version, about, long_about = None)]
struct Cli {
    /// The node's data directory (RPC token, database, farthing.toml).
    #[arg(
        long,
        global = true,
        env = "FARTHING_DATA_DIR",
        default_value = ".farthing"
    )]
    data_dir: PathBuf,
    /// Print results as JSON (for scripts).
    #[arg(long, global = true)]
    json: bool,
    /// URL of the node's RPC (client commands).
    #[arg(long, global = true, default_value = "http://127.0.0.1:7750")]
    node_url: String,
    /// Call the node with the agent credential in this file (mode 0600), not rpc.token
    /// (client commands, mcp, gateway). The variable holds the file's path, not the token.
    #[arg(
        long,
        global = true,
        env = "FARTHING_CREDENTIAL_FILE",
        value_name = "FILE"
    )]
    credential_file: Option<PathBuf>,
    /// Async worker threads (default: one per core). Fewer when several busy processes share
    /// the machine (two nodes on one host, say): fewer threads competing for the cores means
    /// less waiting to be scheduled on the payment path.
    #[arg(long, global = true, env = "FARTHING_WORKERS", value_parser = clap::value_parser!(u16).range(1..))]
    workers: Option<u16>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the node daemon until SIGINT or SIGTERM.
    Node(Box<daemon::NodeArgs>),
    /// The node's address, chain, contracts, sync height and health.
    Info,
    /// Channels: open, list, get, top-up, close, settle.
    #[command(subcommand)]
    Channel(ChannelCommand),
    /// Pay AMOUNT (token units) on a channel, given by its id or by the partner's address (its
    /// open channel with us); returns once the partner acknowledged it. With --count N: N
    /// payments of AMOUNT, several in flight, with a live progress line.
    Pay {
        /// Channel id, or the partner's 0xADDRESS.
        channel: PayTarget,
        /// Amount in token units, e.g. 0.001.
        amount: String,
        /// Pay once per key: repeating the command with the same key does not pay twice
        /// (with --count, payment i uses KEY-i).
        #[arg(long)]
        idempotency_key: Option<String>,
        /// Free text for the partner (not signed, ≤ 256 bytes).
        #[arg(long)]
        memo: Option<String>,
        /// How many payments of AMOUNT to make.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
        count: u64,
        /// With --count: how many payments are in flight at once.
        #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u64).range(1..=1024))]
        concurrency: u64,
    },
    /// The node's payment log (kept across restarts), oldest first: the newest LIMIT entries,
    /// or with --after SEQ the entries after that seq; with --follow, then every new payment as
    /// it becomes durable (resumed without a gap).
    Payments {
        /// Only this channel's payments.
        channel: Option<u64>,
        /// How many (at most 1000).
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=1000))]
        limit: u32,
        /// The entries after this seq (0: from the oldest kept).
        #[arg(long)]
        after: Option<u64>,
        /// Then stream new payments (over a WebSocket) until interrupted.
        #[arg(long)]
        follow: bool,
    },
    /// Link to a partner node (0xADDRESS@host:port); the node keeps the link up.
    Connect {
        /// The partner, as 0xADDRESS@host:port.
        peer: String,
    },
    /// The node's peers: linked, kept (redialled), or sharing a channel; the last dial error.
    Peers,
    /// Drop the link to 0xPARTNER and stop redialling it (its node may still dial in).
    Disconnect {
        /// The partner's address.
        peer: Address,
        /// Also forget its dial address (for this run: one from the config's peer.connect is
        /// dialled again at the next start).
        #[arg(long)]
        forget: bool,
    },
    /// Fetch a URL, paying for it over a channel when it answers 402 (within --max-price);
    /// opens a channel to a new seller when its 402 says how.
    Fetch(fetch::FetchArgs),
    /// Run an HTTP 402 gateway in front of a seller's API: priced routes answer 402 (x402 v2
    /// and MPP) until paid — over a channel to this node, or by EIP-3009 — then are proxied.
    Gateway(gateway::GatewayArgs),
    /// Token, gas, in-channel and claimable balances.
    Balances,
    /// Claim payouts a token refused at settle time.
    Claim,
    /// Serve the node to an AI agent over MCP (stdio): fetch paid URLs within a price limit,
    /// balances, channels, open, pay, close; within --credential-file's limits if given.
    Mcp,
    /// Agents' credentials: create (scopes, budgets, expiry), list, show, revoke, and derive a
    /// narrower one offline.
    #[command(subcommand)]
    Credential(credential::CredentialCommand),
    /// Measure the node: its own anvil, contracts and two node processes; payments streamed
    /// both ways through the RPC; rate, latencies, fsyncs and CPU per payment, the crypto
    /// ceiling, restart time, bytes per payment, and an exact on-chain close. --json for one
    /// JSON object on stdout (progress on stderr).
    Bench(bench::BenchArgs),
    /// Check that the chain at RPC_URL holds the contracts a deployment file describes.
    Check {
        /// Deployment file written by scripts/deploy.sh.
        #[arg(long, default_value = ".devnet/deployment.json")]
        deployment: PathBuf,
        /// Chain RPC URL (http(s):// or ws(s)://).
        #[arg(long, default_value = "http://127.0.0.1:8545")]
        rpc_url: String,
        /// PEM file of a CA trusted for an https:// or wss:// RPC on top of the system's roots.
        #[arg(long)]
        ca_file: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
enum ChannelCommand {
    /// Open a channel to PARTNER funded with AMOUNT (token units, e.g. 12.5).
    Open {
        /// The partner's address.
        partner: Address,
        /// Deposit in token units.
        amount: String,
        /// Challenge period in seconds (default: the node's channels.default_challenge_period).
        #[arg(long)]
        challenge_period: Option<u32>,
    },
    /// The node's channels, as a table.
    List,
    /// One channel.
    Get {
        /// Channel id.
        id: u64,
    },
    /// Add AMOUNT (token units) to our deposit.
    TopUp {
        /// Channel id.
        id: u64,
        /// Amount in token units.
        amount: String,
    },
    /// Take AMOUNT (token units) of our balance out of an open channel, co-signed by the
    /// partner's node over the link; one transaction.
    Withdraw {
        /// Channel id.
        id: u64,
        /// Amount in token units.
        amount: String,
    },
    /// Close: cooperatively over the link (one transaction, paid at once), or unilaterally
    /// with the partner's latest proof if the partner's node does not answer.
    Close {
        /// Channel id.
        id: u64,
    },
    /// Pay out a closed channel after its challenge period.
    Settle {
        /// Channel id.
        id: u64,
    },
}

fn main() -> ExitCode {
    // Before any HTTP client is built (the chain RPC's, the buyer's, the devnet's).
    farthing_chain::rpc::install_crypto_provider();
    let cli = match Cli::from_arg_matches(&command().get_matches()) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(workers) = cli.workers {
        builder.worker_threads(usize::from(workers));
    }
    let runtime = match builder.enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let json = cli.json;
    let credential = cli.credential_file.clone();
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            report::report(&err, json, credential.as_deref());
            ExitCode::FAILURE
        }
    }
}

/// The command line: [`Cli`], with `farthing node`'s help showing what each flag defaults to
/// (the config file's value, else the built-in default) and not listing the client-only
/// flags (`--json`, `--node-url`, `--credential-file`), which mean nothing to the daemon.
fn command() -> clap::Command {
    Cli::command().mut_subcommand("node", |node| {
        // A subcommand's own argument of a global's name keeps the global out of it.
        let hidden = |id: &'static str, long: &'static str| {
            clap::Arg::new(id)
                .long(long)
                .hide(true)
                .num_args(0..=1)
                .help("(client commands only)")
        };
        daemon::NodeArgs::describe_defaults(node)
            .arg(hidden("json", "json"))
            .arg(hidden("node_url", "node-url"))
            .arg(hidden("credential_file", "credential-file"))
    })
}

async fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Node(args) => daemon::run_node(&cli.data_dir, *args).await,
        Command::Bench(args) => bench::run(args, cli.json).await,
        Command::Mcp => {
            let token = credential::bearer(cli.credential_file.as_deref(), &cli.data_dir)?;
            mcp::run(&token, cli.credential_file.is_some(), &cli.node_url).await
        }
        Command::Credential(command) => {
            let bearer = || credential::bearer(cli.credential_file.as_deref(), &cli.data_dir);
            credential::run(command, &cli.node_url, bearer, cli.json).await
        }
        Command::Check {
            deployment,
            rpc_url,
            ca_file,
        } => {
            let deployment = Deployment::load(&deployment)?;
            let options = farthing_chain::rpc::RpcOptions {
                ca_file,
                ..Default::default()
            };
            let provider = farthing_chain::rpc::connect_any(&rpc_url, &options).await?;
            // Asked first, on its own: a refused certificate or a dead RPC in one line.
            farthing_chain::rpc::chain_id(&provider, &rpc_url)
                .await
                .map_err(|line| eyre!(line))?;
            let check = deployment.check(&provider).await?;
            println!(
                "chain {} at block {}: ChannelManager {} ({} channels), token {} {}",
                check.chain_id,
                check.block_number,
                deployment.channel_manager,
                check.channel_count,
                check.token_symbol,
                deployment.token,
            );
            Ok(())
        }
        Command::Gateway(args) => {
            let credential = cli.credential_file.as_deref();
            gateway::run(args, &cli.node_url, &cli.data_dir, credential).await
        }
        command => {
            let token = credential::bearer(cli.credential_file.as_deref(), &cli.data_dir)?;
            let client = farthing_rpc::connect_http(&cli.node_url, &token)?;
            let json = cli.json;
            match command {
                Command::Fetch(args) => fetch::run(client, args, json).await,
                Command::Info => {
                    let info = client.info().await?;
                    output(json, &info, || {
                        format!(
                            "node {}\nstore {}\nchain {} · ChannelManager {} · token {} {}\nsynced block {} of {} · health {}{}\npeer links {} up · {} kept, {} of them down (farthing peers){}",
                            info.address,
                            info.store,
                            info.chain_id,
                            info.channel_manager,
                            info.token_symbol,
                            info.token,
                            info.synced_block,
                            info.chain_head,
                            serde_json::to_value(info.health.status)
                                .unwrap_or_default()
                                .as_str()
                                .unwrap_or("?"),
                            if info.health.reasons.is_empty() {
                                String::new()
                            } else {
                                format!(" ({})", info.health.reasons.join("; "))
                            },
                            info.links.up,
                            info.links.kept,
                            info.links.down,
                            info.health
                                .warnings
                                .iter()
                                .map(|w| format!("\nwarning: {w}"))
                                .collect::<String>()
                        )
                    })
                }
                Command::Balances => {
                    let b = client.balances().await?;
                    output(json, &b, || {
                        format!(
                            "token {}\nin channels {}\nclaimable {}\ngas {} ETH",
                            b.token, b.in_channels, b.claimable, b.gas
                        )
                    })
                }
                Command::Pay {
                    channel,
                    amount,
                    idempotency_key,
                    memo,
                    count,
                    concurrency,
                } if count > 1 => {
                    let ws_url = cli.node_url.replacen("http", "ws", 1);
                    let ws = farthing_rpc::connect_ws(&ws_url, &token).await?;
                    let summary = stream::run(
                        std::sync::Arc::new(ws),
                        stream::Stream {
                            target: channel,
                            amount,
                            count,
                            concurrency,
                            idempotency_key,
                            memo,
                            rate: None,
                            until: None,
                            quiet: false,
                        },
                    )
                    .await?;
                    output(json, &summary, || summary.to_string())
                }
                Command::Pay {
                    channel,
                    amount,
                    idempotency_key,
                    memo,
                    ..
                } => {
                    let paid = PayParams {
                        channel_id: channel.id(),
                        partner: channel.partner(),
                        amount,
                        idempotency_key,
                        memo,
                    }
                    .call(&client)
                    .await?;
                    output(json, &paid, || {
                        format!(
                            "{} {} on channel {} (proof nonce {}); we can still pay {}, the partner {}",
                            if paid.repeated {
                                "already paid"
                            } else {
                                "paid"
                            },
                            paid.amount,
                            paid.channel_id,
                            paid.nonce,
                            paid.balance_ours,
                            paid.balance_partner
                        )
                    })
                }
                Command::Payments {
                    channel,
                    limit,
                    after,
                    follow,
                } => {
                    let ws_url = cli.node_url.replacen("http", "ws", 1);
                    let listing = payments::Listing {
                        channel,
                        limit,
                        after,
                        follow,
                    };
                    payments::run(&client, &ws_url, &token, json, listing).await
                }
                Command::Connect { peer } => {
                    client.connect_peer(peer.clone()).await?;
                    output(json, &true, || format!("linking to {peer}"))
                }
                Command::Peers => {
                    let peers = client.list_peers().await?;
                    output(json, &peers, || peers::table(&peers))
                }
                Command::Disconnect { peer, forget } => {
                    let done = client.disconnect_peer(peer, Some(forget)).await?;
                    output(json, &done, || {
                        if !done.was_linked && !done.was_kept && !done.forgotten {
                            format!("{peer}: not linked and not kept; nothing to do")
                        } else {
                            format!(
                                "{peer}: {}{}{}",
                                if done.was_linked {
                                    "link dropped; "
                                } else {
                                    ""
                                },
                                if done.was_kept {
                                    "no longer redialled"
                                } else {
                                    "was not redialled"
                                },
                                if done.forgotten {
                                    "; its address is forgotten"
                                } else {
                                    ""
                                }
                            )
                        }
                    })
                }
                Command::Claim => {
                    let c = client.claim().await?;
                    output(json, &c, || format!("claimed {}", c.claimed))
                }
                Command::Channel(cmd) => {
                    let view = match cmd {
                        ChannelCommand::List => {
                            let channels = client.list_channels().await?;
                            return output(json, &channels, || table(&channels));
                        }
                        ChannelCommand::Open {
                            partner,
                            amount,
                            challenge_period,
                        } => {
                            OpenParams {
                                partner,
                                amount,
                                challenge_period,
                            }
                            .call(&client)
                            .await?
                        }
                        ChannelCommand::Get { id } => client.get_channel(id).await?,
                        ChannelCommand::TopUp { id, amount } => client.top_up(id, amount).await?,
                        ChannelCommand::Withdraw { id, amount } => {
                            client.withdraw(id, amount).await?
                        }
                        ChannelCommand::Close { id } => client.close_channel(id).await?,
                        ChannelCommand::Settle { id } => client.settle(id).await?,
                    };
                    output(json, &view, || table(std::slice::from_ref(&view)))
                }
                Command::Node(_)
                | Command::Check { .. }
                | Command::Bench(_)
                | Command::Gateway(_)
                | Command::Credential(_)
                | Command::Mcp => unreachable_command(),
            }
        }
    }
}

/// Whom `farthing pay` pays: a channel id, or a partner's address.
#[derive(Debug, Clone, Copy)]
enum PayTarget {
    Channel(u64),
    Partner(Address),
}

impl PayTarget {
    fn id(self) -> Option<u64> {
        match self {
            Self::Channel(id) => Some(id),
            Self::Partner(_) => None,
        }
    }

    fn partner(self) -> Option<Address> {
        match self {
            Self::Channel(_) => None,
            Self::Partner(address) => Some(address),
        }
    }
}

impl std::str::FromStr for PayTarget {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        if s.starts_with("0x") {
            s.parse()
                .map(Self::Partner)
                .map_err(|e| format!("{s:?} is not an address: {e}"))
        } else {
            s.parse()
                .map(Self::Channel)
                .map_err(|_| format!("{s:?} is neither a channel id nor a partner's 0xADDRESS"))
        }
    }
}

fn unreachable_command() -> Result<()> {
    Err(eyre!("internal: command dispatched twice"))
}

fn output<T: Serialize>(json: bool, value: &T, human: impl FnOnce() -> String) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(value)?);
    } else {
        println!("{}", human());
    }
    Ok(())
}

fn table(channels: &[ChannelView]) -> String {
    let mut out = format!(
        "{:>4}  {:<8} {:<4} {:<42} {:>14} {:>14}  {}",
        "id", "state", "role", "partner", "ours", "partner's", "settle after"
    );
    for c in channels {
        out.push_str(&format!(
            "\n{:>4}  {:<8} {:<4} {:<42} {:>14} {:>14}  {}",
            c.id,
            c.state.as_str(),
            format!("{:?}", c.role),
            c.partner.to_string(),
            c.balance_ours,
            c.balance_partner,
            c.settle_after
                .map(|t| t.to_string())
                .unwrap_or_else(|| "-".into())
        ));
    }
    if channels.is_empty() {
        out.push_str("\n(no channels)");
    }
    out
}
