//! What the partner tells us on a link: its `Sync` on (re)connect, its `Ack`s.
//!
//! - The partner's latest proof in its `Sync` carries the payments whose frames (or our `Ack`)
//!   were lost before the reconnect: we take it if it is newer than the one we hold and moves
//!   more ([`Channel::sync_increase`]), through the ordinary receiver's check.
//! - The nonce of ours the partner holds (an `Ack`, or a `Sync`'s `received_nonce`) settles
//!   our payments up to it; a nonce past our latest means the partner holds a proof we signed
//!   and no longer have: our data is older than what we signed (restored from an old backup),
//!   and the channel must sign nothing more ([`Channel::partner_holds`]).

use crate::channel::Channel;

/// What the partner holds of our proofs, by the nonce it reports ([`Channel::partner_holds`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Holds {
    /// Our payments up to this nonce are acknowledged: the reported nonce, capped at our
    /// latest (a nonce past it acknowledges nothing we hold).
    pub acknowledged: u64,
    /// The partner holds a proof of ours newer than our latest: our data is stale (restored
    /// from an old backup?) and the channel must sign nothing (a nonce signed again with other
    /// contents would let the partner pick the proof that pays it more).
    pub ahead: bool,
}

impl Channel {
    /// The amount the partner's proof `(nonce, transferred)` from its `Sync` adds, if it is
    /// newer than the one we hold (a higher nonce) and moves more than we have received:
    /// `Some(transferred - received)`, which the caller checks with
    /// [`Channel::check_incoming`] as the claimed amount. `None`: nothing new, ignore it.
    pub fn sync_increase(&self, nonce: u64, transferred: u128) -> Option<u128> {
        let received = self.received();
        (nonce > self.their_nonce() && transferred > received).then(|| transferred - received)
    }

    /// What the partner holds of ours when it reports holding our proof `nonce` (an `Ack`'s
    /// nonce, or a `Sync`'s `received_nonce`).
    pub fn partner_holds(&self, nonce: u64) -> Holds {
        let ours = self.our_nonce();
        Holds {
            acknowledged: nonce.min(ours),
            ahead: nonce > ours,
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use crate::channel::Role;
    use crate::payment::Rejection;
    use crate::test_support::{any_channel, open_channel, proof};

    use super::*;

    #[test]
    fn a_sync_proof_is_taken_only_if_newer_and_larger() {
        let mut c = open_channel(Role::A, 100, 50);
        assert_eq!(c.sync_increase(1, 20), Some(20), "nothing held yet");
        assert_eq!(c.sync_increase(0, 20), None, "nonce 0 is no proof");
        c.theirs = proof(3, 20);
        assert_eq!(c.sync_increase(4, 35), Some(15));
        assert_eq!(c.sync_increase(3, 35), None, "same nonce: already held");
        assert_eq!(c.sync_increase(2, 35), None, "older nonce");
        assert_eq!(c.sync_increase(4, 20), None, "moves nothing");
        assert_eq!(c.sync_increase(4, 19), None, "goes down");
        // The increase then goes through the receiver's rule like any payment.
        assert_eq!(c.check_incoming(4, 35, 15), Ok(()));
        assert_eq!(c.sync_increase(9, 100), Some(80));
        assert_eq!(
            c.check_incoming(9, 100, 80),
            Err(Rejection::Unaffordable {
                available: 30,
                amount: 80
            })
        );
    }

    #[test]
    fn what_the_partner_holds_acknowledges_up_to_our_latest() {
        let mut c = open_channel(Role::B, 0, 100);
        let holds = |acknowledged, ahead| Holds {
            acknowledged,
            ahead,
        };
        assert_eq!(c.partner_holds(0), holds(0, false));
        assert_eq!(c.partner_holds(1), holds(0, true), "we signed nothing");
        c.ours = proof(5, 30);
        assert_eq!(c.partner_holds(3), holds(3, false));
        assert_eq!(c.partner_holds(5), holds(5, false));
        assert_eq!(c.partner_holds(6), holds(5, true));
        assert_eq!(c.partner_holds(u64::MAX), holds(5, true));
    }

    proptest! {
        /// A taken sync proof only ever raises what we have received, by exactly the increase.
        #[test]
        fn a_sync_increase_is_exactly_the_rise(channel in any_channel(), nonce in 0u64..8, transferred in 0u128..2_000_000) {
            match channel.sync_increase(nonce, transferred) {
                Some(increase) => {
                    prop_assert!(nonce > channel.their_nonce());
                    prop_assert!(increase > 0);
                    prop_assert_eq!(channel.received() + increase, transferred);
                }
                None => prop_assert!(nonce <= channel.their_nonce() || transferred <= channel.received()),
            }
        }

        /// Acknowledged never passes our latest nonce; ahead exactly when the report does.
        #[test]
        fn holds_never_acknowledge_past_our_latest(channel in any_channel(), nonce in any::<u64>()) {
            let holds = channel.partner_holds(nonce);
            prop_assert!(holds.acknowledged <= channel.our_nonce());
            prop_assert!(holds.acknowledged <= nonce);
            prop_assert_eq!(holds.ahead, nonce > channel.our_nonce());
        }
    }
}
