//! The node's configuration.
//!
//! One TOML file (`farthing.toml` in the data directory unless `--config` says otherwise);
//! every field has a default that works on the local devnet, and command-line flags override
//! the file. Secrets never live here: a keystore password comes from a file or from the
//! `FARTHING_KEY_PASSWORD` environment variable.
//!
//! | key | default | meaning |
//! |---|---|---|
//! | `data_dir` | `.farthing` | RocksDB, the RPC token file, the config file |
//! | `log_level` | `info` | `error`, `warn`, `info`, `debug`, `trace` or a tracing filter |
//! | `chain.rpc_url` | `http://127.0.0.1:8545` | the chain's JSON-RPC endpoint: `http://`, `https://`, `ws://` or `wss://` (one WebSocket, reopened when it drops; the watcher polls over it as over HTTP); plain `http://`/`ws://` to a host other than this machine is warned about at start |
//! | `chain.ca_file` | none | a PEM file of CA certificates trusted for an `https://` or `wss://` RPC on top of the system's roots (a private CA); `--ca-file` sets it |
//! | `chain.rpc_timeout_secs` | `10` | one RPC request longer than this fails (HTTP 429/503 are retried 10 times, 0.5 s apart or as `Retry-After` says, before a call fails) |
//! | `chain.chain_id` | `31337` | refused at start-up if the RPC serves another chain |
//! | `chain.deployment` | `.devnet/deployment.json` | the file `scripts/deploy.sh` writes |
//! | `chain.token` | none | the token the node must use (e.g. Circle's USDC); refused at start-up if the deployment file names another |
//! | `chain.confirmations` | `1` | blocks an event needs on top of it before the node applies it |
//! | `chain.poll_interval_ms` | `500` | how often the watcher asks for new blocks |
//! | `chain.max_fee_per_gas_gwei` | none (no cap) | the most the node offers per gas, in gwei (decimals allowed: `0.5`); a higher estimate is cut to it (logged), an urgent transaction's fee raises stop at it, and while the chain's base fee is above it nothing is sent (the operation fails saying so) |
//! | `key` | none: required | one of `keystore` (+ `password_file`), `raw_key_file`, `dev_account` (a public devnet key: refused on any chain but a devnet's); `--dev N`, `--key-file`, `--keystore` set it |
//! | `rpc.listen` | `127.0.0.1:7750` | JSON-RPC over HTTP and WebSocket for agents and operators |
//! | `rpc.max_ws_connections` | `32` | WebSocket connections open at once; more get HTTP 429 (HTTP calls are not affected) |
//! | `rpc.max_ws_connections_per_source` | `8` | WebSocket connections open at once from one address |
//! | `rpc.max_http_requests` | `32` | HTTP requests served at once, however many WebSockets are open |
//! | `rpc.max_http_requests_per_source` | `16` | HTTP requests served at once for one address |
//! | `rpc.max_subscriptions` | `256` | subscriptions over all connections; more get error 1015 |
//! | `rpc.max_subscriptions_per_connection` | `16` | subscriptions on one WebSocket connection |
//! | `rpc.max_request_bytes` | `65536` | larger requests are refused |
//! | `rpc.max_response_bytes` | `10485760` | a larger response is replaced by an error |
//! | `rpc.max_open_connections` | `256` | TCP connections open at once (WebSockets included); past it a new one is closed at once; at least `max_ws_connections` + `max_http_requests` |
//! | `rpc.max_open_connections_per_source` | `64` | TCP connections open at once from one address; at least `max_ws_connections_per_source` + `max_http_requests_per_source` |
//! | `rpc.idle_timeout_secs` | `30` | a connection that sends no request for this long is closed (not a WebSocket, not one being answered) |
//! | `peer.listen` | `127.0.0.1:7751` | where partner nodes connect |
//! | `peer.connect` | `[]` | partners to keep a link to, `0xADDRESS@host:port` (redialled with backoff to 5 min; `farthing_disconnectPeer` stops one until the next start); several entries with one address are that partner's addresses (a node run as a leader and standbys), dialled in turn |
//! | `peer.max_strangers` | `16` | links at once from strangers — peers that share no channel with this node and are not in `peer.connect` / `connectPeer`; past it a new one is closed right after its handshake |
//! | `peer.stranger_timeout_secs` | `120` | a stranger's link still sharing no channel after this long is closed (a partner whose channel opening this node has not applied yet is a stranger until it does) |
//! | `channels.default_challenge_period` | `3600` | seconds, for channels opened without one |
//! | `watchtower.margin_secs` | `600` | a partner's stale close still unanswered this close to its deadline raises a warning |
//! | `watchtower.max_lag_blocks` | `64` | the node reports itself degraded when its watcher is further behind the chain head |
//! | `watchtower.act` | `true` | send the watchtower's transactions (challenge, settle, claim); `false` only warns (tests that drive these steps themselves) |
//! | `metrics.listen` | none | serve Prometheus metrics (`GET /metrics`) on this address |
//! | `store.*`, `cluster.*` | RocksDB, no election | see [`cluster`]: PostgreSQL, and instances that take over from each other |
//! | `history.keep_payments` | `1000000` | payment-log entries kept (the newest; at least 1): older ones are pruned in the background, within seconds |

pub mod cluster;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Everything the node needs to run. See the module docs for the defaults.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Where the node keeps its database, RPC token and config file.
    pub data_dir: PathBuf,
    /// Log filter (`info`, `debug`, or a `tracing` env-filter string).
    pub log_level: String,
    /// The chain and the contracts.
    pub chain: ChainConfig,
    /// Where the node's key comes from. None is an error at start: a node never falls back to
    /// a public devnet key.
    pub key: Option<KeySource>,
    /// The agents' and operators' JSON-RPC.
    pub rpc: RpcConfig,
    /// The link to partner nodes.
    pub peer: PeerConfig,
    /// Channel policy.
    pub channels: ChannelConfig,
    /// The built-in watchtower.
    pub watchtower: WatchtowerConfig,
    /// The Prometheus endpoint.
    pub metrics: MetricsConfig,
    /// The payment log.
    pub history: HistoryConfig,
    /// `farthing_fetch`: paying for HTTP requests.
    pub buyer: BuyerConfig,
    /// Where the state is kept.
    pub store: cluster::StoreConfig,
    /// Leader election among instances of this node.
    pub cluster: cluster::ClusterConfig,
    /// `[gateway]`: read by `farthing gateway` (the 402 gateway in front of a seller's API);
    /// the node itself ignores it.
    #[serde(skip_serializing)]
    pub gateway: GatewaySection,
}

/// The `[gateway]` table, skipped by the node (`farthing gateway` reads it).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GatewaySection;

impl<'de> Deserialize<'de> for GatewaySection {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        serde::de::IgnoredAny::deserialize(d).map(|_| Self)
    }
}

/// `farthing_fetch`: how the node pays for priced URLs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BuyerConfig {
    /// The deposit (token units) of a channel opened to a seller the node has none with, when
    /// the call gives none (the 402's suggestion is used if it is lower).
    pub deposit: String,
    /// The most (token units) ever locked in open channels to one seller the node opened them
    /// to for `farthing_fetch`, whatever a call or a 402 asks: an agent cannot lock more than
    /// this with a stranger.
    pub max_deposit: String,
    /// How long one HTTP exchange may take, in seconds.
    pub timeout_secs: u64,
    /// The longest response body kept, in bytes (a longer one is cut and says so).
    pub max_body: usize,
    /// Whether a fetch may reach loopback, private and link-local addresses (the operator's own
    /// network). Unset: only on a local devnet (chain 31337 or 1337).
    pub allow_private: Option<bool>,
}

impl Default for BuyerConfig {
    fn default() -> Self {
        Self {
            deposit: "5".into(),
            max_deposit: "50".into(),
            // Longer than a gateway's default upstream timeout (30 s), so that its refund
            // answer arrives.
            timeout_secs: 60,
            max_body: 4 << 20,
            allow_private: None,
        }
    }
}

/// The payment log: every payment made or received, numbered, kept on disk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HistoryConfig {
    /// How many entries to keep (the newest): older ones are pruned in the background. At
    /// least 1 (the numbering continues from the newest entry kept); every payment is logged
    /// in the same synced write as its proof whatever this says.
    pub keep_payments: u64,
}

impl Default for HistoryConfig {
    fn default() -> Self {
        Self {
            keep_payments: 1_000_000,
        }
    }
}

/// The Prometheus endpoint.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    /// Serve `GET /metrics` here (none: off). Unauthenticated: keep it on loopback or behind a
    /// firewall.
    pub listen: Option<SocketAddr>,
}

/// The built-in watchtower: it answers a partner's stale close with our newer proof, settles
/// when the challenge period is over and claims deferred payouts, with no operator action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WatchtowerConfig {
    /// A stale close still unanswered this many seconds before its deadline is a warning.
    pub margin_secs: u64,
    /// More blocks than this between the chain head and the watcher: degraded.
    pub max_lag_blocks: u64,
    /// Send the watchtower's transactions (challenge, settle, claim). `false`: it only warns
    /// (for tests that drive those steps themselves and must see exact outcomes).
    pub act: bool,
}

impl Default for WatchtowerConfig {
    fn default() -> Self {
        Self {
            margin_secs: 600,
            max_lag_blocks: 64,
            act: true,
        }
    }
}

/// The chain and the contracts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ChainConfig {
    /// JSON-RPC URL of the chain.
    pub rpc_url: String,
    /// Expected chain id.
    pub chain_id: u64,
    /// Deployment file (chain id, contract addresses, deployment block).
    pub deployment: PathBuf,
    /// The token the deployment file must name (a profile pins Circle's USDC).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<alloy::primitives::Address>,
    /// Confirmations an event needs before the node applies it.
    pub confirmations: u64,
    /// Watcher polling interval in milliseconds.
    pub poll_interval_ms: u64,
    /// The most the node offers per gas (none: no cap).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_fee_per_gas_gwei: Option<Gwei>,
    /// CA certificates (PEM) trusted for an `https://` RPC on top of the system's roots.
    pub ca_file: Option<PathBuf>,
    /// The longest one RPC request may take, in seconds.
    pub rpc_timeout_secs: u64,
}

impl ChainConfig {
    /// How the node connects to the RPC.
    pub fn rpc_options(&self) -> farthing_chain::rpc::RpcOptions {
        farthing_chain::rpc::RpcOptions {
            ca_file: self.ca_file.clone(),
            timeout: std::time::Duration::from_secs(self.rpc_timeout_secs),
            ..Default::default()
        }
    }
}

/// An amount per gas written in gwei (`50`, `0.05`), held in wei.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gwei {
    /// Wei per gas.
    pub wei: u128,
}

impl Serialize for Gwei {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_f64(self.wei as f64 / 1e9)
    }
}

impl<'de> Deserialize<'de> for Gwei {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let gwei = f64::deserialize(deserializer)?;
        // At most 10^12 gwei (1,000 ether per gas): anything above is a typo.
        if !(gwei > 0.0 && gwei <= 1e12) {
            return Err(serde::de::Error::custom(format!(
                "{gwei} gwei is not a fee cap: give a positive number of gwei per gas, e.g. 50 or 0.05"
            )));
        }
        Ok(Self {
            wei: (gwei * 1e9).round() as u128,
        })
    }
}

/// Where the node's secp256k1 key comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum KeySource {
    /// An Ethereum JSON keystore; the password is read from `password_file`, or from the
    /// `FARTHING_KEY_PASSWORD` environment variable when no file is given.
    Keystore {
        /// The keystore file.
        path: PathBuf,
        /// A file holding the password (first line).
        password_file: Option<PathBuf>,
    },
    /// A file holding the key as 64 hex digits; it must not be readable by group or others.
    RawKeyFile(PathBuf),
    /// Account N of the devnet's public test mnemonic (`--dev`): devnets only.
    DevAccount(u32),
}

/// The agents' and operators' JSON-RPC: the RPC server's own settings (its doc table).
pub type RpcConfig = farthing_rpc::RpcServerConfig;

/// The link to partner nodes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PeerConfig {
    /// Listen address for partner nodes.
    pub listen: SocketAddr,
    /// Partner nodes to keep a link to, as `0xADDRESS@host:port`.
    pub connect: Vec<String>,
    /// Links at once from peers that share no channel with this node and that it does not
    /// keep a link to (strangers); more are closed right after the handshake.
    pub max_strangers: usize,
    /// A stranger's link that still shares no channel after this many seconds is closed.
    pub stranger_timeout_secs: u64,
}

/// Channel policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ChannelConfig {
    /// Challenge period for channels opened without one, in seconds.
    pub default_challenge_period: u32,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from(".farthing"),
            log_level: "info".into(),
            chain: ChainConfig::default(),
            key: None,
            rpc: RpcConfig::default(),
            peer: PeerConfig::default(),
            channels: ChannelConfig::default(),
            watchtower: WatchtowerConfig::default(),
            metrics: MetricsConfig::default(),
            history: HistoryConfig::default(),
            buyer: BuyerConfig::default(),
            store: cluster::StoreConfig::default(),
            cluster: cluster::ClusterConfig::default(),
            gateway: GatewaySection,
        }
    }
}

impl Default for ChainConfig {
    fn default() -> Self {
        Self {
            rpc_url: "http://127.0.0.1:8545".into(),
            chain_id: 31337,
            deployment: PathBuf::from(".devnet/deployment.json"),
            token: None,
            confirmations: 1,
            poll_interval_ms: 500,
            max_fee_per_gas_gwei: None,
            ca_file: None,
            rpc_timeout_secs: farthing_chain::rpc::DEFAULT_TIMEOUT.as_secs(),
        }
    }
}

impl Default for PeerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 7751)),
            connect: Vec::new(),
            max_strangers: 16,
            stranger_timeout_secs: 120,
        }
    }
}

impl Default for ChannelConfig {
    fn default() -> Self {
        Self {
            default_challenge_period: 3600,
        }
    }
}

/// Why the configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid TOML of the expected shape.
    #[error("config file {path}: {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong, with line and column.
        source: Box<toml::de::Error>,
    },
    /// A value is out of its range.
    #[error("config: {0}")]
    Invalid(String),
}

impl Config {
    /// Read a TOML config file; fields it leaves out keep their defaults.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::from_toml(&text).map_err(|e| match e {
            ConfigError::Parse { source, .. } => ConfigError::Parse {
                path: path.to_owned(),
                source,
            },
            other => other,
        })
    }

    /// Parse TOML text (see [`Config::from_file`]).
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        let config: Self = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: PathBuf::from("<text>"),
            source: Box::new(e),
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Check ranges that the types alone do not express.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !["http://", "https://", "ws://", "wss://"]
            .iter()
            .any(|scheme| self.chain.rpc_url.starts_with(scheme))
        {
            return Err(ConfigError::Invalid(format!(
                "chain.rpc_url {:?} must start with http://, https://, ws:// or wss://",
                self.chain.rpc_url
            )));
        }
        if self.chain.rpc_timeout_secs == 0 {
            return Err(ConfigError::Invalid(
                "chain.rpc_timeout_secs must be at least 1".into(),
            ));
        }
        if self.chain.poll_interval_ms == 0 {
            return Err(ConfigError::Invalid(
                "chain.poll_interval_ms must be at least 1".into(),
            ));
        }
        self.rpc.validate().map_err(ConfigError::Invalid)?;
        if self.history.keep_payments == 0 {
            return Err(ConfigError::Invalid(
                "history.keep_payments must be at least 1 (the log's numbering continues from \
                 the newest entry kept; 1 keeps only that one)"
                    .into(),
            ));
        }
        if self.channels.default_challenge_period == 0 {
            return Err(ConfigError::Invalid(
                "channels.default_challenge_period must be positive".into(),
            ));
        }
        self.store
            .validate(&self.cluster)
            .map_err(ConfigError::Invalid)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_file_is_the_devnet_default_without_a_key() {
        assert_eq!(Config::from_toml("").unwrap(), Config::default());
        assert_eq!(Config::default().key, None, "no key unless one is given");
        assert_eq!(
            Config::default().rpc.listen.ip().to_string(),
            "127.0.0.1",
            "R5: loopback by default"
        );
    }

    #[test]
    fn fields_override_defaults_and_keys_parse() {
        let config = Config::from_toml(
            r#"
            data_dir = "/var/lib/farthing"
            [chain]
            rpc_url = "https://rpc.example"
            confirmations = 3
            [key.keystore]
            path = "/etc/farthing/key.json"
            password_file = "/etc/farthing/password"
            [rpc]
            listen = "0.0.0.0:9000"
            "#,
        )
        .unwrap();
        assert_eq!(config.data_dir, PathBuf::from("/var/lib/farthing"));
        assert_eq!(config.chain.confirmations, 3);
        assert_eq!(
            config.chain.chain_id, 31337,
            "unset fields keep their default"
        );
        assert!(matches!(
            config.key,
            Some(KeySource::Keystore {
                password_file: Some(_),
                ..
            })
        ));
        assert_eq!(config.rpc.listen.port(), 9000);

        let raw = Config::from_toml("key = { raw_key_file = \"k.hex\" }").unwrap();
        assert_eq!(raw.key, Some(KeySource::RawKeyFile("k.hex".into())));
    }

    #[test]
    fn mistakes_are_named() {
        let typo = Config::from_toml("[chain]\nrpc_ulr = \"x\"")
            .unwrap_err()
            .to_string();
        assert!(typo.contains("rpc_ulr"), "{typo}");
        let scheme = Config::from_toml("[chain]\nrpc_url = \"127.0.0.1:8545\"")
            .unwrap_err()
            .to_string();
        assert!(scheme.contains("must start with http://"), "{scheme}");
        let ws = Config::from_toml("[chain]\nrpc_url = \"wss://rpc.example/v2/KEY\"").unwrap();
        assert_eq!(ws.chain.rpc_url, "wss://rpc.example/v2/KEY");
        let timeout = Config::from_toml("[chain]\nrpc_timeout_secs = 0")
            .unwrap_err()
            .to_string();
        assert!(
            timeout.contains("chain.rpc_timeout_secs must be at least 1"),
            "{timeout}"
        );
        let tls = Config::from_toml("[chain]\nrpc_url = \"https://rpc.example\"\nca_file = \"/etc/farthing/ca.pem\"\nrpc_timeout_secs = 3").unwrap();
        assert_eq!(
            tls.chain.rpc_options(),
            farthing_chain::rpc::RpcOptions {
                ca_file: Some("/etc/farthing/ca.pem".into()),
                timeout: std::time::Duration::from_secs(3),
                ..Default::default()
            }
        );
        let zero = Config::from_toml("[rpc]\nmax_ws_connections = 0")
            .unwrap_err()
            .to_string();
        assert!(zero.contains("rpc.max_ws_connections"), "{zero}");
        // The one shared limit of old is gone: its name is refused, the new ones are listed.
        let old = Config::from_toml("[rpc]\nmax_connections = 64")
            .unwrap_err()
            .to_string();
        assert!(old.contains("max_ws_connections"), "{old}");
        let keep = Config::from_toml("[history]\nkeep_payments = 0")
            .unwrap_err()
            .to_string();
        assert!(keep.contains("keep_payments must be at least 1"), "{keep}");
        let kept = Config::from_toml("[history]\nkeep_payments = 5000").unwrap();
        assert_eq!(kept.history.keep_payments, 5_000);
        for bad in ["0", "-1", "\"fast\""] {
            let cap = Config::from_toml(&format!("[chain]\nmax_fee_per_gas_gwei = {bad}"))
                .unwrap_err()
                .to_string();
            assert!(cap.contains("max_fee_per_gas_gwei"), "{bad}: {cap}");
        }
    }

    /// `config/*.toml`: the public networks' profiles the README documents.
    #[test]
    fn the_public_network_profiles_parse_and_validate() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config");
        let profile = |name: &str| Config::from_file(&dir.join(name)).unwrap();
        let usdc = |a: &str| Some(a.parse::<alloy::primitives::Address>().unwrap());
        let keystore = |path: &str| {
            Some(KeySource::Keystore {
                path: path.into(),
                password_file: None,
            })
        };
        let sepolia = profile("base-sepolia.toml");
        assert_eq!(sepolia.chain.chain_id, 84532);
        assert_eq!(
            sepolia.chain.token,
            usdc("0x036CbD53842c5426634e7929541eC2318f3dCF7e")
        );
        assert_eq!(sepolia.chain.rpc_url, "https://sepolia.base.org");
        assert_eq!(
            sepolia.chain.deployment,
            PathBuf::from("deployments/base-sepolia.json")
        );
        assert_eq!(sepolia.chain.confirmations, 5);
        assert_eq!(
            sepolia.chain.max_fee_per_gas_gwei,
            Some(Gwei { wei: 1_000_000_000 })
        );
        assert_eq!(sepolia.channels.default_challenge_period, 3_600);
        assert_eq!(sepolia.key, keystore("keys/base-sepolia.json"));

        let base = profile("base.toml");
        assert_eq!(base.chain.chain_id, 8453);
        assert_eq!(
            base.chain.token,
            usdc("0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913")
        );
        assert_eq!(base.chain.rpc_url, "https://mainnet.base.org");
        assert_eq!(
            base.chain.deployment,
            PathBuf::from("deployments/base.json")
        );
        assert_eq!(base.chain.confirmations, 30);
        assert_eq!(
            base.chain.max_fee_per_gas_gwei,
            Some(Gwei { wei: 2_000_000_000 })
        );
        assert_eq!(base.channels.default_challenge_period, 86_400);
        assert_eq!(base.key, keystore("keys/base.json"));
        for config in [&sepolia, &base] {
            // Within the bounds scripts/deploy.sh gives a ChannelManager by default (60 s to
            // 30 days), and the stale-close warning comes before the deadline.
            let period = config.channels.default_challenge_period;
            assert!((60..=2_592_000).contains(&period));
            assert!(config.watchtower.margin_secs < u64::from(period));
        }
    }

    #[test]
    fn the_fee_cap_is_read_in_gwei_and_held_in_wei() {
        for (text, wei) in [
            ("50", 50_000_000_000u128),
            ("0.05", 50_000_000),
            ("1.5", 1_500_000_000),
        ] {
            let config =
                Config::from_toml(&format!("[chain]\nmax_fee_per_gas_gwei = {text}")).unwrap();
            assert_eq!(
                config.chain.max_fee_per_gas_gwei,
                Some(Gwei { wei }),
                "{text}"
            );
        }
        assert_eq!(Config::default().chain.max_fee_per_gas_gwei, None);
    }
}
