//! The watchtower's decisions, as a plan the daemon carries out.
//!
//! The node guards its user on-chain with no operator action. By chain time, for every channel
//! closed unilaterally ([`plan`]):
//! - if the contract's record of the partner's proof is older than the partner's latest proof
//!   we hold (the contract's order: more transferred wins, a higher nonce breaks ties;
//!   [`needs_challenge`]) and the challenge period still runs, that proof is submitted at once
//!   ([`Duty::Challenge`]): the partner cannot erase what it paid us. Our own latest proof needs
//!   nothing: whatever the partner submitted of ours can only be lower, which only favours us;
//!   a challenge still unanswered close to its deadline is warned about;
//! - once the challenge period is over, the channel is settled ([`Duty::Settle`]);
//! - if the contract records a proof of ours with a nonce above our latest, the node's data is
//!   older than what it signed (restored from an old backup?): it is reported as stale.
//!
//! Besides: a payout the token refused at settle time is claimed, again every
//! [`CLAIM_RETRY_SECS`] while the token refuses ([`claim_due_now`]), and the node warns when
//! its gas balance cannot defend every channel it has ([`gas_shortfall`]).

use alloy_primitives::Address;

use crate::channel::{ChainState, Channel, ChannelId};

/// Gas one channel may need to be defended: a proof update and a settle, with room.
pub const DEFENCE_GAS_PER_CHANNEL: u128 = 200_000;

/// How often a claim of a deferred payout is tried again while the token refuses (a blacklist,
/// say), in seconds.
pub const CLAIM_RETRY_SECS: u64 = 30;

/// A transaction the watchtower must send for a channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Duty {
    /// Submit the partner's latest proof we hold (`updateProof`): its close is stale.
    Challenge(ChannelId),
    /// The challenge period is over: pay out both sides (`settle`).
    Settle(ChannelId),
}

/// What one watchtower pass must do and report ([`plan`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// The transactions to send, in channel order.
    pub duties: Vec<Duty>,
    /// Warnings for the operator (stale closes unanswered close to their deadline).
    pub warnings: Vec<String>,
    /// Closed channels whose on-chain record of our proof has a nonce above our latest, with
    /// that nonce: the node's data for them is stale.
    pub stale: Vec<(ChannelId, u64)>,
}

/// The node's gas balance cannot pay for defending every channel ([`gas_shortfall`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct GasShortfall {
    /// How many channels are defended (not settled).
    pub channels: u128,
    /// Wei needed to defend them all at the current gas price.
    pub needed_wei: u128,
}

impl GasShortfall {
    /// The operator's warning, given the node's balance and address (where to send ether).
    pub fn warning(&self, balance_wei: u128, address: Address) -> String {
        format!(
            "the node's gas balance ({balance_wei} wei) cannot defend its {} channels at the current gas price ({} wei needed): send ether to {address}",
            self.channels, self.needed_wei
        )
    }
}

/// Whether the contract's record of the partner's proof is older than the partner's latest
/// proof we hold, by the contract's order: more transferred wins, a higher nonce breaks ties.
pub fn needs_challenge(channel: &Channel) -> bool {
    let Some(theirs) = &channel.theirs else {
        return false;
    };
    let recorded = channel.partner_chain_side().proof;
    theirs.transferred > recorded.1
        || (theirs.transferred == recorded.1 && theirs.nonce > recorded.0)
}

/// The watchtower's pass over `channels` at chain time `now`: for each closed channel, report
/// it stale if the chain holds a proof of ours newer than our latest; challenge its close if
/// it is stale and the challenge period runs (warning when `margin_secs` or less are left), or
/// settle it once the period is over.
pub fn plan(channels: &[Channel], now: u64, margin_secs: u64) -> Plan {
    let mut plan = Plan::default();
    for channel in channels {
        if channel.on_chain.state != ChainState::Closed {
            continue;
        }
        let recorded_ours = channel.our_chain_side().proof.0;
        if recorded_ours > channel.our_nonce() {
            plan.stale.push((channel.id, recorded_ours));
        }
        let deadline = channel.on_chain.settle_after;
        if needs_challenge(channel) && now < deadline {
            plan.duties.push(Duty::Challenge(channel.id));
            let left = deadline - now;
            if left <= margin_secs {
                plan.warnings.push(format!(
                    "channel {}: the partner's stale close is not answered yet and its challenge period ends in {left} s",
                    channel.id
                ));
            }
        } else if now >= deadline {
            plan.duties.push(Duty::Settle(channel.id));
        }
    }
    plan
}

/// Whether the node's gas balance of `balance_wei` falls short of defending every channel not
/// settled yet at `gas_price_wei` ([`DEFENCE_GAS_PER_CHANNEL`] each); `None` when nothing is
/// to be defended or the balance suffices.
pub fn gas_shortfall(
    channels: &[Channel],
    balance_wei: u128,
    gas_price_wei: u128,
) -> Option<GasShortfall> {
    let defended = channels
        .iter()
        .filter(|c| c.on_chain.state != ChainState::Settled)
        .count() as u128;
    if defended == 0 {
        return None;
    }
    let needed_wei = defended
        .saturating_mul(DEFENCE_GAS_PER_CHANNEL)
        .saturating_mul(gas_price_wei);
    (balance_wei < needed_wei).then_some(GasShortfall {
        channels: defended,
        needed_wei,
    })
}

/// Whether to try a claim now: one is `due` (a payout was deferred to us, or the last claim
/// failed) and none was tried in the last `retry_secs` (`since_last_try_secs`: seconds since
/// the last try, `None` if never).
pub fn claim_due_now(due: bool, since_last_try_secs: Option<u64>, retry_secs: u64) -> bool {
    due && since_last_try_secs.is_none_or(|since| since >= retry_secs)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::channel::Role;
    use crate::test_support::{any_channel, open_channel, proof};

    /// Channel `id` closed by the partner with settle allowed from 1000; we are A and hold the
    /// partner's proof (2, 50).
    fn closed(id: ChannelId) -> Channel {
        let mut c = open_channel(Role::A, 100, 100);
        c.id = id;
        c.on_chain.state = ChainState::Closed;
        c.on_chain.settle_after = 1000;
        c.theirs = proof(2, 50);
        c.on_chain.proof_b = (2, 50);
        c
    }

    #[test]
    fn a_stale_close_is_challenged_by_the_contracts_order() {
        let mut c = closed(1);
        assert!(!needs_challenge(&c), "the chain has our latest of theirs");
        c.on_chain.proof_b = (3, 49);
        assert!(
            needs_challenge(&c),
            "more transferred wins over a higher nonce"
        );
        c.on_chain.proof_b = (1, 50);
        assert!(needs_challenge(&c), "same amount: the higher nonce wins");
        c.on_chain.proof_b = (1, 51);
        assert!(!needs_challenge(&c), "the chain holds more than we do");
        c.theirs = None;
        c.on_chain.proof_b = (0, 0);
        assert!(!needs_challenge(&c), "nothing to submit");
        // Seen from B, the partner's record is proof_a.
        let mut b = closed(1);
        b.role = Role::B;
        b.on_chain.proof_b = (0, 0);
        b.on_chain.proof_a = (2, 50);
        assert!(!needs_challenge(&b));
        b.on_chain.proof_a = (2, 49);
        assert!(needs_challenge(&b));
    }

    #[test]
    fn a_challenge_runs_until_the_deadline_then_the_channel_settles() {
        let mut c = closed(7);
        c.on_chain.proof_b = (1, 10);
        let duties = |now| plan(std::slice::from_ref(&c), now, 60).duties;
        assert_eq!(duties(0), vec![Duty::Challenge(7)]);
        assert_eq!(duties(999), vec![Duty::Challenge(7)]);
        assert_eq!(duties(1000), vec![Duty::Settle(7)]);
        assert_eq!(duties(5000), vec![Duty::Settle(7)]);
        // Nothing to challenge: wait, then settle.
        let answered = closed(8);
        assert_eq!(
            plan(std::slice::from_ref(&answered), 999, 60),
            Plan::default()
        );
        assert_eq!(
            plan(std::slice::from_ref(&answered), 1000, 60).duties,
            vec![Duty::Settle(8)]
        );
    }

    #[test]
    fn an_unanswered_challenge_near_its_deadline_is_warned_about() {
        let mut c = closed(3);
        c.on_chain.proof_b = (1, 10);
        let warnings = |now| plan(std::slice::from_ref(&c), now, 60).warnings;
        assert_eq!(warnings(939), Vec::<String>::new(), "61 s left");
        assert_eq!(
            warnings(940),
            vec![
                "channel 3: the partner's stale close is not answered yet and its challenge period ends in 60 s"
                    .to_owned()
            ]
        );
        assert_eq!(
            warnings(999),
            vec![
                "channel 3: the partner's stale close is not answered yet and its challenge period ends in 1 s"
                    .to_owned()
            ]
        );
        assert_eq!(warnings(1000), Vec::<String>::new(), "settled instead");
    }

    #[test]
    fn only_closed_channels_are_guarded_and_stale_ones_reported() {
        let mut open = closed(1);
        open.on_chain.state = ChainState::Open;
        open.on_chain.proof_b = (0, 0);
        let mut settled = closed(2);
        settled.on_chain.state = ChainState::Settled;
        let mut stale = closed(3);
        stale.ours = proof(4, 20);
        stale.on_chain.proof_a = (5, 25);
        let mut current = closed(4);
        current.ours = proof(5, 25);
        current.on_chain.proof_a = (5, 25);
        let mut stale_settled = closed(5);
        stale_settled.on_chain.state = ChainState::Settled;
        stale_settled.on_chain.proof_a = (9, 1);
        let p = plan(&[open, settled, stale, current, stale_settled], 10, 60);
        assert_eq!(p.stale, vec![(3, 5)]);
        assert_eq!(p.duties, Vec::new(), "nothing to challenge, not due");
        assert_eq!(p.warnings, Vec::<String>::new());
        let p = plan(&[closed(1), closed(2)], 1000, 60);
        assert_eq!(p.duties, vec![Duty::Settle(1), Duty::Settle(2)]);
    }

    #[test]
    fn the_gas_balance_must_cover_every_channel_not_settled() {
        let mut settled = closed(1);
        settled.on_chain.state = ChainState::Settled;
        let channels = [closed(2), open_channel(Role::B, 1, 1), settled.clone()];
        // Two defended channels at 10 wei: 4 000 000 wei.
        assert_eq!(gas_shortfall(&channels, 4_000_000, 10), None);
        let short = GasShortfall {
            channels: 2,
            needed_wei: 4_000_000,
        };
        assert_eq!(gas_shortfall(&channels, 3_999_999, 10), Some(short));
        assert_eq!(
            short.warning(3_999_999, Address::repeat_byte(0x11)),
            "the node's gas balance (3999999 wei) cannot defend its 2 channels at the current gas price (4000000 wei needed): send ether to 0x1111111111111111111111111111111111111111"
        );
        assert_eq!(gas_shortfall(&[settled], 0, 10), None, "nothing to defend");
        assert_eq!(gas_shortfall(&[], 0, 10), None);
        assert_eq!(gas_shortfall(&channels, 0, 0), None, "free gas");
        assert_eq!(
            gas_shortfall(&channels, u128::MAX - 1, u128::MAX),
            Some(GasShortfall {
                channels: 2,
                needed_wei: u128::MAX
            }),
            "saturates"
        );
    }

    #[test]
    fn a_claim_is_tried_when_due_and_not_tried_lately() {
        assert!(claim_due_now(true, None, CLAIM_RETRY_SECS));
        assert!(!claim_due_now(true, Some(29), CLAIM_RETRY_SECS));
        assert!(claim_due_now(true, Some(30), CLAIM_RETRY_SECS));
        assert!(!claim_due_now(false, None, CLAIM_RETRY_SECS));
        assert!(!claim_due_now(false, Some(u64::MAX), CLAIM_RETRY_SECS));
    }

    proptest! {
        /// At most one duty per channel, only for closed ones; a challenge only before the
        /// deadline, a settle only from it; every warning is about a challenge.
        #[test]
        fn a_plan_never_challenges_late_nor_settles_early(
            channels in proptest::collection::vec(any_channel(), 0..8),
            now in 0u64..2_500,
            margin in 0u64..500,
        ) {
            let channels: Vec<Channel> = channels
                .into_iter()
                .enumerate()
                .map(|(i, mut c)| { c.id = i as u64; c })
                .collect();
            let p = plan(&channels, now, margin);
            prop_assert!(p.duties.len() <= channels.len());
            prop_assert!(p.warnings.len() <= p.duties.len());
            for duty in &p.duties {
                let (Duty::Challenge(id) | Duty::Settle(id)) = *duty;
                let c = &channels[id as usize];
                prop_assert_eq!(c.on_chain.state, ChainState::Closed);
                match duty {
                    Duty::Challenge(_) => prop_assert!(needs_challenge(c) && now < c.on_chain.settle_after),
                    Duty::Settle(_) => prop_assert!(now >= c.on_chain.settle_after),
                }
            }
            for (id, nonce) in &p.stale {
                prop_assert!(*nonce > channels[*id as usize].our_nonce());
            }
        }
    }
}
