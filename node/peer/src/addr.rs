//! Peer addresses as operators write them: `0xADDRESS@host:port`.

use std::fmt;
use std::str::FromStr;

use alloy::primitives::Address;

/// The form every error message shows.
const FORM: &str = "expected 0x<40 hex digits>@<host>:<port>, e.g. \
                    0x70997970C51812dc3A010C7d01b50e0d17dc79C8@127.0.0.1:9735";

/// Where a partner node listens, and who it must prove to be.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PeerAddr {
    /// The partner's Ethereum address; the handshake must prove it.
    pub address: Address,
    /// Host name or IP literal (an IPv6 literal without its brackets).
    pub host: String,
    /// TCP port.
    pub port: u16,
}

/// Why a string is not a peer address. Every message shows the expected form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeerAddrError {
    /// No `@` between the address and the host.
    #[error("`{0}` has no `@` between address and host: {FORM}")]
    MissingAt(String),
    /// The part before `@` is not an Ethereum address.
    #[error("`{input}` is not an Ethereum address ({why}): {FORM}")]
    BadAddress {
        /// The part before `@`.
        input: String,
        /// What is wrong with it.
        why: &'static str,
    },
    /// The host is empty, or holds characters no host has.
    #[error("`{0}` is not a host name or IP (IPv6 goes in brackets: [::1]:9735): {FORM}")]
    BadHost(String),
    /// The port is missing, not a number, or 0.
    #[error("`{0}` is not a TCP port (1-65535): {FORM}")]
    BadPort(String),
}

impl FromStr for PeerAddr {
    type Err = PeerAddrError;

    fn from_str(input: &str) -> Result<Self, PeerAddrError> {
        let input = input.trim();
        let (address, endpoint) = input
            .split_once('@')
            .ok_or_else(|| PeerAddrError::MissingAt(input.to_owned()))?;
        let address = parse_address(address)?;
        let (host, port) = endpoint
            .rsplit_once(':')
            .ok_or_else(|| PeerAddrError::BadPort(endpoint.to_owned()))?;
        let host = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
            Some(v6) if v6.parse::<std::net::Ipv6Addr>().is_ok() => v6,
            Some(_) => return Err(PeerAddrError::BadHost(host.to_owned())),
            None => host,
        };
        let valid_host = !host.is_empty()
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':'))
            && (!host.contains(':') || endpoint.starts_with('['));
        if !valid_host {
            return Err(PeerAddrError::BadHost(host.to_owned()));
        }
        let port = match port.parse::<u16>() {
            Ok(port) if port != 0 => port,
            _ => return Err(PeerAddrError::BadPort(port.to_owned())),
        };
        Ok(Self {
            address,
            host: host.to_owned(),
            port,
        })
    }
}

impl fmt::Display for PeerAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let address = self.address.to_checksum(None);
        if self.host.contains(':') {
            write!(f, "{address}@[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{address}@{}:{}", self.host, self.port)
        }
    }
}

/// `0x` and 40 hex digits; a mixed-case address must carry a valid EIP-55 checksum (so a
/// typo in it is caught), an all-lower or all-upper one need not.
fn parse_address(input: &str) -> Result<Address, PeerAddrError> {
    let bad = |why| PeerAddrError::BadAddress {
        input: input.to_owned(),
        why,
    };
    let hex = input
        .strip_prefix("0x")
        .ok_or_else(|| bad("no 0x prefix"))?;
    if hex.len() != 40 {
        return Err(bad("not 40 hex digits"));
    }
    if !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(bad("not hexadecimal"));
    }
    let mixed =
        hex.chars().any(|c| c.is_ascii_lowercase()) && hex.chars().any(|c| c.is_ascii_uppercase());
    if mixed {
        Address::parse_checksummed(input, None).map_err(|_| bad("wrong EIP-55 checksum"))
    } else {
        input.parse().map_err(|_| bad("not hexadecimal"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ADDR: &str = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8";

    #[test]
    fn parses_and_displays_back() {
        for input in [
            format!("{ADDR}@127.0.0.1:9735"),
            format!("{ADDR}@node-b.example.org:1"),
            format!("{ADDR}@[::1]:65535"),
        ] {
            let peer: PeerAddr = input.parse().unwrap();
            assert_eq!(peer.to_string(), input);
        }
        let peer: PeerAddr = format!("{}@localhost:9735", ADDR.to_lowercase())
            .parse()
            .unwrap();
        assert_eq!(peer.address, ADDR.parse::<Address>().unwrap());
        assert_eq!((peer.host.as_str(), peer.port), ("localhost", 9735));
        let v6: PeerAddr = format!("{ADDR}@[::1]:9735").parse().unwrap();
        assert_eq!(v6.host, "::1");
    }

    #[test]
    fn refusals_name_the_problem_and_the_form() {
        let bad_checksum = ADDR.replace('C', "c").replacen('d', "D", 1);
        type Check = fn(&PeerAddrError) -> bool;
        let cases: Vec<(String, Check)> = vec![
            (format!("{ADDR}127.0.0.1:9735"), |e| {
                matches!(e, PeerAddrError::MissingAt(_))
            }),
            ("70997970@h:1".into(), |e| {
                matches!(e, PeerAddrError::BadAddress { .. })
            }),
            ("0x1234@h:1".into(), |e| {
                matches!(e, PeerAddrError::BadAddress { .. })
            }),
            (
                format!("{bad_checksum}@h:1"),
                |e| matches!(e, PeerAddrError::BadAddress { why, .. } if why.contains("checksum")),
            ),
            (format!("{ADDR}@:9735"), |e| {
                matches!(e, PeerAddrError::BadHost(_))
            }),
            (format!("{ADDR}@::1:9735"), |e| {
                matches!(e, PeerAddrError::BadHost(_))
            }),
            (format!("{ADDR}@[nothost]:9735"), |e| {
                matches!(e, PeerAddrError::BadHost(_))
            }),
            (format!("{ADDR}@a b:9735"), |e| {
                matches!(e, PeerAddrError::BadHost(_))
            }),
            (format!("{ADDR}@host"), |e| {
                matches!(e, PeerAddrError::BadPort(_))
            }),
            (format!("{ADDR}@host:0"), |e| {
                matches!(e, PeerAddrError::BadPort(_))
            }),
            (format!("{ADDR}@host:70000"), |e| {
                matches!(e, PeerAddrError::BadPort(_))
            }),
            (format!("{ADDR}@host:"), |e| {
                matches!(e, PeerAddrError::BadPort(_))
            }),
        ];
        for (input, expected) in cases {
            let err = input.parse::<PeerAddr>().unwrap_err();
            assert!(expected(&err), "{input}: {err:?}");
            assert!(
                err.to_string()
                    .contains("expected 0x<40 hex digits>@<host>:<port>")
            );
        }
    }
}
