//! What the node knows about one channel.
//!
//! A channel has an on-chain half ([`OnChain`], exactly what `ChannelManager.getChannel`
//! returns, as of the last confirmed event the node applied) and an off-chain half: the
//! latest balance proof we signed and the latest one our partner signed, and a co-signed
//! withdrawal that may still execute.
//!
//! The balances (what each side can still pay) count a pending withdrawal as done: the
//! withdrawer could execute it at any moment. The chain sides ([`Side`]) are the contract's
//! numbers alone.

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

impl Role {
    /// Put a pair in the contract's order: `(A's, B's)` given `(ours, theirs)` for a node of
    /// this role. The mapping is its own inverse, so `order(a_value, b_value)` gives
    /// `(ours, theirs)` back.
    ///
    /// ```
    /// use farthing_core::Role;
    /// assert_eq!(Role::A.order("us", "them"), ("us", "them"));
    /// assert_eq!(Role::B.order("us", "them"), ("them", "us"));
    /// ```
    pub fn order<T>(self, ours: T, theirs: T) -> (T, T) {
        match self {
            Self::A => (ours, theirs),
            Self::B => (theirs, ours),
        }
    }
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

/// One participant's numbers as the contract records them (no pending withdrawal counted).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Side {
    /// Total deposited, in base units.
    pub deposit: u128,
    /// Total withdrawn while open, in base units.
    pub withdrawn: u128,
    /// The latest proof signed by this participant that the contract recorded:
    /// (nonce, transferred); (0, 0) while none is.
    pub proof: (u64, u128),
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
        self.role.order(self.us, self.partner)
    }

    /// A's and B's on-chain numbers.
    fn chain_sides(&self) -> (Side, Side) {
        let c = &self.on_chain;
        (
            Side {
                deposit: c.deposit_a,
                withdrawn: c.withdrawn_a,
                proof: c.proof_a,
            },
            Side {
                deposit: c.deposit_b,
                withdrawn: c.withdrawn_b,
                proof: c.proof_b,
            },
        )
    }

    /// Our numbers as the contract records them (a pending withdrawal is not counted).
    pub fn our_chain_side(&self) -> Side {
        let (a, b) = self.chain_sides();
        self.role.order(a, b).0
    }

    /// The partner's numbers as the contract records them (a pending withdrawal is not
    /// counted).
    pub fn partner_chain_side(&self) -> Side {
        let (a, b) = self.chain_sides();
        self.role.order(a, b).1
    }

    /// The total of the pending co-signed withdrawal if it is ours (`ours`) or the partner's
    /// (`!ours`); 0 otherwise.
    fn pending_total(&self, ours: bool) -> u128 {
        self.withdrawal
            .as_ref()
            .filter(|w| w.ours == ours)
            .map_or(0, |w| w.total)
    }

    /// What we have withdrawn on-chain, or will have once the pending withdrawal executes.
    pub fn our_withdrawn(&self) -> u128 {
        self.our_chain_side()
            .withdrawn
            .max(self.pending_total(true))
    }

    /// What the partner has withdrawn on-chain, or will have once its pending withdrawal
    /// executes.
    pub fn partner_withdrawn(&self) -> u128 {
        self.partner_chain_side()
            .withdrawn
            .max(self.pending_total(false))
    }

    /// The nonce of our latest signed proof; 0 if we have signed none.
    pub fn our_nonce(&self) -> u64 {
        self.ours.as_ref().map_or(0, |p| p.nonce)
    }

    /// The nonce of the partner's latest proof we hold; 0 if we hold none.
    pub fn their_nonce(&self) -> u64 {
        self.theirs.as_ref().map_or(0, |p| p.nonce)
    }

    /// Whether participants `a` and `b` and `token` are the ones this record has. A channel id
    /// found on-chain with other parties means the node is not looking at the chain it followed
    /// (say, a devnet restarted with the contracts at the same addresses).
    pub fn participants_match(&self, a: Address, b: Address, token: Address) -> bool {
        self.participants() == (a, b) && self.token == token
    }

    /// The payouts (to A, to B) a cooperative close of the channel as it stands on-chain pays:
    /// the contract's formula `depositA - withdrawnA + transferredB - transferredA`, clamped
    /// to the holdings, with the on-chain withdrawal totals (a close signed now is void once
    /// a pending withdrawal executes, and voids it if it executes first).
    pub fn close_payouts(&self) -> (u128, u128) {
        let c = &self.on_chain;
        let (sent_a, sent_b) = self.role.order(self.sent(), self.received());
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
        let deposit = self.our_chain_side().deposit;
        let withdrawn = self.our_withdrawn();
        deposit
            .saturating_add(self.received())
            .saturating_sub(withdrawn.saturating_add(self.sent()))
    }

    /// What the partner could still pay us (its pending withdrawal counted as withdrawn).
    pub fn partner_balance(&self) -> u128 {
        let deposit = self.partner_chain_side().deposit;
        let withdrawn = self.partner_withdrawn();
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

    #[test]
    fn order_puts_pairs_in_the_contracts_order_and_back() {
        assert_eq!(Role::A.order(1, 2), (1, 2));
        assert_eq!(Role::B.order(1, 2), (2, 1));
        // Its own inverse: (A's, B's) in, (ours, theirs) out.
        for role in [Role::A, Role::B] {
            let (a, b) = role.order("ours", "theirs");
            assert_eq!(role.order(a, b), ("ours", "theirs"));
        }
    }

    #[test]
    fn chain_sides_are_the_contracts_numbers_without_a_pending_withdrawal() {
        let mut a = channel(Role::A);
        a.on_chain.proof_a = (4, 40);
        a.on_chain.proof_b = (2, 7);
        a.withdrawal = Some(PendingWithdrawal {
            ours: true,
            total: 60,
            expiry: 1,
        });
        let side_a = Side {
            deposit: 100,
            withdrawn: 0,
            proof: (4, 40),
        };
        let side_b = Side {
            deposit: 50,
            withdrawn: 10,
            proof: (2, 7),
        };
        assert_eq!(
            (a.our_chain_side(), a.partner_chain_side()),
            (side_a, side_b)
        );
        assert_eq!((a.our_withdrawn(), a.partner_withdrawn()), (60, 10));
        let mut b = a.clone();
        b.role = Role::B;
        assert_eq!(
            (b.our_chain_side(), b.partner_chain_side()),
            (side_b, side_a)
        );
        // The pending withdrawal is ours (now B's): 60 over B's on-chain 10.
        assert_eq!((b.our_withdrawn(), b.partner_withdrawn()), (60, 0));
    }

    #[test]
    fn nonces_are_those_of_the_latest_proofs_or_zero() {
        let mut c = channel(Role::A);
        assert_eq!((c.our_nonce(), c.their_nonce()), (3, 1));
        c.ours = None;
        c.theirs = None;
        assert_eq!((c.our_nonce(), c.their_nonce()), (0, 0));
    }

    #[test]
    fn participants_match_only_the_recorded_parties_and_token() {
        let a = channel(Role::A);
        let (us, partner, token) = (a.us, a.partner, a.token);
        assert!(a.participants_match(us, partner, token));
        assert!(!a.participants_match(partner, us, token), "swapped roles");
        assert!(!a.participants_match(us, partner, Address::repeat_byte(9)));
        assert!(!a.participants_match(us, Address::repeat_byte(9), token));
        let b = channel(Role::B);
        assert!(b.participants_match(partner, us, token));
        assert!(!b.participants_match(us, partner, token));
    }
}
