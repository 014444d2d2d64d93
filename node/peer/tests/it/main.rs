//! The peer link over real TCP on 127.0.0.1: honest handshakes both ways, every kind of
//! misbehaving peer refused with its own error, a man in the middle whose every change to the
//! encrypted stream is refused, and Pay frames streamed at rate.

// Helpers unwrap like the tests do: a failure is a test failure.
#![allow(clippy::unwrap_used)]

mod handshake;
mod tamper;
mod transport;

use tokio::net::{TcpListener, TcpStream};

/// Chain id both sides use unless a test says otherwise (anvil's).
pub(crate) const CHAIN: u64 = 31337;

/// Two ends of one real TCP connection: (dialler, acceptor).
pub(crate) async fn tcp_pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (dialled, accepted) = tokio::join!(TcpStream::connect(addr), listener.accept());
    let dialled = dialled.unwrap();
    let (accepted, _) = accepted.unwrap();
    dialled.set_nodelay(true).unwrap();
    accepted.set_nodelay(true).unwrap();
    (dialled, accepted)
}
