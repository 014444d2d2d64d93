//! The limits a verified credential leaves ([`Effective`]) and the pure check of a request
//! against its static ones ([`check`]): scope, expiry, per-payment max, peer and origin.
//! Conjunction narrows: scopes, peers and origins intersect; expiry and max take the minimum.
//! Budgets (`budget.` for payments, `deposit.` for channel opens and top-ups) are listed with
//! the chain step they are charged to and their [`Kind`]; the node's ledger enforces them
//! ([`crate::ledger`]; plan: "Budgets: which ids, what state").
//!
//! Applies-to rules: `max` only binds a call that spends; `peer` only a call naming a
//! partner; `origin` binds a fetch, and a spending call that names no origin fails it (an
//! origin-limited credential cannot pay directly).

use std::collections::BTreeSet;

use crate::render::Units;
use crate::{Caveat, ChainId, Kind, Origin, Period, Scope, Verified};

/// A budget caveat and the chain step whose id its spends are counted under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Budget {
    /// The caveat's 1-based position in the chain.
    pub step: usize,
    /// `cid_step`: the ledger row's id.
    pub cid: ChainId,
    /// What it counts: payments (`budget.`) or deposits (`deposit.`).
    pub kind: Kind,
    /// The period.
    pub period: Period,
    /// The cap, base units.
    pub limit: u128,
}

/// What is left after every caveat. `None` means unrestricted.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Effective {
    /// Scopes allowed (intersection of every `scope` caveat).
    pub scopes: Option<BTreeSet<Scope>>,
    /// The time (Unix seconds) the credential stops working (minimum `exp`).
    pub expires: Option<u64>,
    /// The largest single payment, base units (minimum `max`).
    pub max: Option<u128>,
    /// Partners allowed (intersection of every `peer` caveat).
    pub peers: Option<BTreeSet<[u8; 20]>>,
    /// Origins a fetch may pay (intersection of every `origin` caveat).
    pub origins: Option<BTreeSet<Origin>>,
    /// Every budget of either kind, in chain order.
    pub budgets: Vec<Budget>,
}

fn narrow<T: Ord + Clone>(acc: &mut Option<BTreeSet<T>>, items: &[T]) {
    let new: BTreeSet<T> = items.iter().cloned().collect();
    *acc = Some(match acc.take() {
        None => new,
        Some(old) => old.intersection(&new).cloned().collect(),
    });
}

fn min_opt<T: Ord + Copy>(acc: &mut Option<T>, v: T) {
    *acc = Some(acc.map_or(v, |a| a.min(v)));
}

impl Effective {
    /// Folds the caveats of a verified credential.
    pub fn from_verified(v: &Verified) -> Effective {
        Effective::from_chain(v.caveats(), v.chain_ids())
    }

    /// Folds `caveats` whose chain ids (`cid_0 ..= cid_n`, as [`Verified::chain_ids`]) are
    /// `chain_ids`: for a credential verified earlier whose ids were kept (the node's list of
    /// the credentials it issued). A budget whose id is missing counts under an all-zero id.
    pub fn from_chain(caveats: &[Caveat], chain_ids: &[ChainId]) -> Effective {
        let mut e = Effective::default();
        for (i, c) in caveats.iter().enumerate() {
            let step = i + 1;
            match c {
                Caveat::Scope(s) => narrow(&mut e.scopes, s),
                Caveat::Exp(t) => min_opt(&mut e.expires, *t),
                Caveat::Max(a) => min_opt(&mut e.max, *a),
                Caveat::Peer(p) => narrow(&mut e.peers, p),
                Caveat::Origin(o) => narrow(&mut e.origins, o),
                Caveat::Budget(period, limit) | Caveat::Deposit(period, limit) => {
                    let kind = match c {
                        Caveat::Deposit(..) => Kind::Deposit,
                        _ => Kind::Pay,
                    };
                    let cid = chain_ids.get(step).copied().unwrap_or(ChainId([0; 16]));
                    e.budgets.push(Budget {
                        step,
                        cid,
                        kind,
                        period: *period,
                        limit: *limit,
                    });
                }
                Caveat::Nonce(_) | Caveat::Note(_) => {}
            }
        }
        e
    }
}

/// A call to check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request<'a> {
    /// The method's scope.
    pub scope: Scope,
    /// What it spends, base units, if it spends.
    pub amount: Option<u128>,
    /// The partner it names, if any.
    pub peer: Option<[u8; 20]>,
    /// The URL (or origin) a fetch pays, if any.
    pub origin: Option<&'a str>,
    /// The node's clock, Unix seconds.
    pub now: u64,
    /// The token's decimals, to state refusals in token units (USDC: 6).
    pub decimals: u8,
}

/// Which limit refused a call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The method's scope is not allowed.
    #[error("scope {needed:?} not allowed by this credential")]
    Scope {
        /// The scope the call needs.
        needed: Scope,
    },
    /// Expired.
    #[error("credential expired at {expires} (now {now})")]
    Expired {
        /// The effective `exp`.
        expires: u64,
        /// The node's clock.
        now: u64,
    },
    /// The payment is over the per-payment max.
    #[error("amount {} exceeds this credential's per-payment max {}", Units(*.amount, *.decimals), Units(*.max, *.decimals))]
    OverMax {
        /// The payment, base units.
        amount: u128,
        /// The max, base units.
        max: u128,
        /// The token's decimals (for the message).
        decimals: u8,
    },
    /// The partner is not allowed.
    #[error("peer not allowed by this credential")]
    Peer,
    /// The origin is not allowed (or a spend names none under an origin caveat).
    #[error("origin not allowed by this credential")]
    Origin,
}

/// Checks `req` against `eff`'s static limits. Budgets are not checked here.
pub fn check(eff: &Effective, req: &Request<'_>) -> Result<(), Refusal> {
    if let Some(scopes) = &eff.scopes
        && !scopes.contains(&req.scope)
    {
        return Err(Refusal::Scope { needed: req.scope });
    }
    if let Some(expires) = eff.expires
        && req.now >= expires
    {
        return Err(Refusal::Expired {
            expires,
            now: req.now,
        });
    }
    if let (Some(max), Some(amount)) = (eff.max, req.amount)
        && amount > max
    {
        return Err(Refusal::OverMax {
            amount,
            max,
            decimals: req.decimals,
        });
    }
    if let (Some(peers), Some(peer)) = (&eff.peers, req.peer)
        && !peers.contains(&peer)
    {
        return Err(Refusal::Peer);
    }
    if let Some(origins) = &eff.origins {
        match req.origin {
            Some(url) => match Origin::parse_url(url) {
                Ok(o) if origins.contains(&o) => {}
                _ => return Err(Refusal::Origin),
            },
            None if req.amount.is_some() => return Err(Refusal::Origin),
            None => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Credential;

    const K: [u8; 32] = [7; 32];

    fn eff(cavs: &[&str]) -> Effective {
        let cavs: Vec<Caveat> = cavs
            .iter()
            .map(|s| Caveat::parse(s).unwrap_or_else(|e| panic!("{e}")))
            .collect();
        let v = Credential::mint(&K, [1; 16], &cavs)
            .verify(&K)
            .unwrap_or_else(|e| panic!("{e}"));
        v.effective()
    }

    fn req(scope: Scope) -> Request<'static> {
        Request {
            scope,
            amount: None,
            peer: None,
            origin: None,
            now: 100,
            decimals: 6,
        }
    }

    #[test]
    fn caveats_narrow_by_conjunction() {
        let e = eff(&[
            "scope=read,pay,fetch",
            "scope=pay,fetch,admin",
            "exp<500",
            "exp<900",
            "max<=500",
            "max<=999999",
        ]);
        assert_eq!(e.scopes, Some([Scope::Pay, Scope::Fetch].into()));
        assert_eq!(e.expires, Some(500));
        assert_eq!(e.max, Some(500));
        assert_eq!(
            check(&e, &req(Scope::Read)),
            Err(Refusal::Scope {
                needed: Scope::Read
            })
        );
        assert_eq!(
            check(
                &e,
                &Request {
                    amount: Some(500),
                    ..req(Scope::Pay)
                }
            ),
            Ok(())
        );
        let over = check(
            &e,
            &Request {
                amount: Some(1_500_000),
                ..req(Scope::Pay)
            },
        );
        assert_eq!(
            over,
            Err(Refusal::OverMax {
                amount: 1_500_000,
                max: 500,
                decimals: 6
            })
        );
        let msg = over.err().map(|r| r.to_string()).unwrap_or_default();
        assert_eq!(
            msg,
            "amount 1.5 exceeds this credential's per-payment max 0.0005"
        );
        assert_eq!(
            check(
                &e,
                &Request {
                    now: 500,
                    ..req(Scope::Pay)
                }
            ),
            Err(Refusal::Expired {
                expires: 500,
                now: 500
            })
        );
    }

    #[test]
    fn peers_and_origins() {
        let a = "0x00000000000000000000000000000000000000aa";
        let e = eff(&[
            &format!("peer={a},0x00000000000000000000000000000000000000bb"),
            &format!("peer={a}"),
            "origin=https://api.example.com",
        ]);
        let mut pa = [0u8; 20];
        pa[19] = 0xaa;
        let mut pb = pa;
        pb[19] = 0xbb;
        assert_eq!(e.peers, Some([pa].into()));
        assert_eq!(
            check(
                &e,
                &Request {
                    peer: Some(pa),
                    ..req(Scope::Channel)
                }
            ),
            Ok(())
        );
        assert_eq!(
            check(
                &e,
                &Request {
                    peer: Some(pb),
                    ..req(Scope::Channel)
                }
            ),
            Err(Refusal::Peer)
        );
        let fetch = |origin| Request {
            amount: Some(1),
            origin: Some(origin),
            ..req(Scope::Fetch)
        };
        assert_eq!(check(&e, &fetch("https://API.example.com:443/x")), Ok(()));
        assert_eq!(
            check(&e, &fetch("https://api.example.com.evil/")),
            Err(Refusal::Origin)
        );
        assert_eq!(
            check(&e, &fetch("https://api.example.com@evil.com/")),
            Err(Refusal::Origin)
        );
        assert_eq!(
            check(&e, &fetch("http://api.example.com/")),
            Err(Refusal::Origin)
        );
        // A spend that names no origin fails an origin caveat; a read does not.
        assert_eq!(
            check(
                &e,
                &Request {
                    amount: Some(1),
                    ..req(Scope::Pay)
                }
            ),
            Err(Refusal::Origin)
        );
        assert_eq!(check(&e, &req(Scope::Read)), Ok(()));
    }

    #[test]
    fn budgets_are_listed_with_their_step_ids() {
        let cavs = [
            "nonce=a",
            "budget.day<=5000",
            "scope=pay",
            "deposit.total<=70",
            "budget.total<=9",
        ];
        let e = eff(&cavs);
        let v = Credential::mint(
            &K,
            [1; 16],
            &cavs
                .iter()
                .map(|s| Caveat::parse(s).unwrap_or_else(|e| panic!("{e}")))
                .collect::<Vec<_>>(),
        )
        .verify(&K)
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(v.chain_ids().len(), 6);
        let got: Vec<_> = e
            .budgets
            .iter()
            .map(|b| (b.step, b.cid, b.kind, b.period, b.limit))
            .collect();
        let ids = v.chain_ids();
        assert_eq!(
            got,
            [
                (2, ids[2], Kind::Pay, Period::Day, 5000),
                (4, ids[4], Kind::Deposit, Period::Total, 70),
                (5, ids[5], Kind::Pay, Period::Total, 9),
            ]
        );
        // Budgets are not enforced by check.
        assert_eq!(
            check(
                &e,
                &Request {
                    amount: Some(10_000),
                    ..req(Scope::Pay)
                }
            ),
            Ok(())
        );
    }
}
