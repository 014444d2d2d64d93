//! A man in the middle of an encrypted link, on real TCP: it relays the handshake, then flips,
//! drops, reorders, replays or injects bytes of one encrypted message. Every message before
//! the tampered one arrives; the tampered one and everything after never do, and the
//! receiver's link fails with a cipher error.

use std::time::Duration;

use alloy::signers::local::PrivateKeySigner;
use farthing_peer::cipher::CipherError;
use farthing_peer::{LinkError, Message, encode, handshake};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

use crate::{CHAIN, tcp_pair};

/// What the middle does to Alice's encrypted message number [`TAMPERED`] (message 0 is her
/// HelloAck, 1.. her Pings).
#[derive(Debug, Clone)]
enum Tamper {
    /// Flip one bit of its ciphertext.
    Flip,
    /// Flip one bit of its tag.
    FlipTag,
    /// Never deliver it.
    Drop,
    /// Deliver the next one first.
    Reorder,
    /// Deliver it twice.
    Replay,
    /// Deliver these bytes before it.
    Inject(Vec<u8>),
    /// Change its length prefix.
    Resize,
}

const TAMPERED: usize = 3;
const PINGS: u64 = 6;

/// Relay `from` → `to`: the two plaintext frames of the handshake (Hello, Noise) as they are,
/// then encrypted messages one by one, tampering with message [`TAMPERED`].
async fn relay(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, tamper: Option<Tamper>) {
    for _ in 0..2 {
        let mut prefix = [0u8; 4];
        if from.read_exact(&mut prefix).await.is_err() {
            return;
        }
        let mut body = vec![0u8; u32::from_be_bytes(prefix) as usize];
        from.read_exact(&mut body).await.unwrap();
        to.write_all(&prefix).await.unwrap();
        to.write_all(&body).await.unwrap();
    }
    let mut held: Option<Vec<u8>> = None;
    for index in 0.. {
        let mut prefix = [0u8; 2];
        if from.read_exact(&mut prefix).await.is_err() {
            break;
        }
        let mut message = prefix.to_vec();
        message.resize(2 + usize::from(u16::from_be_bytes(prefix)), 0);
        from.read_exact(&mut message[2..]).await.unwrap();
        let mut out = Vec::new();
        match (&tamper, index == TAMPERED) {
            (Some(Tamper::Flip), true) => message[4] ^= 0x01,
            (Some(Tamper::FlipTag), true) => *message.last_mut().unwrap() ^= 0x80,
            (Some(Tamper::Drop), true) => message.clear(),
            (Some(Tamper::Reorder), true) => held = Some(std::mem::take(&mut message)),
            (Some(Tamper::Replay), true) => out.extend_from_slice(&message),
            (Some(Tamper::Inject(bytes)), true) => out.extend_from_slice(bytes),
            (Some(Tamper::Resize), true) => message[1] = message[1].wrapping_sub(1),
            _ => {}
        }
        out.extend_from_slice(&message);
        if let Some(held) = held.take_if(|_| index == TAMPERED + 1) {
            out.extend_from_slice(&held);
        }
        // A resized message leaves the stream out of step: the receiver fails either way.
        if to.write_all(&out).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}

/// Alice sends Pings 1..=PINGS through the middle, one encrypted message each; returns what
/// Bob received and how his link ended.
async fn through_the_middle(tamper: Option<Tamper>) -> (Vec<Message>, Option<LinkError>) {
    let alice = PrivateKeySigner::random();
    let bob = PrivateKeySigner::random();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let middle_addr = listener.local_addr().unwrap();
    let (to_bob, at_bob) = tcp_pair().await;
    let middle = tokio::spawn(async move {
        let (at_alice, _) = listener.accept().await.unwrap();
        let (alice_read, alice_write) = at_alice.into_split();
        let (bob_read, bob_write) = to_bob.into_split();
        tokio::join!(
            relay(alice_read, bob_write, tamper),
            relay(bob_read, alice_write, None),
        );
    });
    let t = Duration::from_secs(30);
    let dial = async {
        let stream = tokio::net::TcpStream::connect(middle_addr).await.unwrap();
        handshake(stream, &alice, CHAIN, Some(bob.address()), t).await
    };
    let (ra, rb) = tokio::join!(dial, handshake(at_bob, &bob, CHAIN, None, t));
    let (_, mut alice_conn) = ra.unwrap();
    let (_, mut bob_conn) = rb.unwrap();
    for nonce in 1..=PINGS {
        // A send may fail once Bob has dropped the link.
        if alice_conn.send(&Message::Ping { nonce }).await.is_err() {
            break;
        }
    }
    // Alice is done: the middle's relay then ends, and Bob reads the end of the stream
    // rather than wait for bytes a tampered length promised.
    drop(alice_conn);
    let mut received = Vec::new();
    let end = loop {
        match bob_conn.recv().await {
            Ok(message) => {
                received.push(message);
                if received.len() as u64 == PINGS {
                    break None;
                }
            }
            Err(err) => break Some(err),
        }
    };
    drop(bob_conn);
    middle.await.unwrap();
    (received, end)
}

fn pings(range: std::ops::RangeInclusive<u64>) -> Vec<Message> {
    range.map(|nonce| Message::Ping { nonce }).collect()
}

#[tokio::test]
async fn an_honest_middle_changes_nothing() {
    let (received, end) = through_the_middle(None).await;
    assert_eq!(received, pings(1..=PINGS));
    assert!(end.is_none());
}

#[tokio::test]
async fn nothing_tampered_with_is_accepted() {
    // Forged plaintext frames a middle would like Bob to accept.
    let ack = encode(&Message::Ack {
        channel_id: 1,
        nonce: 99,
    });
    let mut sized_garbage = vec![0u8, 40];
    sized_garbage.extend_from_slice(&[0x5a; 40]);
    let cases = [
        Tamper::Flip,
        Tamper::FlipTag,
        Tamper::Drop,
        Tamper::Reorder,
        Tamper::Replay,
        Tamper::Inject(ack),
        Tamper::Inject(sized_garbage),
        Tamper::Resize,
    ];
    for tamper in cases {
        let (received, end) = through_the_middle(Some(tamper.clone())).await;
        // Messages 1 and 2 (Pings 1, 2) came through; Ping 3 was tampered with, and nothing
        // from there on was delivered. A replay delivers Ping 3 once, then fails on its copy.
        let (delivered, failed_at) = match tamper {
            Tamper::Replay => (3, 4),
            _ => (2, 3),
        };
        assert_eq!(received, pings(1..=delivered), "{tamper:?}");
        match end {
            Some(LinkError::Cipher(CipherError::Forged { nonce })) if nonce == failed_at => {}
            // An injected plaintext frame starts with a length no message can have.
            Some(LinkError::Cipher(CipherError::TooShort(_)))
                if matches!(tamper, Tamper::Inject(_)) => {}
            other => panic!("{tamper:?}: link ended with {other:?}"),
        }
    }
}
