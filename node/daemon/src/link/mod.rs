//! A link to a partner, below the code that runs it: the registry of links and their
//! outgoing queues ([`registry`], bounded for what a peer can make the node queue:
//! [`queue`]), the frames built from channel state ([`wire`]), and the
//! writer that sends a frame only once what it depends on is durable ([`writer`]), and the
//! partners the node keeps a link to ([`kept`]). Payments
//! and co-signing send through here; `net` dials, accepts and reads.

pub(crate) mod kept;
pub(crate) mod queue;
pub(crate) mod registry;
pub(crate) mod wire;
pub(crate) mod writer;

pub(crate) use registry::{Cosigned, Link, Links};
