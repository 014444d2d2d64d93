//! Rebuilding a channel record after a chain reorganisation.
//!
//! When a block the node applied is reorganised away (deeper than its confirmations), events
//! it folded may no longer exist, and folding absolute values idempotently cannot take a
//! vanished deposit back. The daemon then replays recent events into a copy of its records and
//! reads every live channel's on-chain half back from the contract. This module merges the
//! result with the record the node holds meanwhile ([`merge_rebuilt`]): the on-chain half comes
//! from the chain, the off-chain half (the proofs, the pending withdrawal) is the node's own —
//! payments may have moved it while the chain was read — and a pending withdrawal the new chain
//! shows void or done is dropped.

use crate::channel::{ChainState, Channel, OnChain};

/// Merge `rebuilt` (the record after replaying recent events) with `current` (the node's record
/// now, if it has one) and `on_chain` (the contract's own view of the channel, if it was read),
/// as of a confirmed block of chain time `block_time`.
///
/// The off-chain half (our proof, the partner's, the pending withdrawal) is `current`'s if
/// there is one, the on-chain half is `on_chain` if given. Then the pending withdrawal is
/// dropped if the channel is not open (the contract withdraws only from open channels), if it
/// expired (`expiry < block_time`), or if it executed (its total is at most the withdrawer's
/// on-chain total withdrawn).
pub fn merge_rebuilt(
    rebuilt: Channel,
    current: Option<&Channel>,
    on_chain: Option<OnChain>,
    block_time: u64,
) -> Channel {
    let mut channel = rebuilt;
    if let Some(current) = current {
        channel.ours.clone_from(&current.ours);
        channel.theirs.clone_from(&current.theirs);
        channel.withdrawal.clone_from(&current.withdrawal);
    }
    if let Some(on_chain) = on_chain {
        channel.on_chain = on_chain;
    }
    let open = channel.on_chain.state == ChainState::Open;
    let ours_withdrawn = channel.our_chain_side().withdrawn;
    let theirs_withdrawn = channel.partner_chain_side().withdrawn;
    if channel.withdrawal.as_ref().is_some_and(|w| {
        let withdrawn = if w.ours {
            ours_withdrawn
        } else {
            theirs_withdrawn
        };
        !open || w.expiry < block_time || w.total <= withdrawn
    }) {
        channel.withdrawal = None;
    }
    channel
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::channel::{PendingWithdrawal, Role};
    use crate::test_support::{any_channel, open_channel, proof};

    fn with_pending(mut c: Channel, ours: bool, total: u128, expiry: u64) -> Channel {
        c.withdrawal = Some(PendingWithdrawal {
            ours,
            total,
            expiry,
        });
        c
    }

    #[test]
    fn the_chain_gives_the_on_chain_half_the_node_the_off_chain_half() {
        let rebuilt = open_channel(Role::A, 100, 50);
        let mut current = open_channel(Role::A, 120, 50);
        current.ours = proof(4, 40);
        current.theirs = proof(2, 5);
        let current = with_pending(current, true, 30, 500);
        let mut chain = rebuilt.on_chain.clone();
        chain.deposit_b = 60;
        let merged = merge_rebuilt(rebuilt.clone(), Some(&current), Some(chain.clone()), 400);
        assert_eq!(merged.on_chain, chain);
        assert_eq!(
            (merged.ours, merged.theirs),
            (current.ours.clone(), current.theirs.clone())
        );
        assert_eq!(merged.withdrawal, current.withdrawal);
        // No read of the chain: the replayed on-chain half stays.
        let merged = merge_rebuilt(rebuilt.clone(), Some(&current), None, 400);
        assert_eq!(merged.on_chain, rebuilt.on_chain);
        // No current record (opened on the new branch): the rebuilt one as it is.
        let fresh = with_pending(rebuilt.clone(), false, 10, 500);
        assert_eq!(merge_rebuilt(fresh.clone(), None, None, 400), fresh);
    }

    #[test]
    fn a_withdrawal_void_or_done_on_the_new_chain_is_dropped() {
        let rebuilt = open_channel(Role::B, 100, 50);
        let merge = |current: &Channel, chain: &OnChain, block_time| {
            merge_rebuilt(
                rebuilt.clone(),
                Some(current),
                Some(chain.clone()),
                block_time,
            )
            .withdrawal
        };
        let mut chain = rebuilt.on_chain.clone();
        chain.withdrawn_a = 20; // the partner's (A's)
        chain.withdrawn_b = 30; // ours (B's)
        // Ours to a total of 40: pending until it expires or the chain shows 40 withdrawn.
        let ours = with_pending(rebuilt.clone(), true, 40, 500);
        assert_eq!(
            merge(&ours, &chain, 500),
            ours.withdrawal,
            "valid through its expiry"
        );
        assert_eq!(merge(&ours, &chain, 501), None, "expired");
        chain.withdrawn_b = 40;
        assert_eq!(merge(&ours, &chain, 0), None, "executed");
        // The partner's is measured against the partner's total (A's here).
        let theirs = with_pending(rebuilt.clone(), false, 40, 500);
        assert_eq!(merge(&theirs, &chain, 0), theirs.withdrawal);
        chain.withdrawn_a = 41;
        assert_eq!(merge(&theirs, &chain, 0), None, "one past it executed");
        // Not open: nothing can execute.
        chain.withdrawn_a = 0;
        chain.state = ChainState::Closed;
        assert_eq!(merge(&theirs, &chain, 0), None);
    }

    proptest! {
        /// The node's proofs always survive a rebuild, its pending withdrawal unless the chain
        /// shows it void or done, and merging the result again changes nothing.
        #[test]
        fn the_off_chain_half_survives_and_a_merge_is_idempotent(
            rebuilt in any_channel(),
            current in proptest::option::of(any_channel()),
            on_chain in proptest::option::of(any_channel().prop_map(|c| c.on_chain)),
            block_time in 0u64..2_500,
        ) {
            let merged = merge_rebuilt(rebuilt.clone(), current.as_ref(), on_chain.clone(), block_time);
            let source = current.as_ref().unwrap_or(&rebuilt);
            prop_assert_eq!(&merged.ours, &source.ours);
            prop_assert_eq!(&merged.theirs, &source.theirs);
            prop_assert!(merged.withdrawal.is_none() || merged.withdrawal == source.withdrawal);
            prop_assert_eq!(&merged.on_chain, on_chain.as_ref().unwrap_or(&rebuilt.on_chain));
            prop_assert_eq!((merged.id, merged.role, merged.us, merged.partner), (rebuilt.id, rebuilt.role, rebuilt.us, rebuilt.partner));
            if let Some(w) = &merged.withdrawal {
                prop_assert_eq!(merged.on_chain.state, ChainState::Open);
                prop_assert!(w.expiry >= block_time);
            }
            let again = merge_rebuilt(merged.clone(), current.as_ref(), on_chain.clone(), block_time);
            prop_assert_eq!(&again, &merged);
            let settled = merge_rebuilt(merged.clone(), Some(&merged), None, block_time);
            prop_assert_eq!(&settled, &merged);
        }
    }
}
