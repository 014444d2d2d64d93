//! R4, R5: request size, connection count, listen address.

use std::time::{Duration, Instant};

use farthing_rpc::{Error, FarthingApiClient, RpcServerConfig, connect_http, connect_ws};

use crate::fake::{TOKEN, serve};
use crate::raw::{bearer, post};

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

#[tokio::test]
async fn the_connection_limit_is_enforced() {
    let config = RpcServerConfig {
        max_connections: 2,
        ..RpcServerConfig::ephemeral()
    };
    let (fake, addr, _handle) = serve(config).await;
    let url = format!("ws://{addr}");
    let first = connect_ws(&url, TOKEN).await.unwrap();
    let second = connect_ws(&url, TOKEN).await.unwrap();
    first.info().await.unwrap();
    second.info().await.unwrap();

    // Full: a third WebSocket and any HTTP request are turned away with 429.
    match connect_ws(&url, TOKEN).await {
        Err(error @ Error::Connect { .. }) => assert!(error.to_string().contains("429"), "{error}"),
        other => panic!("expected a refusal, got {:?}", other.map(|_| ())),
    }
    let response = post(
        addr,
        &bearer(TOKEN),
        r#"{"jsonrpc":"2.0","id":1,"method":"farthing_info","params":[]}"#,
    )
    .await;
    assert_eq!(response.status, 429, "{response:?}");
    assert_eq!(fake.calls(), ["info", "info"]);

    // A connection closes: its slot is free again.
    drop(first);
    let http = connect_http(&format!("http://{addr}"), TOKEN).unwrap();
    // A deadline against a hang, not a timing goal: the server frees the slot once it has
    // noticed the close, which a loaded machine may take a while to get to.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match http.info().await {
            Ok(_) => break,
            Err(error) if Instant::now() < deadline => {
                assert!(error.to_string().contains("429"), "{error}");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(error) => panic!("the slot was not freed: {error}"),
        }
    }
    second.info().await.unwrap();
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
        serde_json::from_str(r#"{"listen":"127.0.0.1:9000","max_connections":8}"#).unwrap();
    assert_eq!(config.listen.port(), 9000);
    assert_eq!(config.max_connections, 8);
    assert_eq!(
        config.max_request_bytes,
        RpcServerConfig::default().max_request_bytes
    );
    assert!(serde_json::from_str::<RpcServerConfig>(r#"{"max_conections":8}"#).is_err());
}
