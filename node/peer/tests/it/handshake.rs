//! Handshakes over TCP: honest ones succeed both ways; each misbehaving peer is refused with
//! its own error, and (when the link still works) told why.

use std::time::{Duration, Instant};

use alloy::primitives::Address;
use alloy::primitives::B256;
use alloy::signers::SignerSync;
use alloy::signers::local::PrivateKeySigner;
use farthing_peer::frame::DecodeError;
use farthing_peer::handshake::{Hello, encrypt, exchange_hellos, handshake_digest, sign_session};
use farthing_peer::message::error_code;
use farthing_peer::{
    FrameReader, FramedConnection, HandshakeError, LinkError, Message, MessageKind,
    PROTOCOL_VERSION, RawSignature, encode, handshake,
};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::{CHAIN, tcp_pair};

/// The handshake timeout of the node side: a deadline for honest handshakes on a loaded
/// machine, never what ends a refusal (those are refused on what the peer sent).
const T: Duration = Duration::from_secs(60);

/// The node side: a real handshake on `stream`.
async fn node(
    stream: TcpStream,
    key: &PrivateKeySigner,
    expected: Option<Address>,
) -> Result<Address, HandshakeError> {
    handshake(stream, key, CHAIN, expected, T)
        .await
        .map(|(peer, _)| peer)
}

/// A hand-driven peer's Hello, claiming `claimed`.
fn hello_of(claimed: Address) -> Hello {
    Hello {
        address: claimed,
        random: [9; 32],
    }
}

/// A hand-driven peer: says Hello claiming `claimed`, returns the node's Hello.
async fn rogue_hello(conn: &mut FramedConnection<TcpStream>, claimed: Address) -> Hello {
    exchange_hellos(conn, hello_of(claimed)).await.unwrap()
}

/// A hand-driven peer: says Hello claiming `claimed`, runs the Noise handshake, returns the
/// session's hash (what a HelloAck signs) with `conn` now encrypted.
async fn rogue_session(conn: &mut FramedConnection<TcpStream>, claimed: Address) -> B256 {
    let theirs = rogue_hello(conn, claimed).await;
    encrypt(conn, CHAIN, hello_of(claimed), theirs)
        .await
        .unwrap()
}

/// The rogue reads what the node says last: an Error with `code`, then the link closes.
async fn expect_notice(conn: &mut FramedConnection<TcpStream>, code: u16) {
    match conn.recv().await.unwrap() {
        Message::Error { code: got, reason } => {
            assert_eq!(got, code, "{reason}");
            assert!(!reason.as_str().is_empty());
        }
        other => panic!("expected an Error notice, got {other:?}"),
    }
    assert!(matches!(
        conn.recv().await,
        Err(LinkError::Closed | LinkError::Io(_))
    ));
}

#[tokio::test]
async fn honest_handshakes_succeed_both_ways() {
    let alice = PrivateKeySigner::random();
    let bob = PrivateKeySigner::random();
    // Either side may dial, with or without an expected partner.
    for (dialler, acceptor) in [(&alice, &bob), (&bob, &alice)] {
        let (d, a) = tcp_pair().await;
        let (rd, ra) = tokio::join!(
            handshake(d, dialler, CHAIN, Some(acceptor.address()), T),
            handshake(a, acceptor, CHAIN, None, T),
        );
        let (peer_of_d, mut conn_d) = rd.unwrap();
        let (peer_of_a, mut conn_a) = ra.unwrap();
        assert_eq!(peer_of_d, acceptor.address());
        assert_eq!(peer_of_a, dialler.address());

        // The returned links carry messages both ways.
        conn_d.send(&Message::Ping { nonce: 5 }).await.unwrap();
        assert_eq!(conn_a.recv().await.unwrap(), Message::Ping { nonce: 5 });
        conn_a.send(&Message::Pong { nonce: 5 }).await.unwrap();
        assert_eq!(conn_d.recv().await.unwrap(), Message::Pong { nonce: 5 });
    }
}

#[tokio::test]
async fn a_peer_signing_with_another_key_is_refused() {
    let node_key = PrivateKeySigner::random();
    let claimed = PrivateKeySigner::random().address();
    let actual = PrivateKeySigner::random();
    let (n, r) = tcp_pair().await;
    let node_addr = node_key.address();

    let rogue = async move {
        let mut conn = FramedConnection::new(r);
        let session = rogue_session(&mut conn, claimed).await;
        // The right digest for the claimed address, signed by another key.
        let digest = handshake_digest(CHAIN, &session, claimed, node_addr);
        let signature: RawSignature = actual.sign_hash_sync(&digest).unwrap().as_bytes();
        let _ = conn.recv().await; // the node's own HelloAck
        conn.send(&Message::HelloAck { signature }).await.unwrap();
        expect_notice(&mut conn, error_code::HANDSHAKE).await;
        actual.address()
    };
    let (result, actual) = tokio::join!(node(n, &node_key, Some(claimed)), rogue);
    match result {
        Err(HandshakeError::WrongSigner {
            claimed: c,
            recovered,
        }) => {
            assert_eq!(c, claimed);
            assert_eq!(recovered, actual);
        }
        other => panic!("expected WrongSigner, got {other:?}"),
    }
}

#[tokio::test]
async fn a_replayed_hello_ack_is_refused() {
    let node_key = PrivateKeySigner::random();
    let peer = PrivateKeySigner::random();
    let (node_addr, peer_addr) = (node_key.address(), peer.address());

    // Session 1, honest: the eavesdropper keeps the peer's HelloAck.
    let (n, r) = tcp_pair().await;
    let honest = async {
        let mut conn = FramedConnection::new(r);
        let session = rogue_session(&mut conn, peer_addr).await;
        let signature = sign_session(&peer, CHAIN, &session, node_addr).unwrap();
        conn.send(&Message::HelloAck { signature }).await.unwrap();
        assert!(matches!(
            conn.recv().await.unwrap(),
            Message::HelloAck { .. }
        ));
        signature
    };
    let (first, recorded) = tokio::join!(node(n, &node_key, Some(peer_addr)), honest);
    assert_eq!(first.unwrap(), peer_addr);

    // Session 2: the same Hello, the recorded HelloAck, fresh Noise keys from the node.
    let (n, r) = tcp_pair().await;
    let replay = async {
        let mut conn = FramedConnection::new(r);
        let session = rogue_session(&mut conn, peer_addr).await;
        conn.send(&Message::HelloAck {
            signature: recorded,
        })
        .await
        .unwrap();
        assert!(matches!(
            conn.recv().await.unwrap(),
            Message::HelloAck { .. }
        ));
        expect_notice(&mut conn, error_code::HANDSHAKE).await;
        session
    };
    let (second, _) = tokio::join!(node(n, &node_key, Some(peer_addr)), replay);
    match second {
        Err(HandshakeError::WrongSigner { claimed, recovered }) => {
            assert_eq!(claimed, peer_addr);
            assert_ne!(recovered, peer_addr);
        }
        other => panic!("expected WrongSigner, got {other:?}"),
    }
}

/// A man in the middle terminates the Noise session of each side and relays everything
/// else, the Hellos and HelloAcks included: each signature is bound to the session it was
/// made in, so both nodes refuse the relayed one, and the middle never holds a link.
#[tokio::test]
async fn a_man_in_the_middle_relaying_both_sides_is_refused_by_both() {
    let alice = PrivateKeySigner::random();
    let bob = PrivateKeySigner::random();
    let (to_alice, at_alice) = tcp_pair().await;
    let (to_bob, at_bob) = tcp_pair().await;
    let middle = async {
        let mut a = FramedConnection::new(to_alice);
        let mut b = FramedConnection::new(to_bob);
        // Each side sees the other's address claimed, as a relay of the Hellos would show.
        let (alice_hello, bob_hello) = tokio::join!(
            exchange_hellos(&mut a, hello_of(bob.address())),
            exchange_hellos(&mut b, hello_of(alice.address())),
        );
        let (sa, sb) = tokio::join!(
            encrypt(&mut a, CHAIN, hello_of(bob.address()), alice_hello.unwrap()),
            encrypt(&mut b, CHAIN, hello_of(alice.address()), bob_hello.unwrap()),
        );
        assert_ne!(sa.unwrap(), sb.unwrap());
        let (from_alice, from_bob) = tokio::join!(a.recv(), b.recv());
        let (from_alice, from_bob) = (from_alice.unwrap(), from_bob.unwrap());
        assert!(matches!(from_alice, Message::HelloAck { .. }));
        let _ = tokio::join!(a.send(&from_bob), b.send(&from_alice));
        // Both refuse, each in its own session.
        let (na, nb) = tokio::join!(a.recv(), b.recv());
        for notice in [na, nb] {
            assert!(
                matches!(notice.unwrap(), Message::Error { code, .. } if code == error_code::HANDSHAKE)
            );
        }
    };
    let (ra, rb, ()) = tokio::join!(
        handshake(at_alice, &alice, CHAIN, Some(bob.address()), T),
        handshake(at_bob, &bob, CHAIN, None, T),
        middle,
    );
    for (result, claimed) in [(ra, bob.address()), (rb, alice.address())] {
        match result {
            Err(HandshakeError::WrongSigner {
                claimed: c,
                recovered,
            }) => {
                assert_eq!(c, claimed);
                assert_ne!(recovered, claimed);
            }
            other => panic!("expected WrongSigner, got {:?}", other.map(|(a, _)| a)),
        }
    }
}

#[tokio::test]
async fn an_unexpected_partner_is_refused_before_anything_is_signed() {
    let node_key = PrivateKeySigner::random();
    let bob = PrivateKeySigner::random().address();
    let carol = PrivateKeySigner::random();

    // Carol runs the real handshake: the node refuses, Carol learns why.
    let (n, c) = tcp_pair().await;
    let (at_node, at_carol) = tokio::join!(
        node(n, &node_key, Some(bob)),
        handshake(c, &carol, CHAIN, None, T),
    );
    match at_node {
        Err(HandshakeError::UnexpectedPeer { expected, claimed }) => {
            assert_eq!((expected, claimed), (bob, carol.address()));
        }
        other => panic!("expected UnexpectedPeer, got {other:?}"),
    }
    match at_carol {
        Err(HandshakeError::PeerRefused { code, reason }) => {
            assert_eq!(code, error_code::HANDSHAKE);
            assert!(reason.as_str().contains("expected partner"), "{reason}");
        }
        other => panic!("expected PeerRefused, got {:?}", other.map(|(a, _)| a)),
    }

    // Driven by hand: after the Hellos, the node's next frame is its Error, no HelloAck.
    let (n, r) = tcp_pair().await;
    let rogue = async {
        let mut conn = FramedConnection::new(r);
        rogue_hello(&mut conn, carol.address()).await;
        expect_notice(&mut conn, error_code::HANDSHAKE).await;
    };
    let (at_node, ()) = tokio::join!(node(n, &node_key, Some(bob)), rogue);
    assert!(matches!(
        at_node,
        Err(HandshakeError::UnexpectedPeer { .. })
    ));
}

/// Raw bytes instead of a Hello; the node reports `check` and tells the peer `code`.
async fn refused_on_bytes(bytes: Vec<u8>, code: u16) -> HandshakeError {
    let node_key = PrivateKeySigner::random();
    let (n, mut r) = tcp_pair().await;
    let rogue = async move {
        r.write_all(&bytes).await.unwrap();
        let mut reader = FrameReader::new(r);
        assert!(matches!(
            reader.recv().await.unwrap(),
            Message::Hello { .. }
        ));
        match reader.recv().await.unwrap() {
            Message::Error { code: got, .. } => assert_eq!(got, code),
            other => panic!("expected an Error notice, got {other:?}"),
        }
    };
    let (result, ()) = tokio::join!(node(n, &node_key, None), rogue);
    let err = result.unwrap_err();
    // Refused on the bytes, not by waiting them out.
    assert!(!matches!(err, HandshakeError::Timeout(_)), "{err}");
    err
}

#[tokio::test]
async fn malformed_and_oversized_frames_are_refused() {
    // 1 MiB declared: refused from the prefix alone, the body is never sent.
    let err = refused_on_bytes((1u32 << 20).to_be_bytes().to_vec(), error_code::PROTOCOL).await;
    assert!(matches!(
        err,
        HandshakeError::Link(LinkError::Decode(DecodeError::TooLarge { .. }))
    ));

    let err = refused_on_bytes(vec![0, 0, 0, 2, 9, 0x01], error_code::PROTOCOL).await;
    assert!(matches!(
        err,
        HandshakeError::Link(LinkError::Decode(DecodeError::UnsupportedVersion(9)))
    ));

    let err = refused_on_bytes(vec![0, 0, 0, 2, 1, 0x7f], error_code::PROTOCOL).await;
    assert!(matches!(
        err,
        HandshakeError::Link(LinkError::Decode(DecodeError::UnknownType(0x7f)))
    ));

    // A Hello whose payload stops short.
    let mut short = encode(&Message::Hello {
        version: PROTOCOL_VERSION,
        address: Address::repeat_byte(1),
        challenge: [1; 32],
    });
    short.truncate(short.len() - 1);
    let len = (short.len() - 4) as u32;
    short[..4].copy_from_slice(&len.to_be_bytes());
    let err = refused_on_bytes(short, error_code::PROTOCOL).await;
    assert!(matches!(
        err,
        HandshakeError::Link(LinkError::Decode(DecodeError::PayloadTruncated { .. }))
    ));

    // A well-formed frame, but not a Hello.
    let err = refused_on_bytes(encode(&Message::Ping { nonce: 1 }), error_code::PROTOCOL).await;
    assert!(matches!(
        err,
        HandshakeError::Unexpected {
            expected: MessageKind::Hello,
            got: MessageKind::Ping
        }
    ));

    // A node of the previous protocol (v2, unencrypted links) is told which versions differ.
    let hello = Message::Hello {
        version: 2,
        address: Address::repeat_byte(1),
        challenge: [1; 32],
    };
    let err = refused_on_bytes(encode(&hello), error_code::HANDSHAKE).await;
    assert!(
        matches!(err, HandshakeError::VersionMismatch { ours: 3, theirs: 2 }),
        "{err}"
    );
    assert!(err.to_string().contains("upgrade the older node"), "{err}");

    // Another protocol version.
    let hello = Message::Hello {
        version: PROTOCOL_VERSION + 1,
        address: Address::repeat_byte(1),
        challenge: [1; 32],
    };
    let err = refused_on_bytes(encode(&hello), error_code::HANDSHAKE).await;
    assert!(matches!(
        err,
        HandshakeError::VersionMismatch { theirs, .. } if theirs == PROTOCOL_VERSION + 1
    ));
}

#[tokio::test]
async fn a_silent_peer_times_out() {
    let node_key = PrivateKeySigner::random();
    let short = Duration::from_millis(300);

    // Says nothing at all.
    let (n, _silent) = tcp_pair().await;
    let start = Instant::now();
    let err = handshake(n, &node_key, CHAIN, None, short)
        .await
        .err()
        .unwrap();
    assert!(
        matches!(err, HandshakeError::Timeout(d) if d == short),
        "{err}"
    );
    let elapsed = start.elapsed();
    // Not before its deadline (how long after it depends on the machine's load).
    assert!(elapsed >= short, "{elapsed:?}");

    // Says Hello, then never goes on: the node may have sent its first Noise message (if it
    // initiates), then its notice.
    let (n, r) = tcp_pair().await;
    let half = async {
        let mut conn = FramedConnection::new(r);
        rogue_hello(&mut conn, PrivateKeySigner::random().address()).await;
        let mut next = conn.recv().await.unwrap();
        if let Message::Noise { .. } = next {
            next = conn.recv().await.unwrap();
        }
        match next {
            Message::Error { code, .. } => assert_eq!(code, error_code::TIMEOUT),
            other => panic!("expected the timeout notice, got {other:?}"),
        }
    };
    let (result, ()) = tokio::join!(handshake(n, &node_key, CHAIN, None, short), half);
    assert!(matches!(result, Err(HandshakeError::Timeout(_))));
}
