//! A link's reader. It takes every frame already buffered (a burst), applies each as a
//! [`Command`], waits once for the burst's last write to be durable, then sends ONE cumulative
//! `Ack` per channel with the other replies (durability rule 3: nothing is acknowledged before
//! it is durable; many payments share one fsync).

use std::sync::Arc;
use std::time::{Duration, Instant};

use alloy::primitives::Address;
use farthing_peer::FrameReader;
use farthing_peer::message::Message;
use tokio::io::ReadHalf;
use tokio::net::TcpStream;

use crate::chain::watcher::PASS_TIMEOUT;
use crate::link::Link;
use crate::net::Peering;
use crate::net::command::{Burst, Command};

/// Frames taken into one burst at most.
const FRAMES_PER_BURST: usize = 1024;

/// A link that brings nothing for this long is asked for a sign of life (a Ping). A lost
/// frame shows this way: the link is encrypted, so the next frame after a gap (the Ping, if
/// nothing else) fails its authentication at the other end, which drops the link.
pub(crate) const LINK_IDLE: Duration = Duration::from_secs(15);

/// A link that brings nothing at all (not even a Pong) for this long is dropped, and
/// redialled: a peer whose bytes a middlebox holds back does not hold a payer longer. It is
/// well past what keeps a healthy peer from answering a Ping: its reader waits up to
/// [`PASS_TIMEOUT`] for the chain on a payment for a channel it does not know yet, and its
/// Pong queues behind Acks that wait for its disk.
pub(crate) const LINK_DEAD: Duration = Duration::from_secs(75);
const _: () = assert!(LINK_DEAD.as_secs() >= 2 * PASS_TIMEOUT.as_secs() + LINK_IDLE.as_secs());

impl Peering {
    /// Read and apply `peer`'s frames until the link fails.
    pub(crate) async fn read_frames(
        self: &Arc<Self>,
        peer: Address,
        link: &Link,
        mut reader: FrameReader<ReadHalf<TcpStream>>,
    ) -> Result<(), farthing_peer::LinkError> {
        let (mut last_heard, mut pinged) = (Instant::now(), false);
        loop {
            let first = match tokio::time::timeout(LINK_IDLE, reader.recv()).await {
                Ok(first) => first?,
                // `recv` is cancel-safe: nothing read is lost by timing out.
                Err(_) if last_heard.elapsed() >= LINK_DEAD => {
                    return Err(farthing_peer::LinkError::Io(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        format!(
                            "the peer sent nothing for {} s (a Ping was sent after {} s)",
                            LINK_DEAD.as_secs(),
                            LINK_IDLE.as_secs()
                        ),
                    )));
                }
                Err(_) => {
                    if !pinged {
                        pinged = true;
                        link.send(Message::Ping { nonce: 0 }, None);
                    }
                    continue;
                }
            };
            (last_heard, pinged) = (Instant::now(), false);
            let mut frames = vec![first];
            while let Ok(Some(next)) = reader.next_buffered() {
                frames.push(next);
                if frames.len() >= FRAMES_PER_BURST {
                    break;
                }
            }
            // A payment on a channel this node has not seen yet: its open may be in the newest
            // blocks; look at the chain once before refusing.
            let unknown = frames.iter().any(|m| {
                matches!(m, Message::Pay { .. } | Message::PayBatch { .. })
                    && m.channel_id()
                        .is_some_and(|id| self.table.partner_of(id).is_none())
            });
            if unknown {
                // Bounded: a chain RPC that hangs must not stop this partner's Acks.
                let _ = tokio::time::timeout(PASS_TIMEOUT, self.watcher.sync()).await;
            }
            let mut burst = Burst::default();
            for frame in frames {
                Command::from_frame(frame).apply(self, peer, link, &mut burst);
            }
            self.answer(link, burst);
        }
    }

    /// Send the burst's acknowledgements and replies once its last write is durable (writes
    /// complete in queue order, so that one covers them all).
    fn answer(&self, link: &Link, burst: Burst) {
        let Burst {
            last_durable,
            acks,
            received,
            mut replies,
        } = burst;
        replies.extend(
            acks.into_iter()
                .map(|(channel_id, nonce)| Message::Ack { channel_id, nonce }),
        );
        self.payments.record_received(received);
        let mut ready = last_durable;
        for reply in replies {
            match reply {
                // Depends on no write; dropped if the peer does not read (bounded queue).
                Message::Pong { .. } => {
                    link.send_pong(reply);
                }
                // Refused frames changed nothing: no write to wait for; a peer that earns
                // them and does not read loses its link (bounded queue).
                Message::Reject { .. } => {
                    link.send_reject(reply);
                }
                reply => {
                    link.send(reply, ready.take());
                }
            }
        }
    }
}
