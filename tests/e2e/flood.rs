//! A connection flood against a node with few file descriptors (issue 12, item 1): the node
//! runs out of descriptors, its listener retries instead of dying, and the partner links and
//! pays once the flood is gone; the node ends healthy.

use std::process::Command;
use std::time::Duration;

use farthing_e2e::{Deployed, PATIENCE, done_if, eventually};
use farthing_rpc::{FarthingApiClient, OpenParams, PayParams};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_past_the_descriptor_limit_leaves_the_listener_serving() {
    let net = Deployed::start().await;
    let bob = net.party("BOB");
    let bob_node = net.daemon(2, "bob", &[]);
    let bob_rpc = net.rpc("bob", &bob_node);
    // 128 descriptors: what the node holds at rest (RocksDB, sockets, the runtime) plus a few
    // dozen, far fewer than the 128 handshakes the admission cap lets in from many addresses.
    let limited = Command::new("prlimit")
        .args(["--pid", &bob_node.pid().to_string(), "--nofile=128:128"])
        .status()
        .unwrap();
    assert!(limited.success(), "prlimit");
    let peer_port: std::net::SocketAddr = bob_node.peers.parse().unwrap();

    // 480 silent connections from 60 loopback addresses (8 each, the per-source cap), held
    // open until the node has used every descriptor it may: accept then fails (EMFILE).
    let connect = |n: usize| async move {
        let socket = tokio::net::TcpSocket::new_v4().ok()?;
        let source = format!("127.0.1.{}:0", 1 + n / 8);
        socket.bind(source.parse().ok()?).ok()?;
        tokio::time::timeout(Duration::from_secs(5), socket.connect(peer_port))
            .await
            .ok()?
            .ok()
    };
    let flood: Vec<_> = futures::future::join_all((0..480).map(connect)).await;
    let fds = format!("/proc/{}/fd", bob_node.pid());
    eventually(
        PATIENCE,
        "bob's node to run out of descriptors",
        async || {
            let open = std::fs::read_dir(&fds).unwrap().count();
            done_if(open >= 127, open)
        },
    )
    .await;
    drop(flood);

    // The flood is gone: the partner dials, links, and pays; bob's node is healthy.
    let link = format!("{}@{}", bob.address(), bob_node.peers);
    let alice_node = net.daemon(1, "alice", &["--connect", &link]);
    let alice_rpc = net.rpc("alice", &alice_node);
    let opened = OpenParams {
        partner: bob.address(),
        amount: "10".into(),
        challenge_period: Some(600),
    }
    .call(&alice_rpc)
    .await
    .unwrap();
    alice_rpc.wait_channel(opened.id, Some(120)).await.unwrap();
    let paid = PayParams {
        channel_id: Some(opened.id),
        partner: None,
        amount: "0.25".into(),
        idempotency_key: None,
        memo: None,
    }
    .call(&alice_rpc)
    .await
    .unwrap();
    assert_eq!((paid.nonce, paid.balance_ours.as_str()), (1, "9.75"));
    let at_bob = bob_rpc.get_channel(opened.id).await.unwrap();
    assert_eq!(at_bob.balance_ours, "0.25");
    eventually(PATIENCE, "bob's node healthy", async || {
        let info = bob_rpc.info().await.unwrap();
        done_if(info.health.reasons.is_empty(), info.health.reasons)
    })
    .await;
}
