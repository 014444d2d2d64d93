//! The gateway's settings: the `[gateway]` table of the node's TOML file (the node ignores
//! it), overridden by `farthing gateway`'s flags. Routes are priced in token units; a request
//! no route lists is refused (404), so that a route forgotten in the file is never served for
//! free by accident.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// `[gateway]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GatewayConfig {
    /// Where buyers connect.
    pub listen: SocketAddr,
    /// The seller's API (`http://host:port`), where paid and free requests go.
    pub upstream: String,
    /// The seller's node's RPC (`ws://…`): it is paid, redeems and collects.
    pub node_url: String,
    /// The node's data directory, for its RPC token.
    pub node_data_dir: PathBuf,
    /// A credential file (`fth1_…`, mode 0600) to call the node with instead of its RPC token
    /// (`farthing --credential-file`): it needs the `sell` scope (redeem, collect, refund a
    /// collection) and `pay` (a channel payment is refunded by paying it back, which counts
    /// against its budgets).
    pub node_credential_file: Option<PathBuf>,
    /// The seller's node's peer address (`0xADDRESS@host:port`), offered so that a buyer
    /// without a channel can link and open one.
    pub peer: Option<String>,
    /// The deposit suggested to such a buyer, token units.
    pub suggested_deposit: String,
    /// How long a 402's challenges stay valid, seconds.
    pub challenge_ttl_secs: u64,
    /// How long the upstream may take to answer, seconds; past it the buyer is refunded.
    pub upstream_timeout_secs: u64,
    /// The largest upstream answer passed on, bytes (answers are read whole before the buyer
    /// gets them, so that a cut one is refunded, not half-served).
    pub max_response_bytes: usize,
    /// The largest request body taken, bytes.
    pub max_request_bytes: usize,
    /// Buyers' connections served at once; more wait in the kernel's backlog.
    pub max_connections: usize,
    /// The file holding the key that binds challenge ids (created 0600 at the first start;
    /// kept so that challenges survive a restart). Relative paths are under the node's data
    /// directory.
    pub secret_file: PathBuf,
    /// Priced routes.
    pub routes: Vec<RouteConfig>,
    /// Free routes (proxied without payment).
    pub free: Vec<RouteConfig>,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8402)),
            upstream: "http://127.0.0.1:8080".into(),
            node_url: "ws://127.0.0.1:7750".into(),
            node_data_dir: PathBuf::from(".farthing"),
            node_credential_file: None,
            peer: None,
            suggested_deposit: "1".into(),
            challenge_ttl_secs: 300,
            upstream_timeout_secs: 30,
            max_response_bytes: 8 << 20,
            max_request_bytes: 1 << 20,
            max_connections: 4_096,
            secret_file: PathBuf::from("gateway.secret"),
            routes: Vec::new(),
            free: Vec::new(),
        }
    }
}

/// One route: a method (`GET`, or `*` for any) and a path, exact (`/data`) or a prefix
/// (`/articles/*`), with a price for priced routes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// `GET`, `POST`, … or `*`.
    #[serde(default = "any_method")]
    pub method: String,
    /// `/exact` or `/prefix/*`.
    pub path: String,
    /// Token units per request (priced routes only).
    #[serde(default)]
    pub price: Option<String>,
    /// What it sells, shown in the 402.
    #[serde(default)]
    pub description: Option<String>,
}

fn any_method() -> String {
    "*".into()
}

impl RouteConfig {
    /// A route from `METHOD /path=PRICE` (or `/path=PRICE`, any method), as the flag takes it.
    pub fn parse_priced(text: &str) -> Result<Self, String> {
        let (route, price) = text
            .rsplit_once('=')
            .ok_or_else(|| format!("{text:?}: a priced route is [METHOD ]/path=PRICE"))?;
        let mut route = Self::parse_free(route)?;
        route.price = Some(price.trim().to_owned());
        Ok(route)
    }

    /// A route from `METHOD /path` or `/path`.
    pub fn parse_free(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let (method, path) = match text.split_once(' ') {
            Some((method, path)) => (method.trim().to_ascii_uppercase(), path.trim()),
            None => ("*".to_owned(), text),
        };
        if !path.starts_with('/') {
            return Err(format!("{text:?}: the path must start with /"));
        }
        Ok(Self {
            method,
            path: path.to_owned(),
            price: None,
            description: None,
        })
    }

    /// Whether it takes `method` on `path`.
    pub fn matches(&self, method: &str, path: &str) -> bool {
        (self.method == "*" || self.method.eq_ignore_ascii_case(method))
            && match self.path.strip_suffix('*') {
                Some(prefix) => path.starts_with(prefix),
                None => path == self.path,
            }
    }
}

/// Read `[gateway]` from a node's TOML file (an absent table: the defaults).
pub fn from_toml(text: &str) -> Result<GatewayConfig, String> {
    #[derive(Deserialize)]
    struct File {
        #[serde(default)]
        gateway: Option<toml::Value>,
    }
    let file: File = toml::from_str(text).map_err(|e| e.to_string())?;
    match file.gateway {
        Some(table) => table
            .try_into()
            .map_err(|e: toml::de::Error| format!("[gateway]: {e}")),
        None => Ok(GatewayConfig::default()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_match_by_method_and_path() {
        let any = RouteConfig::parse_priced("/articles/*=0.001").expect("route");
        assert_eq!(any.price.as_deref(), Some("0.001"));
        assert!(any.matches("GET", "/articles/1"));
        assert!(any.matches("POST", "/articles/"));
        assert!(!any.matches("GET", "/article"));
        let get = RouteConfig::parse_priced("get /data=2").expect("route");
        assert!(get.matches("GET", "/data"));
        assert!(!get.matches("POST", "/data"));
        assert!(!get.matches("GET", "/data/x"));
        assert!(RouteConfig::parse_priced("/x").is_err());
        assert!(RouteConfig::parse_free("x").is_err());
    }

    #[test]
    fn the_gateway_table_reads_from_a_node_file() {
        let config = from_toml(
            r#"
            data_dir = "x"
            [gateway]
            upstream = "http://127.0.0.1:9000"
            routes = [{ method = "GET", path = "/a/*", price = "0.01" }]
            free = [{ path = "/health" }]
            "#,
        )
        .expect("config");
        assert_eq!(config.upstream, "http://127.0.0.1:9000");
        assert_eq!(config.routes[0].price.as_deref(), Some("0.01"));
        assert_eq!(config.free[0].method, "*");
        assert!(from_toml("[gateway]\nbogus = 1").is_err());
        assert_eq!(from_toml("").expect("empty"), GatewayConfig::default());
    }
}
