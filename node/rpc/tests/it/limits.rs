//! R4, R5: request size, HTTP requests in flight, listen address, the limits' settings.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use farthing_rpc::{Error, FarthingApiClient, RpcServerConfig, connect_http, connect_ws};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::fake::{TOKEN, serve};
use crate::raw::{bearer, connect_from, post, post_from, upgrade_from};

#[tokio::test]
async fn requests_over_the_size_limit_are_refused() {
    let config = RpcServerConfig {
        max_request_bytes: 1024,
        ..RpcServerConfig::ephemeral()
    };
    let (fake, addr, _handle) = serve(config).await;
    let huge = "1".repeat(2000);

    let body =
        format!(r#"{{"jsonrpc":"2.0","id":1,"method":"farthing_topUp","params":[1,"{huge}"]}}"#);
    let response = post(addr, &bearer(TOKEN), &body).await;
    assert_eq!(response.status, 413, "{response:?}");

    let http = connect_http(&format!("http://{addr}"), TOKEN).unwrap();
    assert!(http.top_up(1, huge.clone()).await.is_err());
    let ws = connect_ws(&format!("ws://{addr}"), TOKEN).await.unwrap();
    assert!(ws.top_up(1, huge).await.is_err());
    assert_eq!(fake.calls(), Vec::<&str>::new());

    // Under the limit, the same call goes through.
    assert_eq!(http.top_up(1, "1".repeat(500)).await.unwrap().id, 1);
    assert_eq!(fake.calls(), ["topUp"]);
}

/// A POST whose body has not all arrived: the request is in flight until it is finished.
async fn half_sent(addr: SocketAddr, from: IpAddr) -> TcpStream {
    let mut stream = connect_from(addr, from).await;
    let head = format!(
        "POST / HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n{}\r\n{{",
        INFO.len(),
        bearer(TOKEN)
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream
}

const INFO: &str = r#"{"jsonrpc":"2.0","id":1,"method":"farthing_info","params":[]}"#;

/// POST `farthing_info` from `from` until the answer is `status` (the server learns of a
/// request in flight, or of one that ended, in its own time); the last response.
async fn until_status(addr: SocketAddr, from: IpAddr, status: u16) -> String {
    // A deadline against a hang, not a timing goal: a loaded machine may be slow.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let response = post_from(addr, from, &bearer(TOKEN), INFO).await;
        if response.status == status {
            return response.body;
        }
        assert!(Instant::now() < deadline, "still {response:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn http_requests_in_flight_are_limited_per_source_and_in_all() {
    let config = RpcServerConfig {
        max_http_requests: 2,
        max_http_requests_per_source: 1,
        ..RpcServerConfig::ephemeral()
    };
    let (fake, addr, _handle) = serve(config).await;
    let source = |n: u8| IpAddr::from([127, 0, 0, n]);

    // One request from .1 in flight: .1's share is used up, .2 still gets through.
    let mut first = half_sent(addr, source(1)).await;
    let refusal = until_status(addr, source(1), 429).await;
    assert!(
        refusal.contains("from 127.0.0.1")
            && refusal.contains("rpc.max_http_requests_per_source = 1"),
        "{refusal}"
    );
    assert_eq!(
        post_from(addr, source(2), &bearer(TOKEN), INFO)
            .await
            .status,
        200
    );
    // WebSockets have their own allowance.
    let (response, _ws) = upgrade_from(addr, source(1), TOKEN).await;
    assert_eq!(response.status, 101, "{response:?}");

    // Two in flight: the node's share is used up for everyone.
    let _second = half_sent(addr, source(2)).await;
    let refusal = until_status(addr, source(3), 429).await;
    assert!(refusal.contains("rpc.max_http_requests = 2"), "{refusal}");

    // The first request completes: its slot is free again.
    first.write_all(&INFO.as_bytes()[1..]).await.unwrap();
    let mut answer = String::new();
    first.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    until_status(addr, source(3), 200).await;
    assert!(fake.calls().iter().all(|call| *call == "info"));
}

#[tokio::test]
async fn listens_on_loopback_by_default_and_port_zero_works() {
    let config = RpcServerConfig::default();
    assert_eq!(config.listen.to_string(), "127.0.0.1:7750");
    let (_fake, addr, _handle) = serve(RpcServerConfig::ephemeral()).await;
    assert!(addr.ip().is_loopback());
    assert_ne!(addr.port(), 0);

    // A taken port is a clear error.
    let taken = RpcServerConfig {
        listen: addr,
        ..RpcServerConfig::ephemeral()
    };
    let fake = crate::fake::Fake::new();
    let result = farthing_rpc::start(
        &taken,
        TOKEN,
        farthing_rpc::FarthingApiServer::into_rpc(fake),
    )
    .await;
    match result {
        Err(error @ Error::Bind { .. }) => assert!(error.to_string().contains(&addr.to_string())),
        other => panic!("expected a bind error, got {:?}", other.map(|(a, _)| a)),
    }
}

#[test]
fn the_config_reads_from_toml_like_json_with_defaults() {
    let config: RpcServerConfig =
        serde_json::from_str(r#"{"listen":"127.0.0.1:9000","max_ws_connections":8}"#).unwrap();
    assert_eq!(config.listen.port(), 9000);
    assert_eq!(config.max_ws_connections, 8);
    assert_eq!(
        config.max_request_bytes,
        RpcServerConfig::default().max_request_bytes
    );
    assert!(serde_json::from_str::<RpcServerConfig>(r#"{"max_conections":8}"#).is_err());
    // The single shared limit is gone: a config naming it is refused, not half-read.
    let old = serde_json::from_str::<RpcServerConfig>(r#"{"max_connections":64}"#).unwrap_err();
    assert!(old.to_string().contains("max_ws_connections"), "{old}");
}

#[test]
fn unusable_limits_are_refused_by_name() {
    let valid = RpcServerConfig::default();
    assert_eq!(valid.validate(), Ok(()));
    let zero = RpcServerConfig {
        max_subscriptions: 0,
        ..valid.clone()
    };
    assert!(
        zero.validate()
            .unwrap_err()
            .contains("rpc.max_subscriptions")
    );
    let above = RpcServerConfig {
        max_ws_connections_per_source: 40,
        ..valid
    };
    let error = above.validate().unwrap_err();
    assert!(
        error.contains("rpc.max_ws_connections_per_source (40)")
            && error.contains("rpc.max_ws_connections (32)"),
        "{error}"
    );
}
