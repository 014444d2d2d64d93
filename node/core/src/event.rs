//! Chain events of the `ChannelManager`, and how each one changes the node's record of a
//! channel. Events carry absolute values (totals, deadlines, recorded proofs), so applying an
//! event twice, or an older one after a newer one, never changes the result twice: the
//! watcher may replay any range it is unsure of. Each change the node reports is named by
//! its [`ChangeKind`] ([`change_kind`]).

use alloy_primitives::Address;

use crate::channel::{ChainState, Channel, ChannelId, OnChain, Role};

/// One `ChannelManager` event, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChainEvent {
    /// A channel was opened (and funded by A).
    Opened {
        /// Channel id.
        id: ChannelId,
        /// Opener and funder.
        a: Address,
        /// Partner.
        b: Address,
        /// ERC-20 held.
        token: Address,
        /// A's deposit.
        deposit_a: u128,
        /// Challenge period in seconds.
        challenge_period: u32,
    },
    /// A participant's total deposit rose.
    Deposited {
        /// Channel id.
        id: ChannelId,
        /// Whose deposit.
        participant: Address,
        /// New total deposit.
        total: u128,
    },
    /// A co-signed withdrawal paid a participant.
    Withdrawn {
        /// Channel id.
        id: ChannelId,
        /// Who was paid.
        participant: Address,
        /// New total withdrawn.
        total: u128,
    },
    /// Closed unilaterally: the challenge period runs.
    Closed {
        /// Channel id.
        id: ChannelId,
        /// Who closed.
        closer: Address,
        /// Settle allowed from this unix time.
        settle_after: u64,
        /// The partner's proof the closer submitted (nonce 0: none).
        partner_nonce: u64,
        /// Its amount.
        partner_transferred: u128,
    },
    /// A participant's recorded proof was replaced during the challenge period.
    ProofUpdated {
        /// Channel id.
        id: ChannelId,
        /// Who signed the proof.
        signer: Address,
        /// Recorded nonce.
        nonce: u64,
        /// Recorded amount.
        transferred: u128,
    },
    /// Paid out; final.
    Settled {
        /// Channel id.
        id: ChannelId,
        /// Paid (or deferred) to A.
        payout_a: u128,
        /// Paid (or deferred) to B.
        payout_b: u128,
        /// Closed cooperatively.
        cooperative: bool,
    },
    /// A payout the token refused, now claimable by `owner`.
    PayoutDeferred {
        /// Channel id.
        id: ChannelId,
        /// The token.
        token: Address,
        /// Who may claim.
        owner: Address,
        /// How much.
        amount: u128,
    },
}

impl ChainEvent {
    /// The channel the event is about.
    pub fn channel_id(&self) -> ChannelId {
        match self {
            Self::Opened { id, .. }
            | Self::Deposited { id, .. }
            | Self::Withdrawn { id, .. }
            | Self::Closed { id, .. }
            | Self::ProofUpdated { id, .. }
            | Self::Settled { id, .. }
            | Self::PayoutDeferred { id, .. } => *id,
        }
    }
}

/// Apply `event` to the node's record of its channel (`None` if the node has none yet), as seen
/// by the node whose address is `us`, the event having been mined in `block`. Returns the new
/// record, or `None` when the event is about a channel the node is not part of.
pub fn apply(
    channel: Option<Channel>,
    event: &ChainEvent,
    us: Address,
    block: u64,
) -> Option<Channel> {
    if let ChainEvent::Opened {
        id,
        a,
        b,
        token,
        deposit_a,
        challenge_period,
    } = *event
    {
        if let Some(existing) = channel {
            return Some(existing); // replayed open: nothing new
        }
        let role = if a == us {
            Role::A
        } else if b == us {
            Role::B
        } else {
            return None;
        };
        return Some(Channel {
            id,
            token,
            role,
            us,
            partner: if role == Role::A { b } else { a },
            challenge_period,
            opened_block: block,
            on_chain: OnChain {
                state: ChainState::Open,
                deposit_a,
                deposit_b: 0,
                withdrawn_a: 0,
                withdrawn_b: 0,
                settle_after: 0,
                closer: None,
                proof_a: (0, 0),
                proof_b: (0, 0),
            },
            ours: None,
            theirs: None,
            withdrawal: None,
        });
    }

    let mut channel = channel?;
    let (a, _) = channel.participants();
    let c = &mut channel.on_chain;
    match *event {
        ChainEvent::Opened { .. } => {} // handled above
        ChainEvent::Deposited {
            participant, total, ..
        } => {
            let slot = if participant == a {
                &mut c.deposit_a
            } else {
                &mut c.deposit_b
            };
            *slot = (*slot).max(total);
        }
        ChainEvent::Withdrawn {
            participant, total, ..
        } => {
            let slot = if participant == a {
                &mut c.withdrawn_a
            } else {
                &mut c.withdrawn_b
            };
            *slot = (*slot).max(total);
            // The pending withdrawal executed (or one past it did): it is on-chain now.
            let ours = participant == us;
            if channel
                .withdrawal
                .as_ref()
                .is_some_and(|w| w.ours == ours && w.total <= total)
            {
                channel.withdrawal = None;
            }
        }
        ChainEvent::Closed {
            closer,
            settle_after,
            partner_nonce,
            partner_transferred,
            ..
        } => {
            if c.state == ChainState::Open {
                c.state = ChainState::Closed;
            }
            c.settle_after = settle_after;
            c.closer = Some(closer);
            if partner_nonce != 0 {
                let slot = if closer == a {
                    &mut c.proof_b
                } else {
                    &mut c.proof_a
                };
                *slot = newer(*slot, (partner_nonce, partner_transferred));
            }
        }
        ChainEvent::ProofUpdated {
            signer,
            nonce,
            transferred,
            ..
        } => {
            let slot = if signer == a {
                &mut c.proof_a
            } else {
                &mut c.proof_b
            };
            *slot = newer(*slot, (nonce, transferred));
        }
        ChainEvent::Settled { .. } => c.state = ChainState::Settled,
        ChainEvent::PayoutDeferred { .. } => {}
    }
    if channel.on_chain.state != ChainState::Open {
        // The contract withdraws only from open channels.
        channel.withdrawal = None;
    }
    Some(channel)
}

/// What changed in a channel record, as the node reports it to subscribers and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChangeKind {
    /// A channel the node had no record of (or one that is open again).
    Opened,
    /// A participant's deposit rose.
    Deposit,
    /// A participant's total withdrawn rose.
    Withdrawal,
    /// Closed unilaterally: the challenge period runs.
    Closed,
    /// Something else changed: a recorded proof, or the off-chain half.
    Proof,
    /// Paid out; final.
    Settled,
    /// Rebuilt from the contract after a reorganisation (see [`crate::merge_rebuilt`]).
    Rebuilt,
}

impl ChangeKind {
    /// Every kind, in declaration order (the API documents exactly these names).
    pub const ALL: [ChangeKind; 7] = [
        Self::Opened,
        Self::Deposit,
        Self::Withdrawal,
        Self::Closed,
        Self::Proof,
        Self::Settled,
        Self::Rebuilt,
    ];

    /// The kind's name in logs and notifications: "opened", "deposit", "withdrawal",
    /// "closed", "proof", "settled" or "rebuilt".
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Opened => "opened",
            Self::Deposit => "deposit",
            Self::Withdrawal => "withdrawal",
            Self::Closed => "closed",
            Self::Proof => "proof",
            Self::Settled => "settled",
            Self::Rebuilt => "rebuilt",
        }
    }
}

impl std::fmt::Display for ChangeKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What changed from `before` (the node's record before an event, `None` if it had none) to
/// `after`: a new record is [`ChangeKind::Opened`]; otherwise a change of state names the new
/// state, then a deposit, then a withdrawal; anything else is [`ChangeKind::Proof`].
/// ([`ChangeKind::Rebuilt`] is the reorg rebuild's own, never returned here.)
pub fn change_kind(before: Option<&Channel>, after: &Channel) -> ChangeKind {
    let Some(before) = before else {
        return ChangeKind::Opened;
    };
    let (b, a) = (&before.on_chain, &after.on_chain);
    if a.state != b.state {
        return match a.state {
            ChainState::Open => ChangeKind::Opened,
            ChainState::Closed => ChangeKind::Closed,
            ChainState::Settled => ChangeKind::Settled,
        };
    }
    if (a.deposit_a, a.deposit_b) != (b.deposit_a, b.deposit_b) {
        ChangeKind::Deposit
    } else if (a.withdrawn_a, a.withdrawn_b) != (b.withdrawn_a, b.withdrawn_b) {
        ChangeKind::Withdrawal
    } else {
        ChangeKind::Proof
    }
}

/// The contract's rule: more transferred wins, a higher nonce breaks ties.
fn newer(recorded: (u64, u128), candidate: (u64, u128)) -> (u64, u128) {
    let (nonce, transferred) = candidate;
    if transferred > recorded.1 || (transferred == recorded.1 && nonce > recorded.0) {
        (nonce.max(recorded.0), transferred)
    } else {
        recorded
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const A: Address = Address::repeat_byte(0xa);
    const B: Address = Address::repeat_byte(0xb);
    const TOKEN: Address = Address::repeat_byte(0x7);

    fn opened() -> ChainEvent {
        ChainEvent::Opened {
            id: 1,
            a: A,
            b: B,
            token: TOKEN,
            deposit_a: 100,
            challenge_period: 60,
        }
    }

    fn history() -> Vec<ChainEvent> {
        vec![
            opened(),
            ChainEvent::Deposited {
                id: 1,
                participant: B,
                total: 50,
            },
            ChainEvent::Withdrawn {
                id: 1,
                participant: B,
                total: 10,
            },
            ChainEvent::Closed {
                id: 1,
                closer: A,
                settle_after: 1000,
                partner_nonce: 1,
                partner_transferred: 5,
            },
            ChainEvent::ProofUpdated {
                id: 1,
                signer: A,
                nonce: 3,
                transferred: 30,
            },
            ChainEvent::Settled {
                id: 1,
                payout_a: 75,
                payout_b: 65,
                cooperative: false,
            },
        ]
    }

    fn replay(events: &[ChainEvent], us: Address) -> Option<Channel> {
        events
            .iter()
            .fold(None, |channel, e| apply(channel, e, us, 7))
    }

    #[test]
    fn a_lifecycle_builds_the_record_both_sides_see() {
        let ours = replay(&history(), B).unwrap();
        assert_eq!(ours.role, Role::B);
        assert_eq!(ours.partner, A);
        let c = &ours.on_chain;
        assert_eq!((c.deposit_a, c.deposit_b, c.withdrawn_b), (100, 50, 10));
        assert_eq!((c.proof_a, c.proof_b), ((3, 30), (1, 5)));
        assert_eq!(
            (c.state, c.settle_after, c.closer),
            (ChainState::Settled, 1000, Some(A))
        );
        assert_eq!(replay(&history(), A).unwrap().on_chain, ours.on_chain);
        assert_eq!(
            replay(&history(), Address::repeat_byte(0xc)),
            None,
            "not our channel"
        );
    }

    #[test]
    fn each_change_is_named_by_what_moved_first() {
        let events = history();
        let kinds: Vec<ChangeKind> = (0..events.len())
            .map(|i| {
                let before = replay(&events[..i], B);
                let after = replay(&events[..=i], B).unwrap();
                change_kind(before.as_ref(), &after)
            })
            .collect();
        use ChangeKind::*;
        assert_eq!(
            kinds,
            vec![Opened, Deposit, Withdrawal, Closed, Proof, Settled]
        );
        // A state change wins over a deposit changed with it; an open again is "opened".
        let closed = replay(&events[..4], B).unwrap();
        let mut reopened = closed.clone();
        reopened.on_chain.state = ChainState::Open;
        reopened.on_chain.deposit_a += 1;
        assert_eq!(change_kind(Some(&closed), &reopened), Opened);
        let mut both = closed.clone();
        both.on_chain.deposit_b += 1;
        both.on_chain.withdrawn_a += 1;
        assert_eq!(change_kind(Some(&closed), &both), Deposit);
        // ALL holds every kind: a new variant must be added to it (and to the API's list).
        for kind in ChangeKind::ALL {
            match kind {
                Opened | Deposit | Withdrawal | Closed | Proof | Settled | Rebuilt => {}
            }
        }
        let names: Vec<&str> = ChangeKind::ALL.iter().map(|k| k.as_str()).collect();
        assert_eq!(
            names,
            [
                "opened",
                "deposit",
                "withdrawal",
                "closed",
                "proof",
                "settled",
                "rebuilt"
            ]
        );
        assert_eq!(Rebuilt.to_string(), "rebuilt");
    }

    proptest! {
        /// Replaying any events again, in any order after the open, changes nothing.
        #[test]
        fn replays_and_reordering_are_harmless(extra in proptest::collection::vec(0usize..6, 0..12)) {
            let events = history();
            let once = replay(&events, A);
            let mut replayed = events.clone();
            replayed.extend(extra.iter().map(|&i| events[i].clone()));
            prop_assert_eq!(replay(&replayed, A), once);
        }
    }
}
