//! HTTP(S) origins, compared parsed (scheme, lowercase host, port with defaults filled in),
//! never as string prefixes: `https://api.example.com.evil` and
//! `https://api.example.com@evil.com` are not `https://api.example.com`.

use std::fmt;

use crate::CaveatError;

/// An HTTP(S) origin: scheme, lowercase host, port (the default one when elided).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Origin {
    /// True for `https`.
    pub https: bool,
    /// ASCII (punycode) host, lowercase.
    pub host: String,
    /// The port, default ports filled in.
    pub port: u16,
}

impl Origin {
    fn default_port(https: bool) -> u16 {
        if https { 443 } else { 80 }
    }

    /// Parses a caveat's origin: canonical only (lowercase, no default port, no path).
    pub fn parse_canonical(s: &str) -> Result<Origin, CaveatError> {
        let o = Origin::parse_url(s)?;
        if o.to_string() != s {
            return Err(CaveatError("non-canonical origin"));
        }
        Ok(o)
    }

    /// The origin of an `http(s)` URL, as a request to be paid names it: the host is
    /// lowercased and the default port filled in; user info and non-HTTP schemes are refused.
    pub fn parse_url(url: &str) -> Result<Origin, CaveatError> {
        let (https, rest) = if let Some(r) = strip_prefix_ci(url, "https://") {
            (true, r)
        } else if let Some(r) = strip_prefix_ci(url, "http://") {
            (false, r)
        } else {
            return Err(CaveatError("origin scheme must be http or https"));
        };
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let authority = &rest[..end];
        if authority.contains('@') {
            return Err(CaveatError("user info in origin"));
        }
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) => {
                if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(CaveatError("bad port"));
                }
                let port: u16 = p.parse().map_err(|_| CaveatError("bad port"))?;
                if port == 0 {
                    return Err(CaveatError("bad port"));
                }
                (h, port)
            }
            None => (authority, Origin::default_port(https)),
        };
        let host = host.to_ascii_lowercase();
        let label_ok = |l: &str| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        };
        if host.is_empty() || host.len() > 253 || !host.split('.').all(label_ok) {
            return Err(CaveatError("bad host"));
        }
        Ok(Origin { https, host, port })
    }
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}://{}",
            if self.https { "https" } else { "http" },
            self.host
        )?;
        if self.port != Origin::default_port(self.https) {
            write!(f, ":{}", self.port)?;
        }
        Ok(())
    }
}
