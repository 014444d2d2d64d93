//! Tool results: text an agent reads (everything it needs is in the text: many clients show the
//! model nothing else) and `structuredContent` for programs, always a JSON object.

use farthing_rpc::{
    Balances, ChannelState, ChannelView, ClientError, CredentialView, FetchResult, NodeInfo,
    PayResult, code,
};
use rmcp::model::{CallToolResult, ContentBlock};
use serde::Serialize;
use serde_json::{Value, json};

use crate::Bearer;

/// A successful result: `text`, and `structured` as `structuredContent`.
fn done(text: String, structured: Value) -> CallToolResult {
    let mut result = CallToolResult::success(vec![ContentBlock::text(text)]);
    result.structured_content = Some(structured);
    result
}

/// A refusal (`isError: true`) with `structured` as `structuredContent`.
fn refused(text: String, structured: Value) -> CallToolResult {
    let mut result = CallToolResult::error(vec![ContentBlock::text(text)]);
    result.structured_content = Some(structured);
    result
}

/// A refusal made here, before calling the node.
pub(crate) fn refusal(text: String) -> CallToolResult {
    refused(
        text.clone(),
        json!({ "error": { "code": null, "message": text } }),
    )
}

/// `value` as JSON (the RPC's types always serialise).
fn value<T: Serialize>(value: &T) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}

/// An amount with its unit: "0.25 USDC" ("0.25 tokens" while the symbol is unknown).
fn money(amount: &str, unit: &str) -> String {
    if unit.is_empty() {
        format!("{amount} tokens")
    } else {
        format!("{amount} {unit}")
    }
}

/// `farthing_fetch`'s answer. A 402 left unpaid (or paid and still answered 402) is a refusal.
pub(crate) fn fetched(url: &str, max_price: &str, r: &FetchResult, unit: &str) -> CallToolResult {
    let structured = json!({
        "status": r.status,
        "paid": r.paid,
        "unpaid_reason": r.unpaid_reason,
        "headers": r.headers,
        "body": r.body,
    });
    let paid = r.paid.as_ref().map(|p| {
        format!(
            "paid {} to {} on channel {} (proof nonce {}){}",
            money(&p.amount, unit),
            p.pay_to,
            p.channel_id,
            p.nonce,
            if p.opened.is_some() {
                ", a channel the node opened for it"
            } else {
                ""
            }
        )
    });
    let mut text = match (&r.unpaid_reason, &paid) {
        (Some(reason), None) => format!(
            "Not paid: {reason}. {url} answered HTTP {} (payment required); the limit was max_price {}. Nothing was paid. Only call again with a higher max_price if the user agrees to pay the price.",
            r.status,
            money(max_price, unit)
        ),
        (Some(reason), Some(paid)) => format!(
            "HTTP {} from {url} although the node {paid}: {reason}.",
            r.status
        ),
        (None, paid) => format!(
            "HTTP {} from {url}; {}.",
            r.status,
            paid.as_deref().unwrap_or("nothing paid")
        ),
    };
    if let Some(kind) = r.headers.get("content-type") {
        text.push_str(&format!("\ncontent-type: {kind}"));
    }
    text.push_str("\n\n");
    text.push_str(&r.body);
    if r.unpaid_reason.is_some() {
        refused(text, structured)
    } else {
        done(text, structured)
    }
}

/// `farthing_balances`' answer.
pub(crate) fn balances(b: &Balances, unit: &str) -> CallToolResult {
    let text = format!(
        "free in the wallet: {}\nspendable in channels: {}\nclaimable: {}\ngas: {} ETH",
        money(&b.token, unit),
        money(&b.in_channels, unit),
        money(&b.claimable, unit),
        b.gas
    );
    done(text, value(b))
}

/// One line about a channel.
fn channel_line(c: &ChannelView, unit: &str) -> String {
    format!(
        "channel {} ({}) with {}: the user can pay {}, the partner can pay the user {}{}",
        c.id,
        c.state.as_str(),
        c.partner,
        money(&c.balance_ours, unit),
        money(&c.balance_partner, unit),
        c.settle_after
            .filter(|_| c.state == ChannelState::Closed)
            .map(|t| format!("; pays out from unix time {t}"))
            .unwrap_or_default()
    )
}

/// `farthing_listChannels`' answer.
pub(crate) fn channels(list: &[ChannelView], unit: &str) -> CallToolResult {
    let text = if list.is_empty() {
        "no channels".to_owned()
    } else {
        list.iter()
            .map(|c| channel_line(c, unit))
            .collect::<Vec<_>>()
            .join("\n")
    };
    done(text, json!({ "channels": list }))
}

/// A channel just opened; `not_ready`: why it cannot take payments yet, if so.
pub(crate) fn opened(c: &ChannelView, not_ready: Option<String>, unit: &str) -> CallToolResult {
    let mut structured = value(c);
    structured["ready"] = Value::Bool(not_ready.is_none());
    let text = format!(
        "opened channel {} with {}, locking {} of the user's tokens; {}",
        c.id,
        c.partner,
        money(&c.deposit_ours, unit),
        match not_ready {
            None => "it can take payments now".to_owned(),
            Some(why) => format!("it cannot take payments yet: {why}"),
        }
    );
    done(text, structured)
}

/// `farthing_pay`'s answer.
pub(crate) fn paid(p: &PayResult, unit: &str) -> CallToolResult {
    let text = format!(
        "{} {} on channel {} (proof nonce {}); the user can still pay {} on it",
        if p.repeated {
            "already paid earlier with this idempotency_key, nothing paid now:"
        } else {
            "paid"
        },
        money(&p.amount, unit),
        p.channel_id,
        p.nonce,
        money(&p.balance_ours, unit)
    );
    done(text, value(p))
}

/// `farthing_closeChannel`'s answer.
pub(crate) fn closed(c: &ChannelView, unit: &str) -> CallToolResult {
    let text = match c.state {
        ChannelState::Settled => format!(
            "channel {} is closed and paid out: {} to the user's wallet, {} to the partner",
            c.id,
            money(&c.balance_ours, unit),
            money(&c.balance_partner, unit)
        ),
        ChannelState::Closed => format!(
            "channel {} is closed without the partner's co-signature: {} comes back to the user's wallet after the challenge period{}",
            c.id,
            money(&c.balance_ours, unit),
            c.settle_after
                .map(|t| format!(", from unix time {t}"))
                .unwrap_or_default()
        ),
        ChannelState::Open => channel_line(c, unit),
    };
    done(text, value(c))
}

/// `farthing_info`'s answer.
pub(crate) fn info(i: &NodeInfo) -> CallToolResult {
    let health = value(&i.health.status);
    let text = format!(
        "node {} on chain {}; token {} ({} decimals) at {}; synced block {} of {}; health {}{}; {} partner link(s) up",
        i.address,
        i.chain_id,
        i.token_symbol,
        i.token_decimals,
        i.token,
        i.synced_block,
        i.chain_head,
        health.as_str().unwrap_or("?"),
        if i.health.reasons.is_empty() {
            String::new()
        } else {
            format!(" ({})", i.health.reasons.join("; "))
        },
        i.links.up
    );
    done(text, value(i))
}

/// Unix seconds as RFC 3339 UTC (`2026-12-07T10:00:00Z`).
pub(crate) fn utc(unix: u64) -> String {
    i64::try_from(unix)
        .ok()
        .and_then(|secs| chrono::DateTime::from_timestamp(secs, 0))
        .map_or_else(
            || format!("unix {unix}"),
            |t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        )
}

/// `farthing_whoami`'s answer: the limits this server runs within.
pub(crate) fn whoami(v: &CredentialView, unit: &str) -> CallToolResult {
    if v.admin {
        return done(
            "this server runs with the node's own token: every tool, no limit but the user's money"
                .into(),
            value(v),
        );
    }
    let list = |items: Option<Vec<String>>, all: &str| {
        items.map_or_else(|| all.to_owned(), |items| items.join(", "))
    };
    let mut text = format!(
        "this server runs under credential {}{}: scopes {}; largest single payment {}; partners {}; origins {}; {}",
        v.id.as_deref().unwrap_or("?"),
        v.label
            .as_deref()
            .map(|l| format!(" (\"{l}\")"))
            .unwrap_or_default(),
        list(v.scopes.clone(), "all"),
        v.max_payment
            .as_deref()
            .map_or_else(|| "not limited".to_owned(), |m| money(m, unit)),
        list(
            v.peers
                .as_ref()
                .map(|p| p.iter().map(ToString::to_string).collect()),
            "any"
        ),
        list(v.origins.clone(), "any"),
        v.expires.map_or_else(
            || "it does not expire".to_owned(),
            |t| format!("it expires at {} (unix {t})", utc(t))
        ),
    );
    for b in &v.budgets {
        text.push_str(&format!(
            "\n{} budget per {}: {} spent of {}, {} left",
            if b.kind == "deposit" {
                "deposit"
            } else {
                "payment"
            },
            if b.period == "total" {
                "its whole life"
            } else {
                b.period.as_str()
            },
            money(&b.spent, unit),
            money(&b.limit, unit),
            money(&b.remaining, unit)
        ));
    }
    if v.revoked {
        text.push_str("\nit is revoked: every tool is refused");
    }
    done(text, value(v))
}

/// What went wrong calling the node, in words an agent can act on; `bearer`: what the server
/// calls the node with (a 401 means that credential).
pub(crate) fn error_text(e: &ClientError, bearer: Bearer) -> String {
    match e {
        ClientError::Call(call) => format!("error {}: {}", call.code(), call.message()),
        ClientError::RequestTimeout => "the node did not answer in time; the operation may still complete: check `channels` and `balances` before trying again (a `pay` repeated with the same idempotency_key pays once)".to_owned(),
        e => match farthing_rpc::refused_with(e) {
            Some(401) if bearer == Bearer::Credential => "the node refused the credential this server runs with (HTTP 401: expired, revoked, or not this node's): nothing was done, and no tool will work until the user gives `farthing mcp` a valid one (--credential-file)".to_owned(),
            Some(401) => "the node refused the RPC token (HTTP 401): `farthing mcp` must be given the node's data directory (--data-dir or FARTHING_DATA_DIR), where rpc.token is".to_owned(),
            Some(429) => "the node is at one of its RPC limits (HTTP 429): retry shortly".to_owned(),
            _ => format!("cannot reach the Farthing node's RPC: {e} (is the node running, and is `farthing mcp --node-url` right?)"),
        },
    }
}

/// A failed node call as a refusal: the node's own message (it says what to do) and, in
/// `structuredContent`, `{"error": {"code", "message", "data"}}`. A credential's refusal
/// (1017, 1018, 1019) also names the scope or limit, and for a budget when it frees (RFC 3339
/// and Unix seconds, also as `error.limit`, `error.frees_at`, `error.frees_at_utc`).
pub(crate) fn node_error(tool: &str, e: ClientError, bearer: Bearer) -> CallToolResult {
    let (code, message, data) = match &e {
        ClientError::Call(call) => (
            Some(call.code()),
            call.message().to_owned(),
            call.data()
                .and_then(|d| serde_json::from_str::<Value>(d.get()).ok()),
        ),
        _ => (None, error_text(&e, bearer), None),
    };
    let mut structured = json!({ "error": { "code": code, "message": message, "data": data } });
    let field = |name: &str| data.as_ref().and_then(|d| d.get(name)).cloned();
    let text = match code {
        Some(code::SCOPE_DENIED) => format!(
            "{tool} refused by the node (error 1017): the credential this server runs with does not have the `{}` scope: {message} Do not retry; tell the user.",
            field("scope")
                .as_ref()
                .and_then(Value::as_str)
                .unwrap_or("needed")
        ),
        Some(code::OVER_LIMIT) => {
            let limit = field("limit")
                .as_ref()
                .and_then(Value::as_str)
                .unwrap_or("?")
                .to_owned();
            let frees_at = field("frees_at").as_ref().and_then(Value::as_u64);
            structured["error"]["limit"] = json!(limit);
            structured["error"]["frees_at"] = json!(frees_at);
            structured["error"]["frees_at_utc"] = json!(frees_at.map(utc));
            let when = match frees_at {
                Some(t) => format!(
                    "The budget frees enough for it at {} (unix {t}): until then the same spend is refused again.",
                    utc(t)
                ),
                None if limit.starts_with("budget.") || limit.starts_with("deposit.") => {
                    "Waiting does not free it: spend less, or ask the user for a credential with a larger budget.".to_owned()
                }
                None => "Waiting does not change it.".to_owned(),
            };
            format!(
                "{tool} refused by the node (error 1018): over the limit `{limit}` of the credential this server runs with: {message}. {when} Nothing was paid."
            )
        }
        Some(code::CREDENTIAL_INVALID) => format!(
            "{tool} refused by the node (error 1019): the credential this server runs with is no longer valid: {message}. No tool will work until the user gives `farthing mcp` a valid one."
        ),
        Some(code) => format!("{tool} refused by the node (error {code}): {message}"),
        None => format!("{tool} failed: {message}"),
    };
    refused(text, structured)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn fetch_result(status: u16, unpaid_reason: Option<&str>) -> FetchResult {
        FetchResult {
            status,
            headers: [("content-type".to_owned(), "text/plain".to_owned())].into(),
            body: "body".into(),
            paid: None,
            unpaid_reason: unpaid_reason.map(str::to_owned),
        }
    }

    #[test]
    fn an_unpaid_402_is_a_refusal_naming_the_limit() {
        let reason = "the price 0.05 is more than the most this call may pay (0.01)";
        let r = fetched(
            "http://x/",
            "0.01",
            &fetch_result(402, Some(reason)),
            "USDC",
        );
        assert_eq!(r.is_error, Some(true));
        let structured = r.structured_content.unwrap();
        assert_eq!(structured["paid"], Value::Null);
        assert_eq!(structured["status"], 402);
        let ContentBlock::Text(text) = &r.content[0] else {
            panic!("not text")
        };
        assert!(text.text.contains(reason), "{}", text.text);
        assert!(text.text.contains("max_price 0.01 USDC"), "{}", text.text);
    }

    /// The node's refusal `e`, as a client receives it.
    fn call_error(e: farthing_rpc::ApiError) -> ClientError {
        ClientError::Call(e.into())
    }

    #[test]
    fn a_budget_refusal_names_the_limit_and_when_it_frees() {
        let r = node_error(
            "pay",
            call_error(farthing_rpc::ApiError::OverLimit {
                limit: "budget.day".into(),
                message:
                    "payment of 0.4 is over this credential's day budget (cid_00): 0.8 of 1 spent"
                        .into(),
                frees_at: Some(1_796_637_600),
            }),
            Bearer::Credential,
        );
        assert_eq!(r.is_error, Some(true));
        let ContentBlock::Text(text) = &r.content[0] else {
            panic!("not text")
        };
        assert!(
            text.text.contains("`budget.day`")
                && text.text.contains("2026-12-07T10:00:00Z (unix 1796637600)")
                && text.text.contains("0.8 of 1 spent"),
            "{}",
            text.text
        );
        let error = &r.structured_content.unwrap()["error"];
        assert_eq!(error["code"], 1018);
        assert_eq!(error["limit"], "budget.day");
        assert_eq!(error["frees_at"], 1_796_637_600u64);
        assert_eq!(error["frees_at_utc"], "2026-12-07T10:00:00Z");

        let r = node_error(
            "open_channel",
            call_error(farthing_rpc::ApiError::ScopeDenied {
                method: "farthing_openChannel".into(),
                scope: "channel",
            }),
            Bearer::Credential,
        );
        let ContentBlock::Text(text) = &r.content[0] else {
            panic!("not text")
        };
        assert!(text.text.contains("error 1017") && text.text.contains("`channel` scope"));
    }

    #[test]
    fn a_free_fetch_says_nothing_was_paid_and_carries_the_body() {
        let r = fetched("http://x/", "0.01", &fetch_result(200, None), "");
        assert_eq!(r.is_error, Some(false));
        let ContentBlock::Text(text) = &r.content[0] else {
            panic!("not text")
        };
        assert_eq!(
            text.text,
            "HTTP 200 from http://x/; nothing paid.\ncontent-type: text/plain\n\nbody"
        );
        assert_eq!(money("1.5", ""), "1.5 tokens");
    }
}
