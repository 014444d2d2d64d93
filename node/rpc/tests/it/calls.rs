//! Calls over HTTP and WebSocket, errors on the wire, the subscription.

use std::time::Duration;

use farthing_rpc::{
    ApiError, ChannelUpdate, ClientError, FarthingApiClient, HealthStatus, OpenParams,
    RpcServerConfig, connect_http, connect_ws,
};

use crate::fake::{ERROR_CODES, TOKEN, error_for, serve, serve_default, view};
use crate::raw::{bearer, post};

#[tokio::test]
async fn calls_with_the_token_work_over_http() {
    let (fake, addr, handle) = serve_default().await;
    let client = connect_http(&format!("http://{addr}"), TOKEN).unwrap();

    let info = client.info().await.unwrap();
    assert_eq!((info.chain_id, info.token_decimals), (31337, 6));
    assert_eq!(info.health.status, HealthStatus::Ok);
    let opened = OpenParams {
        partner: alloy_primitives::Address::repeat_byte(0xbb),
        amount: "12.5".into(),
        challenge_period: Some(600),
    }
    .call(&client)
    .await
    .unwrap();
    assert_eq!(opened.deposit_ours, "12.5");
    assert_eq!(client.top_up(3, "1".into()).await.unwrap().id, 3);
    assert_eq!(client.list_channels().await.unwrap().len(), 2);
    assert_eq!(client.get_channel(1).await.unwrap(), view(1, "100"));
    client.close_channel(1).await.unwrap();
    client.settle(1).await.unwrap();
    assert_eq!(client.claim().await.unwrap().claimed, "0");
    assert_eq!(client.balances().await.unwrap().gas, "0.05");
    assert_eq!(
        fake.calls(),
        [
            "info",
            "openChannel",
            "topUp",
            "listChannels",
            "getChannel",
            "closeChannel",
            "settle",
            "claim",
            "balances"
        ]
    );

    handle.stop().unwrap();
    handle.stopped().await;
}

#[tokio::test]
async fn calls_with_the_token_work_over_websocket() {
    let (fake, addr, _handle) = serve_default().await;
    let client = connect_ws(&format!("ws://{addr}"), TOKEN).await.unwrap();
    assert_eq!(client.info().await.unwrap().token_symbol, "USDC");
    assert_eq!(client.list_channels().await.unwrap()[1].deposit_ours, "2.5");
    assert_eq!(fake.calls(), ["info", "listChannels"]);
}

#[tokio::test]
async fn api_errors_arrive_with_their_code_message_and_data() {
    let (_fake, addr, _handle) = serve_default().await;
    let client = connect_http(&format!("http://{addr}"), TOKEN).unwrap();
    for code in ERROR_CODES {
        let expected = error_for(code).unwrap();
        match client.get_channel(code).await {
            Err(ClientError::Call(object)) => {
                assert_eq!(object.code(), i32::try_from(code).unwrap());
                assert_eq!(object.message(), expected.to_string());
                assert_eq!(
                    object
                        .data()
                        .map(|d| serde_json::from_str(d.get()).unwrap()),
                    expected.data()
                );
            }
            other => panic!("code {code}: expected a call error, got {other:?}"),
        }
    }
    // What a caller sees for one of them.
    let Err(ClientError::Call(object)) = client.get_channel(1003).await else {
        panic!("expected a call error");
    };
    assert_eq!(
        object.message(),
        "the node's token allowance for the ChannelManager is too low: 3 needed, 1 available, \
         2 missing; approve the ChannelManager (farthing_info) for at least 2 more tokens or ask for less"
    );
    assert!(matches!(error_for(1004), Some(ApiError::InvalidAmount(_))));
}

#[tokio::test]
async fn malformed_requests_get_the_standard_json_rpc_errors() {
    let (fake, addr, _handle) = serve_default().await;
    let auth = bearer(TOKEN);
    let cases = [
        ("{", -32700),
        (
            r#"{"jsonrpc":"2.0","id":1,"method":"farthing_nope","params":[]}"#,
            -32601,
        ),
        (
            r#"{"jsonrpc":"2.0","id":1,"method":"farthing_getChannel","params":["one"]}"#,
            -32602,
        ),
        (
            r#"{"jsonrpc":"2.0","id":1,"method":"farthing_getChannel","params":[]}"#,
            -32602,
        ),
        (
            r#"{"jsonrpc":"2.0","id":1,"method":"farthing_openChannel","params":[{"partner":"0x00000000000000000000000000000000000000bb","amount":"1","challenge_periode":60}]}"#,
            -32602,
        ),
        (
            r#"{"jsonrpc":"2.0","id":1,"method":"farthing_openChannel","params":[{"partner":"bob","amount":"1"}]}"#,
            -32602,
        ),
    ];
    for (body, code) in cases {
        let response = post(addr, &auth, body).await;
        let json: serde_json::Value = serde_json::from_str(&response.body).unwrap();
        assert_eq!(json["error"]["code"], code, "{body}: {}", response.body);
    }
    assert_eq!(fake.calls(), Vec::<&str>::new());
}

#[tokio::test]
async fn the_subscription_delivers_channel_updates_over_websocket() {
    let (fake, addr, _handle) = serve_default().await;
    let client = connect_ws(&format!("ws://{addr}"), TOKEN).await.unwrap();
    let mut subscription = client.subscribe_channels().await.unwrap();

    let updates: Vec<ChannelUpdate> = ["opened", "deposit", "closed"]
        .iter()
        .enumerate()
        .map(|(i, kind)| ChannelUpdate {
            channel_id: 5,
            kind: (*kind).to_owned(),
            channel: view(5, &(i + 1).to_string()),
        })
        .collect();
    for update in &updates {
        fake.publish(update.clone());
    }
    for expected in &updates {
        // A deadline against a hang, not a timing goal: a loaded machine may be slow.
        let received = tokio::time::timeout(Duration::from_secs(60), subscription.next())
            .await
            .expect("no update within 60 s")
            .expect("subscription ended")
            .unwrap();
        assert_eq!(&received, expected);
    }
    subscription.unsubscribe().await.unwrap();
    assert_eq!(fake.calls(), ["subscribeChannels"]);
}

#[tokio::test]
async fn subscriptions_per_connection_are_limited() {
    let config = RpcServerConfig {
        max_subscriptions_per_connection: 2,
        ..RpcServerConfig::ephemeral()
    };
    let (_fake, addr, _handle) = serve(config).await;
    let client = connect_ws(&format!("ws://{addr}"), TOKEN).await.unwrap();
    let _first = client.subscribe_channels().await.unwrap();
    let _second = client.subscribe_channels().await.unwrap();
    assert!(client.subscribe_channels().await.is_err());
    // Another connection has its own allowance.
    let other = connect_ws(&format!("ws://{addr}"), TOKEN).await.unwrap();
    assert!(other.subscribe_channels().await.is_ok());
}
