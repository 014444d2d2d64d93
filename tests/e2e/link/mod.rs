//! Payments over the real peer link: two nodes with their own RocksDB, an authenticated TCP
//! link, many payments in flight at once in both directions, each call returning only once the
//! partner acknowledged it as durable; a forged proof sent straight over the wire by a test
//! peer is refused with the reason and the channel keeps working.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::time::{Duration, Instant};

use alloy::primitives::U256;
use farthing_chain::messages;
use farthing_core::{PaymentError, WithdrawError};
use farthing_daemon::{CosignError, Node, OpError, PayError};
use farthing_e2e::{Devnet, PATIENCE, Party, USDC, done_if, eventually, node_config, soon};
use farthing_peer::message::{Memo, Message};
use farthing_peer::{PeerAddr, handshake};
use farthing_store::Store as _;
use futures::FutureExt as _;

mod cosign;
mod flow;
mod resync;
mod store;
mod tamper;
mod wire;

/// A devnet with the contracts, alice's node (funded with 100 USDC) and bob's node listening
/// for partners at `peer`. Keep `_dir` bound while the nodes run: it holds their databases.
struct Pair {
    devnet: Devnet,
    d: farthing_chain::Deployment,
    _dir: tempfile::TempDir,
    alice: Node,
    bob: Node,
    peer: PeerAddr,
}

async fn pair() -> Pair {
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
    let bob = Node::start(node_config(&devnet, &d, dir.path(), 2))
        .await
        .unwrap();
    let bob_addr = bob
        .listen_peers("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let peer = format!("{}@{}", bob.address(), bob_addr).parse().unwrap();
    Pair {
        devnet,
        d,
        _dir: dir,
        alice,
        bob,
        peer,
    }
}

/// [`pair`], linked, with channel 1 open from alice (10 USDC) and seen by bob's node.
async fn linked() -> Pair {
    let pair = pair().await;
    pair.alice.connect_peer(&pair.peer).await.unwrap();
    // bob's side of the link comes up once its own handshake is through.
    eventually(PATIENCE, "bob's side of the link", async || {
        pair.bob.is_linked(pair.alice.address())
    })
    .await;
    pair.alice
        .open_channel(pair.bob.address(), 10 * USDC as u128, Some(600))
        .await
        .unwrap();
    eventually(PATIENCE, "bob to see the channel", async || {
        pair.bob.channel_record(1)
    })
    .await;
    pair
}

/// Pay once, over a link the node's keep-alive (re)dials: with an idempotency key of its own,
/// so that trying again never pays twice. LinkDown (no link yet) signed nothing; Undelivered
/// (the payment went out on a link that was already dying, and no Sync settled it within the
/// node's grace) is answered by the repeat once the new link's Sync or Ack covers it.
async fn pay_when_linked(node: &Node, channel: u64, amount: u128) -> farthing_daemon::Paid {
    static KEYS: AtomicU64 = AtomicU64::new(0);
    let key = format!("when-linked-{}", KEYS.fetch_add(1, SeqCst));
    eventually(
        PATIENCE,
        "a payment over the (re)dialed link",
        async || match node.pay(channel, amount, b"", Some(&key)).await {
            Err(e @ (PayError::NoLink | PayError::Undelivered { .. })) => Err(e),
            paid => Ok(paid.unwrap()),
        },
    )
    .await
}

/// bob's side of the link played by the test, with bob's key: it decides what alice's node
/// hears back (or not).
struct FakeBob {
    listener: tokio::net::TcpListener,
    key: alloy::signers::local::PrivateKeySigner,
    chain_id: u64,
}

type Wire = farthing_peer::FramedConnection<tokio::net::TcpStream>;

impl FakeBob {
    /// The next link alice's node dials, past the handshake, greeted as a node greets a link:
    /// a Sync for channel 1 (nothing signed, nothing received), which tells alice's node that
    /// bob's knows the channel. A dial alice's node gave up on while it waited in the backlog
    /// (its handshake timed out) fails the handshake here: the next one is taken.
    async fn accept(&self) -> Wire {
        soon("alice's node to dial bob", async {
            loop {
                let (stream, _) = self.listener.accept().await.unwrap();
                if let Ok((_, mut wire)) =
                    handshake(stream, &self.key, self.chain_id, None, PATIENCE).await
                {
                    let hello = Message::Sync {
                        channel_id: 1,
                        sent: None,
                        received_nonce: 0,
                    };
                    if wire.send(&hello).await.is_ok() {
                        return wire;
                    }
                }
            }
        })
        .await
    }
}

/// The next message on `wire` that is not a Sync or Ping.
async fn next_pay(wire: &mut Wire) -> (u64, u128) {
    loop {
        match soon("a Pay from alice's node", wire.recv()).await.unwrap() {
            Message::Pay {
                nonce, transferred, ..
            } => return (nonce, transferred),
            Message::Sync { .. } | Message::Ping { .. } => {}
            other => panic!("expected a Pay, got {other:?}"),
        }
    }
}

/// The next message on `wire` that is not a Sync (a node greets every link with its Syncs)
/// or a Ping (a quiet link is asked for a sign of life).
async fn next_reply(wire: &mut Wire) -> Message {
    loop {
        match soon("an answer from the node", wire.recv()).await.unwrap() {
            Message::Sync { .. } | Message::Ping { .. } => {}
            other => return other,
        }
    }
}

/// Read everything alice's node queued on `wire` so far: it answers a Ping behind every frame
/// it queued before (a link-up Sync may be queued after a Pay signed at the same moment, and
/// carry an older proof). Only Syncs may be pending.
async fn drain(wire: &mut Wire, nonce: u64) {
    wire.send(&Message::Ping { nonce }).await.unwrap();
    loop {
        match soon("alice's node's Pong", wire.recv()).await.unwrap() {
            Message::Pong { nonce: n } if n == nonce => return,
            Message::Sync { .. } | Message::Ping { .. } => {}
            other => panic!("expected only Syncs before the Pong, got {other:?}"),
        }
    }
}

/// The next Sync alice's node sends: its latest proof's nonce.
async fn next_sync(wire: &mut Wire) -> u64 {
    loop {
        if let Message::Sync {
            sent: Some(latest), ..
        } = soon("a Sync from alice's node", wire.recv()).await.unwrap()
        {
            return latest.nonce;
        }
    }
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// alice's node and bob's, one of them (alice's if `alice_fails`) on a RocksDB store the test
/// can make fail; alice keeps a link to bob; channel 1 opened by alice with 10 USDC and seen
/// by bob. Keep `_devnet` and `_dir` bound while the nodes run.
struct FailingPair {
    _devnet: Devnet,
    _dir: tempfile::TempDir,
    alice: Node,
    bob: Node,
    store: Arc<farthing_store::testing::FailingStore<farthing_store::RocksStore>>,
}

async fn failing_pair(alice_fails: bool) -> FailingPair {
    let devnet = Devnet::start().unwrap();
    let d = devnet.deploy().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    devnet
        .mint(&d, devnet.key("ALICE").address(), 100 * USDC)
        .await
        .unwrap();
    let failing = if alice_fails { 1 } else { 2 };
    let config = node_config(&devnet, &d, dir.path(), failing);
    std::fs::create_dir_all(&config.data_dir).unwrap();
    let store = Arc::new(farthing_store::testing::FailingStore::new(
        farthing_store::RocksStore::open(config.data_dir.join("db")).unwrap(),
    ));
    let on_failing = Node::start_with_store(config, store.clone()).await.unwrap();
    let other = Node::start(node_config(&devnet, &d, dir.path(), 3 - failing))
        .await
        .unwrap();
    let (alice, bob) = if alice_fails {
        (on_failing, other)
    } else {
        (other, on_failing)
    };
    let at = bob
        .listen_peers("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    alice.keep_linked(format!("{}@{at}", bob.address()).parse().unwrap());
    alice
        .open_channel(bob.address(), 10 * USDC as u128, Some(600))
        .await
        .unwrap();
    eventually(PATIENCE, "bob to see the channel", async || {
        bob.channel_record(1)
    })
    .await;
    FailingPair {
        _devnet: devnet,
        _dir: dir,
        alice,
        bob,
        store,
    }
}
