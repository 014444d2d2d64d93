//! A framed connection over any tokio byte stream: a reader half that turns bytes into
//! [`Message`]s and a writer half that turns messages into frames.
//!
//! A link made by [`handshake`](crate::handshake()) is encrypted: the writer seals its
//! queued frames into Noise transport messages ([`mod@crate::cipher`]) and the reader opens
//! them before it decodes a frame, so nothing reaches the caller that the peer did not send,
//! in order. [`FramedConnection::new`] makes a plaintext link, which only the handshake's
//! first messages (and tests) use.
//!
//! Both halves own their buffers, allocated when the connection is made: receiving and
//! sending allocate nothing more (a `Pay` with a non-empty memo allocates its memo). The
//! reader checks a frame's declared size against [`MAX_FRAME`] from its length prefix, before
//! it waits for the rest, so a peer cannot make it buffer more than one maximal frame (or one
//! maximal encrypted message).

use std::{fmt, io};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadHalf, WriteHalf};

use crate::cipher::{self, CipherError, CipherState, MAX_MESSAGE, MAX_PLAINTEXT};
use crate::frame::{DecodeError, MAX_FRAME, decode_first, encode_into};
use crate::message::Message;

/// The reader's frame buffer: many frames per `read` (or per decrypted message) under load;
/// at most one partial frame (< [`MAX_FRAME`]) is carried over, so one whole decrypted
/// message always fits after it.
const READ_BUFFER: usize = MAX_PLAINTEXT + MAX_FRAME;

/// The encrypted reader's buffer of ciphertext: at most one partial message carried over.
const WIRE_BUFFER: usize = 2 * (cipher::LENGTH_PREFIX + MAX_MESSAGE);

/// The writer hands its buffer to the stream once it holds this much: the queue then never
/// exceeds one encrypted message's plaintext.
const WRITE_CHUNK: usize = MAX_PLAINTEXT - MAX_FRAME;

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
    /// An encrypted message did not authenticate (or could not be sealed).
    #[error("peer link encryption: {0}")]
    Cipher(#[from] CipherError),
}

/// The encrypted reader's ciphertext side.
struct Opening {
    cipher: CipherState,
    wire: Box<[u8]>,
    start: usize,
    end: usize,
}

/// The receiving half: bytes in, messages out.
pub struct FrameReader<R> {
    inner: R,
    /// Plaintext frames.
    buf: Box<[u8]>,
    /// Start of the bytes not yet decoded.
    start: usize,
    /// End of the bytes read (or decrypted).
    end: usize,
    /// `Some` once the link is encrypted: `buf` then holds decrypted bytes.
    opening: Option<Box<Opening>>,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    /// A plaintext reader over `inner`, with its buffer allocated once, here.
    pub fn new(inner: R) -> Self {
        Self {
            inner,
            buf: vec![0; READ_BUFFER].into_boxed_slice(),
            start: 0,
            end: 0,
            opening: None,
        }
    }

    /// A reader of Noise transport messages under `cipher` (see [`mod@crate::cipher`]).
    pub fn encrypted(inner: R, cipher: CipherState) -> Self {
        let mut reader = Self::new(inner);
        reader.start_decrypting(cipher);
        reader
    }

    /// From here on the stream carries encrypted messages. Bytes already read and not yet
    /// decoded were the first of them: they move to the ciphertext side.
    pub(crate) fn start_decrypting(&mut self, cipher: CipherState) {
        let mut wire = vec![0; WIRE_BUFFER].into_boxed_slice();
        let carried = self.end - self.start;
        wire[..carried].copy_from_slice(&self.buf[self.start..self.end]);
        self.start = 0;
        self.end = 0;
        self.opening = Some(Box::new(Opening {
            cipher,
            wire,
            start: 0,
            end: carried,
        }));
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
            // Where the next bytes go: the ciphertext buffer, or the frame buffer.
            let (buf, start, end, room) = match self.opening.as_deref_mut() {
                Some(o) => (
                    &mut o.wire,
                    &mut o.start,
                    &mut o.end,
                    cipher::LENGTH_PREFIX + MAX_MESSAGE,
                ),
                None => (&mut self.buf, &mut self.start, &mut self.end, MAX_FRAME),
            };
            if buf.len() - *end < room {
                // At most one partial frame or message is left: move it to the front.
                buf.copy_within(*start..*end, 0);
                *end -= *start;
                *start = 0;
            }
            let read = self.inner.read(&mut buf[*end..]).await?;
            if read == 0 {
                let partial = self.buffered();
                return Err(if partial == 0 {
                    LinkError::Closed
                } else {
                    LinkError::Io(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!(
                            "the peer closed the link in the middle of a frame ({partial} bytes \
                             of it received)"
                        ),
                    ))
                });
            }
            *end += read;
        }
    }

    /// The next message if a whole frame is already buffered (decrypting what it must),
    /// without reading: lets a caller drain a burst (say, many `Pay`s) and answer it with
    /// one durable write.
    pub fn next_buffered(&mut self) -> Result<Option<Message>, LinkError> {
        loop {
            if let Some((message, used)) = decode_first(&self.buf[self.start..self.end])? {
                self.start += used;
                if self.start == self.end {
                    self.start = 0;
                    self.end = 0;
                }
                return Ok(Some(message));
            }
            if !self.open_one()? {
                return Ok(None);
            }
        }
    }

    /// Decrypt the next whole buffered message into the frame buffer; `false` if none is
    /// whole yet (or the link is plaintext). Called only when the frame buffer holds no
    /// whole frame, so at most `MAX_FRAME` bytes are left in it and the message fits.
    fn open_one(&mut self) -> Result<bool, LinkError> {
        let Some(o) = self.opening.as_deref_mut() else {
            return Ok(false);
        };
        let Some(prefix) = o.wire[o.start..o.end].first_chunk::<{ cipher::LENGTH_PREFIX }>() else {
            return Ok(false);
        };
        let len = usize::from(u16::from_be_bytes(*prefix));
        let at = o.start + cipher::LENGTH_PREFIX;
        if o.end - at < len {
            return Ok(false);
        }
        let plaintext = o.cipher.open(&mut o.wire[at..at + len])?;
        if self.buf.len() - self.end < plaintext.len() {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        self.buf[self.end..self.end + plaintext.len()].copy_from_slice(plaintext);
        self.end += plaintext.len();
        o.start = at + len;
        if o.start == o.end {
            o.start = 0;
            o.end = 0;
        }
        Ok(true)
    }

    /// Bytes received but not yet decoded (ciphertext included).
    pub fn buffered(&self) -> usize {
        let wire = self.opening.as_ref().map_or(0, |o| o.end - o.start);
        self.end - self.start + wire
    }

    /// Whether this reader decrypts.
    pub fn is_encrypted(&self) -> bool {
        self.opening.is_some()
    }

    /// The underlying stream.
    pub fn get_ref(&self) -> &R {
        &self.inner
    }
}

/// The encrypting writer's ciphertext side.
struct Sealing {
    cipher: CipherState,
    wire: Vec<u8>,
}

/// The sending half: messages in, frames out.
///
/// Sending is not cancel-safe: a `send` dropped halfway may have written part of a frame,
/// so a link whose send was cancelled must be dropped.
pub struct FrameWriter<W> {
    inner: W,
    buf: Vec<u8>,
    /// `Some` once the link is encrypted.
    sealing: Option<Sealing>,
}

impl<W: AsyncWrite + Unpin> FrameWriter<W> {
    /// A plaintext writer over `inner`, with its buffer allocated once, here.
    pub fn new(inner: W) -> Self {
        Self {
            inner,
            buf: Vec::with_capacity(WRITE_CHUNK + MAX_FRAME),
            sealing: None,
        }
    }

    /// A writer of Noise transport messages under `cipher` (see [`mod@crate::cipher`]).
    pub fn encrypted(inner: W, cipher: CipherState) -> Self {
        let mut writer = Self::new(inner);
        writer.start_encrypting(cipher);
        writer
    }

    /// From here on everything written is encrypted. Call with nothing queued.
    pub(crate) fn start_encrypting(&mut self, cipher: CipherState) {
        debug_assert!(self.buf.is_empty());
        self.sealing = Some(Sealing {
            cipher,
            wire: Vec::with_capacity(cipher::LENGTH_PREFIX + MAX_MESSAGE),
        });
    }

    /// Send one message and flush it.
    pub async fn send(&mut self, message: &Message) -> Result<(), LinkError> {
        self.feed(message).await?;
        self.flush().await
    }

    /// Send many messages with one flush: they are encoded back to back and written in
    /// chunks of about 60 KiB (one encrypted message each).
    pub async fn send_batch(&mut self, messages: &[Message]) -> Result<(), LinkError> {
        for message in messages {
            self.feed(message).await?;
        }
        self.flush().await
    }

    /// Queue one message without flushing (it is written once about 60 KiB are queued, or
    /// at the next [`flush`](Self::flush)): for callers that produce a burst one message at a
    /// time.
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
        if self.buf.is_empty() {
            return Ok(());
        }
        match &mut self.sealing {
            None => self.inner.write_all(&self.buf).await?,
            Some(sealing) => {
                sealing.wire.clear();
                for chunk in self.buf.chunks(MAX_PLAINTEXT) {
                    sealing.cipher.seal(chunk, &mut sealing.wire)?;
                }
                self.inner.write_all(&sealing.wire).await?;
            }
        }
        self.buf.clear();
        Ok(())
    }
}

// Debug shows where the buffers stand, never their bytes (decrypted frames) or the keys.
impl<R> fmt::Debug for FrameReader<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("FrameReader");
        d.field("buffered", &(self.end - self.start));
        if let Some(o) = &self.opening {
            d.field("ciphertext", &(o.end - o.start))
                .field("cipher", &o.cipher);
        }
        d.finish_non_exhaustive()
    }
}

impl<W> fmt::Debug for FrameWriter<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("FrameWriter");
        d.field("queued", &self.buf.len());
        if let Some(sealing) = &self.sealing {
            d.field("cipher", &sealing.cipher);
        }
        d.finish_non_exhaustive()
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
    /// Frame `stream`, in plaintext.
    pub fn new(stream: S) -> Self {
        let (read, write) = tokio::io::split(stream);
        Self {
            reader: FrameReader::new(read),
            writer: FrameWriter::new(write),
        }
    }

    /// From here on the link is encrypted: `send` seals what this side writes, `receive`
    /// opens what it reads. Nothing may be queued to write.
    pub(crate) fn start_encrypting(&mut self, send: CipherState, receive: CipherState) {
        self.writer.start_encrypting(send);
        self.reader.start_decrypting(receive);
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
