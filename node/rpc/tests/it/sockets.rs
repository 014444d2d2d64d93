//! R4, R6: what a client can hold open. Every connection jsonrpsee upgrades holds a WebSocket
//! slot, however its headers are spelt; a refused request (401, 429) ends its connection;
//! TCP connections are capped in all and per source; an idle connection is closed.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use farthing_rpc::RpcServerConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::fake::{TOKEN, serve};
use crate::raw::{bearer, closed_by_server, connect_from, open, post_from, upgrade_from};

fn source(n: u8) -> IpAddr {
    IpAddr::from([127, 0, 0, n])
}

const INFO: &str = r#"{"jsonrpc":"2.0","id":1,"method":"farthing_info","params":[]}"#;

/// An upgrade request with the token and these raw `Connection` and `Upgrade` values.
fn upgrade_request(addr: SocketAddr, connection: &[u8], upgrade: &[u8]) -> Vec<u8> {
    let mut request = format!("GET / HTTP/1.1\r\nHost: {addr}\r\nConnection: ").into_bytes();
    request.extend_from_slice(connection);
    request.extend_from_slice(b"\r\nUpgrade: ");
    request.extend_from_slice(upgrade);
    request.extend_from_slice(
        format!(
            "\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n{}\r\n",
            bearer(TOKEN)
        )
        .as_bytes(),
    );
    request
}

#[tokio::test]
async fn upgrades_with_obs_text_in_their_headers_count_against_the_websocket_caps() {
    let config = RpcServerConfig {
        max_ws_connections: 2,
        max_ws_connections_per_source: 1,
        // Only a refusal closes a connection here, not the idle timeout.
        idle_timeout_secs: 3600,
        ..RpcServerConfig::ephemeral()
    };
    let (fake, addr, _handle) = serve(config).await;

    // Bytes 0x80-0xFF are obs-text: the HTTP parser takes them, and jsonrpsee upgrades on the
    // raw bytes; such an upgrade takes source 1's only WebSocket slot.
    let request = upgrade_request(addr, b"Upgrade, \xff", b"websocket");
    let (first, _first) = open(addr, source(1), &request).await;
    assert_eq!(first.status, 101, "{first:?}");
    let request = upgrade_request(addr, b"Upgrade", b"websocket, \xfe");
    let (mut refused, mut stream) = open(addr, source(1), &request).await;
    assert_eq!(refused.status, 429, "{refused:?}");
    assert!(
        refused
            .body
            .contains("rpc.max_ws_connections_per_source = 1"),
        "{refused:?}"
    );
    // A refusal ends its connection.
    assert!(refused.head.contains("connection: close"), "{refused:?}");
    assert!(closed_by_server(&mut stream).await);

    // Source 2 takes the node's second slot; then the node is full for source 3.
    let request = upgrade_request(addr, b"keep-alive, Upgrade, \x80", b"\xffx, websocket");
    let (second, _second) = open(addr, source(2), &request).await;
    assert_eq!(second.status, 101, "{second:?}");
    let request = upgrade_request(addr, b"\xa0, upgrade", b"WebSocket");
    (refused, _) = open(addr, source(3), &request).await;
    assert_eq!(refused.status, 429, "{refused:?}");
    assert!(
        refused.body.contains("rpc.max_ws_connections = 2"),
        "{refused:?}"
    );

    // HTTP calls still get through.
    let answer = post_from(addr, source(1), &bearer(TOKEN), INFO).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(fake.calls(), ["info"]);
}

#[tokio::test]
async fn unauthenticated_requests_leave_no_socket_open() {
    let config = RpcServerConfig {
        // Only the refusal closes a connection here, not the idle timeout.
        idle_timeout_secs: 3600,
        ..RpcServerConfig::ephemeral()
    };
    let (fake, addr, _handle) = serve(config).await;
    let request = format!("GET / HTTP/1.1\r\nHost: {addr}\r\n\r\n");
    let wrong = format!(
        "POST / HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nAuthorization: Bearer 0011\r\n\r\n{INFO}",
        INFO.len()
    );
    // Both ask for keep-alive (HTTP/1.1's default); the server closes each after its 401.
    for n in 0..200 {
        let request = if n % 2 == 0 { &request } else { &wrong };
        let (response, mut stream) = open(addr, source(1), request.as_bytes()).await;
        assert_eq!(response.status, 401, "{response:?}");
        assert!(response.head.contains("connection: close"), "{response:?}");
        assert!(closed_by_server(&mut stream).await, "request {n}");
    }
    assert_eq!(fake.calls(), Vec::<&str>::new());
}

/// POST `farthing_info` from `from` on a new connection: its status, or `None` if the
/// server closed the connection without an answer.
async fn try_info(addr: SocketAddr, from: IpAddr) -> Option<u16> {
    let mut stream = connect_from(addr, from).await;
    let request = format!(
        "POST / HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n{}\r\n{INFO}",
        INFO.len(),
        bearer(TOKEN)
    );
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.ok()?;
    let answer = String::from_utf8_lossy(&answer);
    answer.split(' ').nth(1)?.parse().ok()
}

#[tokio::test]
async fn connections_past_the_per_source_cap_are_closed_at_once_while_others_are_served() {
    let config = RpcServerConfig {
        max_ws_connections: 1,
        max_ws_connections_per_source: 1,
        max_http_requests: 1,
        max_http_requests_per_source: 1,
        max_open_connections: 4,
        max_open_connections_per_source: 2,
        // Only the cap closes a connection here, not the idle timeout.
        idle_timeout_secs: 3600,
        ..RpcServerConfig::ephemeral()
    };
    let (fake, addr, _handle) = serve(config).await;

    // Source 1 holds its two: a WebSocket (an upgraded connection keeps its place) and a
    // connection that has sent nothing yet.
    let (response, _ws) = upgrade_from(addr, source(1), TOKEN).await;
    assert_eq!(response.status, 101, "{response:?}");
    let idle = connect_from(addr, source(1)).await;
    // Accepted in order: the third is closed at once, before it sends anything.
    let mut third = connect_from(addr, source(1)).await;
    assert!(closed_by_server(&mut third).await);
    assert_eq!(try_info(addr, source(1)).await, None);

    // Another source is served.
    assert_eq!(try_info(addr, source(2)).await, Some(200));

    // Source 1 closes its idle connection: once the server has seen it, source 1 is served.
    drop(idle);
    // A deadline against a hang, not a timing goal: a loaded machine may be slow.
    let deadline = Instant::now() + Duration::from_secs(60);
    while try_info(addr, source(1)).await != Some(200) {
        assert!(Instant::now() < deadline, "source 1's place was not freed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(fake.calls(), ["info", "info"]);
}

#[tokio::test]
async fn an_idle_connection_is_closed() {
    let config = RpcServerConfig {
        idle_timeout_secs: 1,
        ..RpcServerConfig::ephemeral()
    };
    let (fake, addr, _handle) = serve(config).await;

    // Kept alive after an answered call, then silent: closed.
    let request = format!(
        "POST / HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n{}\r\n{INFO}",
        INFO.len(),
        bearer(TOKEN)
    );
    let (response, mut stream) = open(addr, source(1), request.as_bytes()).await;
    assert_eq!(response.status, 200, "{response:?}");
    assert!(!response.head.contains("connection: close"), "{response:?}");
    assert!(closed_by_server(&mut stream).await);

    // Silent from the start: closed too.
    let mut silent = connect_from(addr, source(1)).await;
    assert!(closed_by_server(&mut silent).await);

    // A WebSocket is not timed: it still answers after the idle time has passed.
    let ws = farthing_rpc::connect_ws(&format!("ws://{addr}"), TOKEN)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    farthing_rpc::FarthingApiClient::info(&ws).await.unwrap();
    assert_eq!(fake.calls(), ["info", "info"]);
}

#[test]
fn connection_caps_must_leave_room_for_the_websocket_and_http_caps() {
    let valid = RpcServerConfig::default();
    let error = RpcServerConfig {
        max_open_connections_per_source: 23,
        ..valid.clone()
    }
    .validate()
    .unwrap_err();
    assert!(
        error.contains("rpc.max_open_connections_per_source (23)")
            && error.contains(
                "rpc.max_ws_connections_per_source + rpc.max_http_requests_per_source (24)"
            ),
        "{error}"
    );
    let error = RpcServerConfig {
        max_open_connections: 63,
        ..valid.clone()
    }
    .validate()
    .unwrap_err();
    assert!(error.contains("rpc.max_open_connections (63)"), "{error}");
    let error = RpcServerConfig {
        idle_timeout_secs: 0,
        ..valid
    }
    .validate()
    .unwrap_err();
    assert!(error.contains("rpc.idle_timeout_secs"), "{error}");
}
