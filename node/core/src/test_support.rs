//! Channel fixtures shared by the unit and property tests of every module.

use alloy_primitives::{Address, Bytes};
use proptest::prelude::*;

use crate::channel::{ChainState, Channel, OnChain, PendingWithdrawal, Role, SignedProof};

/// Our address in the fixtures.
pub(crate) const US: Address = Address::repeat_byte(0xa);
/// The partner's address in the fixtures.
pub(crate) const PARTNER: Address = Address::repeat_byte(0xb);
/// The token in the fixtures.
pub(crate) const TOKEN: Address = Address::repeat_byte(0x7);

/// Channel 1, open, we are `role`; A deposited `deposit_a`, B `deposit_b`; nothing paid or
/// withdrawn yet.
pub(crate) fn open_channel(role: Role, deposit_a: u128, deposit_b: u128) -> Channel {
    Channel {
        id: 1,
        token: TOKEN,
        role,
        us: US,
        partner: PARTNER,
        challenge_period: 600,
        opened_block: 1,
        on_chain: OnChain {
            state: ChainState::Open,
            deposit_a,
            deposit_b,
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
    }
}

/// An unsigned proof (this crate checks no signatures).
pub(crate) fn proof(nonce: u64, transferred: u128) -> Option<SignedProof> {
    Some(SignedProof {
        nonce,
        transferred,
        signature: Bytes::new(),
    })
}

/// Any channel record that the contract could report with proofs either side may hold:
/// withdrawals within deposits, and the proofs' amounts within what each side could have paid
/// (so that the balance formula is meaningful). States and pending withdrawals vary.
pub(crate) fn any_channel() -> impl Strategy<Value = Channel> {
    (
        any::<bool>(),
        (0u128..1_000_000, 0u128..1_000_000),
        (0u128..=100, 0u128..=100),
        (0u64..5, 0u64..5, 0u128..=100, 0u128..=100),
        prop_oneof![
            Just(ChainState::Open),
            Just(ChainState::Closed),
            Just(ChainState::Settled)
        ],
        proptest::option::of((any::<bool>(), 0u128..=100, 0u64..2_000)),
        (0u64..2_000, 0u64..6, 0u64..6),
    )
        .prop_map(
            |(
                role_a,
                (deposit_a, deposit_b),
                (withdrawn_a_pct, withdrawn_b_pct),
                (nonce_ours, nonce_theirs, sent_pct, received_pct),
                state,
                pending,
                (settle_after, recorded_a, recorded_b),
            )| {
                let role = if role_a { Role::A } else { Role::B };
                let mut c = open_channel(role, deposit_a, deposit_b);
                c.on_chain.withdrawn_a = deposit_a * withdrawn_a_pct / 100;
                c.on_chain.withdrawn_b = deposit_b * withdrawn_b_pct / 100;
                c.on_chain.state = state;
                if state != ChainState::Open {
                    c.on_chain.settle_after = settle_after;
                    c.on_chain.closer = Some(PARTNER);
                }
                // Paid amounts within each side's own free deposit: the balances stay whole.
                let free_ours = c.our_chain_side().deposit - c.our_chain_side().withdrawn;
                let free_theirs = c.partner_chain_side().deposit - c.partner_chain_side().withdrawn;
                if nonce_ours > 0 {
                    c.ours = proof(nonce_ours, free_ours * sent_pct / 100);
                }
                if nonce_theirs > 0 {
                    c.theirs = proof(nonce_theirs, free_theirs * received_pct / 100);
                }
                c.on_chain.proof_a = (recorded_a, u128::from(recorded_a) * 3);
                c.on_chain.proof_b = (recorded_b, u128::from(recorded_b) * 3);
                if let Some((ours, pct, expiry)) = pending
                    && state == ChainState::Open
                {
                    // A withdrawal the rules would co-sign: within the withdrawer's balance.
                    let (withdrawn, balance) = if ours {
                        (c.our_chain_side().withdrawn, c.our_balance())
                    } else {
                        (c.partner_chain_side().withdrawn, c.partner_balance())
                    };
                    c.withdrawal = Some(PendingWithdrawal {
                        ours,
                        total: withdrawn + balance * pct / 100,
                        expiry,
                    });
                }
                c
            },
        )
}

/// The same channel as the partner's node records it: roles, addresses, proofs and the
/// pending withdrawal's owner swapped.
pub(crate) fn mirror(c: &Channel) -> Channel {
    let mut m = c.clone();
    m.role = match c.role {
        Role::A => Role::B,
        Role::B => Role::A,
    };
    m.us = c.partner;
    m.partner = c.us;
    m.ours = c.theirs.clone();
    m.theirs = c.ours.clone();
    m.withdrawal = c
        .withdrawal
        .clone()
        .map(|w| PendingWithdrawal { ours: !w.ours, ..w });
    m
}

/// An open channel of [`any_channel`] without a pending withdrawal.
pub(crate) fn any_open_channel() -> impl Strategy<Value = Channel> {
    any_channel().prop_map(|mut c| {
        c.on_chain.state = ChainState::Open;
        c.on_chain.settle_after = 0;
        c.on_chain.closer = None;
        c.withdrawal = None;
        c
    })
}
