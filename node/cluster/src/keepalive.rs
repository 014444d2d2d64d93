//! The lease keeper and the leader observer: the background half of a [`crate::Leader`].
//!
//! Both write into one [`Shared`]: the local deadline (the last keep-alive *request* that etcd
//! answered with a live lease, plus the TTL, minus [`MARGIN`]) and the loss, which is set once
//! and never cleared.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use etcd_client::{Client, LeaseKeepAliveStream, LeaseKeeper};
use tokio::sync::{oneshot, watch};
use tokio::time::{Instant, sleep, sleep_until, timeout};

use crate::election::LostReason;

/// How long before etcd could expire the lease this process stops believing it leads. Covers
/// clock-rate differences and the time between a check and the action it allows; it is not a
/// safety bound (see the crate docs).
pub(crate) const MARGIN: Duration = Duration::from_secs(1);

/// Wait before reopening a keep-alive stream that could not be opened: short, because the
/// local deadline is running (an etcd member failover must not cost the leadership).
const REOPEN_RETRY: Duration = Duration::from_millis(100);
/// A keep-alive gap this long is logged when renewals resume.
const GAP_LOGGED: Duration = Duration::from_secs(1);

/// Wait between two attempts to reopen the observe stream.
const OBSERVE_RETRY: Duration = Duration::from_millis(500);

/// What the keeper, the observer and every [`crate::LeaderWatch`] share.
#[derive(Debug)]
pub(crate) struct Shared {
    lost: watch::Sender<Option<LostReason>>,
    deadline: Mutex<Instant>,
    /// The campaign was won: a loss from now on is a leadership lost (and logged as one).
    led: AtomicBool,
}

impl Shared {
    pub(crate) fn new(deadline: Instant) -> Arc<Self> {
        Arc::new(Self {
            lost: watch::Sender::new(None),
            deadline: Mutex::new(deadline),
            led: AtomicBool::new(false),
        })
    }

    pub(crate) fn deadline(&self) -> Instant {
        *self.deadline.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Moves the deadline later (never earlier: replies may be handled out of order with
    /// reopened streams); returns by how much.
    fn extend(&self, to: Instant) -> Duration {
        let mut deadline = self.deadline.lock().unwrap_or_else(PoisonError::into_inner);
        let by = to.saturating_duration_since(*deadline);
        if to > *deadline {
            *deadline = to;
        }
        by
    }

    pub(crate) fn set_leading(&self) {
        self.led.store(true, Ordering::Relaxed);
    }

    pub(crate) fn reason(&self) -> Option<LostReason> {
        *self.lost.borrow()
    }

    /// Records the loss; the first reason wins and stays.
    pub(crate) fn lose(&self, reason: LostReason) {
        let first = self.lost.send_if_modified(|lost| {
            if lost.is_none() {
                *lost = Some(reason);
                true
            } else {
                false
            }
        });
        if first && self.led.load(Ordering::Relaxed) {
            match reason {
                LostReason::Resigned => tracing::info!("leadership: resigned"),
                _ => tracing::warn!("leadership lost: {reason}"),
            }
        }
    }

    pub(crate) fn is_leading(&self) -> bool {
        self.reason().is_none() && Instant::now() < self.deadline()
    }

    /// Resolves once the loss is recorded or the local deadline passes, whichever comes
    /// first; needs no other task to run, so a resumed process sees its deadline at once.
    pub(crate) async fn lost(&self) -> LostReason {
        let mut rx = self.lost.subscribe();
        loop {
            if let Some(reason) = *rx.borrow_and_update() {
                return reason;
            }
            let deadline = self.deadline();
            tokio::select! {
                // `self` holds the sender, so `changed` cannot fail while we run.
                _ = rx.changed() => {}
                () = sleep_until(deadline) => {
                    if Instant::now() >= self.deadline() {
                        self.lose(LostReason::DeadlinePassed);
                    }
                }
            }
        }
    }
}

/// What the keeper needs to know about its lease.
pub(crate) struct Lease {
    pub(crate) id: i64,
    pub(crate) ttl: Duration,
}

impl Lease {
    /// Keep-alives are sent three times per `ttl - MARGIN`, so one lost or late reply (an etcd
    /// member failover loses one) still leaves a reply before the local deadline.
    fn interval(&self) -> Duration {
        self.ttl.saturating_sub(MARGIN) / 3
    }
}

/// Keeps `lease` alive until `stop` fires (resign: `Ok`) or is dropped (the `Leader` was
/// dropped), or the lease is lost. Never re-grants: a lost lease stays lost.
pub(crate) async fn keep(
    mut client: Client,
    lease: Lease,
    shared: Arc<Shared>,
    mut stop: oneshot::Receiver<()>,
) {
    let interval = lease.interval();
    let mut stream: Option<(LeaseKeeper, LeaseKeepAliveStream)> = None;
    // Send times of the requests not yet answered, oldest first (replies come in order).
    let mut sent: VecDeque<Instant> = VecDeque::new();
    let mut next_send = Instant::now() + interval;
    loop {
        if shared.reason().is_some() {
            return;
        }
        let deadline = shared.deadline();
        if Instant::now() >= deadline {
            shared.lose(LostReason::DeadlinePassed);
            return;
        }
        tokio::select! {
            biased;
            stopped = &mut stop => {
                shared.lose(if stopped.is_ok() { LostReason::Resigned } else { LostReason::Dropped });
                return;
            }
            () = sleep_until(deadline) => {}
            () = sleep_until(next_send) => {
                next_send = Instant::now() + interval;
                let stale = sent.front().is_some_and(|at| at.elapsed() >= interval);
                if stale {
                    tracing::warn!(lease = lease.id, "keep-alive: no reply within {interval:?}; reopening the stream");
                    stream = None;
                }
                match stream.as_mut() {
                    Some((keeper, _)) => {
                        let at = Instant::now();
                        if let Err(e) = keeper.keep_alive().await {
                            tracing::warn!(lease = lease.id, "keep-alive send failed ({e}); reopening the stream");
                            stream = None;
                        } else {
                            sent.push_back(at);
                        }
                    }
                    None => {
                        sent.clear();
                        match open(&mut client, &lease, interval, &shared).await {
                            Open::Ok(pair) => stream = Some(*pair),
                            Open::Retry => next_send = Instant::now() + REOPEN_RETRY,
                            Open::Gone => {
                                shared.lose(LostReason::LeaseExpired);
                                return;
                            }
                        }
                    }
                }
            }
            reply = next_reply(&mut stream) => match reply {
                Ok(Some(reply)) if reply.ttl() > 0 => {
                    if let Some(at) = sent.pop_front() {
                        renewed(&shared, &lease, at, interval);
                    }
                }
                Ok(Some(_)) => {
                    shared.lose(LostReason::LeaseExpired);
                    return;
                }
                Ok(None) | Err(_) => {
                    let why = match reply { Err(e) => e.to_string(), _ => "stream closed".into() };
                    tracing::warn!(lease = lease.id, "keep-alive stream ended ({why}); reopening");
                    stream = None;
                    sent.clear();
                    next_send = Instant::now();
                }
            }
        }
    }
}

enum Open {
    Ok(Box<(LeaseKeeper, LeaseKeepAliveStream)>),
    Retry,
    Gone,
}

/// Opens a keep-alive stream. The client sends one request and waits for its reply, so a
/// successful open is itself a renewal, counted from before the call.
async fn open(client: &mut Client, lease: &Lease, bound: Duration, shared: &Shared) -> Open {
    let at = Instant::now();
    match timeout(bound, client.lease_keep_alive(lease.id)).await {
        Ok(Ok(pair)) => {
            renewed(shared, lease, at, bound);
            Open::Ok(Box::new(pair))
        }
        Ok(Err(etcd_client::Error::LeaseKeepAliveError(e))) if e.contains("not found") => {
            Open::Gone
        }
        Ok(Err(e)) => {
            tracing::warn!(
                lease = lease.id,
                "keep-alive: could not open a stream ({e}); retrying"
            );
            Open::Retry
        }
        Err(_) => {
            tracing::warn!(
                lease = lease.id,
                "keep-alive: no answer within {bound:?}; retrying"
            );
            Open::Retry
        }
    }
}

/// Records a renewal whose request was sent `at`; logs when it ends a long gap.
fn renewed(shared: &Shared, lease: &Lease, at: Instant, interval: Duration) {
    let gap = shared.extend(at + lease.ttl - MARGIN);
    if gap > GAP_LOGGED + interval {
        tracing::info!(
            lease = lease.id,
            "keep-alive answered again after a gap of {gap:?}"
        );
    }
}

async fn next_reply(
    stream: &mut Option<(LeaseKeeper, LeaseKeepAliveStream)>,
) -> Result<Option<etcd_client::LeaseKeepAliveResponse>, etcd_client::Error> {
    match stream {
        Some((_, replies)) => replies.message().await,
        None => std::future::pending().await,
    }
}

/// Watches the election and records [`LostReason::Superseded`] when its leader is no longer
/// the key created at `epoch`. Returns once the leadership is lost for any reason.
pub(crate) async fn observe(mut client: Client, name: String, epoch: u64, shared: Arc<Shared>) {
    let watch = async {
        loop {
            // `observe` does not return until the election has a leader: this runs in its
            // own task, never on a start-up path.
            match client.observe(name.clone()).await {
                Ok(mut stream) => loop {
                    match stream.message().await {
                        Ok(Some(reply)) => {
                            let Some(kv) = reply.kv() else { continue };
                            let rev = u64::try_from(kv.create_revision()).unwrap_or(0);
                            if rev != epoch {
                                shared.lose(LostReason::Superseded { epoch: rev });
                                return;
                            }
                        }
                        Ok(None) => break,
                        Err(e) => {
                            tracing::debug!("observe {name}: stream ended ({e}); reopening");
                            break;
                        }
                    }
                },
                Err(e) => tracing::debug!("observe {name}: could not open ({e}); retrying"),
            }
            sleep(OBSERVE_RETRY).await;
        }
    };
    tokio::select! {
        () = watch => {}
        _ = shared.lost() => {}
    }
}
