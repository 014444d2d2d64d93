//! What the node knows about one channel.
//!
//! A channel has an on-chain half ([`OnChain`], exactly what `ChannelManager.getChannel`
//! returns, as of the last confirmed event the node applied) and an off-chain half: the
//! latest balance proof we signed and the latest one our partner signed.

use alloy_primitives::{Address, Bytes};

/// A channel id: the `ChannelManager`'s open counter (ids are never reused).
pub type ChannelId = u64;

/// Which side of the channel the node is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// The opener (participant A, who funded the open).
    A,
    /// The partner the channel was opened to (participant B).
    B,
}

/// The contract's view of the channel's life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChainState {
    /// Open: payments, top-ups, withdrawals.
    Open,
    /// Closed unilaterally: the challenge period runs until `settle_after`.
    Closed,
    /// Paid out; nothing can change any more.
    Settled,
}

/// The on-chain half, field for field as `ChannelManager.getChannel` returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OnChain {
    /// Open, closed or settled.
    pub state: ChainState,
    /// A's total deposit, in base units.
    pub deposit_a: u128,
    /// B's total deposit.
    pub deposit_b: u128,
    /// A's total withdrawn while open.
    pub withdrawn_a: u128,
    /// B's total withdrawn.
    pub withdrawn_b: u128,
    /// Unix time from which settle is allowed (0 while open).
    pub settle_after: u64,
    /// Who closed unilaterally, if anyone.
    pub closer: Option<Address>,
    /// Latest proof signed by A that the contract recorded: (nonce, transferred).
    pub proof_a: (u64, u128),
    /// Latest proof signed by B that the contract recorded.
    pub proof_b: (u64, u128),
}

/// A balance proof with its signature: `signer` has paid `transferred` in total so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedProof {
    /// Strictly increasing per signer.
    pub nonce: u64,
    /// Cumulative amount paid by the signer, in base units.
    pub transferred: u128,
    /// 65-byte EIP-712 signature `r | s | v`.
    pub signature: Bytes,
}

/// A withdrawal both participants signed that the contract may still execute (until `expiry`,
/// chain time). Until it is seen on-chain or has expired, the node counts it as done: the
/// withdrawer could execute it at any moment, so neither side may spend the amount again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingWithdrawal {
    /// We withdraw (`true`) or the partner does.
    pub ours: bool,
    /// The withdrawer's new total withdrawn, as signed.
    pub total: u128,
    /// Unix time (the chain's) after which the signatures are void.
    pub expiry: u64,
}

/// Everything the node stores about one channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Channel {
    /// The contract's id.
    pub id: ChannelId,
    /// The ERC-20 the channel holds.
    pub token: Address,
    /// Our side.
    pub role: Role,
    /// Our address.
    pub us: Address,
    /// The partner's address.
    pub partner: Address,
    /// Challenge period chosen at open, in seconds.
    pub challenge_period: u32,
    /// Block the channel was opened in.
    pub opened_block: u64,
    /// The contract's view.
    pub on_chain: OnChain,
    /// Latest proof we signed (what we have paid), if any.
    pub ours: Option<SignedProof>,
    /// Latest proof our partner signed (what we have received), if any.
    pub theirs: Option<SignedProof>,
    /// A co-signed withdrawal not yet seen on-chain, if any.
    pub withdrawal: Option<PendingWithdrawal>,
}

impl Channel {
    /// (participant A, participant B).
    pub fn participants(&self) -> (Address, Address) {
        match self.role {
            Role::A => (self.us, self.partner),
            Role::B => (self.partner, self.us),
        }
    }

    /// (our deposit, our withdrawn, partner's deposit, partner's withdrawn), counting a pending
    /// co-signed withdrawal as done.
    fn sides(&self) -> (u128, u128, u128, u128) {
        let c = &self.on_chain;
        let (ours, theirs) = match self.role {
            Role::A => ((c.deposit_a, c.withdrawn_a), (c.deposit_b, c.withdrawn_b)),
            Role::B => ((c.deposit_b, c.withdrawn_b), (c.deposit_a, c.withdrawn_a)),
        };
        let pending = |who: bool| {
            self.withdrawal
                .as_ref()
                .filter(|w| w.ours == who)
                .map_or(0, |w| w.total)
        };
        (
            ours.0,
            ours.1.max(pending(true)),
            theirs.0,
            theirs.1.max(pending(false)),
        )
    }

    /// What we have withdrawn on-chain, or will have once the pending withdrawal executes.
    pub fn our_withdrawn(&self) -> u128 {
        self.sides().1
    }

    /// The payouts (to A, to B) a cooperative close of the channel as it stands on-chain pays:
    /// the contract's formula `depositA - withdrawnA + transferredB - transferredA`, clamped
    /// to the holdings, with the on-chain withdrawal totals (a close signed now is void once
    /// a pending withdrawal executes, and voids it if it executes first).
    pub fn close_payouts(&self) -> (u128, u128) {
        let c = &self.on_chain;
        let (sent_a, sent_b) = match self.role {
            Role::A => (self.sent(), self.received()),
            Role::B => (self.received(), self.sent()),
        };
        let holdings = self.holdings();
        let a = c
            .deposit_a
            .saturating_add(sent_b)
            .saturating_sub(c.withdrawn_a.saturating_add(sent_a))
            .min(holdings);
        (a, holdings - a)
    }

    /// What we have paid in total (our latest signed proof).
    pub fn sent(&self) -> u128 {
        self.ours.as_ref().map_or(0, |p| p.transferred)
    }

    /// What we have received in total (the partner's latest proof).
    pub fn received(&self) -> u128 {
        self.theirs.as_ref().map_or(0, |p| p.transferred)
    }

    /// What the channel holds on-chain: deposits minus withdrawals.
    pub fn holdings(&self) -> u128 {
        let c = &self.on_chain;
        c.deposit_a
            .saturating_add(c.deposit_b)
            .saturating_sub(c.withdrawn_a.saturating_add(c.withdrawn_b))
    }

    /// What we could still pay: our deposit − our withdrawals + received − sent (PROTOCOL.md),
    /// never negative; a pending co-signed withdrawal counts as withdrawn.
    pub fn our_balance(&self) -> u128 {
        let (deposit, withdrawn, _, _) = self.sides();
        deposit
            .saturating_add(self.received())
            .saturating_sub(withdrawn.saturating_add(self.sent()))
    }

    /// What the partner could still pay us (its pending withdrawal counted as withdrawn).
    pub fn partner_balance(&self) -> u128 {
        let (_, _, deposit, withdrawn) = self.sides();
        deposit
            .saturating_add(self.sent())
            .saturating_sub(withdrawn.saturating_add(self.received()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn channel(role: Role) -> Channel {
        Channel {
            id: 1,
            token: Address::repeat_byte(1),
            role,
            us: Address::repeat_byte(2),
            partner: Address::repeat_byte(3),
            challenge_period: 3600,
            opened_block: 10,
            on_chain: OnChain {
                state: ChainState::Open,
                deposit_a: 100,
                deposit_b: 50,
                withdrawn_a: 0,
                withdrawn_b: 10,
                settle_after: 0,
                closer: None,
                proof_a: (0, 0),
                proof_b: (0, 0),
            },
            ours: Some(SignedProof {
                nonce: 3,
                transferred: 30,
                signature: Bytes::new(),
            }),
            theirs: Some(SignedProof {
                nonce: 1,
                transferred: 5,
                signature: Bytes::new(),
            }),
            withdrawal: None,
        }
    }

    #[test]
    fn balances_follow_the_protocol_formula() {
        // A: 100 - 0 + 5 - 30 = 75; B: 50 - 10 + 30 - 5 = 65; together the 140 held.
        let a = channel(Role::A);
        assert_eq!(
            (a.our_balance(), a.partner_balance(), a.holdings()),
            (75, 65, 140)
        );
        // Seen from B (ours/theirs swap meaning): B sent 30, received 5.
        let b = channel(Role::B);
        assert_eq!(b.our_balance(), 50 - 10 + 5 - 30);
        assert_eq!(b.partner_balance(), 100 + 30 - 5);
    }

    #[test]
    fn a_pending_withdrawal_counts_as_done_for_spending_but_not_for_closing() {
        let mut a = channel(Role::A);
        assert_eq!(a.close_payouts(), (75, 65));
        // B has withdrawn 10 on-chain; it co-signed a new total of 40 (30 more).
        a.withdrawal = Some(PendingWithdrawal {
            ours: false,
            total: 40,
            expiry: 1,
        });
        assert_eq!((a.our_balance(), a.partner_balance()), (75, 35));
        // A close signed now uses the on-chain totals: it is void once the withdrawal executes.
        assert_eq!(a.close_payouts(), (75, 65));
        // Our own pending withdrawal of 20 (from 0).
        a.withdrawal = Some(PendingWithdrawal {
            ours: true,
            total: 20,
            expiry: 1,
        });
        assert_eq!((a.our_balance(), a.our_withdrawn()), (55, 20));
        // Payouts are clamped to the holdings like the contract does.
        a.theirs = Some(SignedProof {
            nonce: 9,
            transferred: 1_000,
            signature: Bytes::new(),
        });
        assert_eq!(a.close_payouts(), (140, 0));
    }
}
