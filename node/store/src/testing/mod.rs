//! Test support for other crates (and this one): a store that can be made to fail, and
//! sample records. Not for production wiring.
//!
//! [`FailingStore`] implements RELIABILITY D3 ("the store fails or stalls"): wrap the store the
//! node under test uses, keep its [`FailSwitch`], and flip it to make every commit fail with
//! [`StoreError::Unavailable`] (or block, like a disk that stops answering) while reads keep
//! working, then flip it back.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};

use alloy_primitives::{Address, Bytes};
use farthing_core::{ChainState, Channel, ChannelId, OnChain, Role, SignedProof};

pub mod postgres;

use crate::{Cursor, PendingTx, Result, Store, StoreError, TxKind, Write};

/// The handle that makes a [`FailingStore`] fail; clones control the same store.
#[derive(Debug, Clone, Default)]
pub struct FailSwitch {
    failing: Arc<AtomicBool>,
    refused: Arc<AtomicU64>,
    /// Commits block while it holds `true`.
    stalled: Arc<(Mutex<bool>, Condvar)>,
    held: Arc<AtomicU64>,
}

impl FailSwitch {
    /// From now on, hold every commit until [`FailSwitch::release`] (a disk that stops
    /// answering): nothing is written meanwhile.
    pub fn stall(&self) {
        *self
            .stalled
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = true;
    }

    /// Let held commits and later ones through.
    pub fn release(&self) {
        *self
            .stalled
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = false;
        self.stalled.1.notify_all();
    }

    /// How many commits have been held so far.
    pub fn held(&self) -> u64 {
        self.held.load(Ordering::SeqCst)
    }

    fn wait_while_stalled(&self) {
        let (lock, released) = &*self.stalled;
        let mut stalled = lock.lock().unwrap_or_else(PoisonError::into_inner);
        if *stalled {
            self.held.fetch_add(1, Ordering::SeqCst);
        }
        while *stalled {
            stalled = released
                .wait(stalled)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// From now on, refuse every commit (nothing of a refused batch is written).
    pub fn fail(&self) {
        self.failing.store(true, Ordering::SeqCst);
    }

    /// From now on, pass commits through again.
    pub fn recover(&self) {
        self.failing.store(false, Ordering::SeqCst);
    }

    /// Whether commits are being refused.
    pub fn is_failing(&self) -> bool {
        self.failing.load(Ordering::SeqCst)
    }

    /// How many commits have been refused so far.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::SeqCst)
    }
}

/// A [`Store`] wrapper whose commits can be switched to fail; reads always pass through.
#[derive(Debug)]
pub struct FailingStore<S> {
    inner: S,
    switch: FailSwitch,
}

impl<S: Store> FailingStore<S> {
    /// Wrap `inner`, passing everything through until the switch is flipped.
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            switch: FailSwitch::default(),
        }
    }

    /// The switch controlling this store (keep a clone in the test).
    pub fn switch(&self) -> FailSwitch {
        self.switch.clone()
    }

    /// The wrapped store.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// Unwrap the store.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S: Store> Store for FailingStore<S> {
    fn channel(&self, id: ChannelId) -> Result<Option<Channel>> {
        self.inner.channel(id)
    }

    fn channels(&self) -> Result<Vec<Channel>> {
        self.inner.channels()
    }

    fn cursor(&self) -> Result<Option<Cursor>> {
        self.inner.cursor()
    }

    fn pending_txs(&self) -> Result<Vec<PendingTx>> {
        self.inner.pending_txs()
    }

    fn keyed_payment(&self, key: &str) -> Result<Option<crate::KeyedPayment>> {
        self.inner.keyed_payment(key)
    }

    fn redeemed(&self, challenge: &str) -> Result<Option<crate::KeyedPayment>> {
        self.inner.redeemed(challenge)
    }

    fn owner(&self) -> Result<Option<alloy_primitives::Address>> {
        self.inner.owner()
    }

    fn closing_channels(&self) -> Result<Vec<ChannelId>> {
        self.inner.closing_channels()
    }

    fn walk_payments(
        &self,
        walk: crate::LogWalk,
        each: &mut dyn FnMut(crate::LoggedPayment) -> bool,
    ) -> Result<()> {
        self.inner.walk_payments(walk, each)
    }

    fn credential_spends(&self, since: u64) -> Result<crate::CredentialSpends> {
        self.inner.credential_spends(since)
    }

    fn revoked_credentials(&self) -> Result<Vec<([u8; 16], u64)>> {
        self.inner.revoked_credentials()
    }

    fn issued_credentials(&self) -> Result<Vec<crate::IssuedCredential>> {
        self.inner.issued_credentials()
    }

    fn commit(&self, writes: &[Write]) -> Result<()> {
        self.switch.wait_while_stalled();
        if self.switch.is_failing() {
            self.switch.refused.fetch_add(1, Ordering::SeqCst);
            return Err(StoreError::Unavailable {
                reason: "commits switched off by testing::FailingStore".to_owned(),
            });
        }
        self.inner.commit(writes)
    }

    fn close(&self) {
        self.inner.close();
    }

    fn location(&self) -> String {
        self.inner.location()
    }
}

/// A 65-byte signature-shaped byte string (`r | s | v`), varied by `seed`.
pub fn sample_signature(seed: u64) -> Bytes {
    let mut sig = [0u8; 65];
    for (i, b) in sig.iter_mut().enumerate() {
        *b = (seed as u8).wrapping_mul(31).wrapping_add(i as u8);
    }
    sig[64] = 27 + (seed % 2) as u8;
    Bytes::copy_from_slice(&sig)
}

/// An open channel with id `id`, both proofs present, every field depending on `id`.
pub fn sample_channel(id: ChannelId) -> Channel {
    let byte = (id % 251) as u8;
    let base = u128::from(id) * 1_000;
    Channel {
        id,
        token: Address::repeat_byte(0xa0 ^ byte),
        role: if id.is_multiple_of(2) {
            Role::A
        } else {
            Role::B
        },
        us: Address::repeat_byte(byte),
        partner: Address::repeat_byte(!byte),
        challenge_period: 3_600,
        opened_block: id.wrapping_add(100),
        on_chain: OnChain {
            state: ChainState::Open,
            deposit_a: base + 500,
            deposit_b: base + 300,
            withdrawn_a: 10,
            withdrawn_b: 0,
            settle_after: 0,
            closer: None,
            proof_a: (1, 20),
            proof_b: (0, 0),
        },
        ours: Some(SignedProof {
            nonce: id.wrapping_add(3),
            transferred: base + 40,
            signature: sample_signature(id),
        }),
        theirs: Some(SignedProof {
            nonce: id.wrapping_add(2),
            transferred: base + 25,
            signature: sample_signature(id.wrapping_add(1)),
        }),
        withdrawal: None,
    }
}

/// A cursor at `block`, with a hash derived from it.
pub fn sample_cursor(block: u64) -> Cursor {
    let mut block_hash = [0xcc; 32];
    block_hash[..8].copy_from_slice(&block.to_be_bytes());
    Cursor { block, block_hash }
}

/// A pending settle (or an open, without a channel) with key `key`.
pub fn sample_pending_tx(key: u64, channel: Option<ChannelId>) -> PendingTx {
    let mut tx_hash = [0x7e; 32];
    tx_hash[24..].copy_from_slice(&key.to_be_bytes());
    PendingTx {
        key,
        channel,
        kind: if channel.is_some() {
            TxKind::Settle
        } else {
            TxKind::Open
        },
        tx_hash,
        nonce: key.wrapping_mul(2),
        submitted_at: key.wrapping_add(1_700_000_000),
        raw: (0..=(key % 200) as u8).collect(),
    }
}

/// A free port on 127.0.0.1 below the kernel's ephemeral port range, for a server that must
/// come back on the same port after a restart (a node's peer port, a persistent anvil).
///
/// A port from the ephemeral range (what port 0 gives) is free for any outgoing connection's
/// automatic bind while its server is down — even for a client that keeps reconnecting to that
/// very port (a TCP self-connect) — and the restart then fails to bind. Ports below the range
/// are only ever taken by an explicit bind.
pub fn fixed_port() -> u16 {
    use std::hash::{BuildHasher, Hasher};
    let ephemeral_low: u16 = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|r| r.split_whitespace().next()?.parse().ok())
        .unwrap_or(32_768);
    let low = 10_000u16;
    let span = ephemeral_low.saturating_sub(low).max(1);
    // Tests run in parallel (threads and processes): start at a random port of the range.
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    let start = (hasher.finish() % u64::from(span)) as u16;
    // Never the same port twice in one process: a server may bind it only later (a standby).
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut given = GIVEN
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let port = (0..span)
        .map(|i| low + (start + i) % span)
        .find(|&port| {
            !given.contains(&port) && std::net::TcpListener::bind(("127.0.0.1", port)).is_ok()
        })
        // No room below the range (a host whose ephemeral ports start low): any free port.
        .or_else(|| {
            let any = std::net::TcpListener::bind(("127.0.0.1", 0)).ok()?;
            any.local_addr().ok().map(|a| a.port())
        })
        .expect("a free port on 127.0.0.1");
    given.push(port);
    port
}
