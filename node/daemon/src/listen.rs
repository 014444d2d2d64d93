//! Serving a listening socket: every accepted connection handed to its handler as a task of
//! its own, until shutdown. An accept error (out of descriptors under a connection flood,
//! say) does not end the listener: it is logged and retried after a pause. A listener that
//! dies anyway (its handler panicked, or its socket broke for good) is reported through its
//! [`OnFailure`] policy and bound again on the same address with backoff; once it listens
//! again the report is withdrawn. Each restart is logged once (down, back).

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::time::Duration;

use futures::FutureExt as _;
use tokio::net::{TcpListener, TcpStream};

use crate::observe::{LOG_EVERY, RateLimited};
use crate::tasks::{OnFailure, Shutdown, Tasks, panic_text};

/// The pause after a failed accept.
const ACCEPT_RETRY: Duration = Duration::from_millis(100);

/// The first wait before binding a dead listener's address again, doubling up to
/// [`MAX_REBIND`].
const FIRST_REBIND: Duration = Duration::from_millis(250);

/// The longest wait between attempts to bind again.
const MAX_REBIND: Duration = Duration::from_secs(30);

/// Accept on `listener` until shutdown, in a critical task named `name` (`on_failure` while it
/// is down, see the module docs); each connection runs what `handle` returns in a task named
/// `each`, or is closed at once if it returns `None` (refused before any work). Returns the
/// bound address, which a restart binds again.
pub(crate) fn serve<F, H>(
    tasks: &Tasks,
    listener: TcpListener,
    (name, on_failure): (&'static str, OnFailure),
    each: &'static str,
    handle: H,
) -> io::Result<SocketAddr>
where
    H: Fn(TcpStream, SocketAddr) -> Option<F> + Send + Sync + 'static,
    F: Future<Output = ()> + Send + 'static,
{
    let addr = listener.local_addr()?;
    let (tasks_, mut shutdown) = (tasks.clone(), tasks.shutdown_signal());
    let supervise = async move {
        let mut listener = listener;
        loop {
            let ended = AssertUnwindSafe(accept(&listener, name, &tasks_, each, &handle))
                .catch_unwind()
                .await;
            let why = match ended {
                Ok(None) => return,
                Ok(Some(e)) => format!("stopped accepting ({e})"),
                Err(panic) => format!("panicked: {}", panic_text(&*panic)),
            };
            // Closed before binding the address again.
            drop(listener);
            tasks_.down(name, on_failure, &format!("{why}; binding {addr} again"));
            let Some(again) = rebind(addr, name, &mut shutdown).await else {
                return;
            };
            listener = again;
            tasks_.recovered(name);
            tracing::info!("the {name} listens on {addr} again");
        }
    };
    tasks.spawn_critical(name, on_failure, supervise);
    Ok(addr)
}

/// Accept until shutdown (`None`) or until the socket itself is broken (the error).
async fn accept<F, H>(
    listener: &TcpListener,
    name: &'static str,
    tasks: &Tasks,
    each: &'static str,
    handle: &H,
) -> Option<io::Error>
where
    H: Fn(TcpStream, SocketAddr) -> Option<F>,
    F: Future<Output = ()> + Send + 'static,
{
    let mut shutdown = tasks.shutdown_signal();
    let mut failures = RateLimited::default();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = shutdown.wait() => return None,
        };
        match accepted {
            Ok((stream, remote)) => {
                if let Some(task) = handle(stream, remote) {
                    tasks.spawn(each, task);
                }
            }
            Err(e) if is_broken(listener, &e) => return Some(e),
            // Out of descriptors under a flood, say: retried, logged once per period.
            Err(e) => {
                if let Some(count) = failures.note() {
                    tracing::warn!(
                        count,
                        "{name}: accept failed: {e}; retrying every {} ms (at most one such line per {} s)",
                        ACCEPT_RETRY.as_millis(),
                        LOG_EVERY.as_secs()
                    );
                }
                tokio::time::sleep(ACCEPT_RETRY).await;
            }
        }
    }
}

/// Whether an accept error means the listening socket itself no longer works (not listening,
/// not a socket, closed), as opposed to a connection or a resource that failed.
fn is_broken(listener: &TcpListener, error: &io::Error) -> bool {
    error.kind() == io::ErrorKind::InvalidInput || listener.local_addr().is_err()
}

/// Bind `addr` again, with backoff, until it works (`None`: shutdown came first). The first
/// failure is logged, the others are not.
async fn rebind(addr: SocketAddr, name: &str, shutdown: &mut Shutdown) -> Option<TcpListener> {
    let mut delay = FIRST_REBIND;
    let mut logged = false;
    loop {
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = shutdown.wait() => return None,
        }
        match TcpListener::bind(addr).await {
            Ok(listener) => return Some(listener),
            Err(e) if !logged => {
                tracing::warn!(
                    "the {name} cannot bind {addr} again yet ({e}); retrying every {} s at most",
                    MAX_REBIND.as_secs()
                );
                logged = true;
            }
            Err(_) => {}
        }
        delay = (delay * 2).min(MAX_REBIND);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    async fn until(what: &str, check: impl Fn() -> bool) {
        // A deadline against a hang, not a timing goal: a loaded machine may be slow.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while !check() {
            assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    /// Connect to `addr` until a connection is served (the handler writes "hi").
    async fn until_served(addr: SocketAddr) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(mut stream) = TcpStream::connect(addr).await {
                let mut hi = [0u8; 2];
                if stream.read_exact(&mut hi).await.is_ok() && &hi == b"hi" {
                    return;
                }
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{addr} is not served again"
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    #[tokio::test]
    async fn a_peer_listener_that_panics_is_bound_again_and_the_node_recovers() {
        let tasks = Tasks::default();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let calls = Arc::new(AtomicUsize::new(0));
        let seen = calls.clone();
        let addr = serve(
            &tasks,
            listener,
            ("peer listener", OnFailure::Degrade),
            "peer handshake",
            move |mut stream: TcpStream, _| {
                if seen.fetch_add(1, Ordering::AcqRel) == 1 {
                    panic!("injected failure");
                }
                Some(async move {
                    let _ = stream.write_all(b"hi").await;
                })
            },
        )
        .unwrap();
        until_served(addr).await;

        // The second connection kills the accept loop: the node reports it, naming the task.
        let _second = TcpStream::connect(addr).await.unwrap();
        until("the listener is reported down", || {
            !tasks.problems().is_empty()
        })
        .await;
        let problems = tasks.problems();
        assert!(
            problems[0].contains("the peer listener task panicked: injected failure")
                && problems[0].contains(&format!("binding {addr} again")),
            "{problems:?}"
        );

        // It listens on the same address again and the report is withdrawn.
        until_served(addr).await;
        until("the degraded reason is cleared", || {
            tasks.problems().is_empty()
        })
        .await;
        assert!(calls.load(Ordering::Acquire) >= 3);
        assert!(tasks.warnings().is_empty());

        // Shutdown ends it without a report.
        tasks.shutdown(Duration::from_secs(60)).await;
        assert!(tasks.problems().is_empty());
    }

    #[tokio::test]
    async fn an_accept_error_of_a_socket_that_is_not_listening_is_fatal() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let invalid = io::Error::from(io::ErrorKind::InvalidInput);
        assert!(is_broken(&listener, &invalid));
        for transient in [
            io::ErrorKind::ConnectionAborted,
            io::ErrorKind::OutOfMemory,
            io::ErrorKind::Interrupted,
        ] {
            assert!(!is_broken(&listener, &io::Error::from(transient)));
        }
        // Out of descriptors (EMFILE, 24 on Linux and macOS) is retried on the same socket.
        assert!(!is_broken(&listener, &io::Error::from_raw_os_error(24)));
    }
}
