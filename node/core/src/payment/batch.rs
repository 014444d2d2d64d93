//! Several payments in one proof: which of the queued payments one proof carries.
//!
//! Payments queued on a channel while the previous proof was being made are signed together:
//! ONE proof whose increase is the sum of the payments the channel can afford, so one
//! signature (and one recovery at the partner) carries them all. They are taken in queue order;
//! one the channel cannot afford on top of those already carried is refused and skipped, and a
//! later, smaller one may still fit. The carried payments share the proof's nonce.

use crate::channel::Channel;
use crate::payment::PaymentError;

/// What one proof carries of a queue of payments ([`plan_batch`], [`plan_batch_admitting`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchPlan<E = PaymentError> {
    /// The (nonce, cumulative transferred) of the one proof carrying every carried payment;
    /// `None` when none is carried (nothing to sign).
    pub proof: Option<(u64, u128)>,
    /// For each payment, in queue order: `Ok` if the proof carries it, or why it was refused.
    pub outcomes: Vec<Result<(), E>>,
}

impl<E> BatchPlan<E> {
    /// How many payments the proof carries.
    pub fn carried(&self) -> usize {
        self.outcomes.iter().filter(|o| o.is_ok()).count()
    }
}

/// Plan one proof of `channel` for the payments of `amounts` (in queue order): each is carried
/// if [`Channel::next_payment_after`] allows it on top of those already carried.
///
/// With a balance of 100, payments of 60, 50 and 40 give one proof moving 100: 60 and 40 are
/// carried, 50 is refused (only 40 were left after the 60).
pub fn plan_batch(channel: &Channel, amounts: &[u128]) -> BatchPlan {
    plan_batch_admitting(channel, amounts, |_, _| Ok(()))
}

/// [`plan_batch`], where a payment the channel can afford is carried only if `admit(i,
/// amount)` also takes it (a credential's budget, charged as it says yes): `admit` is asked
/// exactly once for each payment the channel can afford, in queue order, and every payment it
/// takes is carried — so what it charged is exactly what the proof pays.
pub fn plan_batch_admitting<E: From<PaymentError>>(
    channel: &Channel,
    amounts: &[u128],
    mut admit: impl FnMut(usize, u128) -> Result<(), E>,
) -> BatchPlan<E> {
    let mut taken = 0u128;
    let mut proof = None;
    let outcomes = amounts
        .iter()
        .enumerate()
        .map(|(i, &amount)| {
            let at = channel.next_payment_after(taken, amount)?;
            admit(i, amount)?;
            // next_payment_after allowed it: taken + amount is within our balance.
            taken = taken.saturating_add(amount);
            proof = Some(at);
            Ok(())
        })
        .collect();
    BatchPlan { proof, outcomes }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::channel::{ChainState, Role};
    use crate::test_support::{any_channel, open_channel, proof};

    #[test]
    fn a_batch_carries_what_fits_in_queue_order_under_one_nonce() {
        let mut c = open_channel(Role::A, 100, 50);
        c.ours = proof(4, 10); // balance 90
        let plan = plan_batch(&c, &[30, 0, 70, 50, 10, 1]);
        assert_eq!(plan.proof, Some((5, 10 + 30 + 50 + 10)));
        assert_eq!(
            plan.outcomes,
            vec![
                Ok(()),
                Err(PaymentError::Zero),
                Err(PaymentError::Insufficient {
                    id: 1,
                    available: 60,
                    amount: 70
                }),
                Ok(()),
                Ok(()),
                Err(PaymentError::Insufficient {
                    id: 1,
                    available: 0,
                    amount: 1
                }),
            ]
        );
        assert_eq!(plan.carried(), 3);
    }

    #[test]
    fn an_admitting_plan_carries_exactly_what_admit_took_of_what_the_channel_affords() {
        #[derive(Debug, PartialEq)]
        enum Refused {
            Channel(PaymentError),
            Budget,
        }
        impl From<PaymentError> for Refused {
            fn from(e: PaymentError) -> Self {
                Self::Channel(e)
            }
        }
        let mut c = open_channel(Role::A, 100, 50);
        c.ours = proof(4, 10); // balance 90
        let mut budget = 45u128;
        let mut asked = Vec::new();
        let plan = plan_batch_admitting(&c, &[30, 70, 20, 10, 15], |i, amount| {
            asked.push(i);
            if amount > budget {
                return Err(Refused::Budget);
            }
            budget -= amount;
            Ok(())
        });
        // 70 is over the channel and never reaches admit; 20 is over what the budget has left.
        assert_eq!(asked, [0, 2, 3, 4]);
        assert_eq!(plan.proof, Some((5, 10 + 30 + 10)));
        assert_eq!(budget, 5);
        assert!(matches!(plan.outcomes[1], Err(Refused::Channel(_))));
        assert_eq!(plan.outcomes[2], Err(Refused::Budget));
        assert_eq!(plan.outcomes[4], Err(Refused::Budget));
        assert_eq!(plan.carried(), 2);
    }

    #[test]
    fn a_batch_of_one_is_the_single_payment() {
        let mut c = open_channel(Role::B, 0, 40);
        c.theirs = proof(2, 5);
        let plan = plan_batch(&c, &[45]);
        assert_eq!(plan.proof, c.next_payment(45).ok());
        assert_eq!(plan.outcomes, vec![Ok(())]);
    }

    #[test]
    fn nothing_carried_means_nothing_to_sign() {
        let mut c = open_channel(Role::A, 100, 0);
        assert_eq!(
            plan_batch(&c, &[]),
            BatchPlan {
                proof: None,
                outcomes: Vec::new()
            }
        );
        c.on_chain.state = ChainState::Closed;
        let plan = plan_batch(&c, &[1, 2]);
        assert_eq!(plan.proof, None);
        let not_open = Err(PaymentError::NotOpen {
            id: 1,
            state: ChainState::Closed,
        });
        assert_eq!(plan.outcomes, vec![not_open.clone(), not_open]);
        assert_eq!(plan.carried(), 0);
    }

    #[test]
    fn an_exhausted_channel_carries_nothing() {
        let mut c = open_channel(Role::A, 100, 0);
        c.ours = proof(u64::MAX, 0);
        let plan = plan_batch(&c, &[1]);
        assert_eq!(plan.proof, None);
        assert_eq!(plan.outcomes, vec![Err(PaymentError::Exhausted { id: 1 })]);
    }

    proptest! {
        /// The proof's increase is exactly the sum of the carried payments, never past our
        /// balance, under the next nonce; each refusal is what the sender's rule says about
        /// that payment on top of those carried before it.
        #[test]
        fn a_batch_moves_exactly_what_it_carries(
            channel in any_channel(),
            amounts in proptest::collection::vec(0u128..400_000, 0..40),
        ) {
            let plan = plan_batch(&channel, &amounts);
            prop_assert_eq!(plan.outcomes.len(), amounts.len());
            let mut taken = 0u128;
            for (&amount, outcome) in amounts.iter().zip(&plan.outcomes) {
                let expected = channel.next_payment_after(taken, amount).map(|_| ());
                prop_assert_eq!(outcome, &expected);
                if outcome.is_ok() {
                    taken += amount;
                }
            }
            prop_assert!(taken <= channel.our_balance());
            match plan.proof {
                Some((nonce, transferred)) => {
                    prop_assert_eq!(nonce, channel.our_nonce() + 1);
                    prop_assert_eq!(transferred - channel.sent(), taken);
                    prop_assert!(plan.carried() > 0);
                }
                None => {
                    prop_assert_eq!(taken, 0);
                    prop_assert_eq!(plan.carried(), 0);
                }
            }
        }
    }
}
