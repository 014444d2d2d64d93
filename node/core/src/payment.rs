//! The off-chain payment rules (PROTOCOL.md, "Off-chain state"), pure.
//!
//! A payment of `x` from P to Q: P's next proof has nonce `nonce_P + 1` and cumulative
//! `transferred_P + x`. P may pay only what it can still pay:
//! `deposit_P - withdrawn_P + transferred_Q - transferred_P >= x`. The sender refuses to sign
//! past it ([`Channel::next_payment`]); the receiver refuses to accept past it, and accepts a
//! partner's proof only if its nonce is higher than the last one it holds and it moves at least
//! the claimed amount ([`Channel::check_incoming`]). "At least": a proof the receiver refused
//! earlier stays signed by the payer (it can never be taken back), so the payer's next proof
//! carries it too, and the receiver credits the whole increase. Signatures are checked by the
//! caller (this crate does no cryptography); these rules decide everything else.
//!
//! Several payments queued on one channel share one proof ([`plan_batch`]): each is carried if
//! the channel can afford it on top of those already carried, and the receiver checks the
//! proof against what its payments claim together ([`claimed`]). On reconnect each side sends
//! its latest proof and the nonce it holds of the other's (`Sync`): the receiver takes a newer
//! proof it missed ([`Channel::sync_increase`]) and learns what the partner holds of ours
//! ([`Channel::partner_holds`]).

use crate::amount::format_amount;
use crate::channel::{ChainState, Channel};

mod batch;
mod sync;

pub use batch::{BatchPlan, plan_batch, plan_batch_admitting};
pub use sync::Holds;

/// Why the node refuses to sign a payment.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PaymentError {
    /// Zero is not a payment.
    #[error("a payment must be positive")]
    Zero,
    /// The channel is not open on-chain.
    #[error("channel {id} is not open ({state:?}): no payments")]
    NotOpen {
        /// Channel id.
        id: u64,
        /// Its state.
        state: ChainState,
    },
    /// More than we can still pay.
    #[error(
        "channel {id} can pay at most {available} base units now, {amount} asked: top up or pay less"
    )]
    Insufficient {
        /// Channel id.
        id: u64,
        /// What we can still pay.
        available: u128,
        /// What was asked.
        amount: u128,
    },
    /// The nonce or the cumulative amount would leave its type: close and reopen the channel.
    #[error(
        "channel {id} has reached the limit of its nonce or cumulative amount: close it and open a new one"
    )]
    Exhausted {
        /// Channel id.
        id: u64,
    },
}

/// Why an incoming proof is refused (the reason goes back to the payer).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// The channel is not open on-chain.
    #[error("channel is not open")]
    NotOpen,
    /// Not newer than the proof the receiver holds (replayed or stale).
    #[error("nonce {got} is not newer than the last accepted one ({expected} or more expected)")]
    Nonce {
        /// The next nonce the receiver accepts.
        expected: u64,
        /// The proof's nonce.
        got: u64,
    },
    /// The cumulative amount rises by less than the claimed payment.
    #[error("the proof moves {got} base units, the payment claims {claimed}")]
    Increase {
        /// The payment the sender claims.
        claimed: u128,
        /// What the proof actually moves (saturating; 0 if it goes down).
        got: u128,
    },
    /// The payer cannot afford it.
    #[error("the payer can pay at most {available} base units, the payment is {amount}")]
    Unaffordable {
        /// What the payer can still pay.
        available: u128,
        /// The payment.
        amount: u128,
    },
    /// Zero is not a payment.
    #[error("a payment must be positive")]
    Zero,
    /// The partner's nonces are used up: the channel must be closed.
    #[error("the channel's nonces are used up: close it")]
    Exhausted,
    /// The payments one proof carries add up to more than a `u128`: no proof can move that
    /// much, so the frame is malformed.
    #[error(
        "the payments' amounts overflow: their sum does not fit 128 bits; send fewer or smaller payments per proof"
    )]
    Overflow,
}

impl PaymentError {
    /// What the caller is told: the message with its amounts in token units (`decimals`, the
    /// token's). (`Display` keeps base units, for logs.)
    pub fn explain(&self, decimals: u8) -> String {
        match self {
            Self::Insufficient {
                id,
                available,
                amount,
            } => format!(
                "channel {id} can pay at most {} now, {} asked: top up or pay less",
                format_amount(*available, decimals),
                format_amount(*amount, decimals)
            ),
            Self::Zero | Self::NotOpen { .. } | Self::Exhausted { .. } => self.to_string(),
        }
    }
}

impl Rejection {
    /// What the payer is told: the message with its amounts in token units (`decimals`, the
    /// token's). (`Display` keeps base units, for logs.)
    pub fn explain(&self, decimals: u8) -> String {
        let units = |base: u128| format_amount(base, decimals);
        match self {
            Self::Increase { claimed, got } => format!(
                "the proof moves {}, the payment claims {}",
                units(*got),
                units(*claimed)
            ),
            Self::Unaffordable { available, amount } => format!(
                "the payer can pay at most {}, the payment is {}",
                units(*available),
                units(*amount)
            ),
            Self::NotOpen | Self::Nonce { .. } | Self::Zero | Self::Exhausted | Self::Overflow => {
                self.to_string()
            }
        }
    }
}

/// What the payments one proof carries claim together: their sum, each of them a payment.
///
/// A zero amount anywhere is [`Rejection::Zero`] (checked over all of them first), a sum past
/// `u128::MAX` is [`Rejection::Overflow`]. No payments claim 0 (which the receiver's
/// [`Channel::check_incoming`] then refuses as no payment).
///
/// ```
/// use farthing_core::{Rejection, claimed};
/// assert_eq!(claimed([5, 7]), Ok(12));
/// assert_eq!(claimed([u128::MAX, 1, 0]), Err(Rejection::Zero));
/// assert_eq!(claimed([u128::MAX, 1]), Err(Rejection::Overflow));
/// ```
pub fn claimed(amounts: impl IntoIterator<Item = u128>) -> Result<u128, Rejection> {
    let mut zero = false;
    let mut sum = Some(0u128);
    for amount in amounts {
        zero |= amount == 0;
        sum = sum.and_then(|s| s.checked_add(amount));
    }
    if zero {
        return Err(Rejection::Zero);
    }
    sum.ok_or(Rejection::Overflow)
}

impl Channel {
    /// The (nonce, cumulative transferred) of our next proof for paying `amount`, if we may.
    pub fn next_payment(&self, amount: u128) -> Result<(u64, u128), PaymentError> {
        self.next_payment_after(0, amount)
    }

    /// The (nonce, cumulative transferred) of our next proof carrying `taken` (payments already
    /// put into that proof) and `amount` more, if we may pay `amount` on top of `taken`.
    pub fn next_payment_after(
        &self,
        taken: u128,
        amount: u128,
    ) -> Result<(u64, u128), PaymentError> {
        if amount == 0 {
            return Err(PaymentError::Zero);
        }
        if self.on_chain.state != ChainState::Open {
            return Err(PaymentError::NotOpen {
                id: self.id,
                state: self.on_chain.state,
            });
        }
        let available = self.our_balance().saturating_sub(taken);
        if amount > available {
            return Err(PaymentError::Insufficient {
                id: self.id,
                available,
                amount,
            });
        }
        let (nonce, sent) = self
            .ours
            .as_ref()
            .map_or((0, 0), |p| (p.nonce, p.transferred));
        match (
            nonce.checked_add(1),
            sent.checked_add(taken).and_then(|s| s.checked_add(amount)),
        ) {
            (Some(nonce), Some(transferred)) => Ok((nonce, transferred)),
            _ => Err(PaymentError::Exhausted { id: self.id }),
        }
    }

    /// Check the partner's proof `(nonce, transferred)` claiming a payment of `amount` (its
    /// signature already verified by the caller). `Ok` means: store it as the partner's latest
    /// proof, then acknowledge.
    pub fn check_incoming(
        &self,
        nonce: u64,
        transferred: u128,
        amount: u128,
    ) -> Result<(), Rejection> {
        if amount == 0 {
            return Err(Rejection::Zero);
        }
        if self.on_chain.state != ChainState::Open {
            return Err(Rejection::NotOpen);
        }
        let (have, received) = self
            .theirs
            .as_ref()
            .map_or((0, 0), |p| (p.nonce, p.transferred));
        let Some(expected) = have.checked_add(1) else {
            return Err(Rejection::Exhausted);
        };
        if nonce < expected {
            return Err(Rejection::Nonce {
                expected,
                got: nonce,
            });
        }
        let got = transferred.saturating_sub(received);
        if transferred < received || got < amount {
            return Err(Rejection::Increase {
                claimed: amount,
                got,
            });
        }
        let available = self.partner_balance();
        if got > available {
            return Err(Rejection::Unaffordable {
                available,
                amount: got,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::channel::Role;
    use crate::test_support::{self, proof};

    /// Channel 1 with us as A (the fixture's other parameters).
    fn open_channel(deposit_a: u128, deposit_b: u128) -> Channel {
        test_support::open_channel(Role::A, deposit_a, deposit_b)
    }

    #[test]
    fn what_callers_read_is_in_token_units() {
        let short = PaymentError::Insufficient {
            id: 1,
            available: 2_500_000,
            amount: 3_000_001,
        };
        assert_eq!(
            short.explain(6),
            "channel 1 can pay at most 2.5 now, 3.000001 asked: top up or pay less"
        );
        let increase = Rejection::Increase {
            claimed: 1_000,
            got: 500,
        };
        assert_eq!(
            increase.explain(6),
            "the proof moves 0.0005, the payment claims 0.001"
        );
        let unaffordable = Rejection::Unaffordable {
            available: 9_999_000,
            amount: 10_999_000,
        };
        assert_eq!(
            unaffordable.explain(6),
            "the payer can pay at most 9.999, the payment is 10.999"
        );
        // Logs keep base units; the others have no amount.
        assert!(increase.to_string().contains("500 base units"));
        assert_eq!(Rejection::Zero.explain(6), Rejection::Zero.to_string());
    }

    #[test]
    fn the_sender_signs_only_what_it_can_pay() {
        let mut c = open_channel(100, 50);
        assert_eq!(c.next_payment(30), Ok((1, 30)));
        c.ours = proof(1, 30);
        assert_eq!(c.next_payment(70), Ok((2, 100)));
        assert_eq!(
            c.next_payment(71),
            Err(PaymentError::Insufficient {
                id: 1,
                available: 70,
                amount: 71
            })
        );
        c.theirs = proof(1, 5); // received 5 from the partner: can pay 5 more
        assert_eq!(c.next_payment(75), Ok((2, 105)));
        assert_eq!(c.next_payment(0), Err(PaymentError::Zero));
        c.on_chain.state = ChainState::Closed;
        assert!(matches!(
            c.next_payment(1),
            Err(PaymentError::NotOpen { .. })
        ));
    }

    #[test]
    fn payments_sharing_one_proof_share_its_nonce_and_the_balance() {
        let mut c = open_channel(100, 50);
        c.ours = proof(4, 30);
        // 40 already taken into the next proof: 30 more fit, 31 do not; one nonce for all.
        assert_eq!(c.next_payment_after(40, 30), Ok((5, 100)));
        assert_eq!(
            c.next_payment_after(40, 31),
            Err(PaymentError::Insufficient {
                id: 1,
                available: 30,
                amount: 31
            })
        );
        assert_eq!(c.next_payment_after(40, 0), Err(PaymentError::Zero));
        assert_eq!(c.next_payment_after(0, 70), c.next_payment(70));
    }

    #[test]
    fn a_co_signed_withdrawal_is_spent_for_both_sides_until_it_lands() {
        use crate::channel::PendingWithdrawal;
        let mut c = open_channel(100, 50);
        // The partner (B, deposit 50) may withdraw 40: it can pay us only 10 more.
        c.withdrawal = Some(PendingWithdrawal {
            ours: false,
            total: 40,
            expiry: 1,
        });
        assert_eq!(c.check_incoming(1, 10, 10), Ok(()));
        assert_eq!(
            c.check_incoming(1, 11, 11),
            Err(Rejection::Unaffordable {
                available: 10,
                amount: 11
            })
        );
        // Ours of 60 out of 100: we can pay 40.
        c.withdrawal = Some(PendingWithdrawal {
            ours: true,
            total: 60,
            expiry: 1,
        });
        assert_eq!(c.next_payment(40), Ok((1, 40)));
        assert!(matches!(
            c.next_payment(41),
            Err(PaymentError::Insufficient { available: 40, .. })
        ));
    }

    #[test]
    fn the_receiver_takes_newer_proofs_that_move_at_least_the_claim() {
        let mut c = open_channel(100, 50);
        assert_eq!(c.check_incoming(1, 20, 20), Ok(()));
        assert_eq!(
            c.check_incoming(2, 20, 20),
            Ok(()),
            "a refused proof is carried by the next one"
        );
        assert_eq!(
            c.check_incoming(1, 19, 20),
            Err(Rejection::Increase {
                claimed: 20,
                got: 19
            })
        );
        c.theirs = proof(1, 20);
        assert_eq!(
            c.check_incoming(1, 40, 20),
            Err(Rejection::Nonce {
                expected: 2,
                got: 1
            }),
            "replay"
        );
        assert_eq!(
            c.check_incoming(2, 35, 20),
            Err(Rejection::Increase {
                claimed: 20,
                got: 15
            })
        );
        assert_eq!(
            c.check_incoming(2, 10, 20),
            Err(Rejection::Increase {
                claimed: 20,
                got: 0
            }),
            "going down"
        );
        assert_eq!(
            c.check_incoming(3, 45, 20),
            Ok(()),
            "moves more than claimed: credited whole"
        );
        assert_eq!(
            c.check_incoming(2, 51, 31),
            Err(Rejection::Unaffordable {
                available: 30,
                amount: 31
            })
        );
        assert_eq!(c.check_incoming(2, 50, 30), Ok(()));
    }

    #[test]
    fn limits_of_the_types_stop_the_channel_not_the_node() {
        let mut c = open_channel(10, 0);
        c.ours = proof(u64::MAX, 0);
        assert_eq!(c.next_payment(1), Err(PaymentError::Exhausted { id: 1 }));
        c.theirs = proof(u64::MAX, 0);
        assert_eq!(
            c.check_incoming(u64::MAX, 1, 1),
            Err(Rejection::Exhausted),
            "no replay of the last nonce"
        );
    }

    #[test]
    fn the_payments_of_a_proof_claim_their_sum_each_being_a_payment() {
        assert_eq!(claimed([5, 7]), Ok(12));
        assert_eq!(claimed([9]), Ok(9));
        assert_eq!(claimed(Vec::new()), Ok(0), "no payments claim nothing");
        assert_eq!(claimed([5, 0]), Err(Rejection::Zero));
        assert_eq!(claimed([u128::MAX, 1]), Err(Rejection::Overflow));
        // A zero is reported even after the sum overflowed: every amount is looked at.
        assert_eq!(claimed([u128::MAX, 1, 0]), Err(Rejection::Zero));
        assert_eq!(claimed([u128::MAX, 0]), Err(Rejection::Zero));
        assert!(
            Rejection::Overflow
                .to_string()
                .starts_with("the payments' amounts overflow")
        );
    }

    proptest! {
        /// The claim is the exact sum when it fits, whatever the number of payments.
        #[test]
        fn a_claim_is_the_sum_of_positive_amounts(amounts in proptest::collection::vec(1u128..u128::MAX / 64, 0..64)) {
            prop_assert_eq!(claimed(amounts.iter().copied()), Ok(amounts.iter().sum::<u128>()));
        }

        /// Random payments both ways, each applied only if the rules allow it: balances never
        /// go negative or above the holdings, the two always sum to the holdings, cumulative
        /// amounts never decrease and accepted nonces are consecutive (RELIABILITY P3, P4).
        #[test]
        fn random_payments_keep_every_balance_invariant(
            deposit_a in 0u128..1_000_000,
            deposit_b in 0u128..1_000_000,
            moves in proptest::collection::vec((any::<bool>(), 0u128..300_000), 0..200),
        ) {
            let mut c = open_channel(deposit_a, deposit_b);
            let holdings = c.holdings();
            for (we_pay, amount) in moves {
                let (sent_before, received_before) = (c.sent(), c.received());
                if we_pay {
                    if let Ok((nonce, transferred)) = c.next_payment(amount) {
                        prop_assert_eq!(nonce, c.ours.as_ref().map_or(0, |p| p.nonce) + 1);
                        c.ours = proof(nonce, transferred);
                    }
                } else {
                    let (nonce, received) = c.theirs.as_ref().map_or((0, 0), |p| (p.nonce, p.transferred));
                    if c.check_incoming(nonce + 1, received + amount, amount).is_ok() {
                        c.theirs = proof(nonce + 1, received + amount);
                    }
                }
                prop_assert!(c.sent() >= sent_before && c.received() >= received_before);
                prop_assert_eq!(c.our_balance() + c.partner_balance(), holdings);
                prop_assert!(c.our_balance() <= holdings && c.partner_balance() <= holdings);
            }
        }
    }
}
