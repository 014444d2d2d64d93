//! Strangers on the peer port (RELIABILITY N1): keys that complete the real handshake but
//! share no channel with the node are capped (`peer.max_strangers`) and timed out
//! (`peer.stranger_timeout_secs`); a real partner still links, and a partner whose opening the
//! node applies while it is linked keeps its link; a peer that pings and never reads gets its
//! Pongs bounded.

use alloy::primitives::Address;
use alloy::signers::local::PrivateKeySigner;
use farthing_daemon::Node;
use farthing_e2e::{Devnet, PATIENCE, USDC, eventually, node_config, soon};
use farthing_peer::message::Message;
use farthing_peer::{FramedConnection, PeerAddr, handshake};
use tokio::net::TcpStream;

/// A Pong is queued only while fewer frames than this wait (the daemon's `PONG_ROOM`).
const PONG_ROOM: usize = 64;

/// A node on a fresh devnet (alice funded with 100 USDC), and bob's node listening, with
/// `max_strangers` and `stranger_timeout_secs`. Keep the `TempDir` bound while they run.
async fn nodes(
    max_strangers: usize,
    stranger_timeout_secs: u64,
) -> (Devnet, tempfile::TempDir, Node, Node, PeerAddr) {
    let devnet = Devnet::start().unwrap();
    let d = devnet.deploy().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    devnet
        .mint(&d, devnet.key("ALICE").address(), 100 * USDC)
        .await
        .unwrap();
    let alice = Node::start(node_config(&devnet, &d, dir.path(), 1))
        .await
        .unwrap();
    let mut config = node_config(&devnet, &d, dir.path(), 2);
    config.peer.max_strangers = max_strangers;
    config.peer.stranger_timeout_secs = stranger_timeout_secs;
    let bob = Node::start(config).await.unwrap();
    let at = bob
        .listen_peers("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let peer = format!("{}@{}", bob.address(), at).parse().unwrap();
    (devnet, dir, alice, bob, peer)
}

/// A fresh key that completes the real handshake with the node at `peer`.
async fn stranger(peer: &PeerAddr, chain_id: u64) -> (Address, FramedConnection<TcpStream>) {
    let key = PrivateKeySigner::random();
    let stream = TcpStream::connect(format!("{}:{}", peer.host, peer.port))
        .await
        .unwrap();
    let (_, conn) = handshake(stream, &key, chain_id, Some(peer.address), PATIENCE)
        .await
        .unwrap();
    (key.address(), conn)
}

/// Wait until the node closes `conn` (a stranger gets no Sync: nothing else arrives but the
/// Ping a quiet link is asked for a sign of life with).
async fn closed(conn: &mut FramedConnection<TcpStream>) {
    loop {
        match soon("the node to close the link", conn.recv()).await {
            Ok(Message::Ping { .. }) => {}
            next => {
                assert!(next.is_err(), "the node sent {next:?} instead of closing");
                return;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stranger_links_are_capped_and_a_partner_still_links() {
    let (_devnet, _dir, alice, bob, peer) = nodes(3, 600).await;
    let chain_id = bob.deployment().chain_id;
    // alice opens a channel to bob on-chain (no link needed): she is bob's partner.
    alice
        .open_channel(bob.address(), 10 * USDC as u128, Some(600))
        .await
        .unwrap();
    eventually(PATIENCE, "bob to apply the opening", async || {
        bob.channel_record(1)
    })
    .await;

    let mut held = Vec::new();
    for _ in 0..3 {
        let (address, conn) = stranger(&peer, chain_id).await;
        eventually(PATIENCE, "a stranger within the cap linked", async || {
            bob.is_linked(address)
        })
        .await;
        held.push((address, conn));
    }
    assert_eq!(bob.stranger_links(), 3);

    // One more: closed right after its handshake; the others stay.
    let (late, mut conn) = stranger(&peer, chain_id).await;
    closed(&mut conn).await;
    assert!(!bob.is_linked(late));
    assert!(held.iter().all(|(address, _)| bob.is_linked(*address)));

    // alice shares a channel with bob: she links past the strangers' cap.
    alice.connect_peer(&peer).await.unwrap();
    eventually(PATIENCE, "alice's link at bob", async || {
        bob.is_linked(alice.address())
    })
    .await;
    assert_eq!(
        bob.stranger_links(),
        3,
        "a partner takes no stranger's place"
    );

    // A stranger that leaves gives its place back.
    let (gone, conn) = held.pop().unwrap();
    drop(conn);
    eventually(PATIENCE, "the stranger's place back", async || {
        !bob.is_linked(gone) && bob.stranger_links() == 2
    })
    .await;
    let (next, _conn) = stranger(&peer, chain_id).await;
    eventually(PATIENCE, "the next stranger linked", async || {
        bob.is_linked(next)
    })
    .await;
    alice.shutdown().await;
    bob.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stranger_is_closed_after_the_timeout_and_an_opening_makes_a_link_a_partners() {
    // bob's strangers time out after 2 s, and only one may link at once.
    let (devnet, dir, alice, bob, peer) = nodes(1, 2).await;
    let chain_id = bob.deployment().chain_id;
    let (address, mut conn) = stranger(&peer, chain_id).await;
    eventually(PATIENCE, "the stranger linked", async || {
        bob.is_linked(address)
    })
    .await;
    closed(&mut conn).await;
    assert!(!bob.is_linked(address));
    eventually(PATIENCE, "the stranger's place back", async || {
        bob.stranger_links() == 0
    })
    .await;
    bob.shutdown().await;

    // A node whose strangers wait long: alice links before her channel is open (a stranger,
    // in the only place), opens it, and once carol's node applies the opening her link is a
    // partner's — the same link, its place free for a stranger.
    let d = alice.deployment().clone();
    let mut config = node_config(&devnet, &d, dir.path(), 3);
    config.peer.max_strangers = 1;
    config.peer.stranger_timeout_secs = 600;
    let carol = Node::start(config).await.unwrap();
    let at = carol
        .listen_peers("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let peer: PeerAddr = format!("{}@{}", carol.address(), at).parse().unwrap();
    alice.connect_peer(&peer).await.unwrap();
    eventually(PATIENCE, "alice's link at carol", async || {
        carol.is_linked(alice.address())
    })
    .await;
    assert_eq!(carol.stranger_links(), 1);
    let (refused, mut conn) = stranger(&peer, chain_id).await;
    closed(&mut conn).await;
    assert!(!carol.is_linked(refused));

    let ups = carol.links_established();
    alice
        .open_channel(carol.address(), 10 * USDC as u128, Some(600))
        .await
        .unwrap();
    eventually(PATIENCE, "carol's node to apply the opening", async || {
        carol.stranger_links() == 0 && carol.channel_record(1).is_some()
    })
    .await;
    assert!(carol.is_linked(alice.address()));
    assert_eq!(carol.links_established(), ups, "the same link");
    let (next, _conn) = stranger(&peer, chain_id).await;
    eventually(PATIENCE, "a stranger in the place alice left", async || {
        carol.is_linked(next)
    })
    .await;
    alice
        .wait_ready(1, PATIENCE)
        .await
        .expect("alice's channel ready over that link");
    alice.shutdown().await;
    carol.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_pings_and_never_reads_gets_its_pongs_bounded() {
    let (_devnet, _dir, alice, bob, peer) = nodes(16, 600).await;
    let chain_id = bob.deployment().chain_id;
    // A small receive window: the node's writes to it back up soon.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket
        .connect(format!("{}:{}", peer.host, peer.port).parse().unwrap())
        .await
        .unwrap();
    let key = PrivateKeySigner::random();
    let (_, mut conn) = handshake(stream, &key, chain_id, Some(peer.address), PATIENCE)
        .await
        .unwrap();
    eventually(PATIENCE, "the pinger linked", async || {
        bob.is_linked(key.address())
    })
    .await;

    // Pings in batches until the node drops Pongs (the peer reads nothing); the backlog never
    // passes the Pongs' room.
    let batch: Vec<Message> = (0..1_000).map(|nonce| Message::Ping { nonce }).collect();
    let mut sent = 0;
    let dropped = loop {
        soon("the node to read the pings", conn.send_batch(&batch))
            .await
            .unwrap();
        sent += batch.len();
        let (queued, dropped) = bob.link_backlog(key.address()).expect("still linked");
        assert!(
            queued <= PONG_ROOM,
            "{queued} frames queued after {sent} pings"
        );
        if dropped > 0 {
            break dropped;
        }
        assert!(sent < 5_000_000, "no Pong dropped after {sent} pings");
    };
    // More pings: more dropped, the backlog still bounded, the link up.
    for _ in 0..100 {
        conn.send_batch(&batch).await.unwrap();
    }
    eventually(
        PATIENCE,
        "the node to drop the pongs nobody reads",
        async || {
            let (queued, now) = bob.link_backlog(key.address()).expect("still linked");
            assert!(queued <= PONG_ROOM, "{queued} frames queued");
            now >= dropped + 50_000
        },
    )
    .await;
    alice.shutdown().await;
    bob.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_never_reads_its_rejects_has_its_link_closed() {
    let (_devnet, _dir, alice, bob, peer) = nodes(16, 600).await;
    let chain_id = bob.deployment().chain_id;
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket
        .connect(format!("{}:{}", peer.host, peer.port).parse().unwrap())
        .await
        .unwrap();
    let key = PrivateKeySigner::random();
    let (_, mut conn) = handshake(stream, &key, chain_id, Some(peer.address), PATIENCE)
        .await
        .unwrap();
    eventually(PATIENCE, "the peer linked", async || {
        bob.is_linked(key.address())
    })
    .await;

    // Proofs on a channel it does not share: each one answered with a Reject it never reads.
    let pay = |nonce| Message::Pay {
        channel_id: 999,
        nonce,
        transferred: u128::from(nonce),
        amount: 1,
        signature: [0; 65],
        payment_id: [0; 16],
        memo: farthing_peer::message::Memo::empty(),
    };
    let mut sent = 0u64;
    let mut most_queued = 0;
    while let Some((queued, _)) = bob.link_backlog(key.address()) {
        most_queued = most_queued.max(queued);
        assert!(sent < 2_000_000, "still linked after {sent} proofs");
        let batch: Vec<Message> = (sent..sent + 1_000).map(pay).collect();
        if soon("the node to read", conn.send_batch(&batch))
            .await
            .is_err()
        {
            break;
        }
        sent += 1_000;
    }
    // Closed by the node (a Reject due while 4,096 frames wait), never holding many more.
    eventually(PATIENCE, "the node to close the link", async || {
        !bob.is_linked(key.address())
    })
    .await;
    assert!(
        sent > 4_096 && most_queued <= 4_096 + 2_048,
        "{sent} sent, {most_queued} queued at most"
    );
    alice.shutdown().await;
    bob.shutdown().await;
}
