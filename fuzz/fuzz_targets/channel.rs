//! The channel state machine under arbitrary input sequences (RELIABILITY P3, P4, P7): chain
//! events, our payments, the partner's proofs and co-signed withdrawals, in any order and with
//! any values. Nothing panics; accepted nonces strictly increase; transferred amounts never
//! decrease; while the chain's numbers are consistent (withdrawals within deposits), both sides'
//! balances together never exceed what the channel holds.
#![no_main]

use alloy_primitives::{Address, Bytes};
use farthing_core::{ChainEvent, Channel, PendingWithdrawal, SignedProof, apply};
use libfuzzer_sys::fuzz_target;

const US: Address = Address::repeat_byte(0xa);
const PARTNER: Address = Address::repeat_byte(0xb);
const TOKEN: Address = Address::repeat_byte(0x7);
/// The contract stores deposits as uint96.
const MAX_DEPOSIT: u128 = (1 << 96) - 1;

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
    let mut consistent = true;
    while let Some(op) = input.byte() {
        let before = channel.clone();
        match op % 8 {
            0 => {
                let Some(amount) = input.amount() else { break };
                if let Ok((nonce, transferred)) = channel.next_payment(amount) {
                    channel.ours = Some(proof(nonce, transferred));
                }
            }
            1 => {
                let have = channel.theirs.as_ref().map_or(0, |p| p.nonce);
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
                if channel.check_incoming(nonce, transferred, amount).is_ok() {
                    channel.theirs = Some(proof(nonce, transferred));
                }
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
                if let Some(next) = apply(Some(channel.clone()), &event, US, 2) {
                    channel = next;
                }
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
                if let Some(next) = apply(Some(channel.clone()), &event, US, 2) {
                    channel = next;
                }
                assert!(
                    channel.withdrawal.is_none(),
                    "an executed withdrawal is no longer pending"
                );
            }
            4 => {
                let (Some(who), Some(total), Some(expiry)) =
                    (input.byte(), input.amount(), input.byte())
                else {
                    break;
                };
                // The node co-signs only what the withdrawer can pay, as link.rs checks.
                let ours = who & 1 == 0;
                let (available, withdrawn) = if ours {
                    (channel.our_balance(), channel.our_withdrawn())
                } else {
                    let w = match channel.role {
                        farthing_core::Role::A => channel.on_chain.withdrawn_b,
                        farthing_core::Role::B => channel.on_chain.withdrawn_a,
                    };
                    (channel.partner_balance(), w)
                };
                if channel.on_chain.state == farthing_core::ChainState::Open
                    && channel.withdrawal.is_none()
                    && total > withdrawn
                    && total - withdrawn <= available
                {
                    channel.withdrawal = Some(PendingWithdrawal {
                        ours,
                        total,
                        expiry: u64::from(expiry),
                    });
                }
            }
            5 => {
                let (Some(nonce), Some(transferred)) = (input.nonce(1), input.amount()) else {
                    break;
                };
                let event = ChainEvent::Closed {
                    id: 1,
                    closer: PARTNER,
                    settle_after: 100,
                    partner_nonce: nonce,
                    partner_transferred: transferred,
                };
                if let Some(next) = apply(Some(channel.clone()), &event, US, 3) {
                    channel = next;
                }
            }
            6 => {
                if let Some(next) = apply(
                    Some(channel.clone()),
                    &ChainEvent::Settled {
                        id: 1,
                        payout_a: 0,
                        payout_b: 0,
                        cooperative: false,
                    },
                    US,
                    4,
                ) {
                    channel = next;
                }
            }
            _ => {
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
        if consistent && o.state == farthing_core::ChainState::Open {
            assert!(
                c.our_balance().saturating_add(c.partner_balance()) <= c.holdings(),
                "balances exceed the holdings: {c:?}"
            );
        }
    }
});
