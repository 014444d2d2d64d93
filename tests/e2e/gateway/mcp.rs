//! An AI agent pays for the web through `farthing mcp` without knowing what a channel is: the
//! official MCP SDK client calls `fetch` on a URL behind the real gateway — refused while the
//! price is over what the agent allowed (nothing paid), then paid (a channel opened to the
//! seller for it) — and the balances are exact, on the node and on-chain after the close.

use farthing_e2e::USDC;
use farthing_e2e::market::Market;
use farthing_rpc::FarthingApiClient;
use serde_json::json;

use crate::mcp::{mcp_client, text};

#[tokio::test(flavor = "multi_thread")]
async fn an_agent_fetches_a_priced_url_through_farthing_mcp_within_its_limit() {
    let market = Market::open(|_| {}).await;
    let url = format!("{}/data", market.url);
    let calls = json!([
        { "name": "fetch", "arguments": { "url": url, "max_price": "0.0015" } },
        { "name": "fetch", "arguments": { "url": url, "max_price": "0.01", "deposit": "2" } },
        { "name": "fetch", "arguments": { "url": url, "max_price": "0.01" } },
        { "name": "balances" },
    ]);
    let out = mcp_client(&market.alice.url, &market.net.data_dir("alice"), &calls).await;
    let results = out["calls"].as_array().unwrap();
    // Over the limit: a refusal that names the price and the limit; nothing paid.
    assert_eq!(results[0]["isError"], true, "{}", results[0]);
    let refusal = text(&results[0]);
    assert!(
        refusal.contains("0.002") && refusal.contains("0.0015"),
        "{refusal}"
    );
    // Within it: paid over a channel opened for it, then up front.
    for paid in &results[1..3] {
        assert_eq!(paid["isError"], false, "{paid}");
        let structured = &paid["structuredContent"];
        assert_eq!(structured["status"], 200, "{paid}");
        assert_eq!(structured["paid"]["amount"], "0.002", "{paid}");
        assert!(text(paid).contains("temperature"), "{paid}");
    }
    let channel = results[1]["structuredContent"]["paid"]["opened"]
        .as_u64()
        .unwrap();
    assert_eq!(market.upstream.served("/data"), 2);

    let at_bob = market.bob_rpc().get_channel(channel).await.unwrap();
    assert_eq!(at_bob.received, "0.004");
    let closed = market.alice_rpc().close_channel(channel).await.unwrap();
    assert_eq!(closed.state.as_str(), "settled");
    assert_eq!(market.net.party("BOB").balance().await, 4_000);
    assert_eq!(
        market.net.party("ALICE").balance().await,
        100 * USDC - 4_000
    );
}
