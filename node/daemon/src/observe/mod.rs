//! What the node shows of itself: Prometheus metrics ([`metrics`], served by [`server`]) and
//! the payment log read by cursor, its live stream and its retention ([`history`]).

pub(crate) mod history;
pub(crate) mod metrics;
mod quiet;
pub(crate) mod server;

pub(crate) use history::History;
pub use history::{FeedError, MAX_PAGE, PageQuery, Payment, PaymentFeed, PaymentPage};
pub(crate) use metrics::{Metrics, Snapshot};
pub(crate) use quiet::{LOG_EVERY, RateLimited};
