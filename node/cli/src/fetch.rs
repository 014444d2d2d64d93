//! `farthing fetch`: curl for priced URLs — the node pays a 402 over its channel with the
//! seller (within --max-price) and fetches again (`farthing_fetch`).

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

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
    /// Fetch N times (`{i}` in the URL becomes 1..N), with a live line of requests/s and
    /// what was paid; prints a summary instead of the bodies.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    count: u64,
    /// With --count: requests in flight at once.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u64).range(1..=16))]
    concurrency: u64,
}

/// Fetch, print, and fail (non-zero) when the answer is not a success.
pub(crate) async fn run<C: FarthingApiClient + Send + Sync + 'static>(
    client: C,
    args: FetchArgs,
    json: bool,
) -> Result<()> {
    if args.count > 1 {
        return many(Arc::new(client), args, json).await;
    }
    let client = &client;
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
    } else if result.unpaid_reason.is_none() || args.include {
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

/// `--count N`: N fetches, `--concurrency` at a time, a live line on stderr; stops at the
/// first failure (after those in flight).
async fn many<C: FarthingApiClient + Send + Sync + 'static>(
    client: Arc<C>,
    args: FetchArgs,
    json: bool,
) -> Result<()> {
    let (next, done, paid_units) = (
        Arc::new(AtomicU64::new(1)),
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
    );
    let info = client.info().await?;
    let (decimals, symbol) = (info.token_decimals, info.token_symbol);
    let started = Instant::now();
    let args = Arc::new(args);
    let mut workers = Vec::new();
    for _ in 0..args.concurrency {
        let (client, args) = (client.clone(), args.clone());
        let (next, done, paid_units) = (next.clone(), done.clone(), paid_units.clone());
        workers.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Relaxed);
                if i > args.count {
                    return Ok::<_, eyre::Report>(());
                }
                let url = args.url.replace("{i}", &i.to_string());
                let got = client
                    .fetch(
                        url.clone(),
                        args.max_price.clone(),
                        Some(args.request.clone()),
                        None,
                        args.data.clone(),
                        args.deposit.clone(),
                    )
                    .await?;
                if let Some(reason) = got.unpaid_reason {
                    return Err(eyre!("{url}: HTTP {}: not paid: {reason}", got.status));
                }
                if got.status >= 400 {
                    return Err(eyre!("{url}: HTTP {}", got.status));
                }
                if let Some(paid) = got.paid {
                    let units = farthing_core::parse_amount(&paid.amount, decimals, u128::MAX)
                        .map_or(0, |u| u64::try_from(u).unwrap_or(u64::MAX));
                    paid_units.fetch_add(units, Relaxed);
                }
                done.fetch_add(1, Relaxed);
            }
        }));
    }
    let live = std::io::stderr().is_terminal();
    let line = |final_line: bool| {
        let n = done.load(Relaxed);
        let secs = started.elapsed().as_secs_f64();
        let text = format!(
            "{n}/{} requests · {:.0}/s · paid {} {symbol} in all",
            args.count,
            n as f64 / secs.max(1e-9),
            farthing_core::format_amount(u128::from(paid_units.load(Relaxed)), decimals)
        );
        if live {
            eprint!("\r{text}   ");
            if final_line {
                eprintln!();
            }
        } else {
            eprintln!("{text}");
        }
    };
    let failure;
    let period = Duration::from_millis(if live { 200 } else { 1_000 });
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    let mut workers = futures_join(workers);
    loop {
        tokio::select! {
            result = &mut workers => {
                failure = result.err();
                break;
            }
            _ = ticker.tick() => line(false),
        }
    }
    line(true);
    if json {
        println!(
            "{}",
            serde_json::json!({
                "requests": done.load(Relaxed),
                "seconds": started.elapsed().as_secs_f64(),
                "paid": farthing_core::format_amount(u128::from(paid_units.load(Relaxed)), decimals),
            })
        );
    }
    failure.map_or(Ok(()), Err)
}

/// Wait for every worker; the first error, if any.
fn futures_join(
    workers: Vec<tokio::task::JoinHandle<Result<()>>>,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<()>> + Send>> {
    Box::pin(async move {
        let mut first = Ok(());
        for worker in workers {
            let outcome = worker.await.map_err(|e| eyre!("{e}")).and_then(|r| r);
            if first.is_ok() {
                first = outcome;
            }
        }
        first
    })
}
