//! A man in the middle of the peer link, on the test's loopback: a TCP proxy in front of a
//! node's peer port that relays the handshake's clear frames as they are, then tampers with
//! the encrypted messages of each connection as its plan says.
//!
//! It parses the stream the way the link writes it: two clear frames per direction
//! (`u32` length: the Hello and the one Noise message each side sends), then Noise transport
//! messages (`u16` length | ciphertext | tag), counted from 0 per direction (message 0 is the
//! HelloAck).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Mutex;

/// Which way a message goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Way {
    /// From the node that dialled to the node behind the proxy.
    ToListener,
    /// Back.
    ToDialler,
}

/// What the proxy does to one encrypted message of one connection.
#[derive(Debug, Clone)]
pub enum Fault {
    /// Flip a bit of message `index` going `way`.
    Flip(Way, usize),
    /// Never deliver message `index` going `way`, and send the other side `forged` in its
    /// place (say, a clear `Ack` for the payment that was dropped).
    DropAndForge(Way, usize, Vec<u8>),
    /// Deliver message `index` going `way` twice.
    Replay(Way, usize),
    /// Deliver message `index + 1` going `way` before message `index`.
    Reorder(Way, usize),
    /// Deliver `bytes` before message `index` going `way`.
    Inject(Way, usize, Vec<u8>),
}

impl Fault {
    fn way(&self) -> Way {
        match self {
            Self::Flip(w, _)
            | Self::DropAndForge(w, _, _)
            | Self::Replay(w, _)
            | Self::Reorder(w, _)
            | Self::Inject(w, _, _) => *w,
        }
    }
}

/// The proxy: connection `i` suffers `plan[i]`; connections past the plan are relayed as
/// they are. Dropped with the value.
pub struct TamperProxy {
    /// Where to dial instead of the node.
    pub addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl TamperProxy {
    /// Listen on a free loopback port, relaying to `target`.
    pub async fn start(target: SocketAddr, plan: Vec<Fault>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((dialler, _)) = listener.accept().await else {
                    return;
                };
                let fault = plan.get(count.fetch_add(1, SeqCst)).cloned();
                tokio::spawn(async move {
                    if let Ok(listener_side) = TcpStream::connect(target).await {
                        connection(dialler, listener_side, fault).await;
                    }
                });
            }
        });
        Self {
            addr,
            accepted,
            task,
        }
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.accepted.load(SeqCst)
    }
}

impl Drop for TamperProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn connection(dialler: TcpStream, listener: TcpStream, fault: Option<Fault>) {
    let (dr, dw) = dialler.into_split();
    let (lr, lw) = listener.into_split();
    let (dw, lw) = (Arc::new(Mutex::new(dw)), Arc::new(Mutex::new(lw)));
    let to_listener = fault.clone().filter(|f| f.way() == Way::ToListener);
    let to_dialler = fault.filter(|f| f.way() == Way::ToDialler);
    tokio::join!(
        relay(dr, lw.clone(), dw.clone(), to_listener),
        relay(lr, dw, lw, to_dialler),
    );
}

/// Relay `from` → `to`, tampering as `fault` says; `back` is the other direction's writer
/// (where a forged answer goes).
async fn relay(
    mut from: OwnedReadHalf,
    to: Arc<Mutex<OwnedWriteHalf>>,
    back: Arc<Mutex<OwnedWriteHalf>>,
    fault: Option<Fault>,
) {
    let _ = relay_until_closed(&mut from, &to, &back, fault).await;
    let _ = to.lock().await.shutdown().await;
}

async fn relay_until_closed(
    from: &mut OwnedReadHalf,
    to: &Mutex<OwnedWriteHalf>,
    back: &Mutex<OwnedWriteHalf>,
    fault: Option<Fault>,
) -> std::io::Result<()> {
    for _ in 0..2 {
        let mut prefix = [0u8; 4];
        from.read_exact(&mut prefix).await?;
        let mut frame = prefix.to_vec();
        frame.resize(4 + u32::from_be_bytes(prefix) as usize, 0);
        from.read_exact(&mut frame[4..]).await?;
        to.lock().await.write_all(&frame).await?;
    }
    let mut held: Option<Vec<u8>> = None;
    for index in 0.. {
        let mut prefix = [0u8; 2];
        from.read_exact(&mut prefix).await?;
        let mut message = prefix.to_vec();
        message.resize(2 + usize::from(u16::from_be_bytes(prefix)), 0);
        from.read_exact(&mut message[2..]).await?;
        let mut out = Vec::new();
        match &fault {
            Some(Fault::Flip(_, at)) if *at == index => message[2] ^= 0x01,
            Some(Fault::DropAndForge(_, at, forged)) if *at == index => {
                message.clear();
                back.lock().await.write_all(forged).await?;
            }
            Some(Fault::Replay(_, at)) if *at == index => out.extend_from_slice(&message),
            Some(Fault::Reorder(_, at)) if *at == index => {
                held = Some(std::mem::take(&mut message));
            }
            Some(Fault::Inject(_, at, bytes)) if *at == index => out.extend_from_slice(bytes),
            _ => {}
        }
        out.extend_from_slice(&message);
        if let Some(held) =
            held.take_if(|_| matches!(&fault, Some(Fault::Reorder(_, at)) if *at + 1 == index))
        {
            out.extend_from_slice(&held);
        }
        to.lock().await.write_all(&out).await?;
    }
    Ok(())
}
