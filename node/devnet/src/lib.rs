//! A local Farthing devnet, shared by the end-to-end tests (`tests/`, farthing-e2e) and
//! `farthing bench`: one harness, so what the tests check and what the benchmark measures run
//! on the same set-up.
//!
//! - [`Devnet`]: a real anvil on a free port (port 0: the OS picks, so any number run side by
//!   side), configured from `anvil-config/devnet.env` (compiled in, see [`DevnetParams`]);
//!   the contracts deployed through the bindings generated from the forge artifacts
//!   ([`Devnet::deploy`]), tokens minted and ether given ([`Devnet::mint`],
//!   [`Devnet::fund_ether`]), the chain's clock moved ([`Devnet::advance_time`]);
//! - [`NodeProcess`]: a real `farthing node` as a child process with its data directory,
//!   started on free ports ([`NodeCommand`]) and stopped cleanly or killed.
//!
//! Every process started here is killed when its handle is dropped, so a failing test or
//! benchmark leaves nothing running.
//!
//! This crate must never be linked into the node itself, talk to a chain it did not start, or
//! use its keys anywhere but on that chain: it holds the devnet's public test keys.

mod anvil;
mod node;
mod params;

use std::path::PathBuf;

pub use anvil::{Devnet, DevnetOptions};
pub use node::{KillAll, NodeCommand, NodeProcess};
pub use params::DevnetParams;

/// One USDC in base units (6 decimals).
pub const USDC: u64 = 1_000_000;

/// How long the harness waits for what must happen (anvil printing its address, answering
/// RPC) before it fails. A deadline against hangs, not a timing goal: a loaded 2-core machine
/// running every test at once is slow.
pub const PATIENCE: std::time::Duration = std::time::Duration::from_secs(60);

/// What went wrong bringing up or driving the devnet.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The anvil binary is not there: install the toolchain.
    #[error("{0} is missing: run scripts/setup.sh (or set FARTHING_ANVIL to an anvil binary)")]
    AnvilMissing(PathBuf),
    /// A child process could not be started, signalled or waited for.
    #[error("{what}: {source}")]
    Process {
        /// What was being done.
        what: String,
        /// The operating system's answer.
        #[source]
        source: std::io::Error,
    },
    /// anvil exited, or did not print its listening address within [`PATIENCE`].
    #[error("anvil did not report its listening address within {} s", PATIENCE.as_secs())]
    AnvilSilent,
    /// A node exited or printed something else instead of its addresses.
    #[error("node of account {account} did not start (it printed {line:?}): {log}")]
    NodeDidNotStart {
        /// The devnet account the node ran as.
        account: u32,
        /// Its first line of output.
        line: String,
        /// Where to look: its log file, or this process's stderr.
        log: String,
    },
    /// `anvil-config/devnet.env` lacks a key or holds a bad value (a rebuild picks up fixes).
    #[error("anvil-config/devnet.env: {0}")]
    Params(String),
    /// The chain failed or refused a request.
    #[error("{what}: {message}")]
    Chain {
        /// The request.
        what: String,
        /// The chain's (or the transport's) answer.
        message: String,
    },
    /// A transaction was mined but reverted.
    #[error("{0} reverted")]
    Reverted(String),
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An [`Error::Chain`] for `what`, from any error the chain's client returns.
pub(crate) fn chain_error<E: std::fmt::Display>(what: &str) -> impl FnOnce(E) -> Error + '_ {
    move |e| Error::Chain {
        what: what.to_owned(),
        message: e.to_string(),
    }
}
