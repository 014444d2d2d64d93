//! The buyer component: its HTTP client, the offers kept per seller and route for paying up
//! front (`farthing-next`), and which URLs it may fetch at all.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use farthing_http402::x402::Requirements;

use crate::config::BuyerConfig;

/// Offers kept per route for paying up front (each serves one request).
const OFFERS_PER_ROUTE: usize = 256;
/// Routes remembered.
const ROUTES: usize = 4_096;
/// An offer this close to its expiry is not used up front.
const MARGIN_SECS: u64 = 10;

/// Offers kept for one seller's route: its method and path pattern (`GET`, `/articles/*`),
/// as the offer's `extra.route` says.
struct RouteOffers {
    method: String,
    pattern: String,
    offers: Vec<Requirements>,
}

impl RouteOffers {
    fn matches(&self, method: &str, path: &str) -> bool {
        (self.method == "*" || self.method.eq_ignore_ascii_case(method))
            && match self.pattern.strip_suffix('*') {
                Some(prefix) => path.starts_with(prefix),
                None => path == self.pattern,
            }
    }
}

/// The buyer component: an HTTP client and the offers known per seller (origin) and route.
pub(crate) struct Buyer {
    pub(super) http: reqwest::Client,
    offers: Mutex<HashMap<String, Vec<RouteOffers>>>,
    pub(super) config: BuyerConfig,
    /// One channel opening at a time: concurrent first requests to a new seller open one
    /// channel, not one each.
    pub(super) opening: tokio::sync::Mutex<()>,
}

impl Buyer {
    pub(crate) fn new(config: BuyerConfig) -> Result<Self, String> {
        // reqwest is built without a TLS provider of its own (ring is ours): install it first.
        farthing_chain::rpc::install_crypto_provider();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(config.timeout_secs))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(Self {
            http,
            offers: Mutex::default(),
            config,
            opening: tokio::sync::Mutex::default(),
        })
    }

    fn offers(&self) -> MutexGuard<'_, HashMap<String, Vec<RouteOffers>>> {
        self.offers.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Keep `offer` (from an answer of `origin`) for the route it names.
    pub(super) fn keep_offer(&self, origin: &str, offer: Requirements) {
        let Some((method, pattern)) = offer
            .extra_str("route")
            .and_then(|r| r.split_once(' '))
            .map(|(m, p)| (m.to_owned(), p.to_owned()))
        else {
            return;
        };
        let mut offers = self.offers();
        if offers.len() >= ROUTES && !offers.contains_key(origin) {
            offers.clear();
        }
        let routes = offers.entry(origin.to_owned()).or_default();
        let at = match routes
            .iter()
            .position(|r| r.method == method && r.pattern == pattern)
        {
            Some(at) => at,
            None if routes.len() < ROUTES => {
                routes.push(RouteOffers {
                    method,
                    pattern,
                    offers: Vec::new(),
                });
                routes.len() - 1
            }
            None => return,
        };
        if routes[at].offers.len() < OFFERS_PER_ROUTE {
            routes[at].offers.push(offer);
        }
    }

    /// A kept offer for `method` `url` within `max_price`, not about to expire.
    pub(super) fn take_offer(
        &self,
        method: &str,
        url: &reqwest::Url,
        max_price: u128,
    ) -> Option<Requirements> {
        let now = crate::link::kept::now_ms() / 1_000;
        let mut offers = self.offers();
        let routes = offers.get_mut(&url.origin().ascii_serialization())?;
        let kept = &mut routes
            .iter_mut()
            .find(|r| r.matches(method, url.path()))?
            .offers;
        while let Some(offer) = kept.pop() {
            let fresh = offer
                .extra
                .get("expires")
                .and_then(serde_json::Value::as_u64)
                .is_some_and(|e| e > now + MARGIN_SECS);
            if fresh && offer.amount().is_some_and(|a| a <= max_price) {
                return Some(offer);
            }
        }
        None
    }
}

/// Whether `url`'s host is a loopback, private, link-local or unspecified address, or
/// `localhost` (a name that resolves privately is not caught: see the README).
pub(super) fn is_private(url: &reqwest::Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => {
            ip.is_loopback() || ip.is_private() || ip.is_link_local() || ip.is_unspecified()
        }
        Some(url::Host::Ipv6(ip)) => {
            ip.is_loopback()
                || ip.is_unspecified()
                || (ip.segments()[0] & 0xfe00) == 0xfc00
                || (ip.segments()[0] & 0xffc0) == 0xfe80
                || ip
                    .to_ipv4_mapped()
                    .is_some_and(|v4| v4.is_loopback() || v4.is_private())
        }
        Some(url::Host::Domain(name)) => {
            name.eq_ignore_ascii_case("localhost")
                || name.to_ascii_lowercase().ends_with(".localhost")
        }
        None => true,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn private_addresses_are_told_apart() {
        for private in [
            "http://127.0.0.1:8080/x",
            "http://10.1.2.3/",
            "http://192.168.0.1/",
            "http://172.16.0.1/",
            "http://169.254.169.254/latest/meta-data",
            "http://0.0.0.0/",
            "http://[::1]/",
            "http://[fd00::1]/",
            "http://[fe80::1]/",
            "http://[::ffff:127.0.0.1]/",
            "http://localhost:3000/",
            "http://api.localhost/",
        ] {
            let url = reqwest::Url::parse(private).expect("a URL");
            assert!(super::is_private(&url), "{private}");
        }
        for public in [
            "http://93.184.216.34/",
            "https://example.com/a",
            "http://[2606:4700::1]/",
        ] {
            let url = reqwest::Url::parse(public).expect("a URL");
            assert!(!super::is_private(&url), "{public}");
        }
    }
}
