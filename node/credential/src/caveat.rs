//! The caveat grammar (node/CREDENTIALS-PLAN.md, "Caveat grammar"). Each caveat is one UTF-8
//! string; [`Caveat::parse`] accepts only the canonical spelling, the one [`Caveat`]'s
//! `Display` writes back, so anything unknown or non-canonical (leading zeros, spaces,
//! uppercase hex, an origin with a path or default port, a repeated list item) refuses the
//! whole token.
//!
//! ```text
//! caveat  = "nonce=" 1*16(ALPHA / DIGIT / "-" / "_")   ; no meaning: makes siblings distinct
//!         / "scope=" scope *("," scope)                 ; the method's scope must be listed
//!         / "exp<" unix                                 ; now (node clock, s) < unix
//!         / "max<=" amount                              ; this payment's amount <= amount
//!         / "budget." period "<=" amount                ; payments over the period (ledger)
//!         / "deposit." period "<=" amount               ; channel opens and top-ups over the period (ledger)
//!         / "peer=" addr *("," addr)                    ; the partner a call names
//!         / "origin=" origin *("," origin)              ; the origin a fetch pays
//!         / "note#" *(VCHAR / SP)                       ; a label, always holds
//! scope   = "read" / "pay" / "fetch" / "channel" / "admin" / "sell"
//! period  = "hour" / "day" / "total"
//! amount  = "0" / (%x31-39 *38DIGIT)                    ; token base units, fits u128
//! unix    = "0" / (%x31-39 *11DIGIT)
//! addr    = "0x" 40(DIGIT / %x61-66)                    ; lowercase hex
//! origin  = ("https" / "http") "://" host [":" port]    ; lowercase, default port elided, no path
//! ```

use std::fmt;

pub use crate::origin::Origin;

/// What a caveat failed on. It never echoes the caveat itself (tokens are secrets).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid caveat: {0}")]
pub struct CaveatError(pub &'static str);

/// A method's scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    /// Reading state: info, listings, subscriptions.
    Read,
    /// `pay`.
    Pay,
    /// `fetch` (paid HTTP).
    Fetch,
    /// Channel operations.
    Channel,
    /// Credential methods, and whatever no other scope names.
    Admin,
    /// The gateway's redeem, collect and refund methods (plan decision 5).
    Sell,
}

impl Scope {
    /// Every scope.
    pub const ALL: [Scope; 6] = [
        Scope::Read,
        Scope::Pay,
        Scope::Fetch,
        Scope::Channel,
        Scope::Admin,
        Scope::Sell,
    ];

    /// The scope's name in a caveat.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Pay => "pay",
            Scope::Fetch => "fetch",
            Scope::Channel => "channel",
            Scope::Admin => "admin",
            Scope::Sell => "sell",
        }
    }

    fn parse(s: &str) -> Result<Scope, CaveatError> {
        Scope::ALL
            .into_iter()
            .find(|x| x.as_str() == s)
            .ok_or(CaveatError("unknown scope"))
    }
}

/// A budget's period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Period {
    /// A rolling hour.
    Hour,
    /// A rolling day.
    Day,
    /// For the credential's life.
    Total,
}

impl Period {
    /// Every period.
    pub const ALL: [Period; 3] = [Period::Hour, Period::Day, Period::Total];

    /// The period's name in a caveat.
    pub fn as_str(self) -> &'static str {
        match self {
            Period::Hour => "hour",
            Period::Day => "day",
            Period::Total => "total",
        }
    }

    /// The rolling window's length in seconds; `None` for [`Period::Total`].
    pub fn seconds(self) -> Option<u64> {
        match self {
            Period::Hour => Some(crate::ledger::HOUR),
            Period::Day => Some(crate::ledger::DAY),
            Period::Total => None,
        }
    }

    fn parse(s: &str) -> Result<Period, CaveatError> {
        Period::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or(CaveatError("unknown budget period"))
    }
}

/// What a budget counts: payments, or deposits into channels. Spends of the two kinds are
/// counted in separate ledgers, even under one chain id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// Payments, including the ones a paid fetch makes (`budget.` caveats).
    Pay,
    /// Channel opens and top-ups (`deposit.` caveats).
    Deposit,
}

impl Kind {
    /// Every kind.
    pub const ALL: [Kind; 2] = [Kind::Pay, Kind::Deposit];

    /// The kind's byte in stored records: 0 for [`Kind::Pay`], 1 for [`Kind::Deposit`].
    pub fn tag(self) -> u8 {
        match self {
            Kind::Pay => 0,
            Kind::Deposit => 1,
        }
    }

    /// The kind a stored tag byte names; `None` for a byte no kind has (a newer record:
    /// refuse it rather than guess).
    pub fn from_tag(tag: u8) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.tag() == tag)
    }

    /// What one spend of this kind is called in messages: `payment` or `deposit`.
    pub fn noun(self) -> &'static str {
        match self {
            Kind::Pay => "payment",
            Kind::Deposit => "deposit",
        }
    }
}

/// One first-party caveat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caveat {
    /// `nonce=…`: no meaning, makes siblings distinct (1 to 16 of ALPHA, DIGIT, `-`, `_`).
    Nonce(String),
    /// `scope=a,b`: the method's scope must be listed.
    Scope(Vec<Scope>),
    /// `exp<unix`: the node's clock (seconds) must be before it.
    Exp(u64),
    /// `max<=amount`: one payment's amount, base units.
    Max(u128),
    /// `budget.period<=amount`: payments over the period, base units (enforced by the node's
    /// ledger, [`crate::ledger`]).
    Budget(Period, u128),
    /// `deposit.period<=amount`: channel opens and top-ups over the period, base units,
    /// counted cumulatively (what was deposited, not what is still locked; plan, open
    /// question on deposit budgets). Enforced by the node's ledger, [`crate::ledger`].
    Deposit(Period, u128),
    /// `peer=0x…,0x…`: the partner a call names.
    Peer(Vec<[u8; 20]>),
    /// `origin=https://a,https://b:8443`: the origin a fetch pays.
    Origin(Vec<Origin>),
    /// `note#…`: a label (printable ASCII and space), always holds.
    Note(String),
}

fn parse_uint(s: &str, max_digits: usize) -> Result<u128, CaveatError> {
    if s.is_empty() || s.len() > max_digits || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(CaveatError("bad number"));
    }
    if s.len() > 1 && s.starts_with('0') {
        return Err(CaveatError("leading zero"));
    }
    s.parse().map_err(|_| CaveatError("number out of range"))
}

fn parse_list<T: PartialEq>(
    s: &str,
    item: impl Fn(&str) -> Result<T, CaveatError>,
) -> Result<Vec<T>, CaveatError> {
    let mut out: Vec<T> = Vec::new();
    for part in s.split(',') {
        let x = item(part)?;
        if out.contains(&x) {
            return Err(CaveatError("repeated list item"));
        }
        out.push(x);
    }
    Ok(out)
}

fn parse_addr(s: &str) -> Result<[u8; 20], CaveatError> {
    let hex = s
        .strip_prefix("0x")
        .ok_or(CaveatError("address must start with 0x"))?;
    if hex.len() != 40 {
        return Err(CaveatError("address must be 40 hex digits"));
    }
    let nib = |b: u8| match b {
        b'0'..=b'9' => Ok(b - b'0'),
        b'a'..=b'f' => Ok(b - b'a' + 10),
        _ => Err(CaveatError("address must be lowercase hex")),
    };
    let mut out = [0u8; 20];
    for (i, pair) in hex.as_bytes().chunks(2).enumerate() {
        out[i] = nib(pair[0])? << 4 | nib(pair[1])?;
    }
    Ok(out)
}

/// `period<=amount`, after a budget caveat's key and dot.
fn parse_budget(s: &str) -> Result<(Period, u128), CaveatError> {
    let (p, n) = s.split_once("<=").ok_or(CaveatError("bad budget"))?;
    Ok((Period::parse(p)?, parse_uint(n, 39)?))
}

impl Caveat {
    /// Parses one caveat, canonical spelling only.
    pub fn parse(s: &str) -> Result<Caveat, CaveatError> {
        let c = if let Some(v) = s.strip_prefix("nonce=") {
            let ok = !v.is_empty()
                && v.len() <= 16
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if !ok {
                return Err(CaveatError("bad nonce"));
            }
            Caveat::Nonce(v.to_owned())
        } else if let Some(v) = s.strip_prefix("scope=") {
            Caveat::Scope(parse_list(v, Scope::parse)?)
        } else if let Some(v) = s.strip_prefix("exp<") {
            // 12 digits fit in u64.
            Caveat::Exp(parse_uint(v, 12)? as u64)
        } else if let Some(v) = s.strip_prefix("max<=") {
            Caveat::Max(parse_uint(v, 39)?)
        } else if let Some(v) = s.strip_prefix("budget.") {
            let (period, amount) = parse_budget(v)?;
            Caveat::Budget(period, amount)
        } else if let Some(v) = s.strip_prefix("deposit.") {
            let (period, amount) = parse_budget(v)?;
            Caveat::Deposit(period, amount)
        } else if let Some(v) = s.strip_prefix("peer=") {
            Caveat::Peer(parse_list(v, parse_addr)?)
        } else if let Some(v) = s.strip_prefix("origin=") {
            Caveat::Origin(parse_list(v, Origin::parse_canonical)?)
        } else if let Some(v) = s.strip_prefix("note#") {
            if !v.bytes().all(|b| (0x20..0x7f).contains(&b)) {
                return Err(CaveatError("note must be printable ASCII"));
            }
            Caveat::Note(v.to_owned())
        } else {
            return Err(CaveatError("unknown caveat"));
        };
        if c.to_string() != s {
            return Err(CaveatError("non-canonical caveat"));
        }
        Ok(c)
    }
}

fn join<T>(f: &mut fmt::Formatter<'_>, xs: &[T], one: impl Fn(&T) -> String) -> fmt::Result {
    let parts: Vec<String> = xs.iter().map(one).collect();
    f.write_str(&parts.join(","))
}

impl fmt::Display for Caveat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Caveat::Nonce(n) => write!(f, "nonce={n}"),
            Caveat::Scope(s) => {
                f.write_str("scope=")?;
                join(f, s, |x| x.as_str().to_owned())
            }
            Caveat::Exp(t) => write!(f, "exp<{t}"),
            Caveat::Max(a) => write!(f, "max<={a}"),
            Caveat::Budget(p, a) => write!(f, "budget.{}<={a}", p.as_str()),
            Caveat::Deposit(p, a) => write!(f, "deposit.{}<={a}", p.as_str()),
            Caveat::Peer(ps) => {
                f.write_str("peer=")?;
                join(f, ps, |a| {
                    let mut s = String::from("0x");
                    for b in a {
                        s.push_str(&format!("{b:02x}"));
                    }
                    s
                })
            }
            Caveat::Origin(os) => {
                f.write_str("origin=")?;
                join(f, os, |o| o.to_string())
            }
            Caveat::Note(n) => write!(f, "note#{n}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_caveats_round_trip() {
        for s in [
            "nonce=a-Z_9",
            "scope=read,pay",
            "exp<1767225600",
            "exp<0",
            "max<=0",
            "max<=500000",
            "budget.hour<=1",
            "budget.day<=5000000",
            "budget.total<=340282366920938463463374607431768211455",
            "deposit.hour<=0",
            "deposit.day<=25000000",
            "deposit.total<=340282366920938463463374607431768211455",
            "peer=0x00000000000000000000000000000000000000ab,0xffffffffffffffffffffffffffffffffffffffff",
            "origin=https://api.example.com,http://localhost:8080,https://1.2.3.4:8443",
            "note#agent one (test)",
            "note#",
        ] {
            let c = Caveat::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"));
            assert_eq!(c.to_string(), s);
        }
    }

    #[test]
    fn non_canonical_or_unknown_caveats_refused() {
        for s in [
            "",
            "scope=",
            "scope=pay,pay",
            "scope=Pay",
            "scope= pay",
            "scope=pay,",
            "scope=sudo",
            "exp<01",
            "exp< 1",
            "exp<1234567890123",
            "max<=007",
            "max<=-1",
            "max<=340282366920938463463374607431768211456",
            "max<=1.5",
            "budget.week<=1",
            "budget.day<=",
            "budget.day==1",
            "budget.day<=01",
            "budget.Day<=1",
            "budget.day<= 1",
            "budget.day<=340282366920938463463374607431768211456",
            "deposit.week<=1",
            "deposit.day<=",
            "deposit.day<=007",
            "deposit.day<=1.5",
            "deposit.day=1",
            "deposit.total<=-1",
            "deposit.<=1",
            "deposit<=1",
            "deposits.day<=1",
            "peer=0x00000000000000000000000000000000000000AB",
            "peer=00000000000000000000000000000000000000ab",
            "peer=0x0000000000000000000000000000000000000ab",
            "origin=https://api.example.com/",
            "origin=https://API.example.com",
            "origin=https://api.example.com:443",
            "origin=http://a.com:80",
            "origin=https://a.com@evil.com",
            "origin=ftp://a.com",
            "origin=https://a.com:0",
            "origin=https://a.com:08443",
            "nonce=",
            "nonce=a b",
            "nonce=12345678901234567",
            "nonce=a=b",
            "note#tab\there",
            "frob=1",
            "scope==pay",
        ] {
            assert!(Caveat::parse(s).is_err(), "accepted {s:?}");
        }
    }

    #[test]
    fn kinds_have_stable_tags() {
        assert_eq!(Kind::Pay.tag(), 0);
        assert_eq!(Kind::Deposit.tag(), 1);
        for k in Kind::ALL {
            assert_eq!(Kind::from_tag(k.tag()), Some(k));
        }
        assert_eq!(Kind::from_tag(2), None);
        assert_eq!(Kind::from_tag(0xff), None);
        assert_eq!(
            Caveat::parse("deposit.day<=5"),
            Ok(Caveat::Deposit(Period::Day, 5))
        );
        assert_eq!(
            Caveat::parse("budget.day<=5"),
            Ok(Caveat::Budget(Period::Day, 5))
        );
    }

    #[test]
    fn url_origins_are_compared_parsed() {
        let o =
            Origin::parse_canonical("https://api.example.com").unwrap_or_else(|e| panic!("{e}"));
        for same in [
            "https://API.example.com/x?y",
            "HTTPS://api.example.com:443/",
            "https://api.example.com",
        ] {
            assert_eq!(Origin::parse_url(same), Ok(o.clone()), "{same}");
        }
        for other in [
            "https://api.example.com.evil",
            "http://api.example.com",
            "https://api.example.com:8443",
        ] {
            assert_ne!(Origin::parse_url(other), Ok(o.clone()), "{other}");
        }
        assert!(Origin::parse_url("https://api.example.com@evil.com").is_err());
    }
}
