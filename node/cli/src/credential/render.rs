//! How `farthing credential` shows credentials: a summary, a table, budget lines, times.

use std::time::{SystemTime, UNIX_EPOCH};

use alloy::primitives::Address;
use farthing_credential::Kind;
use farthing_rpc::CredentialView;

pub(super) fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Pay => "pay",
        Kind::Deposit => "deposit",
    }
}

/// `budget` for payments, `deposit budget` for channel deposits.
pub(super) fn budget_name(kind: &str) -> &'static str {
    if kind == "deposit" {
        "deposit budget"
    } else {
        "budget"
    }
}

/// Unix seconds as RFC 3339 UTC, with the number: `2026-12-07T10:00:00Z (unix 1796637600)`.
pub(crate) fn time(unix: u64) -> String {
    let utc = i64::try_from(unix)
        .ok()
        .and_then(|secs| chrono::DateTime::from_timestamp(secs, 0))
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_else(|| "never".into());
    format!("{utc} (unix {unix})")
}

/// The static limits, one line each (each starting with a newline).
pub(super) fn limit_lines(
    scopes: Option<String>,
    max: Option<&str>,
    expires: Option<u64>,
    peers: Option<&[Address]>,
    origins: Option<&[String]>,
) -> String {
    let list = |items: Vec<String>| items.join(", ");
    format!(
        "\nscopes: {}\nmax per payment: {}\nexpires: {}\npeers: {}\norigins: {}",
        scopes.unwrap_or_else(|| "all".into()),
        max.unwrap_or("no limit"),
        expires.map_or_else(|| "never".into(), time),
        peers.map_or_else(
            || "any".into(),
            |p| list(p.iter().map(ToString::to_string).collect())
        ),
        origins.map_or_else(|| "any".into(), |o| list(o.to_vec())),
    )
}

/// A credential as a few lines: what it allows and what is left of its budgets.
pub(super) fn summary(view: &CredentialView) -> String {
    if view.admin {
        return "the node's admin token (rpc.token): every scope, no limit".into();
    }
    let mut text = format!(
        "credential {}{}{}{}",
        view.id.as_deref().unwrap_or("?"),
        view.label
            .as_deref()
            .map(|l| format!(" \"{l}\""))
            .unwrap_or_default(),
        view.parent
            .as_deref()
            .map(|p| format!(", derived from {p}"))
            .unwrap_or_default(),
        if view.revoked { ": REVOKED" } else { "" },
    );
    text.push_str(&limit_lines(
        view.scopes.as_ref().map(|s| s.join(", ")),
        view.max_payment.as_deref(),
        view.expires,
        view.peers.as_deref(),
        view.origins.as_deref(),
    ));
    for b in &view.budgets {
        text.push_str(&format!(
            "\n{} {}: {}, spent {}, {} left (counted under {})",
            budget_name(&b.kind),
            b.period,
            b.limit,
            b.spent,
            b.remaining,
            b.counted_under
        ));
    }
    text
}

/// The node's credentials as a table.
pub(super) fn table(list: &[CredentialView]) -> String {
    let mut out = format!(
        "{:<36}  {:<16} {:<20} {:<28} {:<20} {}",
        "id", "label", "scopes", "spent of budgets", "expires (UTC)", "state"
    );
    for c in list {
        let budgets: Vec<String> = c
            .budgets
            .iter()
            .map(|b| {
                let kind = if b.kind == "deposit" { "deposit " } else { "" };
                format!("{kind}{} {}/{}", b.period, b.spent, b.limit)
            })
            .collect();
        let expires = c.expires.map_or_else(
            || "-".into(),
            |t| time(t).split(' ').next().unwrap_or("").to_owned(),
        );
        let expired = c.expires.is_some_and(|t| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .is_ok_and(|now| now.as_secs() >= t)
        });
        out.push_str(&format!(
            "\n{:<36}  {:<16} {:<20} {:<28} {:<20} {}",
            c.id.as_deref().unwrap_or("?"),
            c.label.as_deref().unwrap_or("-"),
            c.scopes
                .as_ref()
                .map_or_else(|| "all".into(), |s| s.join(",")),
            if budgets.is_empty() {
                "-".into()
            } else {
                budgets.join(", ")
            },
            expires,
            if c.revoked {
                "revoked"
            } else if expired {
                "expired"
            } else {
                "valid"
            }
        ));
    }
    if list.is_empty() {
        out.push_str("\n(no credentials: `farthing credential create` makes one)");
    }
    out
}
