//! What the node shows of itself: Prometheus metrics ([`metrics`], served by [`server`]) and
//! the recent payments with their live stream ([`history`]).

pub(crate) mod history;
pub(crate) mod metrics;
mod quiet;
pub(crate) mod server;

pub(crate) use history::History;
pub use history::{Payment, RECENT_PER_CHANNEL};
pub(crate) use metrics::{Metrics, Snapshot};
pub(crate) use quiet::{LOG_EVERY, RateLimited};
