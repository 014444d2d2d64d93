//! A connection flood against a node with few file descriptors (issue 12, item 1): the
//! listener runs out of descriptors, retries instead of dying, and the partner links and pays
//! once the flood is gone; the node never reports itself degraded for it.

use std::process::Command;
use std::time::Duration;

use farthing_e2e::{Daemon, Devnet, PATIENCE, Party, USDC, done_if, eventually};
use farthing_rpc::{FarthingApiClient, OpenParams, PayParams};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_past_the_descriptor_limit_leaves_the_listener_serving() {
    let devnet = Devnet::start().unwrap();
    let d = devnet.deploy().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let deployment = dir.path().join("deployment.json");
    std::fs::write(&deployment, serde_json::to_string(&d).unwrap()).unwrap();
    let bob = Party::new(&devnet, &d, devnet.key("BOB"));
    let alice = Party::new(&devnet, &d, devnet.key("ALICE"));
    devnet.mint(&d, alice.address(), 100 * USDC).await.unwrap();
    let bob_node = Daemon::start_as(
        2,
        &dir.path().join("bob"),
        &devnet.rpc_url,
        &deployment,
        &[],
    );
    // 128 descriptors: what the node holds at rest (RocksDB, sockets, the runtime) plus a few
    // dozen, far fewer than the 128 handshakes the admission cap lets in from many addresses.
    let limited = Command::new("prlimit")
        .args(["--pid", &bob_node.pid().to_string(), "--nofile=128:128"])
        .status()
        .unwrap();
    assert!(limited.success(), "prlimit");
    let peer_port: std::net::SocketAddr = bob_node.peers.parse().unwrap();

    // 480 silent connections from 60 loopback addresses (8 each, the per-source cap), held
    // open: the node runs out of descriptors and accept fails (EMFILE) while they last.
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
    let held = flood.iter().flatten().count();
    assert!(
        held > 128,
        "the flood must outnumber the descriptors: {held} connected"
    );
    let token = |who: &str| farthing_rpc::read_token(&dir.path().join(who)).unwrap();
    let bob_rpc = farthing_rpc::connect_http(&bob_node.url, &token("bob")).unwrap();
    drop(flood);

    // The flood is gone: the partner dials, links, and pays; bob's node is healthy.
    let link = format!("{}@{}", bob.address(), bob_node.peers);
    let alice_node = Daemon::start_as(
        1,
        &dir.path().join("alice"),
        &devnet.rpc_url,
        &deployment,
        &["--connect", &link],
    );
    let alice_rpc = farthing_rpc::connect_http(&alice_node.url, &token("alice")).unwrap();
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
