//! The RPC component on its own: the real server from `farthing_rpc::start`, real clients and
//! raw HTTP, in front of a fake implementation of the generated server trait that records
//! every call it receives.

// Helpers unwrap like the tests do: a failure is a test failure.
#![allow(clippy::unwrap_used)]

mod auth;
mod calls;
mod credentials;
mod crowd;
mod discover;
mod fake;
mod limits;
mod raw;
mod sockets;
