//! A framed connection over any tokio byte stream: a reader half that turns bytes into
//! [`Message`]s and a writer half that turns messages into frames.
//!
//! Both halves own one buffer each, allocated when the connection is made: receiving and
//! sending allocate nothing more (a `Pay` with a non-empty memo allocates its memo). The
//! reader checks a frame's declared size against [`MAX_FRAME`] from its length prefix, before
//! it waits for the rest, so a peer cannot make it buffer more than one maximal frame.

use std::io;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadHalf, WriteHalf};

use crate::frame::{DecodeError, MAX_FRAME, decode_first, encode_into};
use crate::message::Message;

/// The reader's buffer: many frames per `read` call under load, at most one partial frame
/// (≤ [`MAX_FRAME`]) carried over.
const READ_BUFFER: usize = 64 * 1024;

/// The writer hands its buffer to the stream once it holds this much.
const WRITE_CHUNK: usize = 64 * 1024;

/// Why a link cannot go on. In every case the caller logs the reason and drops the link.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// The peer closed the link at a frame boundary.
    #[error("the peer closed the link")]
    Closed,
    /// Reading or writing the stream failed (including a close in the middle of a frame).
    #[error("peer link I/O failed: {0}")]
    Io(#[from] io::Error),
    /// The peer sent bytes that are not a valid frame.
    #[error("the peer sent an invalid frame: {0}")]
    Decode(#[from] DecodeError),
}

/// The receiving half: bytes in, messages out.
#[derive(Debug)]
pub struct FrameReader<R> {
    inner: R,
    buf: Box<[u8]>,
    /// Start of the bytes not yet decoded.
    start: usize,
    /// End of the bytes read.
    end: usize,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    /// A reader over `inner`, with its buffer allocated once, here.
    pub fn new(inner: R) -> Self {
        Self {
            inner,
            buf: vec![0; READ_BUFFER].into_boxed_slice(),
            start: 0,
            end: 0,
        }
    }

    /// The next message.
    ///
    /// Cancel-safe: dropping the future before it completes loses no bytes (they stay in
    /// the buffer), so `recv` can sit in a `tokio::select!` loop. After an error the link is
    /// unusable: drop it.
    pub async fn recv(&mut self) -> Result<Message, LinkError> {
        loop {
            if let Some(message) = self.next_buffered()? {
                return Ok(message);
            }
            if self.buf.len() - self.end < MAX_FRAME {
                // At most one partial frame (< MAX_FRAME) is left: move it to the front.
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            }
            let read = self.inner.read(&mut self.buf[self.end..]).await?;
            if read == 0 {
                return Err(if self.start == self.end {
                    LinkError::Closed
                } else {
                    LinkError::Io(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!(
                            "the peer closed the link in the middle of a frame ({} bytes of it \
                             received)",
                            self.end - self.start
                        ),
                    ))
                });
            }
            self.end += read;
        }
    }

    /// The next message if a whole frame is already buffered, without reading: lets a
    /// caller drain a burst (say, many `Pay`s) and answer it with one durable write.
    pub fn next_buffered(&mut self) -> Result<Option<Message>, DecodeError> {
        let Some((message, used)) = decode_first(&self.buf[self.start..self.end])? else {
            return Ok(None);
        };
        self.start += used;
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
        Ok(Some(message))
    }

    /// Bytes received but not yet decoded.
    pub fn buffered(&self) -> usize {
        self.end - self.start
    }

    /// The underlying stream.
    pub fn get_ref(&self) -> &R {
        &self.inner
    }
}

/// The sending half: messages in, frames out.
///
/// Sending is not cancel-safe: a `send` dropped halfway may have written part of a frame,
/// so a link whose send was cancelled must be dropped.
#[derive(Debug)]
pub struct FrameWriter<W> {
    inner: W,
    buf: Vec<u8>,
}

impl<W: AsyncWrite + Unpin> FrameWriter<W> {
    /// A writer over `inner`, with its buffer allocated once, here.
    pub fn new(inner: W) -> Self {
        Self {
            inner,
            buf: Vec::with_capacity(WRITE_CHUNK + MAX_FRAME),
        }
    }

    /// Send one message and flush it.
    pub async fn send(&mut self, message: &Message) -> Result<(), LinkError> {
        self.feed(message).await?;
        self.flush().await
    }

    /// Send many messages with one flush: they are encoded back to back and written in
    /// chunks of about 64 KiB.
    pub async fn send_batch(&mut self, messages: &[Message]) -> Result<(), LinkError> {
        for message in messages {
            self.feed(message).await?;
        }
        self.flush().await
    }

    /// Queue one message without flushing (it is written once 64 KiB are queued, or at the
    /// next [`flush`](Self::flush)): for callers that produce a burst one message at a time.
    pub async fn feed(&mut self, message: &Message) -> Result<(), LinkError> {
        encode_into(message, &mut self.buf);
        if self.buf.len() >= WRITE_CHUNK {
            self.write_queued().await?;
        }
        Ok(())
    }

    /// Write everything queued and flush the stream.
    pub async fn flush(&mut self) -> Result<(), LinkError> {
        self.write_queued().await?;
        self.inner.flush().await?;
        Ok(())
    }

    /// Flush, then shut the stream down for writing (the peer reads [`LinkError::Closed`]).
    pub async fn shutdown(&mut self) -> Result<(), LinkError> {
        self.flush().await?;
        self.inner.shutdown().await?;
        Ok(())
    }

    /// Bytes queued but not yet handed to the stream.
    pub fn queued(&self) -> usize {
        self.buf.len()
    }

    /// The underlying stream.
    pub fn get_ref(&self) -> &W {
        &self.inner
    }

    async fn write_queued(&mut self) -> Result<(), LinkError> {
        if !self.buf.is_empty() {
            self.inner.write_all(&self.buf).await?;
            self.buf.clear();
        }
        Ok(())
    }
}

/// Both halves of one stream. [`split`](Self::split) them to read and write from different
/// tasks.
#[derive(Debug)]
pub struct FramedConnection<S> {
    reader: FrameReader<ReadHalf<S>>,
    writer: FrameWriter<WriteHalf<S>>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> FramedConnection<S> {
    /// Frame `stream`.
    pub fn new(stream: S) -> Self {
        let (read, write) = tokio::io::split(stream);
        Self {
            reader: FrameReader::new(read),
            writer: FrameWriter::new(write),
        }
    }

    /// The next message (see [`FrameReader::recv`]).
    pub async fn recv(&mut self) -> Result<Message, LinkError> {
        self.reader.recv().await
    }

    /// Send one message and flush it.
    pub async fn send(&mut self, message: &Message) -> Result<(), LinkError> {
        self.writer.send(message).await
    }

    /// Send many messages with one flush.
    pub async fn send_batch(&mut self, messages: &[Message]) -> Result<(), LinkError> {
        self.writer.send_batch(messages).await
    }

    /// The reading half.
    pub fn reader(&mut self) -> &mut FrameReader<ReadHalf<S>> {
        &mut self.reader
    }

    /// The writing half.
    pub fn writer(&mut self) -> &mut FrameWriter<WriteHalf<S>> {
        &mut self.writer
    }

    /// The two halves, to be driven from different tasks; bytes already buffered stay with
    /// the reader.
    pub fn split(self) -> (FrameReader<ReadHalf<S>>, FrameWriter<WriteHalf<S>>) {
        (self.reader, self.writer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::{encode, encode_into};
    use crate::message::{Memo, Reason};

    fn pay(nonce: u64) -> Message {
        Message::Pay {
            channel_id: 7,
            nonce,
            transferred: u128::from(nonce) * 1_000,
            amount: 1_000,
            signature: [nonce as u8; 65],
            payment_id: [1; 16],
            memo: Memo::empty(),
        }
    }

    fn stream_of(messages: &[Message]) -> (Vec<u8>, Vec<usize>) {
        let mut bytes = Vec::new();
        let mut boundaries = vec![0];
        for message in messages {
            encode_into(message, &mut bytes);
            boundaries.push(bytes.len());
        }
        (bytes, boundaries)
    }

    /// P8 at the wire level: cut the stream at every byte. Each whole frame before the cut
    /// arrives; then a clean close at a boundary, an I/O error inside a frame.
    #[tokio::test]
    async fn a_cut_at_every_byte_yields_the_whole_frames_then_the_right_error() {
        let messages = vec![
            pay(1),
            Message::Ack {
                channel_id: 7,
                nonce: 1,
            },
            Message::Error {
                code: 1,
                reason: Reason::truncated("bye"),
            },
            pay(2),
        ];
        let (bytes, boundaries) = stream_of(&messages);
        for cut in 0..=bytes.len() {
            let mut reader = FrameReader::new(&bytes[..cut]);
            let complete = boundaries.iter().filter(|&&b| b <= cut).count() - 1;
            for expected in &messages[..complete] {
                assert_eq!(&reader.recv().await.unwrap(), expected, "cut at {cut}");
            }
            match reader.recv().await {
                Err(LinkError::Closed) => assert!(boundaries.contains(&cut), "cut at {cut}"),
                Err(LinkError::Io(e)) => {
                    assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
                    assert!(!boundaries.contains(&cut), "cut at {cut}");
                }
                other => panic!("cut at {cut}: {other:?}"),
            }
        }
    }

    #[tokio::test]
    async fn an_oversized_length_is_refused_before_the_body_arrives() {
        // Only the prefix is sent: the reader must not wait for (or buffer) 1 GiB.
        let prefix = (1u32 << 30).to_be_bytes();
        let (client, mut server) = tokio::io::duplex(64);
        let mut reader = FrameReader::new(client);
        server.write_all(&prefix).await.unwrap();
        let err = reader.recv().await.unwrap_err();
        assert!(
            matches!(err, LinkError::Decode(DecodeError::TooLarge { .. })),
            "{err}"
        );
    }

    #[tokio::test]
    async fn frames_split_across_many_reads_and_buffer_wraps() {
        // More than the read buffer holds, delivered in odd-sized pieces.
        let messages: Vec<Message> = (1..=2_000).map(pay).collect();
        let (bytes, _) = stream_of(&messages);
        assert!(bytes.len() > 3 * READ_BUFFER);
        let (client, mut server) = tokio::io::duplex(1_000);
        let writer = tokio::spawn(async move {
            for piece in bytes.chunks(777) {
                server.write_all(piece).await.unwrap();
            }
        });
        let mut reader = FrameReader::new(client);
        for expected in &messages {
            assert_eq!(&reader.recv().await.unwrap(), expected);
        }
        writer.await.unwrap();
        assert!(matches!(reader.recv().await, Err(LinkError::Closed)));
    }

    #[tokio::test]
    async fn next_buffered_drains_without_reading() {
        let (bytes, _) = stream_of(&[pay(1), pay(2), pay(3)]);
        let mut reader = FrameReader::new(&bytes[..]);
        assert_eq!(reader.next_buffered().unwrap(), None);
        assert_eq!(reader.recv().await.unwrap(), pay(1));
        assert_eq!(reader.next_buffered().unwrap(), Some(pay(2)));
        assert_eq!(reader.next_buffered().unwrap(), Some(pay(3)));
        assert_eq!(reader.next_buffered().unwrap(), None);
        assert_eq!(reader.buffered(), 0);
    }

    #[tokio::test]
    async fn writer_batches_and_feeds() {
        let mut writer = FrameWriter::new(Vec::new());
        writer.send(&pay(1)).await.unwrap();
        writer.feed(&pay(2)).await.unwrap();
        assert!(writer.queued() > 0);
        writer.send_batch(&[pay(3), pay(4)]).await.unwrap();
        assert_eq!(writer.queued(), 0);
        let expected: Vec<u8> = (1..=4).flat_map(|n| encode(&pay(n))).collect();
        assert_eq!(writer.get_ref(), &expected);
    }

    #[tokio::test]
    async fn connection_round_trips_over_a_duplex() {
        let (a, b) = tokio::io::duplex(4096);
        let mut a = FramedConnection::new(a);
        let mut b = FramedConnection::new(b);
        a.send(&Message::Ping { nonce: 9 }).await.unwrap();
        assert_eq!(b.recv().await.unwrap(), Message::Ping { nonce: 9 });
        b.send(&Message::Pong { nonce: 9 }).await.unwrap();
        assert_eq!(a.recv().await.unwrap(), Message::Pong { nonce: 9 });
        let (_, mut writer) = a.split();
        writer.shutdown().await.unwrap();
        assert!(matches!(b.recv().await, Err(LinkError::Closed)));
    }
}
