//! Cooperative close: both participants sign the payouts and the channel pays out in one
//! transaction, without a challenge period.
//!
//! The closer computes the payouts from the channel as it stands on-chain
//! ([`Channel::close_payouts`]) and signs them with the on-chain withdrawal totals
//! (`CooperativeClose { channelId, payoutA, payoutB, withdrawnA, withdrawnB }`): a close signed
//! now is void once a pending withdrawal executes, and voids it if it executes first. The
//! partner co-signs only the payouts it computes itself ([`Channel::check_close_request`]).
//! When the two nodes have not applied the same chain events (a withdrawal just executed, a
//! top-up), the refusal says so ([`CloseRefusal::Behind`]) and a retry after both catch up with
//! the chain may succeed. The caller freezes the channel (no payment either way) before it
//! signs, so that no payment is left out of the payouts and undone by the close.

use crate::amount::format_amount;
use crate::channel::Channel;

/// The start of every [`CloseRefusal::Behind`] message. Nodes match it over the wire (the
/// refusal travels as text) to know a retry may succeed.
pub const CHAIN_VIEWS_DIFFER: &str = "the nodes' views of the chain differ";

/// Why the node will not co-sign the partner's cooperative close (the reason goes back to the
/// partner's node).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CloseRefusal {
    /// The request is signed at other withdrawal totals, or pays out other than the holdings,
    /// than this node's record of the chain: one of the nodes has not applied the latest chain
    /// events. Retryable once both have caught up.
    #[error(
        "the nodes' views of the chain differ: the close is signed at withdrawal totals {theirs_withdrawn:?} paying out {theirs_total} base units, this node has {ours_withdrawn:?} and holdings {holdings}; both nodes catch up with the chain, then ask again"
    )]
    Behind {
        /// The (A, B) withdrawal totals the request is signed at.
        theirs_withdrawn: (u128, u128),
        /// The (A, B) withdrawal totals on-chain by this node's record.
        ours_withdrawn: (u128, u128),
        /// What the request pays out in total (saturated at `u128::MAX`).
        theirs_total: u128,
        /// What the channel holds by this node's record.
        holdings: u128,
    },
    /// The payouts are not the ones this node computes from its balances.
    #[error(
        "the payouts do not match this node's balances {expected:?} (to A, to B, in base units): let every payment in flight be acknowledged, then ask again"
    )]
    Payouts {
        /// The payouts (to A, to B) this node computes.
        expected: (u128, u128),
    },
}

impl CloseRefusal {
    /// What the partner's node is told: the message with its amounts in token units
    /// (`decimals`, the token's). (`Display` keeps base units, for logs.)
    pub fn explain(&self, decimals: u8) -> String {
        let units = |base: u128| format_amount(base, decimals);
        match self {
            Self::Behind {
                theirs_withdrawn,
                ours_withdrawn,
                theirs_total,
                holdings,
            } => format!(
                "the nodes' views of the chain differ: the close is signed at withdrawal totals ({}, {}) paying out {}, this node has ({}, {}) and holdings {}; both nodes catch up with the chain, then ask again",
                units(theirs_withdrawn.0),
                units(theirs_withdrawn.1),
                units(*theirs_total),
                units(ours_withdrawn.0),
                units(ours_withdrawn.1),
                units(*holdings)
            ),
            Self::Payouts { expected } => format!(
                "the payouts do not match this node's balances ({} to A, {} to B): let every payment in flight be acknowledged, then ask again",
                units(expected.0),
                units(expected.1)
            ),
        }
    }

    /// Whether asking again after both nodes catch up with the chain may succeed (the views
    /// of the chain differed).
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Behind { .. })
    }
}

impl Channel {
    /// Check the partner's cooperative close paying `payouts` (to A, to B) at the withdrawal
    /// totals `withdrawn` (A's, B's) it signed: `Ok` means co-sign it. Checked in this order:
    /// the withdrawal totals are the on-chain ones and the payouts add up to the holdings
    /// (else [`CloseRefusal::Behind`]), then the payouts are [`Channel::close_payouts`]. The
    /// caller checks the partner, the signature, and freezes the channel in the same step.
    pub fn check_close_request(
        &self,
        payouts: (u128, u128),
        withdrawn: (u128, u128),
    ) -> Result<(), CloseRefusal> {
        let ours_withdrawn = (self.on_chain.withdrawn_a, self.on_chain.withdrawn_b);
        let holdings = self.holdings();
        if withdrawn != ours_withdrawn || payouts.0.checked_add(payouts.1) != Some(holdings) {
            return Err(CloseRefusal::Behind {
                theirs_withdrawn: withdrawn,
                ours_withdrawn,
                theirs_total: payouts.0.saturating_add(payouts.1),
                holdings,
            });
        }
        let expected = self.close_payouts();
        if payouts != expected {
            return Err(CloseRefusal::Payouts { expected });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn a_refusal_the_partner_reads_is_in_token_units() {
        let behind = CloseRefusal::Behind {
            theirs_withdrawn: (1_000_000, 0),
            ours_withdrawn: (0, 0),
            theirs_total: 12_500_000,
            holdings: 13_500_000,
        };
        let text = behind.explain(6);
        assert!(
            text.contains("withdrawal totals (1, 0) paying out 12.5")
                && text.contains("this node has (0, 0) and holdings 13.5"),
            "{text}"
        );
        let payouts = CloseRefusal::Payouts {
            expected: (2_000_000, 500_000),
        };
        assert!(
            payouts.explain(6).contains("(2 to A, 0.5 to B)"),
            "{}",
            payouts.explain(6)
        );
        assert!(!text.contains("base units") && !payouts.explain(6).contains("base units"));
    }
    use crate::channel::{PendingWithdrawal, Role};
    use crate::test_support::{any_channel, mirror, open_channel, proof};

    /// A: 100 deposited, sent 30, received 5; B: 50 deposited, 10 withdrawn.
    fn channel(role: Role) -> Channel {
        let mut c = open_channel(role, 100, 50);
        c.on_chain.withdrawn_b = 10;
        let (ours, theirs) = role.order(proof(3, 30), proof(1, 5));
        c.ours = ours;
        c.theirs = theirs;
        c
    }

    #[test]
    fn the_partner_gets_a_co_signature_for_the_payouts_this_node_computes() {
        let a = channel(Role::A);
        assert_eq!(a.close_payouts(), (75, 65));
        assert_eq!(a.check_close_request((75, 65), (0, 10)), Ok(()));
        assert_eq!(
            channel(Role::B).check_close_request((75, 65), (0, 10)),
            Ok(())
        );
        assert_eq!(
            a.check_close_request((76, 64), (0, 10)),
            Err(CloseRefusal::Payouts { expected: (75, 65) })
        );
        assert!(!CloseRefusal::Payouts { expected: (1, 2) }.is_retryable());
    }

    #[test]
    fn other_withdrawal_totals_or_holdings_mean_the_views_differ() {
        let a = channel(Role::A);
        let behind = |theirs_withdrawn, theirs_total| {
            Err(CloseRefusal::Behind {
                theirs_withdrawn,
                ours_withdrawn: (0, 10),
                theirs_total,
                holdings: 140,
            })
        };
        // The partner has not seen B's withdrawal of 10.
        assert_eq!(a.check_close_request((75, 75), (0, 0)), behind((0, 0), 150));
        // Same totals, but paying out other than the holdings.
        assert_eq!(
            a.check_close_request((75, 66), (0, 10)),
            behind((0, 10), 141)
        );
        // A sum that overflows differs too (and is shown saturated).
        assert_eq!(
            a.check_close_request((u128::MAX, 141), (0, 10)),
            behind((0, 10), u128::MAX)
        );
        // Both wrong: the views differ first.
        assert_eq!(a.check_close_request((1, 1), (0, 0)), behind((0, 0), 2));
        let refusal = a.check_close_request((1, 1), (0, 0)).unwrap_err();
        assert!(refusal.is_retryable());
        assert_eq!(
            refusal.to_string(),
            "the nodes' views of the chain differ: the close is signed at withdrawal totals (0, 0) paying out 2 base units, this node has (0, 10) and holdings 140; both nodes catch up with the chain, then ask again"
        );
        assert!(refusal.to_string().starts_with(CHAIN_VIEWS_DIFFER));
    }

    #[test]
    fn a_pending_withdrawal_does_not_change_the_close() {
        let mut a = channel(Role::A);
        a.withdrawal = Some(PendingWithdrawal {
            ours: false,
            total: 40,
            expiry: 1,
        });
        assert_eq!(a.check_close_request((75, 65), (0, 10)), Ok(()));
        assert!(a.check_close_request((75, 35), (0, 40)).is_err());
    }

    proptest! {
        /// Both nodes, with the same books, compute the same payouts and co-sign each other's
        /// close; the payouts always split the holdings.
        #[test]
        fn both_sides_agree_on_the_close(channel in any_channel()) {
            let theirs = mirror(&channel);
            let payouts = channel.close_payouts();
            let withdrawn = (channel.on_chain.withdrawn_a, channel.on_chain.withdrawn_b);
            prop_assert_eq!(payouts, theirs.close_payouts());
            prop_assert_eq!(payouts.0 + payouts.1, channel.holdings());
            prop_assert_eq!(theirs.check_close_request(payouts, withdrawn), Ok(()));
            prop_assert_eq!(channel.check_close_request(payouts, withdrawn), Ok(()));
        }
    }
}
