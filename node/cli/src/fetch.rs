//! `farthing fetch`: curl for priced URLs — the node pays a 402 over its channel with the
//! seller (within --max-price) and fetches again (`farthing_fetch`).

use std::collections::BTreeMap;
use std::path::PathBuf;

use eyre::{Result, eyre};
use farthing_rpc::{FarthingApiClient, FetchResult};

/// `farthing fetch`'s flags.
#[derive(Debug, clap::Args)]
pub(crate) struct FetchArgs {
    /// The URL.
    url: String,
    /// The most to pay for this request, token units (a higher price is refused, unpaid).
    #[arg(long)]
    max_price: String,
    /// HTTP method.
    #[arg(short = 'X', long, default_value = "GET")]
    request: String,
    /// A request header, "Name: value"; repeatable.
    #[arg(short = 'H', long = "header")]
    headers: Vec<String>,
    /// The request body.
    #[arg(short = 'd', long)]
    data: Option<String>,
    /// Write the body to this file instead of standard output.
    #[arg(short = 'o', long)]
    output: Option<PathBuf>,
    /// Print the status line and headers before the body.
    #[arg(short = 'i', long)]
    include: bool,
    /// Fund a new channel to the seller with this much (token units) when there is none.
    #[arg(long)]
    deposit: Option<String>,
}

/// Fetch, print, and fail (non-zero) when the answer is not a success.
pub(crate) async fn run<C: FarthingApiClient + Sync>(
    client: &C,
    args: FetchArgs,
    json: bool,
) -> Result<()> {
    let mut headers = BTreeMap::new();
    for h in &args.headers {
        let (name, value) = h
            .split_once(':')
            .ok_or_else(|| eyre!("-H {h:?}: a header is \"Name: value\""))?;
        headers.insert(name.trim().to_owned(), value.trim().to_owned());
    }
    let result = client
        .fetch(
            args.url.clone(),
            args.max_price.clone(),
            Some(args.request.clone()),
            (!headers.is_empty()).then_some(headers),
            args.data.clone(),
            args.deposit.clone(),
        )
        .await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&result)?);
    } else {
        print(&result, &args)?;
    }
    if let Some(reason) = &result.unpaid_reason {
        return Err(eyre!(
            "HTTP {} from {}: not paid: {reason}",
            result.status,
            args.url
        ));
    }
    if result.status >= 400 {
        return Err(eyre!("HTTP {} from {}", result.status, args.url));
    }
    Ok(())
}

fn print(result: &FetchResult, args: &FetchArgs) -> Result<()> {
    if let Some(paid) = &result.paid {
        eprintln!(
            "paid {} to {} on channel {} (nonce {}{})",
            paid.amount,
            paid.pay_to,
            paid.channel_id,
            paid.nonce,
            paid.opened
                .map_or(String::new(), |id| format!(", channel {id} opened for it"))
        );
    }
    if args.include {
        println!("HTTP {}", result.status);
        for (name, value) in &result.headers {
            println!("{name}: {value}");
        }
        println!();
    }
    match &args.output {
        Some(path) => std::fs::write(path, &result.body)
            .map_err(|e| eyre!("cannot write {}: {e}", path.display()))?,
        None => println!("{}", result.body),
    }
    Ok(())
}
