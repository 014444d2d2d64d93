//! R6 (issue 12, item 5): idle WebSockets and subscribers cannot lock out HTTP calls, other
//! sources, or other subscribers; every refusal says which limit and what to do.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use farthing_rpc::{
    ClientError, FarthingApiClient, RpcServerConfig, code, connect_http, connect_ws,
};
use tokio::net::TcpStream;

use crate::fake::{TOKEN, serve};
use crate::raw::{bearer, post, upgrade_from};

fn source(n: u8) -> IpAddr {
    IpAddr::from([127, 0, 0, n])
}

/// Open `n` idle WebSocket connections from `from`, each accepted.
async fn crowd(addr: SocketAddr, from: IpAddr, n: usize) -> Vec<TcpStream> {
    let mut open = Vec::new();
    for _ in 0..n {
        let (response, stream) = upgrade_from(addr, from, TOKEN).await;
        assert_eq!(response.status, 101, "{response:?}");
        open.push(stream);
    }
    open
}

/// Ask for a WebSocket from `from` until one is accepted (the server frees a slot once it has
/// noticed a close, in its own time).
async fn until_accepted(addr: SocketAddr, from: IpAddr) -> TcpStream {
    // A deadline against a hang, not a timing goal: a loaded machine may be slow.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (response, stream) = upgrade_from(addr, from, TOKEN).await;
        match response.status {
            101 => return stream,
            429 if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            _ => panic!("no slot was freed: {response:?}"),
        }
    }
}

#[tokio::test]
async fn the_websocket_crowd_leaves_room_for_http_calls_and_other_sources() {
    // The defaults: 32 WebSockets in all, 8 per source.
    let (fake, addr, _handle) = serve(RpcServerConfig::ephemeral()).await;
    let mut mine = crowd(addr, source(1), 8).await;

    // One more from the same source is refused, and the refusal says why and what to do.
    let (refused, _) = upgrade_from(addr, source(1), TOKEN).await;
    assert_eq!(refused.status, 429, "{refused:?}");
    for needed in [
        "from 127.0.0.1",
        "rpc.max_ws_connections_per_source = 8",
        "Close idle WebSocket connections",
    ] {
        assert!(refused.body.contains(needed), "{needed}: {}", refused.body);
    }
    assert!(
        refused.head.contains("content-type: text/plain"),
        "{refused:?}"
    );

    // The operator's HTTP call from the same source still gets through.
    let http = connect_http(&format!("http://{addr}"), TOKEN).unwrap();
    http.info().await.unwrap();

    // Other sources fill the node's 32; then it is full for everyone, HTTP calls excepted.
    let mut others = Vec::new();
    for n in 2..=4 {
        others.extend(crowd(addr, source(n), 8).await);
    }
    let (full, _) = upgrade_from(addr, source(5), TOKEN).await;
    assert_eq!(full.status, 429, "{full:?}");
    assert!(
        full.body.contains("rpc.max_ws_connections = 32") && full.body.contains("raise"),
        "{}",
        full.body
    );
    http.info().await.unwrap();
    let raw = post(
        addr,
        &bearer(TOKEN),
        r#"{"jsonrpc":"2.0","id":1,"method":"farthing_info","params":[]}"#,
    )
    .await;
    assert_eq!(raw.status, 200, "{raw:?}");

    // Two of source 1's connections close: source 1 and source 5 each get one back.
    mine.truncate(6);
    mine.push(until_accepted(addr, source(1)).await);
    let _fifth = until_accepted(addr, source(5)).await;
    let (full, _) = upgrade_from(addr, source(6), TOKEN).await;
    assert_eq!(full.status, 429, "{full:?}");
    assert_eq!(fake.calls(), ["info", "info", "info"]);
    drop(others);
}

/// The JSON-RPC error a call failed with.
fn call_error(result: Result<impl Sized, ClientError>) -> (i32, String) {
    match result {
        Err(ClientError::Call(error)) => (error.code(), error.message().to_owned()),
        Err(other) => panic!("expected a JSON-RPC error, got {other}"),
        Ok(_) => panic!("expected a JSON-RPC error, got a subscription"),
    }
}

#[tokio::test]
async fn subscriptions_past_the_node_wide_limit_get_a_clear_error() {
    let config = RpcServerConfig {
        max_subscriptions: 3,
        max_subscriptions_per_connection: 2,
        ..RpcServerConfig::ephemeral()
    };
    let (_fake, addr, _handle) = serve(config).await;
    let url = format!("ws://{addr}");
    let (first, second) = (
        connect_ws(&url, TOKEN).await.unwrap(),
        connect_ws(&url, TOKEN).await.unwrap(),
    );
    let channels = first.subscribe_channels().await.unwrap();
    let _payments = first.subscribe_payments(None).await.unwrap();
    let _theirs = second.subscribe_channels().await.unwrap();

    // The node's three are taken: the next is refused, saying which limit and what to do.
    let (code, message) = call_error(second.subscribe_payments(None).await);
    assert_eq!(code, code::TOO_MANY_SUBSCRIPTIONS, "{message}");
    assert!(
        message.contains("rpc.max_subscriptions = 3") && message.contains("unsubscribe"),
        "{message}"
    );
    // One connection's own limit answers first where it is reached.
    let (code, _) = call_error(first.subscribe_payments(None).await);
    assert_eq!(code, -32006);

    // An unsubscribe frees a share for anyone.
    channels.unsubscribe().await.unwrap();
    // A deadline against a hang, not a timing goal: the share is freed when the server's
    // subscription task has ended.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match second.subscribe_payments(None).await {
            Ok(_subscription) => break,
            Err(ClientError::Call(e)) if e.code() == code::TOO_MANY_SUBSCRIPTIONS => {
                assert!(Instant::now() < deadline, "the share was not freed");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(other) => panic!("{other}"),
        }
    }
}
