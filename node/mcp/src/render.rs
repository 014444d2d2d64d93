//! Tool results: text an agent reads (everything it needs is in the text: many clients show the
//! model nothing else) and `structuredContent` for programs, always a JSON object.

use farthing_rpc::{
    Balances, ChannelState, ChannelView, ClientError, FetchResult, NodeInfo, PayResult,
};
use rmcp::model::{CallToolResult, ContentBlock};
use serde::Serialize;
use serde_json::{Value, json};

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

/// What went wrong calling the node, in words an agent can act on.
pub(crate) fn error_text(e: &ClientError) -> String {
    match e {
        ClientError::Call(call) => format!("error {}: {}", call.code(), call.message()),
        ClientError::RequestTimeout => "the node did not answer in time; the operation may still complete: check `channels` and `balances` before trying again (a `pay` repeated with the same idempotency_key pays once)".to_owned(),
        e => match farthing_rpc::refused_with(e) {
            Some(401) => "the node refused the RPC token (HTTP 401): `farthing mcp` must be given the node's data directory (--data-dir or FARTHING_DATA_DIR), where rpc.token is".to_owned(),
            Some(429) => "the node is at one of its RPC limits (HTTP 429): retry shortly".to_owned(),
            _ => format!("cannot reach the Farthing node's RPC: {e} (is the node running, and is `farthing mcp --node-url` right?)"),
        },
    }
}

/// A failed node call as a refusal: the node's own message (it says what to do) and, in
/// `structuredContent`, `{"error": {"code", "message", "data"}}`.
pub(crate) fn node_error(tool: &str, e: ClientError) -> CallToolResult {
    let (code, message, data) = match &e {
        ClientError::Call(call) => (
            Some(call.code()),
            call.message().to_owned(),
            call.data()
                .and_then(|d| serde_json::from_str::<Value>(d.get()).ok()),
        ),
        _ => (None, error_text(&e), None),
    };
    let text = match code {
        Some(code) => format!("{tool} refused by the node (error {code}): {message}"),
        None => format!("{tool} failed: {message}"),
    };
    refused(
        text,
        json!({ "error": { "code": code, "message": message, "data": data } }),
    )
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
