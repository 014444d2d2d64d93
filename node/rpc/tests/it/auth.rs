//! R1: without the right bearer token, nothing runs.

use farthing_rpc::{ClientError, Error, FarthingApiServer, OpenParams, connect_http, connect_ws};

use crate::fake::{TOKEN, serve_default};
use crate::raw::{bearer, post, upgrade};

const OPEN: &str = r#"{"jsonrpc":"2.0","id":1,"method":"farthing_openChannel","params":[{"partner":"0x00000000000000000000000000000000000000bb","amount":"100"}]}"#;

/// Header lines a request might carry instead of the right one.
fn refused_headers() -> Vec<(&'static str, String)> {
    vec![
        ("no header", String::new()),
        ("empty", "Authorization: \r\n".into()),
        ("no scheme", format!("Authorization: {TOKEN}\r\n")),
        ("basic", format!("Authorization: Basic {TOKEN}\r\n")),
        ("no space", format!("Authorization: Bearer{TOKEN}\r\n")),
        ("bearer alone", "Authorization: Bearer\r\n".into()),
        ("twice", format!("{}{}", bearer(TOKEN), bearer(TOKEN))),
        ("wrong token", bearer(&"0".repeat(64))),
        ("token prefix", bearer(&TOKEN[..63])),
        ("token plus", bearer(&format!("{TOKEN}0"))),
    ]
}

#[tokio::test]
async fn http_requests_without_the_right_token_get_401_and_reach_no_method() {
    let (fake, addr, _handle) = serve_default().await;
    for (case, headers) in refused_headers() {
        let response = post(addr, &headers, OPEN).await;
        assert_eq!(response.status, 401, "{case}: {response:?}");
        assert!(response.head.contains("www-authenticate: bearer"), "{case}");
        assert!(
            response.body.contains("rpc.token"),
            "{case}: {}",
            response.body
        );
    }
    assert_eq!(
        fake.calls(),
        Vec::<&str>::new(),
        "a refused request reached a method"
    );

    // The same request with the token goes through: the refusals above were the header's doing.
    let response = post(addr, &bearer(TOKEN), OPEN).await;
    assert_eq!(response.status, 200, "{response:?}");
    assert!(
        response.body.contains(r#""deposit_ours":"100""#),
        "{}",
        response.body
    );
    assert_eq!(fake.calls(), ["openChannel"]);
}

#[tokio::test]
async fn websocket_upgrades_without_the_right_token_get_401() {
    let (fake, addr, _handle) = serve_default().await;
    for (case, headers) in refused_headers() {
        let response = upgrade(addr, &headers).await;
        assert_eq!(response.status, 401, "{case}: {response:?}");
    }
    assert_eq!(upgrade(addr, &bearer(TOKEN)).await.status, 101);
    assert_eq!(fake.calls(), Vec::<&str>::new());
}

#[tokio::test]
async fn clients_with_a_wrong_token_are_refused() {
    let (fake, addr, _handle) = serve_default().await;
    let wrong = "1".repeat(64);

    let http = connect_http(&format!("http://{addr}"), &wrong).unwrap();
    let params = OpenParams {
        partner: alloy_primitives::Address::repeat_byte(0xbb),
        amount: "100".into(),
        challenge_period: None,
    };
    match params.call(&http).await {
        Err(ClientError::Transport(error)) => {
            assert!(error.to_string().contains("401"), "{error}");
        }
        other => panic!("expected a 401 rejection, got {other:?}"),
    }

    match connect_ws(&format!("ws://{addr}"), &wrong).await {
        Err(error @ Error::Connect { .. }) => {
            assert!(error.to_string().contains("401"), "{error}");
        }
        other => panic!(
            "expected the upgrade to be refused, got {:?}",
            other.map(|_| ())
        ),
    }
    assert_eq!(fake.calls(), Vec::<&str>::new());

    // Neither the error nor the client's Debug shows the token.
    let good = connect_http(&format!("http://{addr}"), TOKEN).unwrap();
    assert!(!format!("{good:?}").contains(TOKEN));
}

#[tokio::test]
async fn an_unusable_token_is_refused_before_anything_starts() {
    for token in ["", "two words", "line\nbreak"] {
        let started = farthing_rpc::start(
            &farthing_rpc::RpcServerConfig::ephemeral(),
            token,
            crate::fake::Fake::new().into_rpc(),
        )
        .await;
        assert!(matches!(started, Err(Error::BadToken)), "{token:?}");
        assert!(matches!(
            connect_http("http://127.0.0.1:1", token),
            Err(Error::BadToken)
        ));
    }
}
