//! Agents' credentials at the RPC layer (issue 15): a credential the authority admits reaches
//! the methods its scopes allow and no other (1017); a tampered, expired or revoked one gets
//! HTTP 401; a WebSocket whose credential is revoked after the upgrade gets 1019 on its next
//! call. The authority here is a test one (a fixed root key, a revocation set, a settable
//! clock); the daemon's is tested end to end.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use farthing_credential::{Caveat, ChainId, Credential};
use farthing_rpc::{
    Agent, Authority, ClientError, Denied, FarthingApiClient, FarthingApiServer, RpcServerConfig,
    connect_http, connect_ws,
};

use crate::fake::{Fake, TOKEN};
use crate::raw::{bearer, post, upgrade};

const KEY: [u8; 32] = [9; 32];

#[derive(Default)]
struct TestAuthority {
    revoked: Mutex<HashSet<ChainId>>,
    now: Mutex<u64>,
}

impl TestAuthority {
    fn check(&self, agent: &Agent) -> Result<(), Denied> {
        let now = *self.now.lock().unwrap();
        if let Some(expires) = agent.limits().expires
            && now >= expires
        {
            return Err(Denied::Expired { expires, now });
        }
        let revoked = self.revoked.lock().unwrap();
        match agent.chain_ids().iter().find(|id| revoked.contains(id)) {
            Some(id) => Err(Denied::Revoked { revoked: *id }),
            None => Ok(()),
        }
    }
}

impl Authority for TestAuthority {
    fn admit(&self, token: &str) -> Result<Arc<Agent>, Denied> {
        let credential: Credential = token.parse()?;
        let verified = credential.verify(&KEY)?;
        let agent = Agent::new(credential, verified);
        self.check(&agent)?;
        Ok(Arc::new(agent))
    }

    fn recheck(&self, agent: &Agent) -> Result<(), Denied> {
        self.check(agent)
    }
}

fn credential(caveats: &[&str]) -> Credential {
    let caveats: Vec<Caveat> = caveats.iter().map(|c| Caveat::parse(c).unwrap()).collect();
    Credential::mint(&KEY, [3; 16], &caveats)
}

async fn serve() -> (
    Fake,
    std::net::SocketAddr,
    Arc<TestAuthority>,
    farthing_rpc::ServerHandle,
) {
    let fake = Fake::new();
    let authority = Arc::new(TestAuthority::default());
    let (addr, handle) = farthing_rpc::start_with(
        &RpcServerConfig::ephemeral(),
        TOKEN,
        Some(authority.clone()),
        fake.clone().into_rpc(),
    )
    .await
    .unwrap();
    (fake, addr, authority, handle)
}

fn code(result: Result<impl std::fmt::Debug, ClientError>) -> i32 {
    match result {
        Err(ClientError::Call(error)) => error.code(),
        other => panic!("expected a call error, got {other:?}"),
    }
}

#[tokio::test]
async fn a_credential_reaches_only_the_methods_its_scopes_allow() {
    let (fake, addr, _authority, _handle) = serve().await;
    let pay_only = credential(&["scope=pay"]).encode();
    let client = connect_http(&format!("http://{addr}"), &pay_only).unwrap();
    let me = client.whoami().await.unwrap();
    assert_eq!(
        me.id.as_deref(),
        Some(&*credential(&["scope=pay"]).id().to_string())
    );
    assert_eq!(me.caveats, ["scope=pay"]);
    client
        .pay(Some(1), None, "1".into(), None, None)
        .await
        .unwrap();
    for refused in [
        code(
            client
                .open_channel(Default::default(), "1".into(), None)
                .await,
        ),
        code(client.list_channels().await),
        code(
            client
                .create_credential(
                    None, None, None, None, None, None, None, None, None, None, None,
                )
                .await,
        ),
        code(client.redeem("c".into(), "1".into(), None).await),
    ] {
        assert_eq!(refused, 1017);
    }
    assert_eq!(
        fake.calls(),
        ["whoami", "pay"],
        "a refused call reached a method"
    );

    // The refusal names the method and the scope it needs.
    let response = post(
        addr,
        &bearer(&pay_only),
        r#"{"jsonrpc":"2.0","id":1,"method":"farthing_topUp","params":[1,"1"]}"#,
    )
    .await;
    assert!(
        response.body.contains(r#""code":1017"#),
        "{}",
        response.body
    );
    assert!(
        response
            .body
            .contains(r#""data":{"method":"farthing_topUp","scope":"channel"}"#),
        "{}",
        response.body
    );

    // In a batch, each call is checked on its own.
    let batch = r#"[{"jsonrpc":"2.0","id":1,"method":"farthing_pay","params":[1,null,"1"]},{"jsonrpc":"2.0","id":2,"method":"farthing_withdraw","params":[1,"1"]}]"#;
    let response = post(addr, &bearer(&pay_only), batch).await;
    assert!(
        response.body.contains(r#""id":1,"result""#),
        "{}",
        response.body
    );
    assert!(
        response.body.contains(r#""code":1017"#),
        "{}",
        response.body
    );
    assert_eq!(fake.calls(), ["whoami", "pay", "pay"]);

    // The admin token still reaches everything; an unlimited credential too.
    let admin = connect_http(&format!("http://{addr}"), TOKEN).unwrap();
    assert!(admin.whoami().await.unwrap().admin);
    admin.list_channels().await.unwrap();
    let anything = connect_http(&format!("http://{addr}"), &credential(&[]).encode()).unwrap();
    anything.list_channels().await.unwrap();
}

#[tokio::test]
async fn tampered_expired_and_revoked_credentials_get_401() {
    let (fake, addr, authority, _handle) = serve().await;
    let good = credential(&["scope=read", "exp<1000"]);
    let text = good.encode();
    let info = r#"{"jsonrpc":"2.0","id":1,"method":"farthing_info"}"#;
    assert_eq!(post(addr, &bearer(&text), info).await.status, 200);

    // One character changed anywhere past the prefix: refused, and the token is not echoed.
    let mut tampered = text.clone().into_bytes();
    let at = tampered.len() - 3;
    tampered[at] = if tampered[at] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    // A caveat appended without the key (the old tag kept) is no credential either.
    let mut widened = good
        .clone()
        .attenuate(&Caveat::parse("note#x").unwrap())
        .encode();
    widened.truncate(widened.len() - 4);
    for (case, token) in [
        ("tampered", tampered),
        ("truncated", text[..text.len() - 2].to_owned()),
        ("widened", widened),
        (
            "other key",
            Credential::mint(&[1; 32], [3; 16], &[]).encode(),
        ),
    ] {
        let response = post(addr, &bearer(&token), info).await;
        assert_eq!(response.status, 401, "{case}: {response:?}");
        assert!(
            response.body.contains("credential"),
            "{case}: {}",
            response.body
        );
        assert!(!response.body.contains(&token[5..20]), "{case} echoed");
        assert!(response.head.contains("invalid_token"), "{case}");
    }

    *authority.now.lock().unwrap() = 1000;
    let response = post(addr, &bearer(&text), info).await;
    assert_eq!(response.status, 401);
    assert!(
        response.body.contains("expired at unix 1000"),
        "{}",
        response.body
    );
    assert_eq!(upgrade(addr, &bearer(&text)).await.status, 401);

    *authority.now.lock().unwrap() = 0;
    // Revoking the root revokes what was derived from it, also offline.
    let child = good
        .attenuate(&Caveat::parse("nonce=kid").unwrap())
        .encode();
    assert_eq!(post(addr, &bearer(&child), info).await.status, 200);
    authority
        .revoked
        .lock()
        .unwrap()
        .insert(credential(&[]).id());
    for token in [&text, &child] {
        let response = post(addr, &bearer(token), info).await;
        assert_eq!(response.status, 401);
        assert!(response.body.contains("revoked"), "{}", response.body);
    }
    assert_eq!(fake.calls(), ["info", "info"]);
}

#[tokio::test]
async fn an_open_websocket_gets_1019_once_its_credential_is_revoked_or_expires() {
    let (fake, addr, authority, _handle) = serve().await;
    let good = credential(&["scope=read", "exp<1000"]);
    let ws = connect_ws(&format!("ws://{addr}"), &good.encode())
        .await
        .unwrap();
    ws.list_channels().await.unwrap();
    authority.revoked.lock().unwrap().insert(good.id());
    assert_eq!(code(ws.list_channels().await), 1019);
    assert_eq!(code(ws.info().await), 1019);
    authority.revoked.lock().unwrap().clear();
    ws.info().await.unwrap();
    *authority.now.lock().unwrap() = 1000;
    assert_eq!(code(ws.info().await), 1019);
    assert_eq!(fake.calls(), ["listChannels", "info"]);
}
