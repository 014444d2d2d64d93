//! The addresses the node keeps a link to (`connectPeer`, the config's `peer.connect`): for each
//! partner, where to dial it, whether its redial runs, and how the last dials went — what
//! `listPeers` shows and `disconnectPeer` stops. The redial loop itself is `net::dial`'s.
//!
//! Lock order: a leaf, never under the table's lock. Inside it, the map's lock, then an
//! entry's state — never the other way; neither is held across an `.await`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use alloy::primitives::Address;
use farthing_peer::PeerAddr;
use tokio::sync::Notify;

/// One peer as `listPeers` shows it: linked, kept, or a channel partner (or several).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PeerStatus {
    /// The peer's address.
    pub address: Address,
    /// Where the node dials it (`host:port`), if it keeps (or kept) an address for it.
    pub dial: Option<String>,
    /// Unix ms the link that is up came up (`None`: not linked).
    pub linked_since_ms: Option<u64>,
    /// Whether this node dialled the link that is up (`None`: not linked).
    pub dialled_by_us: Option<bool>,
    /// Whether the node keeps redialling it.
    pub kept: bool,
    /// Failed dials in a row.
    pub failed_dials: u32,
    /// The last failed dial's error and unix ms, while no dial succeeded since.
    pub last_error: Option<(String, u64)>,
    /// Time to its next dial, while kept and not linked.
    pub next_dial_in: Option<Duration>,
    /// The channels shared with it.
    pub channels: Vec<farthing_core::ChannelId>,
}

/// Unix time now, in milliseconds.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// One kept partner.
pub(crate) struct KeptPeer {
    state: Mutex<DialState>,
    /// Wakes its redial loop: the address changed, or it must stop.
    pub(crate) wake: Notify,
}

/// What [`KeptPeer`] holds under its lock.
#[derive(Debug, Clone)]
pub(crate) struct DialState {
    /// Where to dial.
    pub(crate) addr: PeerAddr,
    /// The partner's other addresses (the instances of a node run as a leader and standbys),
    /// tried in turn after a failed dial.
    pub(crate) others: Vec<PeerAddr>,
    /// Whether the node keeps redialling it (`false` after `disconnectPeer`).
    pub(crate) kept: bool,
    /// Failed dials in a row.
    pub(crate) failed: u32,
    /// The last failure and its unix time in ms, while no dial succeeded since.
    pub(crate) last_error: Option<(String, u64)>,
    /// When the next dial is due, while not linked.
    pub(crate) next_dial: Option<Instant>,
}

impl KeptPeer {
    fn new(addrs: Vec<PeerAddr>) -> Self {
        // Each address once, in the order given.
        let mut unique: Vec<PeerAddr> = Vec::with_capacity(addrs.len());
        for addr in addrs {
            if !unique.contains(&addr) {
                unique.push(addr);
            }
        }
        let mut addrs = unique;
        let addr = addrs.remove(0);
        Self {
            state: Mutex::new(DialState {
                addr,
                others: addrs,
                kept: true,
                failed: 0,
                last_error: None,
                next_dial: None,
            }),
            wake: Notify::new(),
        }
    }

    /// Its state now.
    pub(crate) fn state(&self) -> DialState {
        self.lock().clone()
    }

    /// Where to dial it, or `None` if it is no longer kept (its loop ends).
    pub(crate) fn target(&self) -> Option<PeerAddr> {
        let state = self.lock();
        state.kept.then(|| state.addr.clone())
    }

    /// A dial succeeded (or a link is up): the failures are over.
    pub(crate) fn linked(&self) {
        let mut state = self.lock();
        state.failed = 0;
        state.last_error = None;
        state.next_dial = None;
    }

    /// A dial failed with `error`; the next one is in `wait`, to the partner's next address if
    /// it has several. Returns the failures in a row.
    pub(crate) fn failed(&self, error: String, wait: Duration) -> u32 {
        let mut state = self.lock();
        if !state.others.is_empty() {
            let next = state.others.remove(0);
            let tried = std::mem::replace(&mut state.addr, next);
            state.others.push(tried);
        }
        state.failed = state.failed.saturating_add(1);
        state.last_error = Some((error, now_ms()));
        state.next_dial = Some(Instant::now() + wait);
        state.failed
    }

    fn lock(&self) -> MutexGuard<'_, DialState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// What [`Kept::keep`] did.
pub(crate) enum Keep {
    /// A new partner, or one whose loop had stopped: start a redial loop for it.
    Start(Arc<KeptPeer>),
    /// Its loop runs and was woken to dial the (new) address now.
    Running,
}

/// The kept partners, by address.
#[derive(Default)]
pub(crate) struct Kept {
    peers: Mutex<HashMap<Address, Arc<KeptPeer>>>,
    /// Redial loops running (decremented when a loop has actually ended).
    loops: AtomicU64,
}

impl Kept {
    /// Keep a link to a partner at `addrs` (one partner's, at least one; dialled in turn): a
    /// new entry, a stopped one restarted, or a running one pointed at `addrs` first (the
    /// addresses it knew stay behind them) and woken (its backoff starts over).
    pub(crate) fn keep(&self, mut addrs: Vec<PeerAddr>) -> Keep {
        let Some(first) = addrs.first().cloned() else {
            return Keep::Running;
        };
        addrs.retain(|a| a.address == first.address);
        let mut peers = self.lock();
        if let Some(peer) = peers.get(&first.address) {
            let mut state = peer.lock();
            if state.kept {
                // The new addresses first; the partner's other known ones stay behind them
                // (`connectPeer` with one instance's address keeps the others; to replace a
                // wrong address, `disconnectPeer --forget` first).
                let known = std::iter::once(state.addr.clone()).chain(state.others.drain(..));
                for addr in known {
                    if !addrs.contains(&addr) {
                        addrs.push(addr);
                    }
                }
                state.addr = addrs.remove(0);
                state.others = addrs;
                drop(state);
                peer.wake.notify_one();
                return Keep::Running;
            }
        }
        // New, or stopped (its loop, if still on its way out, ends: it is no longer kept).
        let peer = Arc::new(KeptPeer::new(addrs));
        peers.insert(first.address, peer.clone());
        Keep::Start(peer)
    }

    /// Stop redialling `address` (and forget its dial address with `forget`). Returns
    /// (whether it was kept, whether an entry was forgotten).
    pub(crate) fn stop(&self, address: Address, forget: bool) -> (bool, bool) {
        let mut peers = self.lock();
        let Some(peer) = peers.get(&address).cloned() else {
            return (false, false);
        };
        let was_kept = std::mem::replace(&mut peer.lock().kept, false);
        peer.wake.notify_one();
        if forget {
            peers.remove(&address);
        }
        (was_kept, forget)
    }

    /// Whether the node keeps a link to `address` (its redial runs).
    pub(crate) fn is_kept(&self, address: Address) -> bool {
        self.lock()
            .get(&address)
            .is_some_and(|peer| peer.lock().kept)
    }

    /// Every entry: kept ones and stopped ones not forgotten.
    pub(crate) fn all(&self) -> Vec<(Address, DialState)> {
        self.lock()
            .iter()
            .map(|(address, peer)| (*address, peer.state()))
            .collect()
    }

    /// A redial loop started.
    pub(crate) fn loop_started(&self) {
        self.loops.fetch_add(1, Ordering::AcqRel);
    }

    /// A redial loop ended.
    pub(crate) fn loop_ended(&self) {
        self.loops.fetch_sub(1, Ordering::AcqRel);
    }

    /// Redial loops running: the addresses the node keeps dialling.
    pub(crate) fn loops(&self) -> u64 {
        self.loops.load(Ordering::Acquire)
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<Address, Arc<KeptPeer>>> {
        self.peers.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(byte: u8, port: u16) -> PeerAddr {
        format!("{}@127.0.0.1:{port}", Address::repeat_byte(byte))
            .parse()
            .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn keeping_twice_wakes_the_running_loop_instead_of_starting_another() {
        let kept = Kept::default();
        assert!(matches!(kept.keep(vec![addr(1, 7000)]), Keep::Start(_)));
        assert!(matches!(kept.keep(vec![addr(1, 7001)]), Keep::Running));
        let all = kept.all();
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].1.addr.port, 7001, "the newer address is dialled");
        assert_eq!(
            all[0].1.others,
            vec![addr(1, 7000)],
            "the older one stays behind it"
        );
    }

    #[test]
    fn a_failed_dial_moves_on_to_the_partners_next_address() {
        let kept = Kept::default();
        let Keep::Start(peer) = kept.keep(vec![
            addr(1, 7000),
            addr(1, 7001),
            addr(1, 7000),
            addr(2, 7002),
        ]) else {
            panic!("a new peer starts a loop")
        };
        let port = |peer: &KeptPeer| peer.target().map(|a| a.port);
        assert_eq!(port(&peer), Some(7000));
        assert_eq!(
            peer.state().others.len(),
            1,
            "a repeated address and another partner's are dropped"
        );
        peer.failed("refused".into(), Duration::from_millis(1));
        assert_eq!(port(&peer), Some(7001));
        peer.failed("refused".into(), Duration::from_millis(1));
        assert_eq!(port(&peer), Some(7000), "round and round");
        peer.linked();
        assert_eq!(
            port(&peer),
            Some(7000),
            "a link stays on the address that answered"
        );
    }

    #[test]
    fn stop_keeps_the_entry_and_forget_removes_it() {
        let kept = Kept::default();
        let Keep::Start(peer) = kept.keep(vec![addr(1, 7000)]) else {
            panic!("a new peer starts a loop")
        };
        peer.failed("refused".into(), Duration::from_secs(1));
        assert_eq!(kept.stop(Address::repeat_byte(1), false), (true, false));
        assert_eq!(peer.target(), None, "its loop ends");
        let (_, state) = &kept.all()[0];
        assert!(!state.kept && state.last_error.is_some());
        // Kept again: a fresh loop, the stopped one still ends.
        let Keep::Start(fresh) = kept.keep(vec![addr(1, 7000)]) else {
            panic!("a stopped peer starts a new loop")
        };
        assert!(fresh.target().is_some() && peer.target().is_none());
        assert_eq!(kept.stop(Address::repeat_byte(1), true), (true, true));
        assert!(kept.all().is_empty() && fresh.target().is_none());
        assert_eq!(kept.stop(Address::repeat_byte(1), true), (false, false));
    }
}
