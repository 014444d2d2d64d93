//! Every background task of the node belongs to one [`Tasks`] set with one shutdown signal
//! (reth's `TaskExecutor`, mini-redis's shutdown broadcast).
//!
//! - [`Tasks::spawn`]: a task whose end is nobody's business (a handshake, a receipt wait).
//!   It is counted, cancelled when the shutdown signal rises, and a panic in it is logged
//!   with its name. [`Tasks::spawn_counted`] (and [`Tasks::run`], which hands back an output)
//!   is for tasks on the payment path (a channel's signer, a link's reader): counted and
//!   logged, awaited at shutdown, spawned without touching any shared lock.
//! - [`Tasks::spawn_critical`]: a task the node needs for as long as it runs (the watcher,
//!   the watchtower, the store guard, a listener). If it panics, or returns before shutdown,
//!   its [`OnFailure`] policy applies: the node reports itself degraded (it takes no new risk
//!   and says why), or it stops (the binary exits non-zero so a supervisor restarts it), or —
//!   for tasks that only serve observers — it raises a warning. A critical task never
//!   vanishes silently. A listener restarts itself (`listen`): [`Tasks::down`] reports it
//!   while it is down, [`Tasks::recovered`] withdraws the report once it listens again.
//!
//! [`Tasks::shutdown`] raises the signal and waits until every task has ended. Tracking is a
//! counter, not a lock: signers and history records are spawned on the payment path.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures::FutureExt as _;
use tokio::sync::{Notify, watch};
use tokio::task::AbortHandle;

/// What the node does when a critical task panics or ends before shutdown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OnFailure {
    /// Stop the node: without this task it must not run on (the binary exits non-zero).
    Stop,
    /// Report the node degraded (no new risk) until it is restarted.
    Degrade,
    /// Raise a warning: the task serves observers only (metrics, a redial loop).
    Warn,
}

/// A clonable view of the shutdown signal, for tasks to select on.
#[derive(Clone)]
pub(crate) struct Shutdown(watch::Receiver<bool>);

impl Shutdown {
    /// Whether shutdown has begun.
    pub(crate) fn is_set(&self) -> bool {
        *self.0.borrow()
    }

    /// Resolves once shutdown has begun (at once if it has).
    pub(crate) async fn wait(&mut self) {
        // An error means the sender is gone: the node is gone, so this is shutdown too.
        let _ = self.0.wait_for(|stop| *stop).await;
    }
}

/// The node's task set. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Tasks {
    inner: Arc<Inner>,
}

struct Inner {
    shutdown: watch::Sender<bool>,
    /// Tasks running.
    live: AtomicUsize,
    /// Woken when the last task ends.
    idle: Notify,
    /// Why the node is degraded: critical tasks that failed, by name.
    failed: Mutex<Vec<(&'static str, String)>>,
    /// Observer tasks that failed, by name.
    warnings: Mutex<Vec<(&'static str, String)>>,
    /// Set once a task whose policy is [`OnFailure::Stop`] failed.
    fatal: watch::Sender<Option<String>>,
}

/// Counts one running task; dropped when it ends (however it ends).
struct Live(Arc<Inner>);

impl Drop for Live {
    fn drop(&mut self) {
        if self.0.live.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

impl Default for Tasks {
    fn default() -> Self {
        Self {
            inner: Arc::new(Inner {
                shutdown: watch::Sender::new(false),
                live: AtomicUsize::new(0),
                idle: Notify::new(),
                failed: Mutex::default(),
                warnings: Mutex::default(),
                fatal: watch::Sender::new(None),
            }),
        }
    }
}

impl Tasks {
    /// The shutdown signal.
    pub(crate) fn shutdown_signal(&self) -> Shutdown {
        Shutdown(self.inner.shutdown.subscribe())
    }

    /// Whether shutdown has begun.
    pub(crate) fn is_stopping(&self) -> bool {
        *self.inner.shutdown.borrow()
    }

    /// Run `task` in the background: counted, cancelled at shutdown, a panic logged as
    /// `name`'s. The handle aborts it earlier (a link being replaced).
    pub(crate) fn spawn(
        &self,
        name: &'static str,
        task: impl Future<Output = ()> + Send + 'static,
    ) -> AbortHandle {
        self.track(async move {
            if let Err(panic) = AssertUnwindSafe(task).catch_unwind().await {
                tracing::error!(
                    task = name,
                    "a background task panicked: {}",
                    panic_text(&*panic)
                );
            }
        })
    }

    /// Run `task` on the payment path: counted and logged like [`Tasks::spawn`], but not tied
    /// to the shutdown signal (registering with it would take a lock every payment shares).
    /// Shutdown waits for it: it must end on its own within moments (a channel's signer, a
    /// history record) or be aborted by its owner (a link's reader and writer, when the links
    /// close).
    pub(crate) fn spawn_counted(
        &self,
        name: &'static str,
        task: impl Future<Output = ()> + Send + 'static,
    ) -> AbortHandle {
        self.inner.live.fetch_add(1, Ordering::AcqRel);
        let live = Live(self.inner.clone());
        tokio::spawn(async move {
            let _live = live;
            if let Err(panic) = AssertUnwindSafe(task).catch_unwind().await {
                tracing::error!(
                    task = name,
                    "a background task panicked: {}",
                    panic_text(&*panic)
                );
            }
        })
        .abort_handle()
    }

    /// Run `task` like [`Tasks::spawn_counted`] and hand back its output; `None` if it
    /// panicked. The task goes on if the caller stops waiting.
    pub(crate) fn run<T: Send + 'static>(
        &self,
        name: &'static str,
        task: impl Future<Output = T> + Send + 'static,
    ) -> impl Future<Output = Option<T>> + Send + 'static {
        let (output, received) = tokio::sync::oneshot::channel();
        self.spawn_counted(name, async move {
            let _ = output.send(task.await);
        });
        async move { received.await.ok() }
    }

    /// Run `task`, which the node needs for as long as it runs: if it panics or ends before
    /// shutdown, `on_failure` applies (see [`OnFailure`]).
    pub(crate) fn spawn_critical(
        &self,
        name: &'static str,
        on_failure: OnFailure,
        task: impl Future<Output = ()> + Send + 'static,
    ) {
        self.spawn_critical_until(name, on_failure, async move {
            task.await;
            false
        });
    }

    /// [`Tasks::spawn_critical`] for a task that may be told to end: it returns `true` when it
    /// ended as told (e.g. a partner's redial after `disconnectPeer`), which is no failure.
    pub(crate) fn spawn_critical_until(
        &self,
        name: &'static str,
        on_failure: OnFailure,
        task: impl Future<Output = bool> + Send + 'static,
    ) {
        let tasks = self.clone();
        self.track(async move {
            let why = match AssertUnwindSafe(task).catch_unwind().await {
                Ok(true) => return,
                Ok(false) if tasks.is_stopping() => return,
                Ok(false) => "ended".to_owned(),
                Err(panic) => format!("panicked: {}", panic_text(&*panic)),
            };
            tasks.failed(name, on_failure, &why);
        });
    }

    /// Spawn `task` counted, and cancelled as soon as the shutdown signal rises.
    fn track(&self, task: impl Future<Output = ()> + Send + 'static) -> AbortHandle {
        self.inner.live.fetch_add(1, Ordering::AcqRel);
        let live = Live(self.inner.clone());
        let mut shutdown = self.shutdown_signal();
        tokio::spawn(async move {
            let _live = live;
            tokio::select! {
                biased;
                () = task => {}
                () = shutdown.wait() => {}
            }
        })
        .abort_handle()
    }

    fn failed(&self, name: &'static str, on_failure: OnFailure, why: &str) {
        match on_failure {
            OnFailure::Stop => {
                let problem = format!(
                    "the {name} task {why}: the node stops (restart it; the log above says why)"
                );
                tracing::error!("{problem}");
                self.push(&self.inner.failed, name, problem.clone());
                self.inner.fatal.send_replace(Some(problem));
                self.inner.shutdown.send_replace(true);
            }
            OnFailure::Degrade => {
                let problem = format!(
                    "the {name} task {why}: the node takes no new risk until it is restarted"
                );
                tracing::error!("{problem}");
                self.push(&self.inner.failed, name, problem);
            }
            OnFailure::Warn => {
                let warning = format!("the {name} task {why}; restart the node to get it back");
                tracing::warn!("{warning}");
                self.push(&self.inner.warnings, name, warning);
            }
        }
    }

    /// A critical task that restarts itself (a listener, see `listen`) is down: its policy
    /// applies ([`OnFailure::Stop`] as for any task) until [`Tasks::recovered`].
    pub(crate) fn down(&self, name: &'static str, on_failure: OnFailure, why: &str) {
        match on_failure {
            OnFailure::Stop => self.failed(name, on_failure, why),
            OnFailure::Degrade => {
                let problem =
                    format!("the {name} task {why}: the node takes no new risk until it is back");
                tracing::error!("{problem}");
                self.push(&self.inner.failed, name, problem);
            }
            OnFailure::Warn => {
                let warning = format!("the {name} task {why}");
                tracing::warn!("{warning}");
                self.push(&self.inner.warnings, name, warning);
            }
        }
    }

    /// The task `name` runs again: withdraw what [`Tasks::down`] reported for it.
    pub(crate) fn recovered(&self, name: &'static str) {
        for list in [&self.inner.failed, &self.inner.warnings] {
            list.lock()
                .unwrap_or_else(PoisonError::into_inner)
                .retain(|(task, _)| *task != name);
        }
    }

    fn push(&self, list: &Mutex<Vec<(&'static str, String)>>, name: &'static str, text: String) {
        list.lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((name, text));
    }

    /// Why the node is degraded because of its tasks (empty: every critical task runs).
    pub(crate) fn problems(&self) -> Vec<String> {
        texts(&self.inner.failed)
    }

    /// Observer tasks that stopped.
    pub(crate) fn warnings(&self) -> Vec<String> {
        texts(&self.inner.warnings)
    }

    /// Resolves with the reason once a task whose policy is [`OnFailure::Stop`] failed.
    pub(crate) async fn fatal(&self) -> String {
        let mut fatal = self.inner.fatal.subscribe();
        match fatal.wait_for(Option::is_some).await {
            Ok(reason) => reason.clone().unwrap_or_default(),
            // Unreachable while `self` holds the sender; pend like a node that never fails.
            Err(_) => std::future::pending().await,
        }
    }

    /// Raise the shutdown signal and wait (at most `patience`) until every task has ended:
    /// each is cancelled at its next `.await`, a critical loop returns on the signal.
    pub(crate) async fn shutdown(&self, patience: Duration) {
        self.inner.shutdown.send_replace(true);
        let ended = tokio::time::timeout(patience, async {
            loop {
                let idle = self.inner.idle.notified();
                tokio::pin!(idle);
                idle.as_mut().enable();
                if self.inner.live.load(Ordering::Acquire) == 0 {
                    return;
                }
                idle.await;
            }
        })
        .await;
        if ended.is_err() {
            tracing::warn!(
                left = self.inner.live.load(Ordering::Acquire),
                "tasks still running {} s after shutdown began (one is blocked in a call that cannot be cancelled)",
                patience.as_secs()
            );
        }
    }
}

/// The texts of a list of reports.
fn texts(list: &Mutex<Vec<(&'static str, String)>>) -> Vec<String> {
    list.lock()
        .unwrap_or_else(PoisonError::into_inner)
        .iter()
        .map(|(_, text)| text.clone())
        .collect()
}

/// The text a panic carried, if it was a string.
pub(crate) fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn until(what: &str, check: impl Fn() -> bool) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while !check() {
            assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    #[tokio::test]
    async fn a_critical_task_that_panics_degrades_the_node_with_its_name() {
        let tasks = Tasks::default();
        tasks.spawn_critical("watchtower", OnFailure::Degrade, async {
            panic!("injected failure");
        });
        until("the failure is reported", || !tasks.problems().is_empty()).await;
        let problems = tasks.problems();
        assert_eq!(problems.len(), 1);
        assert!(
            problems[0].contains("the watchtower task panicked: injected failure"),
            "{problems:?}"
        );
        assert!(!tasks.is_stopping(), "degraded, not stopped");
    }

    #[tokio::test]
    async fn a_stop_task_that_ends_stops_the_node() {
        let tasks = Tasks::default();
        let mut shutdown = tasks.shutdown_signal();
        tasks.spawn_critical("store guard", OnFailure::Stop, async {});
        let reason = tokio::time::timeout(Duration::from_secs(60), tasks.fatal())
            .await
            .expect("the fatal signal");
        assert!(reason.contains("the store guard task ended"), "{reason}");
        tokio::time::timeout(Duration::from_secs(60), shutdown.wait())
            .await
            .expect("shutdown raised");
    }

    #[tokio::test]
    async fn an_observer_task_that_panics_warns_only() {
        let tasks = Tasks::default();
        tasks.spawn_critical("metrics server", OnFailure::Warn, async { panic!("boom") });
        until("the warning", || !tasks.warnings().is_empty()).await;
        assert!(tasks.problems().is_empty());
        assert!(tasks.warnings()[0].contains("metrics server task panicked: boom"));
    }

    #[tokio::test]
    async fn shutdown_cancels_what_runs_and_critical_tasks_ending_then_are_no_failure() {
        let tasks = Tasks::default();
        let mut shutdown = tasks.shutdown_signal();
        tasks.spawn_critical("watcher", OnFailure::Degrade, async move {
            shutdown.wait().await;
        });
        let (held, dropped) = tokio::sync::oneshot::channel::<()>();
        tasks.spawn("forever", async move {
            let _held = held;
            std::future::pending::<()>().await;
        });
        tasks.shutdown(Duration::from_secs(60)).await;
        assert!(tasks.problems().is_empty());
        assert!(dropped.await.is_err(), "the pending task was cancelled");
        assert_eq!(tasks.inner.live.load(Ordering::Acquire), 0);
    }
}
