//! `farthing`: the Farthing payment-channel node's command line.
//!
//! Today it checks a deployment against a chain; the daemon (`farthing node`) and the agent
//! commands arrive with the node issues. The binary stays thin: it parses arguments, sets up
//! logging, and calls the library crates.

use std::path::PathBuf;
use std::process::ExitCode;

use alloy::providers::ProviderBuilder;
use clap::{Parser, Subcommand};
use farthing_chain::Deployment;

/// Farthing: a stablecoin payment-channel node.
#[derive(Debug, Parser)]
#[command(name = "farthing", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check that the chain at RPC_URL holds the contracts a deployment file describes.
    Check {
        /// Deployment file written by scripts/deploy.sh.
        #[arg(long, default_value = ".devnet/deployment.json")]
        deployment: PathBuf,
        /// Chain RPC URL (HTTP).
        #[arg(long, default_value = "http://127.0.0.1:8545")]
        rpc_url: String,
    },
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> eyre::Result<()> {
    match cli.command {
        Command::Check {
            deployment,
            rpc_url,
        } => {
            let deployment = Deployment::load(&deployment)?;
            let url = rpc_url
                .parse()
                .map_err(|e| eyre::eyre!("--rpc-url {rpc_url:?} is not a URL: {e}"))?;
            let provider = ProviderBuilder::new().connect_http(url);
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
    }
}
