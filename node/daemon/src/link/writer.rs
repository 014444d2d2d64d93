//! A link's writer: sends queued frames in order, each only once the write queued before it is
//! durable (durability rule 1), many frames per flush.

use farthing_peer::FrameWriter;
use futures::FutureExt as _;
use tokio::io::WriteHalf;
use tokio::net::TcpStream;

use crate::link::queue;

/// Frames taken from the queue per flush at most.
const FRAMES_PER_FLUSH: usize = 1024;

/// Send `queue`'s frames until the link or the queue closes, or a write they wait for fails.
pub(crate) async fn write_frames(
    mut writer: FrameWriter<WriteHalf<TcpStream>>,
    mut queue: queue::Receiver,
) {
    while let Some(first) = queue.recv().await {
        let mut batch = vec![first];
        while let Some(next) = queue.try_recv() {
            batch.push(next);
            if batch.len() >= FRAMES_PER_FLUSH {
                break;
            }
        }
        let mut unsent = false;
        for outgoing in batch {
            if let Some(mut ready) = outgoing.ready {
                let durable = match (&mut ready).now_or_never() {
                    Some(durable) => durable,
                    None => {
                        // Its write is not durable yet: send the frames before it now rather
                        // than hold them back behind this write (and the ones after it).
                        if unsent && writer.flush().await.is_err() {
                            return;
                        }
                        ready.await
                    }
                };
                if let Err(e) = durable {
                    // Not durable: the frame must not leave. The link drops; payers learn it.
                    tracing::error!("store failed, dropping the peer link: {e}");
                    return;
                }
            }
            if writer.feed(&outgoing.message).await.is_err() {
                return;
            }
            unsent = true;
        }
        if unsent && writer.flush().await.is_err() {
            return;
        }
    }
}
