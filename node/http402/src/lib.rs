//! HTTP 402 on the wire, for Farthing's gateway (the seller's side) and its `fetch` (the
//! buyer's): x402 v2's `PAYMENT-REQUIRED` / `PAYMENT-SIGNATURE` / `PAYMENT-RESPONSE` headers
//! ([`x402`]), MPP's `WWW-Authenticate: Payment` / `Authorization: Payment` /
//! `Payment-Receipt` ([`mpp`]), the `farthing` channel scheme's payload, and challenge ids
//! bound to their route and price by an HMAC ([`challenge`]). Pure: no I/O, time a parameter.

pub mod b64;
pub mod challenge;
pub mod mpp;
pub mod x402;

pub use challenge::{Bound, ChallengeError, ChallengeKey};

/// The native channel scheme's name, in x402 `accepts` and MPP `method`.
pub const FARTHING_SCHEME: &str = "farthing";

/// The largest payment header the gateway reads (x402-conformance fails a 402 header past
/// 16 KiB; a payment is far smaller).
pub const MAX_HEADER: usize = 16 * 1024;

/// The CAIP-2 name of an EVM chain: `eip155:<id>`.
pub fn network(chain_id: u64) -> String {
    format!("eip155:{chain_id}")
}

/// A Unix time in RFC 3339 (UTC, whole seconds), as MPP's `expires` carries it.
pub fn rfc3339(unix: u64) -> String {
    let days = unix / 86_400;
    let secs = unix % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3_600,
        secs / 60 % 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn rfc3339_dates() {
        assert_eq!(super::rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(super::rfc3339(1_798_761_599), "2026-12-31T23:59:59Z");
        assert_eq!(super::rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    }
}
