//! A credential's limits as the API takes them (token units, names: [`CredentialSpec`]) turned
//! into caveats (base units, the canonical grammar of `farthing-credential`): the node's
//! `farthing_createCredential` and the CLI's offline `credential derive` make the same ones.

use farthing_core::parse_amount;
use farthing_credential::{Caveat, Origin, Period, Scope};

use crate::CredentialSpec;

/// Longest label kept.
const MAX_LABEL: usize = 64;

/// What is wrong with a credential's parameters.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    /// An amount is malformed, too precise or zero.
    #[error("{field}: {problem}")]
    Amount {
        /// The parameter.
        field: &'static str,
        /// What is wrong.
        problem: String,
    },
    /// Another parameter is wrong.
    #[error("{0}")]
    Invalid(String),
}

fn amount(field: &'static str, text: &str, decimals: u8) -> Result<u128, SpecError> {
    let problem = |problem: String| SpecError::Amount { field, problem };
    match parse_amount(text, decimals, u128::MAX) {
        Ok(0) => Err(problem(
            "the amount is zero: give a positive amount like 12.5".into(),
        )),
        Ok(v) => Ok(v),
        Err(e) => Err(problem(e.to_string())),
    }
}

impl CredentialSpec {
    /// The caveats these limits make, in a fixed order: scopes, expiry, max, budgets, peers,
    /// origins, then the label as a note; amounts turned into base units with `decimals`,
    /// the expiry counted from `now` (Unix seconds).
    pub fn caveats(&self, decimals: u8, now: u64) -> Result<Vec<Caveat>, SpecError> {
        caveats_of(self, decimals, now)
    }
}

fn caveats_of(spec: &CredentialSpec, decimals: u8, now: u64) -> Result<Vec<Caveat>, SpecError> {
    let mut caveats = Vec::new();
    if let Some(scopes) = &spec.scopes {
        if scopes.is_empty() {
            return Err(SpecError::Invalid(
                "scopes is empty: give at least one of read, pay, fetch, channel, sell, admin (or leave it out for all)".into(),
            ));
        }
        let mut parsed: Vec<Scope> = Vec::new();
        for name in scopes {
            let scope = Scope::ALL
                .into_iter()
                .find(|s| s.as_str() == name)
                .ok_or_else(|| {
                    SpecError::Invalid(format!(
                        "unknown scope {name:?}: the scopes are read, pay, fetch, channel, sell, admin"
                    ))
                })?;
            if !parsed.contains(&scope) {
                parsed.push(scope);
            }
        }
        caveats.push(Caveat::Scope(parsed));
    }
    if let Some(secs) = spec.expires_in_secs {
        if secs == 0 {
            return Err(SpecError::Invalid(
                "expires_in_secs is 0: give a positive number of seconds".into(),
            ));
        }
        caveats.push(Caveat::Exp(now.saturating_add(secs)));
    }
    if let Some(max) = &spec.max_payment {
        caveats.push(Caveat::Max(amount("max_payment", max, decimals)?));
    }
    for (field, value, period, deposit) in [
        ("budget_hour", &spec.budget_hour, Period::Hour, false),
        ("budget_day", &spec.budget_day, Period::Day, false),
        ("budget_total", &spec.budget_total, Period::Total, false),
        ("deposit_day", &spec.deposit_day, Period::Day, true),
        ("deposit_total", &spec.deposit_total, Period::Total, true),
    ] {
        if let Some(text) = value {
            let limit = amount(field, text, decimals)?;
            caveats.push(if deposit {
                Caveat::Deposit(period, limit)
            } else {
                Caveat::Budget(period, limit)
            });
        }
    }
    if let Some(peers) = &spec.peers {
        if peers.is_empty() {
            return Err(SpecError::Invalid(
                "peers is empty: give at least one partner address (or leave it out for any)"
                    .into(),
            ));
        }
        let mut list: Vec<[u8; 20]> = Vec::new();
        for peer in peers {
            if !list.contains(&peer.0.0) {
                list.push(peer.0.0);
            }
        }
        caveats.push(Caveat::Peer(list));
    }
    if let Some(origins) = &spec.origins {
        if origins.is_empty() {
            return Err(SpecError::Invalid(
                "origins is empty: give at least one origin like https://api.example.com (or leave it out for any)".into(),
            ));
        }
        let mut list: Vec<Origin> = Vec::new();
        for text in origins {
            let origin = Origin::parse_url(text).map_err(|e| {
                SpecError::Invalid(format!(
                    "origin {text:?}: {e}; give scheme://host[:port], e.g. https://api.example.com"
                ))
            })?;
            if !list.contains(&origin) {
                list.push(origin);
            }
        }
        caveats.push(Caveat::Origin(list));
    }
    if let Some(label) = &spec.label {
        let fine = !label.is_empty()
            && label.len() <= MAX_LABEL
            && label.bytes().all(|b| b == b' ' || b.is_ascii_graphic());
        if !fine {
            return Err(SpecError::Invalid(format!(
                "label must be 1 to {MAX_LABEL} printable ASCII characters"
            )));
        }
        caveats.push(Caveat::Note(label.clone()));
    }
    // Every caveat must read back as itself (the node refuses any other spelling).
    for caveat in &caveats {
        Caveat::parse(&caveat.to_string())
            .map_err(|e| SpecError::Invalid(format!("cannot encode a limit: {e}")))?;
    }
    Ok(caveats)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_primitives::Address;

    #[test]
    fn token_units_become_base_unit_caveats_in_order() {
        let spec = CredentialSpec {
            label: Some("agent 7".into()),
            scopes: Some(vec!["pay".into(), "fetch".into(), "pay".into()]),
            max_payment: Some("0.5".into()),
            budget_day: Some("10".into()),
            deposit_total: Some("100".into()),
            peers: Some(vec![Address::repeat_byte(0xab)]),
            origins: Some(vec!["https://API.example.com:443/x".into()]),
            expires_in_secs: Some(60),
            ..CredentialSpec::default()
        };
        let caveats: Vec<String> = caveats_of(&spec, 6, 1000)
            .unwrap()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            caveats,
            [
                "scope=pay,fetch",
                "exp<1060",
                "max<=500000",
                "budget.day<=10000000",
                "deposit.total<=100000000",
                &format!("peer=0x{}", "ab".repeat(20)),
                "origin=https://api.example.com",
                "note#agent 7",
            ]
        );
    }

    #[test]
    fn bad_parameters_say_what_is_wrong() {
        let bad = |spec: CredentialSpec| caveats_of(&spec, 6, 0).unwrap_err().to_string();
        let e = bad(CredentialSpec {
            scopes: Some(vec!["spend".into()]),
            ..Default::default()
        });
        assert!(
            e.contains("unknown scope \"spend\"") && e.contains("read, pay"),
            "{e}"
        );
        let e = bad(CredentialSpec {
            budget_day: Some("0".into()),
            ..Default::default()
        });
        assert!(e.starts_with("budget_day: ") && e.contains("zero"), "{e}");
        let e = bad(CredentialSpec {
            max_payment: Some("0.0000001".into()),
            ..Default::default()
        });
        assert!(e.starts_with("max_payment: "), "{e}");
        let e = bad(CredentialSpec {
            origins: Some(vec!["ftp://x".into()]),
            ..Default::default()
        });
        assert!(e.contains("origin \"ftp://x\""), "{e}");
        assert!(
            bad(CredentialSpec {
                scopes: Some(vec![]),
                ..Default::default()
            })
            .contains("empty")
        );
        assert!(
            bad(CredentialSpec {
                label: Some("é".into()),
                ..Default::default()
            })
            .contains("label")
        );
    }
}
