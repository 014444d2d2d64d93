//! The channel state machine under arbitrary input sequences (RELIABILITY P3, P4, P7): chain
//! events, our payments (one by one and in batches), the partner's proofs (frames and Syncs),
//! withdrawals both ways, expiries, reorg rebuilds and the watchtower's plan, in any order and
//! with any values, every rule taken from `farthing-core` (the fuzzer keeps no copy of any).
//! Nothing panics; accepted nonces strictly increase; transferred amounts never decrease; while
//! the chain's numbers are consistent (withdrawals within deposits), both sides' balances
//! together never exceed what the channel holds.
#![no_main]

use alloy_primitives::{Address, Bytes};
use farthing_core::{
    ChainEvent, ChainState, Channel, Duty, MAX_DEPOSIT, SignedProof, WITHDRAW_EXPIRY_SLACK_SECS,
    WITHDRAW_VALIDITY_SECS, apply, claimed, gas_shortfall, merge_rebuilt, needs_challenge, plan,
    plan_batch,
};
use libfuzzer_sys::fuzz_target;

const US: Address = Address::repeat_byte(0xa);
const PARTNER: Address = Address::repeat_byte(0xb);
const TOKEN: Address = Address::repeat_byte(0x7);

struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }

    /// Small amounts mostly (so that balances interact), sometimes huge ones.
    fn amount(&mut self) -> Option<u128> {
        let tag = self.byte()?;
        let mut v = 0u128;
        let len = if tag & 0x80 != 0 { 16 } else { 2 };
        for _ in 0..len {
            v = v << 8 | u128::from(self.byte()?);
        }
        Some(v)
    }

    fn nonce(&mut self, near: u64) -> Option<u64> {
        let b = self.byte()?;
        Some(match b {
            0xff => u64::MAX,
            _ => near.saturating_add(u64::from(b % 4)).saturating_sub(1),
        })
    }
}

fn proof(nonce: u64, transferred: u128) -> SignedProof {
    SignedProof {
        nonce,
        transferred,
        signature: Bytes::new(),
    }
}

/// Apply a chain event to the record (it stays as it is if the event is not about it).
fn chain(channel: &mut Channel, event: &ChainEvent, block: u64) {
    if let Some(next) = apply(Some(channel.clone()), event, US, block) {
        *channel = next;
    }
}

/// The partner's proof `(nonce, transferred)` claiming `amount`: stored if the receiver's rule
/// accepts it.
fn receive(channel: &mut Channel, nonce: u64, transferred: u128, amount: u128) {
    if channel.check_incoming(nonce, transferred, amount).is_ok() {
        channel.theirs = Some(proof(nonce, transferred));
    }
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input(data);
    let Some(first) = input.byte() else { return };
    let (a, b) = if first & 1 == 0 {
        (US, PARTNER)
    } else {
        (PARTNER, US)
    };
    let Some(deposit) = input.amount().map(|d| d & MAX_DEPOSIT) else {
        return;
    };
    let opened = ChainEvent::Opened {
        id: 1,
        a,
        b,
        token: TOKEN,
        deposit_a: deposit,
        challenge_period: 60,
    };
    let Some(mut channel) = apply(None, &opened, US, 1) else {
        return;
    };
    // Chain time of the latest confirmed block; the machine's clock runs with it.
    let mut clock = 1_000u64;
    let mut consistent = true;
    while let Some(op) = input.byte() {
        let before = channel.clone();
        match op % 13 {
            0 => {
                // One payment of ours.
                let Some(amount) = input.amount() else { break };
                if let Ok((nonce, transferred)) = channel.next_payment(amount) {
                    channel.ours = Some(proof(nonce, transferred));
                }
            }
            1 => {
                // The partner's payment, its proof moving the claim or a little more.
                let have = channel.their_nonce();
                let (Some(nonce), Some(amount), Some(extra)) = (
                    input.nonce(have.saturating_add(1)),
                    input.amount(),
                    input.byte(),
                ) else {
                    break;
                };
                let transferred = channel
                    .received()
                    .saturating_add(amount)
                    .saturating_add(u128::from(extra % 3));
                receive(&mut channel, nonce, transferred, amount);
            }
            2 => {
                let (Some(who), Some(total)) = (input.byte(), input.amount()) else {
                    break;
                };
                let participant = if who & 1 == 0 { a } else { b };
                let event = ChainEvent::Deposited {
                    id: 1,
                    participant,
                    total: total & MAX_DEPOSIT,
                };
                chain(&mut channel, &event, 2);
            }
            3 => {
                // The contract pays out only withdrawals both sides signed: the pending one.
                let Some(pending) = channel.withdrawal.clone() else {
                    continue;
                };
                let participant = if pending.ours { US } else { PARTNER };
                let event = ChainEvent::Withdrawn {
                    id: 1,
                    participant,
                    total: pending.total,
                };
                chain(&mut channel, &event, 2);
                assert!(
                    channel.withdrawal.is_none(),
                    "an executed withdrawal is no longer pending"
                );
            }
            4 => {
                // A withdrawal: ours as we ask for it, or the partner's as we co-sign it.
                let (Some(who), Some(amount), Some(ahead)) =
                    (input.byte(), input.amount(), input.byte())
                else {
                    break;
                };
                let expiry = clock.saturating_add(u64::from(ahead) * 32);
                if who & 1 == 0 {
                    let balance = channel.our_balance();
                    if let Ok(w) = channel.propose_withdrawal(amount, expiry) {
                        assert!(w.ours && amount > 0 && amount <= balance);
                        assert!(w.total <= MAX_DEPOSIT);
                        assert_eq!(w.total, channel.our_chain_side().withdrawn + amount);
                        channel.withdrawal = Some(w);
                        assert_eq!(channel.our_balance(), balance - amount);
                    }
                } else {
                    // Relative to what the partner has withdrawn mostly, sometimes absolute,
                    // sometimes for the wrong participant.
                    let withdrawn = channel.partner_chain_side().withdrawn;
                    let total = if who & 2 == 0 {
                        withdrawn.saturating_add(amount)
                    } else {
                        amount
                    };
                    let participant = if who & 4 == 0 { PARTNER } else { US };
                    let balance = channel.partner_balance();
                    if let Ok(w) = channel.check_withdraw_request(participant, total, expiry, clock)
                    {
                        assert!(!w.ours && participant == PARTNER);
                        assert!(total > withdrawn && total - withdrawn <= balance);
                        assert!(total <= MAX_DEPOSIT);
                        assert!(
                            expiry
                                <= clock
                                    .saturating_add(WITHDRAW_VALIDITY_SECS)
                                    .saturating_add(WITHDRAW_EXPIRY_SLACK_SECS)
                        );
                        channel.withdrawal = Some(w);
                        assert_eq!(channel.partner_balance(), balance - (total - withdrawn));
                    }
                }
            }
            5 => {
                let (Some(nonce), Some(transferred)) = (input.nonce(1), input.amount()) else {
                    break;
                };
                let event = ChainEvent::Closed {
                    id: 1,
                    closer: PARTNER,
                    settle_after: clock.saturating_add(100),
                    partner_nonce: nonce,
                    partner_transferred: transferred,
                };
                chain(&mut channel, &event, 3);
            }
            6 => {
                let event = ChainEvent::Settled {
                    id: 1,
                    payout_a: 0,
                    payout_b: 0,
                    cooperative: false,
                };
                chain(&mut channel, &event, 4);
            }
            7 => {
                // A replayed event changes nothing.
                let event = ChainEvent::Deposited {
                    id: 1,
                    participant: a,
                    total: channel.on_chain.deposit_a,
                };
                assert_eq!(
                    apply(Some(channel.clone()), &event, US, 5).as_ref(),
                    Some(&channel)
                );
            }
            8 => {
                // Several payments of ours queued at once: one proof carries what fits.
                let Some(count) = input.byte() else { break };
                let mut amounts = Vec::new();
                for _ in 0..count % 8 {
                    let Some(amount) = input.amount() else { break };
                    amounts.push(amount);
                }
                let batch = plan_batch(&channel, &amounts);
                assert_eq!(batch.outcomes.len(), amounts.len());
                let carried: u128 = amounts
                    .iter()
                    .zip(&batch.outcomes)
                    .filter(|(_, o)| o.is_ok())
                    .map(|(amount, _)| *amount)
                    .sum();
                if let Some((nonce, transferred)) = batch.proof {
                    assert_eq!(nonce, channel.our_nonce() + 1);
                    assert_eq!(transferred - channel.sent(), carried);
                    assert!(carried <= channel.our_balance());
                    channel.ours = Some(proof(nonce, transferred));
                } else {
                    assert_eq!(carried, 0);
                }
            }
            9 => {
                // The partner's Sync: its latest proof and the nonce of ours it holds.
                let have = channel.their_nonce();
                let (Some(nonce), Some(amount), Some(held)) = (
                    input.nonce(have.saturating_add(1)),
                    input.amount(),
                    input.nonce(channel.our_nonce()),
                ) else {
                    break;
                };
                let holds = channel.partner_holds(held);
                assert!(holds.acknowledged <= channel.our_nonce() && holds.acknowledged <= held);
                assert_eq!(holds.ahead, held > channel.our_nonce());
                let transferred = channel.received().saturating_add(amount);
                if let Some(increase) = channel.sync_increase(nonce, transferred) {
                    assert_eq!(channel.received() + increase, transferred);
                    receive(&mut channel, nonce, transferred, increase);
                }
            }
            10 => {
                // A new confirmed block: chain time moves on, expired withdrawals end.
                let Some(step) = input.byte() else { break };
                clock = clock.saturating_add(u64::from(step) * 16);
                let pending = channel.withdrawal.clone();
                let expired = channel.expire_withdrawal(clock);
                assert_eq!(expired, pending.as_ref().is_some_and(|w| w.expiry < clock));
                assert!(
                    channel
                        .withdrawal
                        .as_ref()
                        .is_none_or(|w| w.expiry >= clock)
                );
            }
            11 => {
                // A reorg rebuild: the record replayed, the contract's view read back (as it
                // is, or with the pending withdrawal executed, or the channel closed on the new
                // branch), merged with the record the node holds.
                let Some(how) = input.byte() else { break };
                let mut on_chain = channel.on_chain.clone();
                match how % 4 {
                    1 => {
                        if let Some(w) = &channel.withdrawal {
                            let (ours, theirs) = channel
                                .role
                                .order(&mut on_chain.withdrawn_a, &mut on_chain.withdrawn_b);
                            let slot = if w.ours { ours } else { theirs };
                            *slot = (*slot).max(w.total);
                        }
                    }
                    2 if on_chain.state == ChainState::Open => {
                        on_chain.state = ChainState::Closed;
                        on_chain.settle_after = clock.saturating_add(60);
                        on_chain.closer = Some(PARTNER);
                    }
                    _ => {}
                }
                let read = (how % 4 != 3).then_some(on_chain);
                let rebuilt = merge_rebuilt(channel.clone(), Some(&channel), read.clone(), clock);
                assert_eq!(
                    (&rebuilt.ours, &rebuilt.theirs),
                    (&channel.ours, &channel.theirs)
                );
                assert!(rebuilt.withdrawal.is_none() || rebuilt.withdrawal == channel.withdrawal);
                assert_eq!(
                    merge_rebuilt(rebuilt.clone(), Some(&channel), read, clock),
                    rebuilt,
                    "a merge is idempotent"
                );
                channel = rebuilt;
            }
            _ => {
                // The watchtower's pass at some time around the deadline.
                let (Some(offset), Some(margin)) = (input.byte(), input.byte()) else {
                    break;
                };
                let deadline = channel.on_chain.settle_after;
                let now = deadline
                    .saturating_sub(128)
                    .saturating_add(u64::from(offset));
                let pass = plan(std::slice::from_ref(&channel), now, u64::from(margin));
                let closed = channel.on_chain.state == ChainState::Closed;
                let expected = if !closed {
                    None
                } else if needs_challenge(&channel) && now < deadline {
                    Some(Duty::Challenge(1))
                } else if now >= deadline {
                    Some(Duty::Settle(1))
                } else {
                    None
                };
                assert_eq!(pass.duties, expected.into_iter().collect::<Vec<_>>());
                assert!(pass.warnings.len() <= pass.duties.len());
                let stale = closed && channel.our_chain_side().proof.0 > channel.our_nonce();
                assert_eq!(pass.stale.len(), usize::from(stale));
                let short = gas_shortfall(std::slice::from_ref(&channel), 0, 1);
                assert_eq!(
                    short.is_some(),
                    channel.on_chain.state != ChainState::Settled
                );
                // A payment frame of the partner's that claims several payments.
                let claim = claimed([u128::from(offset), u128::from(margin)]);
                if let Ok(sum) = claim {
                    receive(
                        &mut channel,
                        before.their_nonce().saturating_add(1),
                        before.received().saturating_add(sum),
                        sum,
                    );
                } else {
                    assert!(offset == 0 || margin == 0);
                }
            }
        }
        let c: &Channel = &channel;
        let o = &c.on_chain;
        if o.withdrawn_a > o.deposit_a || o.withdrawn_b > o.deposit_b {
            consistent = false; // the chain would never report this; balances are meaningless
        }
        // Nonces and cumulative amounts only go up.
        for (old, new) in [(&before.ours, &c.ours), (&before.theirs, &c.theirs)] {
            if let (Some(old), Some(new)) = (old, new) {
                assert!(new.nonce >= old.nonce && new.transferred >= old.transferred);
                if new != old {
                    assert!(new.nonce > old.nonce, "an accepted nonce did not increase");
                }
            }
        }
        let (pa, pb) = c.close_payouts();
        assert_eq!(
            pa.checked_add(pb),
            Some(c.holdings()),
            "payouts split the holdings"
        );
        // The partner's node, with the same books, co-signs our close.
        assert_eq!(
            c.check_close_request((pa, pb), (o.withdrawn_a, o.withdrawn_b)),
            Ok(())
        );
        if consistent && o.state == ChainState::Open {
            assert!(
                c.our_balance().saturating_add(c.partner_balance()) <= c.holdings(),
                "balances exceed the holdings: {c:?}"
            );
        }
    }
});
