//! The contract's numeric limits, which the node enforces before anything reaches the chain.
//!
//! `ChannelManager` stores deposits and withdrawal totals as `uint96`: a top-up, an open or a
//! co-signed withdrawal past that limit would revert on-chain, so the node refuses it (and
//! never co-signs a partner's withdrawal past it).

/// The largest total deposit, and the largest total withdrawn, the contract stores (`uint96`),
/// in base units.
pub const MAX_DEPOSIT: u128 = (1 << 96) - 1;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_deposit_is_the_largest_uint96() {
        assert_eq!(MAX_DEPOSIT, 79_228_162_514_264_337_593_543_950_335);
        assert_eq!(MAX_DEPOSIT.count_ones(), 96);
        assert_eq!(MAX_DEPOSIT.checked_add(1), Some(1u128 << 96));
    }
}
