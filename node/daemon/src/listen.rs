//! Serving a listening socket: every accepted connection handed to its handler as a task of
//! its own, until shutdown. An accept error (out of descriptors under a connection flood,
//! say) does not end the listener: it is logged and retried after a pause.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};

use crate::tasks::{OnFailure, Tasks};

/// The pause after a failed accept.
const ACCEPT_RETRY: Duration = Duration::from_millis(100);

/// Accept on `listener` until shutdown, in a critical task named `name` (`on_failure` if it
/// ever stops); each connection runs what `handle` returns in a task named `each`, or is
/// closed at once if it returns `None` (refused before any work).
pub(crate) fn serve<F, H>(
    tasks: &Tasks,
    listener: TcpListener,
    (name, on_failure): (&'static str, OnFailure),
    each: &'static str,
    handle: H,
) where
    H: Fn(TcpStream, SocketAddr) -> Option<F> + Send + 'static,
    F: Future<Output = ()> + Send + 'static,
{
    let (spawner, mut shutdown) = (tasks.clone(), tasks.shutdown_signal());
    let accept = async move {
        loop {
            let accepted = tokio::select! {
                accepted = listener.accept() => accepted,
                () = shutdown.wait() => return,
            };
            match accepted {
                Ok((stream, remote)) => {
                    if let Some(task) = handle(stream, remote) {
                        spawner.spawn(each, task);
                    }
                }
                Err(e) => {
                    tracing::warn!("{name}: accept failed: {e}; retrying");
                    tokio::time::sleep(ACCEPT_RETRY).await;
                }
            }
        }
    };
    tasks.spawn_critical(name, on_failure, accept);
}
