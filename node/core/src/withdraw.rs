//! Cooperative withdrawal: a participant takes part of its balance out of an open channel.
//!
//! The contract pays a withdrawal both participants signed (`Withdraw { channelId, participant,
//! totalWithdrawn, expiry }`) until `expiry`, chain time. The withdrawer asks
//! ([`Channel::propose_withdrawal`]), its partner co-signs only what the withdrawer can still
//! pay by its own books ([`Channel::check_withdraw_request`]). Both sides record the withdrawal
//! as pending (durably, before their signature leaves) and count it as done: the withdrawer
//! could execute it at any moment, so neither side may spend the amount again. It stops being
//! pending when it is seen on-chain ([`crate::apply`]), when its expiry passes
//! ([`Channel::expire_withdrawal`]), or, for ours, when the partner refused to co-sign
//! ([`Channel::drop_refused_withdrawal`]). One withdrawal per channel is pending at a time.

use alloy_primitives::Address;

use crate::amount::format_amount;
use crate::channel::{ChainState, Channel, PendingWithdrawal};
use crate::limits::MAX_DEPOSIT;

/// How long a co-signed withdrawal stays valid (chain time): the node submits it at once, and
/// both sides hold the amount back until it executes or this passes.
pub const WITHDRAW_VALIDITY_SECS: u64 = 900;

/// Slack allowed on top of [`WITHDRAW_VALIDITY_SECS`] for the expiry of a partner's request:
/// an hour, for a chain clock ahead of this machine's.
pub const WITHDRAW_EXPIRY_SLACK_SECS: u64 = 3_600;

/// Why the node will not ask to withdraw (our own request).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WithdrawError {
    /// A co-signed withdrawal is pending; one at a time.
    #[error(
        "a withdrawal of a total of {total} base units is pending until {expiry} (chain time): wait for it to execute or expire"
    )]
    Pending {
        /// The pending withdrawal's total.
        total: u128,
        /// Its expiry (unix time, the chain's).
        expiry: u64,
    },
    /// The contract withdraws only from open channels.
    #[error(
        "the channel is {state:?}, not open: withdraw only from an open channel; closing pays out"
    )]
    NotOpen {
        /// The channel's state.
        state: ChainState,
    },
    /// Zero is not a withdrawal.
    #[error("a withdrawal must be positive")]
    Zero,
    /// More than we can still pay.
    #[error("at most {available} base units can be withdrawn now, {amount} asked: withdraw less")]
    Insufficient {
        /// Our balance: what we can still pay or withdraw.
        available: u128,
        /// The amount asked.
        amount: u128,
    },
    /// The new total withdrawn would pass the contract's `uint96` limit.
    #[error(
        "a total withdrawn of {total} base units would pass the contract's limit of {MAX_DEPOSIT}: close the channel and open a new one"
    )]
    TooLarge {
        /// The total withdrawn the withdrawal would reach (saturated at `u128::MAX`).
        total: u128,
    },
}

/// Why the node will not co-sign the partner's withdrawal request (the reason goes back to the
/// partner's node).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WithdrawRefusal {
    /// The request withdraws for someone other than the partner.
    #[error("a partner withdraws only for itself: name your own address as the participant")]
    NotForItself,
    /// The total is past the contract's `uint96` limit.
    #[error(
        "a total of {total} base units is past the contract's uint96 limit ({MAX_DEPOSIT}): ask for less"
    )]
    TooLarge {
        /// The total asked.
        total: u128,
    },
    /// The expiry would hold the amount back longer than a withdrawal needs.
    #[error(
        "the expiry is too far ahead: at most {latest} (unix time); ask again with an earlier expiry"
    )]
    ExpiryTooFar {
        /// The latest expiry this node accepts now.
        latest: u64,
    },
    /// The contract withdraws only from open channels.
    #[error("the channel is {state:?}, not open: no withdrawal; closing pays out")]
    NotOpen {
        /// The channel's state.
        state: ChainState,
    },
    /// A co-signed withdrawal is pending; one at a time.
    #[error(
        "a withdrawal of a total of {total} base units is pending until {expiry} (chain time): ask again once it has executed or expired"
    )]
    Pending {
        /// The pending withdrawal's total.
        total: u128,
        /// Its expiry (unix time, the chain's).
        expiry: u64,
    },
    /// The withdrawal takes more than the partner can still pay by this node's books (or
    /// nothing at all).
    #[error(
        "a new total of {total} withdraws {increase} base units; by this node's books the partner can withdraw at most {available} (it has withdrawn {withdrawn}): ask for a total above {withdrawn} and at most {withdrawn} + {available}"
    )]
    Exceeds {
        /// The total asked.
        total: u128,
        /// What it withdraws on top of the partner's on-chain total (0 if it does not rise).
        increase: u128,
        /// The partner's balance by this node's books.
        available: u128,
        /// The partner's total withdrawn on-chain.
        withdrawn: u128,
    },
}

impl WithdrawError {
    /// What the caller is told: the message with its amounts in token units (`decimals`, the
    /// token's) and, where the refusal is temporary, when a retry can work. (`Display` keeps
    /// base units, for logs.)
    pub fn explain(&self, decimals: u8) -> String {
        let units = |base: u128| format_amount(base, decimals);
        match self {
            Self::Pending { total, expiry } => pending(units(*total), *expiry),
            Self::Insufficient { available, amount } => format!(
                "at most {} can be withdrawn now, {} asked: withdraw less",
                units(*available),
                units(*amount)
            ),
            Self::TooLarge { total } => format!(
                "a total withdrawn of {} would pass the contract's limit of {}: close the channel and open a new one",
                units(*total),
                units(MAX_DEPOSIT)
            ),
            Self::NotOpen { .. } | Self::Zero => self.to_string(),
        }
    }
}

impl WithdrawRefusal {
    /// What the partner's node is told, amounts in token units (`decimals`, the token's).
    pub fn explain(&self, decimals: u8) -> String {
        let units = |base: u128| format_amount(base, decimals);
        match self {
            Self::Pending { total, expiry } => pending(units(*total), *expiry),
            Self::TooLarge { total } => format!(
                "a total of {} is past the contract's limit of {}: ask for less",
                units(*total),
                units(MAX_DEPOSIT)
            ),
            Self::Exceeds {
                total,
                increase,
                available,
                withdrawn,
            } => format!(
                "a new total of {} withdraws {}; by this node's books the partner can withdraw at most {} more (it has withdrawn {}): ask for a total above {} and at most {}",
                units(*total),
                units(*increase),
                units(*available),
                units(*withdrawn),
                units(*withdrawn),
                units(withdrawn.saturating_add(*available))
            ),
            Self::NotForItself | Self::ExpiryTooFar { .. } | Self::NotOpen { .. } => {
                self.to_string()
            }
        }
    }
}

/// A channel holds one withdrawal at a time: when the next can be asked for.
fn pending(total: String, expiry: u64) -> String {
    format!(
        "a co-signed withdrawal (a new total withdrawn of {total}) is pending on this channel, one at a time: retry once it has executed (the channel's total withdrawn reaches {total}) or after unix time {expiry} (chain time), when it expires"
    )
}

impl Channel {
    /// Our request to withdraw `amount` more, valid until `expiry` (chain time): the pending
    /// withdrawal to record (durably, before our signature leaves) and to sign. Checked in
    /// this order: no withdrawal pending, the channel open, `amount` positive and within our
    /// balance, the new total within the contract's `uint96` limit.
    pub fn propose_withdrawal(
        &self,
        amount: u128,
        expiry: u64,
    ) -> Result<PendingWithdrawal, WithdrawError> {
        if let Some(pending) = &self.withdrawal {
            return Err(WithdrawError::Pending {
                total: pending.total,
                expiry: pending.expiry,
            });
        }
        if self.on_chain.state != ChainState::Open {
            return Err(WithdrawError::NotOpen {
                state: self.on_chain.state,
            });
        }
        if amount == 0 {
            return Err(WithdrawError::Zero);
        }
        let available = self.our_balance();
        if amount > available {
            return Err(WithdrawError::Insufficient { available, amount });
        }
        let total = self.our_withdrawn().checked_add(amount);
        match total {
            Some(total) if total <= MAX_DEPOSIT => Ok(PendingWithdrawal {
                ours: true,
                total,
                expiry,
            }),
            _ => Err(WithdrawError::TooLarge {
                total: total.unwrap_or(u128::MAX),
            }),
        }
    }

    /// Check the partner's request that `participant` withdraws up to a new total of `total`,
    /// valid until `expiry`, at `now` (this machine's unix time): the pending withdrawal to
    /// record (durably, before our co-signature leaves). Checked in this order: the request is
    /// for the partner itself, `total` within the contract's `uint96` limit, `expiry` no later
    /// than `now` + [`WITHDRAW_VALIDITY_SECS`] + [`WITHDRAW_EXPIRY_SLACK_SECS`], the channel
    /// open, no withdrawal pending, and the increase over the partner's on-chain total positive
    /// and within the partner's balance. The caller checks the signature and that the channel
    /// is not being closed.
    pub fn check_withdraw_request(
        &self,
        participant: Address,
        total: u128,
        expiry: u64,
        now: u64,
    ) -> Result<PendingWithdrawal, WithdrawRefusal> {
        if participant != self.partner {
            return Err(WithdrawRefusal::NotForItself);
        }
        if total > MAX_DEPOSIT {
            return Err(WithdrawRefusal::TooLarge { total });
        }
        let latest = now
            .saturating_add(WITHDRAW_VALIDITY_SECS)
            .saturating_add(WITHDRAW_EXPIRY_SLACK_SECS);
        if expiry > latest {
            return Err(WithdrawRefusal::ExpiryTooFar { latest });
        }
        if self.on_chain.state != ChainState::Open {
            return Err(WithdrawRefusal::NotOpen {
                state: self.on_chain.state,
            });
        }
        if let Some(pending) = &self.withdrawal {
            return Err(WithdrawRefusal::Pending {
                total: pending.total,
                expiry: pending.expiry,
            });
        }
        let withdrawn = self.partner_chain_side().withdrawn;
        let available = self.partner_balance();
        let increase = total.saturating_sub(withdrawn);
        if total <= withdrawn || increase > available {
            return Err(WithdrawRefusal::Exceeds {
                total,
                increase,
                available,
                withdrawn,
            });
        }
        Ok(PendingWithdrawal {
            ours: false,
            total,
            expiry,
        })
    }

    /// The partner refused to co-sign our withdrawal of `total`: nothing can execute, so the
    /// amount is ours to spend again. Forgets our pending withdrawal if its total is `total`;
    /// returns whether it did.
    pub fn drop_refused_withdrawal(&mut self, total: u128) -> bool {
        let refused = self
            .withdrawal
            .as_ref()
            .is_some_and(|w| w.ours && w.total == total);
        if refused {
            self.withdrawal = None;
        }
        refused
    }

    /// A block of chain time `block_time` is confirmed: a pending withdrawal whose expiry is
    /// before it can no longer execute (every later block is later still), so the amount is
    /// spendable again. Forgets it; returns whether it did.
    pub fn expire_withdrawal(&mut self, block_time: u64) -> bool {
        let expired = self
            .withdrawal
            .as_ref()
            .is_some_and(|w| w.expiry < block_time);
        if expired {
            self.withdrawal = None;
        }
        expired
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::channel::Role;
    use crate::event::{ChainEvent, apply};
    use crate::test_support::{PARTNER, US, any_open_channel, mirror, open_channel, proof};

    const NOW: u64 = 1_000_000;

    fn pending(ours: bool, total: u128, expiry: u64) -> Option<PendingWithdrawal> {
        Some(PendingWithdrawal {
            ours,
            total,
            expiry,
        })
    }

    #[test]
    fn our_request_is_checked_in_order() {
        let mut c = open_channel(Role::A, 100, 50);
        c.ours = proof(2, 30);
        c.theirs = proof(1, 5);
        c.on_chain.withdrawn_a = 10; // balance 100 - 10 + 5 - 30 = 65
        c.withdrawal = pending(false, 20, 7);
        c.on_chain.state = ChainState::Closed;
        assert_eq!(
            c.propose_withdrawal(0, 9),
            Err(WithdrawError::Pending {
                total: 20,
                expiry: 7
            })
        );
        c.withdrawal = None;
        assert_eq!(
            c.propose_withdrawal(0, 9),
            Err(WithdrawError::NotOpen {
                state: ChainState::Closed
            })
        );
        c.on_chain.state = ChainState::Open;
        assert_eq!(c.propose_withdrawal(0, 9), Err(WithdrawError::Zero));
        assert_eq!(
            c.propose_withdrawal(66, 9),
            Err(WithdrawError::Insufficient {
                available: 65,
                amount: 66
            })
        );
        assert_eq!(
            c.propose_withdrawal(65, 9),
            Ok(PendingWithdrawal {
                ours: true,
                total: 75,
                expiry: 9
            })
        );
    }

    #[test]
    fn our_total_stays_within_the_contracts_uint96() {
        let mut c = open_channel(Role::B, 0, MAX_DEPOSIT);
        c.on_chain.withdrawn_b = MAX_DEPOSIT - 5;
        c.theirs = proof(1, 10); // balance 15
        assert_eq!(
            c.propose_withdrawal(6, 1),
            Err(WithdrawError::TooLarge {
                total: MAX_DEPOSIT + 1
            })
        );
        assert_eq!(c.propose_withdrawal(5, 1).map(|w| w.total), Ok(MAX_DEPOSIT));
        // Even a deposit past the limit (not one the contract reports) cannot overflow.
        c.on_chain.deposit_b = u128::MAX;
        c.on_chain.withdrawn_b = 1;
        assert_eq!(
            c.propose_withdrawal(u128::MAX - 1, 1),
            Err(WithdrawError::TooLarge { total: u128::MAX })
        );
    }

    #[test]
    fn the_partners_request_is_checked_in_order() {
        let mut c = open_channel(Role::A, 100, 50);
        c.on_chain.withdrawn_b = 10;
        c.ours = proof(1, 20);
        c.theirs = proof(1, 5); // partner balance 50 - 10 + 20 - 5 = 55
        c.on_chain.state = ChainState::Closed;
        c.withdrawal = pending(true, 1, 1);
        let latest = NOW + WITHDRAW_VALIDITY_SECS + WITHDRAW_EXPIRY_SLACK_SECS;
        assert_eq!(
            c.check_withdraw_request(US, MAX_DEPOSIT + 1, latest + 1, NOW),
            Err(WithdrawRefusal::NotForItself)
        );
        assert_eq!(
            c.check_withdraw_request(PARTNER, MAX_DEPOSIT + 1, latest + 1, NOW),
            Err(WithdrawRefusal::TooLarge {
                total: MAX_DEPOSIT + 1
            })
        );
        assert_eq!(
            c.check_withdraw_request(PARTNER, 0, latest + 1, NOW),
            Err(WithdrawRefusal::ExpiryTooFar { latest })
        );
        assert_eq!(
            c.check_withdraw_request(PARTNER, 0, latest, NOW),
            Err(WithdrawRefusal::NotOpen {
                state: ChainState::Closed
            })
        );
        c.on_chain.state = ChainState::Open;
        assert_eq!(
            c.check_withdraw_request(PARTNER, 0, latest, NOW),
            Err(WithdrawRefusal::Pending {
                total: 1,
                expiry: 1
            })
        );
        c.withdrawal = None;
        let exceeds = |total, increase| {
            Err(WithdrawRefusal::Exceeds {
                total,
                increase,
                available: 55,
                withdrawn: 10,
            })
        };
        assert_eq!(
            c.check_withdraw_request(PARTNER, 10, latest, NOW),
            exceeds(10, 0)
        );
        assert_eq!(
            c.check_withdraw_request(PARTNER, 3, latest, NOW),
            exceeds(3, 0)
        );
        assert_eq!(
            c.check_withdraw_request(PARTNER, 66, latest, NOW),
            exceeds(66, 56)
        );
        assert_eq!(
            c.check_withdraw_request(PARTNER, 65, latest, NOW),
            Ok(PendingWithdrawal {
                ours: false,
                total: 65,
                expiry: latest
            })
        );
        assert_eq!(
            c.check_withdraw_request(PARTNER, 65, u64::MAX, u64::MAX - 10)
                .map(|w| w.expiry),
            Ok(u64::MAX),
            "the latest expiry saturates"
        );
    }

    #[test]
    fn a_refused_withdrawal_of_ours_is_forgotten_only_if_it_is_that_one() {
        let mut c = open_channel(Role::A, 100, 0);
        assert!(!c.drop_refused_withdrawal(10), "none pending");
        c.withdrawal = pending(false, 10, 5);
        assert!(!c.drop_refused_withdrawal(10), "the partner's");
        c.withdrawal = pending(true, 10, 5);
        assert!(!c.drop_refused_withdrawal(11), "another total");
        assert_eq!(c.withdrawal, pending(true, 10, 5));
        assert!(c.drop_refused_withdrawal(10));
        assert_eq!(c.withdrawal, None);
    }

    #[test]
    fn a_withdrawal_expires_once_a_block_is_past_its_expiry() {
        let mut c = open_channel(Role::B, 100, 100);
        assert!(!c.expire_withdrawal(u64::MAX));
        c.withdrawal = pending(false, 10, 500);
        assert!(!c.expire_withdrawal(499));
        assert!(!c.expire_withdrawal(500), "valid through its expiry");
        assert_eq!(c.withdrawal, pending(false, 10, 500));
        assert!(c.expire_withdrawal(501));
        assert_eq!(c.withdrawal, None);
    }

    #[test]
    fn messages_say_what_to_do_in_base_units() {
        let too_far = WithdrawRefusal::ExpiryTooFar { latest: 8 };
        assert_eq!(
            too_far.to_string(),
            "the expiry is too far ahead: at most 8 (unix time); ask again with an earlier expiry"
        );
        let exceeds = WithdrawRefusal::Exceeds {
            total: 70,
            increase: 60,
            available: 55,
            withdrawn: 10,
        };
        assert_eq!(
            exceeds.to_string(),
            "a new total of 70 withdraws 60 base units; by this node's books the partner can withdraw at most 55 (it has withdrawn 10): ask for a total above 10 and at most 10 + 55"
        );
        let insufficient = WithdrawError::Insufficient {
            available: 5,
            amount: 6,
        };
        assert_eq!(
            insufficient.to_string(),
            "at most 5 base units can be withdrawn now, 6 asked: withdraw less"
        );
    }

    #[test]
    fn callers_are_told_amounts_in_token_units_and_when_to_retry() {
        let exceeds = WithdrawRefusal::Exceeds {
            total: 70_000_000,
            increase: 60_000_000,
            available: 55_500_000,
            withdrawn: 10_000_000,
        };
        assert_eq!(
            exceeds.explain(6),
            "a new total of 70 withdraws 60; by this node's books the partner can withdraw at most 55.5 more (it has withdrawn 10): ask for a total above 10 and at most 65.5"
        );
        let insufficient = WithdrawError::Insufficient {
            available: 5,
            amount: 1_000_000,
        };
        assert_eq!(
            insufficient.explain(6),
            "at most 0.000005 can be withdrawn now, 1 asked: withdraw less"
        );
        let pending = WithdrawError::Pending {
            total: 2_500_000,
            expiry: 1_700_000_900,
        };
        let told = pending.explain(6);
        assert!(told.contains("total withdrawn of 2.5"), "{told}");
        assert!(
            told.contains("retry once it has executed")
                && told.contains("after unix time 1700000900"),
            "{told}"
        );
        let partner_side = WithdrawRefusal::Pending {
            total: 2_500_000,
            expiry: 1_700_000_900,
        };
        assert_eq!(partner_side.explain(6), told, "both sides say it alike");
        assert!(
            !WithdrawError::TooLarge { total: u128::MAX }
                .explain(6)
                .contains("base units")
        );
    }

    proptest! {
        /// What we propose, the partner (with the same books) co-signs; once both record it,
        /// neither side can spend the amount: our balance falls by it on both sides' books,
        /// the other balance does not move, and the two never exceed the holdings. Once it
        /// executes on-chain, the balances add up to the new holdings exactly.
        #[test]
        fn a_withdrawal_is_spent_on_both_sides_and_never_exceeds_the_holdings(
            channel in any_open_channel(),
            pct in 1u128..=100,
            expiry in 0u64..2_000,
        ) {
            let mut ours = channel;
            let mut theirs = mirror(&ours);
            let amount = ours.our_balance() * pct / 100;
            let proposed = ours.propose_withdrawal(amount, expiry);
            if amount == 0 {
                prop_assert_eq!(proposed, Err(WithdrawError::Zero));
                return Ok(());
            }
            let proposed = proposed.map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(proposed.total, ours.our_chain_side().withdrawn + amount);
            let accepted = theirs
                .check_withdraw_request(ours.us, proposed.total, expiry, 0)
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(accepted.total, proposed.total);
            prop_assert!(!accepted.ours);
            let (our_balance, partner_balance) = (ours.our_balance(), ours.partner_balance());
            let holdings = ours.holdings();
            ours.withdrawal = Some(proposed.clone());
            theirs.withdrawal = Some(accepted);
            prop_assert_eq!(ours.our_balance(), our_balance - amount);
            prop_assert_eq!(theirs.partner_balance(), our_balance - amount);
            prop_assert_eq!(ours.partner_balance(), partner_balance);
            prop_assert_eq!(theirs.our_balance(), partner_balance);
            prop_assert_eq!(ours.our_balance() + ours.partner_balance(), holdings - amount);
            // Nothing more can be withdrawn or co-signed while it is pending.
            let is_pending = matches!(ours.propose_withdrawal(1, expiry), Err(WithdrawError::Pending { .. }));
            prop_assert!(is_pending);
            // It executes.
            let event = ChainEvent::Withdrawn { id: 1, participant: ours.us, total: proposed.total };
            for side in [&mut ours, &mut theirs] {
                let us = side.us;
                *side = apply(Some(side.clone()), &event, us, 9)
                    .ok_or_else(|| TestCaseError::fail("not our channel"))?;
                prop_assert_eq!(side.withdrawal.clone(), None);
                prop_assert_eq!(side.holdings(), holdings - amount);
                prop_assert_eq!(side.our_balance() + side.partner_balance(), side.holdings());
            }
            prop_assert_eq!(ours.our_balance(), our_balance - amount);
        }

        /// Whatever the partner asks, a co-signed withdrawal leaves both balances within the
        /// holdings and never takes more than the partner's balance.
        #[test]
        fn a_co_signed_request_never_exceeds_the_partners_balance(
            channel in any_open_channel(),
            total in 0u128..3_000_000,
            expiry in 0u64..10_000,
            now in 0u64..10_000,
        ) {
            let mut c = channel;
            let (partner_balance, holdings) = (c.partner_balance(), c.holdings());
            if let Ok(w) = c.check_withdraw_request(PARTNER, total, expiry, now) {
                let increase = w.total - c.partner_chain_side().withdrawn;
                prop_assert!(increase > 0 && increase <= partner_balance);
                prop_assert!(expiry <= now + WITHDRAW_VALIDITY_SECS + WITHDRAW_EXPIRY_SLACK_SECS);
                c.withdrawal = Some(w);
                prop_assert_eq!(c.partner_balance(), partner_balance - increase);
                prop_assert!(c.our_balance() + c.partner_balance() <= holdings);
            }
        }
    }
}
