//! `farthing payments`: the node's payment log, by cursor, and with `--follow` its live stream
//! over a WebSocket, resumed after any `seq` without a gap.

use eyre::{Result, eyre};
use farthing_rpc::{FarthingApiClient, PaymentView};

/// What to list.
pub(crate) struct Listing {
    pub(crate) channel: Option<u64>,
    pub(crate) limit: u32,
    pub(crate) after: Option<u64>,
    pub(crate) follow: bool,
}

const HEADER: &str =
    "     seq  channel    nonce  dir         amount  at (unix ms)   memo / key / credential";

fn line(p: &PaymentView) -> String {
    let mut text = format!(
        "{:>8}  {:>7}  {:>7}  {:<3} {:>14}  {:<13}  {}",
        p.seq,
        p.channel_id,
        p.nonce,
        p.direction,
        p.amount,
        p.at_ms,
        p.memo.as_deref().unwrap_or("")
    );
    if let Some(key) = &p.key {
        text.push_str(&format!(" [key {key}]"));
    }
    if let Some(credential) = &p.credential {
        text.push_str(&format!(" [by {credential}]"));
    }
    if p.carried {
        text.push_str(" (carried)");
    }
    text
}

/// List a page (`--json`: the page as the API returns it); with `follow`, then stream every
/// payment after it as it becomes durable (`--json`: one object a line).
pub(crate) async fn run(
    client: &impl FarthingApiClient,
    ws_url: &str,
    token: &str,
    json: bool,
    listing: Listing,
) -> Result<()> {
    let page = client
        .list_payments(listing.channel, Some(listing.limit), listing.after)
        .await?;
    if json && !listing.follow {
        println!("{}", serde_json::to_string_pretty(&page)?);
        return Ok(());
    }
    if !json {
        println!("{HEADER}");
    }
    for p in &page.payments {
        print(json, p)?;
    }
    if !listing.follow {
        if page.more {
            eprintln!("more: farthing payments --after {}", page.next);
        }
        return Ok(());
    }
    // Everything after what was listed (the log first if more is already there, then live).
    let ws = farthing_rpc::connect_ws(ws_url, token).await?;
    let mut stream = ws.subscribe_payments(Some(page.next)).await?;
    let mut last = page.next;
    while let Some(next) = stream.next().await {
        let p = next.map_err(|e| eyre!("the payment stream ended after seq {last}: {e}"))?;
        last = p.seq;
        if listing.channel.is_none_or(|c| c == p.channel_id) {
            print(json, &p)?;
        }
    }
    Err(eyre!(
        "the payment stream ended after seq {last}: resume with --after {last} --follow"
    ))
}

fn print(json: bool, p: &PaymentView) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string(p)?);
    } else {
        println!("{}", line(p));
    }
    Ok(())
}
