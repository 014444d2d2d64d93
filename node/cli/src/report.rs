//! How a failed command says why: the node's own words for a refused call (they say what was
//! wrong and what to do), what an HTTP refusal means, or the error's chain of causes. With
//! `--json`, as `{"error": {"code", "message", "data"}}` on stdout, for scripts.

use std::path::Path;

/// Report `err`; `credential`: the credential file the command ran with, if any (a 401 then
/// means that credential, not the node's rpc.token).
pub(crate) fn report(err: &eyre::Report, json: bool, credential: Option<&Path>) {
    // A client error, raised by a call or while connecting (a WebSocket's upgrade).
    let client = err.downcast_ref::<farthing_rpc::ClientError>().or_else(|| {
        match err.downcast_ref::<farthing_rpc::Error>() {
            Some(farthing_rpc::Error::Connect { source, .. }) => Some(source),
            _ => None,
        }
    });
    let (code, message, data) = match client {
        Some(farthing_rpc::ClientError::Call(call)) => (
            Some(call.code()),
            call.message().to_owned(),
            call.data()
                .and_then(|d| serde_json::from_str::<serde_json::Value>(d.get()).ok()),
        ),
        Some(e) => (None, refusal(e, credential), None),
        None => (None, causes(err), None),
    };
    if json {
        let mut error = serde_json::json!({ "code": code, "message": message });
        if let Some(data) = data {
            error["data"] = data;
        }
        println!("{}", serde_json::json!({ "error": error }));
    } else if let Some(code) = code {
        eprintln!("error {code}: {message}");
    } else {
        eprintln!("error: {message}");
    }
}

/// What a client error that is not the node's answer to a call means, and what to do.
fn refusal(e: &farthing_rpc::ClientError, credential: Option<&Path>) -> String {
    match (farthing_rpc::refused_with(e), credential) {
        (Some(401), Some(file)) => format!(
            "the node refused the credential (expired, revoked, or not this node's): HTTP 401 for the one in {}; ask whoever issued it for a new one (the node's operator sees why with `farthing credential show --token-file {}`)",
            file.display(),
            file.display()
        ),
        (Some(401), None) => "the node refused the RPC token (HTTP 401): use the token from rpc.token in the node's data dir (--data-dir); it changes only if that file is deleted".to_owned(),
        (Some(429), _) => "the node refused the connection at one of its RPC limits (HTTP 429): too many WebSocket connections (rpc.max_ws_connections, rpc.max_ws_connections_per_source: close idle WebSocket clients, only subscriptions need one) or too many HTTP requests in flight (rpc.max_http_requests, rpc.max_http_requests_per_source: retry shortly); or raise the limit in the node's config".to_owned(),
        _ => format!("cannot reach the node's RPC: {e} (is the node running, and is --node-url right?)"),
    }
}

/// The error and its causes, each said once: many errors repeat their source in their own
/// message (`…: No such file or directory`), and printing the chain again would say it twice.
fn causes(err: &eyre::Report) -> String {
    let mut text = String::new();
    for cause in err.chain() {
        let cause = cause.to_string();
        if text.contains(&cause) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&cause);
    }
    text
}
