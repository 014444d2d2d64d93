//! The crate's one error type, named by what the caller must do.

/// Why a cluster call failed, and what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// The election's configuration is unusable: fix it; retrying cannot help.
    #[error("cluster configuration: {0}")]
    Config(String),
    /// etcd did not answer in time or refused the request: check that etcd runs and is
    /// reachable, then retry.
    #[error(
        "etcd at {endpoints} did not answer ({detail}); check that etcd is running and \
         reachable from this host, then retry"
    )]
    Unavailable {
        /// The endpoints that were asked, comma-separated.
        endpoints: String,
        /// What the client reported.
        detail: String,
    },
}
