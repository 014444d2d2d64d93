//! Leadership of one Farthing node's instances through etcd, and the epoch that fences the
//! store.
//!
//! Several instances of one node (same key, same store) run at once; one leads, the others
//! wait as warm standbys. They campaign in one etcd election ([`campaign`]); the winner's
//! [`Leader::epoch`] — the create revision of its election key, strictly increasing on one
//! etcd cluster — is written into the store's fence row before the leader loads any state,
//! and every batch the leader commits checks that fence in its own transaction.
//!
//! - [`election`]: [`ElectionConfig`], [`campaign`], [`Leader`], [`LeaderWatch`],
//!   [`LostReason`], [`current_leader`];
//! - [`testing`]: real etcd clusters as child processes, for this crate's and other crates'
//!   tests.
//!
//! **Liveness checks are not the safety mechanism.** A leader notices that it may have lost
//! (its local deadline — the last answered keep-alive plus `T − 1 s` — passed; etcd says its
//! lease is gone; the election shows another leader), but a process paused (SIGSTOP, GC, a
//! stalled VM) past its lease resumes with every task at once: a writer can flush a frame
//! before any check runs. What keeps two leaders from both taking effect is the fence in the
//! store: a batch commits only if the fence still holds the leader's epoch at commit, and
//! nothing leaves the process before its batch committed. The checks here only make a
//! deposed leader quiet quickly. The model of that argument is the test `sim` in this crate.
//!
//! This crate must never:
//!
//! - report leadership it has not confirmed (a campaign's result is checked against the
//!   election before [`campaign`] returns), or report it again once it was lost: a lost
//!   [`Leader`] stays lost and a new one needs a new campaign, a new lease and a new epoch;
//! - step down on one missed keep-alive reply before the local deadline (an etcd member
//!   failover loses one), or wait for etcd to say so once the deadline passed;
//! - block a start-up path on etcd: `observe` runs in its own task, unary calls are bounded.

pub mod election;
pub mod testing;

mod error;
mod keepalive;
#[cfg(test)]
mod sim;

pub use election::{
    DEFAULT_LEASE_TTL, ElectionConfig, Leader, LeaderWatch, LostReason, campaign, current_leader,
};
pub use error::ClusterError;
