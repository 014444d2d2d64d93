//! Every background task of the node belongs to one [`Tasks`] set with one shutdown signal
//! (reth's `TaskExecutor`, mini-redis's shutdown broadcast).
//!
//! - [`Tasks::spawn`] (and [`Tasks::run`], which hands back an output): a task whose end is nobody's business (a connection's reader, a
//!   channel's signer, a receipt wait). It is tracked, aborted at shutdown if still running,
//!   and a panic in it is logged with its name.
//! - [`Tasks::spawn_critical`]: a task the node needs for as long as it runs (the watcher,
//!   the watchtower, the store guard, a listener). If it panics, or returns before shutdown,
//!   its [`OnFailure`] policy applies: the node reports itself degraded (it takes no new risk
//!   and says why), or it stops (the binary exits non-zero so a supervisor restarts it), or —
//!   for tasks that only serve observers — it raises a warning. A critical task never
//!   vanishes silently.
//!
//! [`Tasks::shutdown`] raises the signal, gives tasks a grace period to finish what they do,
//! then aborts whatever still runs.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures::FutureExt as _;
use tokio::sync::watch;
use tokio::task::{AbortHandle, JoinSet};

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
    /// Tracked tasks (a critical task is tracked through its supervisor).
    set: Mutex<JoinSet<()>>,
    /// Why the node is degraded: critical tasks that failed.
    failed: Mutex<Vec<String>>,
    /// Observer tasks that failed.
    warnings: Mutex<Vec<String>>,
    /// Set once a task whose policy is [`OnFailure::Stop`] failed.
    fatal: watch::Sender<Option<String>>,
}

impl Default for Tasks {
    fn default() -> Self {
        Self {
            inner: Arc::new(Inner {
                shutdown: watch::Sender::new(false),
                set: Mutex::new(JoinSet::new()),
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

    /// Run `task` in the background, tracked: aborted at shutdown, a panic logged as `name`'s.
    /// The handle aborts it earlier (a link being replaced).
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

    /// Run `task` tracked (see [`Tasks::spawn`]) and hand back its output; `None` if it
    /// panicked or was aborted at shutdown. The task goes on if the caller stops waiting.
    pub(crate) fn run<T: Send + 'static>(
        &self,
        name: &'static str,
        task: impl Future<Output = T> + Send + 'static,
    ) -> impl Future<Output = Option<T>> + Send + 'static {
        let (output, received) = tokio::sync::oneshot::channel();
        self.spawn(name, async move {
            let _ = output.send(task.await);
        });
        async move { received.await.ok() }
    }

    /// Run `task`, which the node needs for as long as it runs: if it panics or ends before
    /// shutdown, `on_failure` applies (see [`OnFailure`]). Aborted at shutdown like the rest.
    pub(crate) fn spawn_critical(
        &self,
        name: &'static str,
        on_failure: OnFailure,
        task: impl Future<Output = ()> + Send + 'static,
    ) {
        let tasks = self.clone();
        self.track(async move {
            let why = match AssertUnwindSafe(task).catch_unwind().await {
                Ok(()) if tasks.is_stopping() => return,
                Ok(()) => "ended".to_owned(),
                Err(panic) => format!("panicked: {}", panic_text(&*panic)),
            };
            tasks.failed(name, on_failure, &why);
        });
    }

    fn track(&self, task: impl Future<Output = ()> + Send + 'static) -> AbortHandle {
        let mut set = self
            .inner
            .set
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        // Reap what finished, so the set holds only running tasks.
        while set.try_join_next().is_some() {}
        set.spawn(task)
    }

    fn failed(&self, name: &'static str, on_failure: OnFailure, why: &str) {
        match on_failure {
            OnFailure::Stop => {
                let problem = format!(
                    "the {name} task {why}: the node stops (restart it; the log above says why)"
                );
                tracing::error!("{problem}");
                self.push(&self.inner.failed, problem.clone());
                self.inner.fatal.send_replace(Some(problem));
                self.inner.shutdown.send_replace(true);
            }
            OnFailure::Degrade => {
                let problem = format!(
                    "the {name} task {why}: the node takes no new risk until it is restarted"
                );
                tracing::error!("{problem}");
                self.push(&self.inner.failed, problem);
            }
            OnFailure::Warn => {
                let warning = format!("the {name} task {why}; restart the node to get it back");
                tracing::warn!("{warning}");
                self.push(&self.inner.warnings, warning);
            }
        }
    }

    fn push(&self, list: &Mutex<Vec<String>>, text: String) {
        list.lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(text);
    }

    /// Why the node is degraded because of its tasks (empty: every critical task runs).
    pub(crate) fn problems(&self) -> Vec<String> {
        self.inner
            .failed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Observer tasks that stopped.
    pub(crate) fn warnings(&self) -> Vec<String> {
        self.inner
            .warnings
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
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

    /// Raise the shutdown signal, let tasks finish for up to `grace`, abort the rest.
    pub(crate) async fn shutdown(&self, grace: Duration) {
        self.inner.shutdown.send_replace(true);
        let mut set = std::mem::take(
            &mut *self
                .inner
                .set
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        let drained =
            tokio::time::timeout(grace, async { while set.join_next().await.is_some() {} }).await;
        if drained.is_err() {
            tracing::debug!(
                left = set.len(),
                "tasks still running after the grace period: aborted"
            );
        }
        set.shutdown().await;
        // Whatever was spawned during the grace period goes too.
        let late = std::mem::take(
            &mut *self
                .inner
                .set
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        drop(late);
    }
}

/// The text a panic carried, if it was a string.
fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
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
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while !check() {
            assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
            tokio::task::yield_now().await;
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
        let reason = tokio::time::timeout(Duration::from_secs(10), tasks.fatal())
            .await
            .expect("the fatal signal");
        assert!(reason.contains("the store guard task ended"), "{reason}");
        tokio::time::timeout(Duration::from_secs(10), shutdown.wait())
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
    async fn critical_tasks_that_end_at_shutdown_are_not_failures() {
        let tasks = Tasks::default();
        let mut shutdown = tasks.shutdown_signal();
        tasks.spawn_critical("watcher", OnFailure::Degrade, async move {
            shutdown.wait().await;
        });
        let forever = tasks.spawn("forever", std::future::pending());
        tasks.shutdown(Duration::from_millis(50)).await;
        assert!(tasks.problems().is_empty());
        assert!(
            forever.is_finished(),
            "a task still running after the grace is aborted"
        );
    }
}
