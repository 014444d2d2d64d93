//! The report: what the run measured, as one JSON object (`--json`) or a table.

use serde::Serialize;

use super::measure::Percentiles;

/// What the run measured (`--json` prints it as one object).
#[derive(Debug, Serialize)]
pub(super) struct Report {
    /// Payments at full load, both directions.
    pub(super) payments: u64,
    /// Acknowledged (fsynced by the receiver) payments per second at full load.
    pub(super) payments_per_sec: f64,
    /// Payer sign + receiver recover per second on this machine, both cores.
    pub(super) ceiling_payments_per_sec: f64,
    /// payments_per_sec / ceiling_payments_per_sec.
    pub(super) ceiling_ratio: f64,
    /// Per payment, at full load.
    pub(super) latency_ms: Percentiles,
    /// Per payment, paced at half the measured rate (or at `--paced-rate`).
    pub(super) latency_half_rate_ms: Percentiles,
    /// The rate that stream asked for (both ways together).
    pub(super) paced_rate: f64,
    /// The rate that stream achieved (both ways together).
    pub(super) paced_rate_achieved: f64,
    /// Synced commits of both nodes per payment at full load.
    pub(super) fsyncs_per_payment: f64,
    /// CPU time of both node processes per payment at full load, microseconds.
    pub(super) cpu_us_per_payment: f64,
    /// CPU time of the bench's own RPC clients (the agents) per payment at full load.
    pub(super) client_cpu_us_per_payment: f64,
    /// Payments per signed proof at full load (queued payments share one proof).
    pub(super) payments_per_proof: f64,
    /// Seconds from starting a node holding the channel to its first acknowledged payment.
    pub(super) restart_secs: f64,
    /// How many payments the restarted node's channel had seen.
    pub(super) restart_after_payments: u64,
    /// The receiver's data directory size divided by every payment it took.
    pub(super) bytes_per_payment: f64,
    /// The cooperative close paid both sides exactly what the nodes reported.
    pub(super) close_balances_exact: bool,
    /// Threads of the machine (for the table next to the published anchors).
    pub(super) cpus: usize,
}

/// The report as a Markdown table on stdout.
pub(super) fn print_table(r: &Report) {
    println!(
        "\nfarthing bench: {} payments at full load, {} cpus",
        r.payments, r.cpus
    );
    println!("| measure | value |\n|---|---|");
    println!(
        "| durable payments/s (both ways, acked after the receiver's fsync) | {:.0} |",
        r.payments_per_sec
    );
    println!(
        "| crypto ceiling (sign + recover, all cores) | {:.0}/s (achieved {:.0}%) |",
        r.ceiling_payments_per_sec,
        r.ceiling_ratio * 100.0
    );
    println!(
        "| latency at full load p50 / p99 / p99.9 | {:.2} / {:.2} / {:.2} ms |",
        r.latency_ms.p50, r.latency_ms.p99, r.latency_ms.p999
    );
    println!(
        "| latency paced at {:.0}/s (achieved {:.0}/s) p50 / p99 / p99.9 | {:.2} / {:.2} / {:.2} ms |",
        r.paced_rate,
        r.paced_rate_achieved,
        r.latency_half_rate_ms.p50,
        r.latency_half_rate_ms.p99,
        r.latency_half_rate_ms.p999
    );
    println!("| fsyncs per payment | {:.3} |", r.fsyncs_per_payment);
    println!(
        "| CPU per payment (both nodes) | {:.0} us |",
        r.cpu_us_per_payment
    );
    println!(
        "| CPU per payment (the bench's RPC clients) | {:.0} us |",
        r.client_cpu_us_per_payment
    );
    println!(
        "| payments per signed proof | {:.1} |",
        r.payments_per_proof
    );
    println!(
        "| restart to first payment ({} payments in the channel) | {:.2} s |",
        r.restart_after_payments, r.restart_secs
    );
    println!(
        "| data dir bytes per payment | {:.1} |",
        r.bytes_per_payment
    );
    println!("| cooperative close exact | {} |", r.close_balances_exact);
}
