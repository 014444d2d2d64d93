//! Who may start a handshake on the peer port (RELIABILITY N1). The port faces the internet:
//! a connection that never speaks holds a descriptor until the handshake times out, so
//! unauthenticated connections are capped in total and per source address — past either cap
//! a new one is closed at once, before any work — and refusals and failed handshakes are
//! logged at a bounded rate, so a flood cannot fill the descriptor table or the log. An IPv6
//! source is counted by its /64 (one host usually holds a whole /64), an IPv4 one by address.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Arc, Mutex, PoisonError};

use crate::observe::RateLimited;

/// Unauthenticated connections (handshakes in progress) at once, from everyone.
pub(crate) const MAX_HANDSHAKES: usize = 128;

/// Unauthenticated connections at once from one source (an IPv4 address, an IPv6 /64).
pub(crate) const MAX_HANDSHAKES_PER_SOURCE: usize = 8;

/// The source `ip` counts against: an IPv4 address (also one mapped into IPv6) as it is, an
/// IPv6 address as its /64.
fn source_of(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(Ipv6Addr::from(prefix))
            }
        },
    }
}

/// The handshakes in progress, and what was refused since the last log line.
#[derive(Default)]
pub(crate) struct Admission {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    total: usize,
    per_source: HashMap<IpAddr, usize>,
    refused: RateLimited,
    failed: RateLimited,
}

/// A handshake slot, given back when dropped.
pub(crate) struct Slot {
    admission: Arc<Admission>,
    source: IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut state = self.admission.lock();
        state.total = state.total.saturating_sub(1);
        if let Some(count) = state.per_source.get_mut(&self.source) {
            *count -= 1;
            if *count == 0 {
                state.per_source.remove(&self.source);
            }
        }
    }
}

impl Admission {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A slot for a handshake from `source`, or `None` past a cap (the caller closes the
    /// connection; the refusal is logged at a bounded rate).
    pub(crate) fn admit(self: &Arc<Self>, ip: IpAddr) -> Option<Slot> {
        let source = source_of(ip);
        let mut state = self.lock();
        let from_source = state.per_source.get(&source).copied().unwrap_or(0);
        if state.total >= MAX_HANDSHAKES || from_source >= MAX_HANDSHAKES_PER_SOURCE {
            if let Some(count) = state.refused.note() {
                tracing::warn!(
                    %ip,
                    refused = count,
                    "peer port: too many handshakes at once ({} in all, {from_source} from {source} (an IPv6 /64 counts as one source); at most {MAX_HANDSHAKES} and {MAX_HANDSHAKES_PER_SOURCE}): new connections closed",
                    state.total
                );
            }
            return None;
        }
        state.total += 1;
        *state.per_source.entry(source).or_default() += 1;
        Some(Slot {
            admission: self.clone(),
            source,
        })
    }

    /// A handshake failed (a stranger, a timeout): logged at a bounded rate.
    pub(crate) fn failed(&self, source: IpAddr, why: &dyn std::fmt::Display) {
        if let Some(count) = self.lock().failed.note() {
            tracing::warn!(%source, failed = count, "peer refused: {why}");
        }
    }

    /// Handshakes in progress (for tests).
    #[cfg(test)]
    fn in_progress(&self) -> usize {
        self.lock().total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handshakes_are_capped_per_source_and_slots_come_back() {
        let admission = Arc::new(Admission::default());
        let flood: IpAddr = [127, 0, 0, 2].into();
        let slots: Vec<Slot> = (0..MAX_HANDSHAKES_PER_SOURCE)
            .map(|_| admission.admit(flood).expect("within the cap"))
            .collect();
        assert!(
            admission.admit(flood).is_none(),
            "one more from the same address"
        );
        assert!(
            admission.admit([127, 0, 0, 1].into()).is_some(),
            "another address still gets in"
        );
        assert_eq!(
            admission.in_progress(),
            MAX_HANDSHAKES_PER_SOURCE,
            "the other slot dropped"
        );
        drop(slots);
        assert_eq!(admission.in_progress(), 0);
        assert!(admission.admit(flood).is_some(), "slots come back");
    }

    #[test]
    fn the_total_is_capped_across_sources() {
        let admission = Arc::new(Admission::default());
        let slots: Vec<Slot> = (0..MAX_HANDSHAKES)
            .map(|i| {
                let source: IpAddr = [10, 0, (i / 256) as u8, (i % 256) as u8].into();
                admission.admit(source).expect("within the cap")
            })
            .collect();
        assert!(admission.admit([10, 1, 0, 0].into()).is_none());
        drop(slots);
        assert!(admission.admit([10, 1, 0, 0].into()).is_some());
    }

    #[test]
    fn an_ipv6_slash_64_is_one_source() {
        let admission = Arc::new(Admission::default());
        let in_64 = |host: u64| -> IpAddr {
            Ipv6Addr::from((0x2001_0db8_0000_0001u128 << 64) | u128::from(host)).into()
        };
        // Every connection from another address of the same /64.
        let slots: Vec<Slot> = (0..MAX_HANDSHAKES_PER_SOURCE as u64)
            .map(|host| admission.admit(in_64(host + 1)).expect("within the cap"))
            .collect();
        assert!(
            admission.admit(in_64(0xdead_beef)).is_none(),
            "a new address in the same /64 counts against it"
        );
        let next_64: IpAddr = Ipv6Addr::from(0x2001_0db8_0000_0002u128 << 64).into();
        assert!(admission.admit(next_64).is_some(), "the next /64 gets in");
        // IPv4 counts by address, also mapped into IPv6.
        let v4: IpAddr = [192, 0, 2, 1].into();
        let mapped: IpAddr = Ipv6Addr::from(0xffff_c000_0201u128).into();
        let v4_slots: Vec<Slot> = (0..MAX_HANDSHAKES_PER_SOURCE)
            .map(|_| admission.admit(mapped).expect("within the cap"))
            .collect();
        assert!(
            admission.admit(v4).is_none(),
            "mapped and plain are one source"
        );
        assert!(admission.admit([192, 0, 2, 2].into()).is_some());
        drop((slots, v4_slots));
        assert!(admission.admit(in_64(7)).is_some(), "slots come back");
    }
}
