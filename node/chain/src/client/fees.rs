//! The fee cap (`chain.max_fee_per_gas_gwei`): the node never offers more per gas than the
//! operator allows, however high the estimate (alloy's is about twice the base fee plus the
//! tip) or however many times an urgent transaction's fees are raised.

/// EIP-1559 fees for one transaction, in wei per gas.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Fees {
    /// `maxFeePerGas`.
    pub(crate) max_fee: u128,
    /// `maxPriorityFeePerGas` (never above `max_fee`).
    pub(crate) tip: u128,
}

impl Fees {
    /// The fees within `cap` (wei per gas, none: no cap): the max fee at most the cap, the tip
    /// at most the max fee. The second value says whether the cap lowered the max fee.
    pub(crate) fn capped(self, cap: Option<u128>) -> (Self, bool) {
        let max_fee = cap.map_or(self.max_fee, |cap| self.max_fee.min(cap));
        let fees = Self {
            max_fee,
            tip: self.tip.min(max_fee),
        };
        (fees, max_fee < self.max_fee)
    }
}

/// `wei` per gas in gwei, for messages ("0.05 gwei", "31.000000001 gwei").
pub(crate) fn gwei(wei: u128) -> String {
    let (whole, frac) = (wei / 1_000_000_000, wei % 1_000_000_000);
    if frac == 0 {
        format!("{whole} gwei")
    } else {
        let frac = format!("{frac:09}");
        format!("{whole}.{} gwei", frac.trim_end_matches('0'))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GWEI: u128 = 1_000_000_000;

    #[test]
    fn the_cap_clamps_the_max_fee_and_the_tip_follows() {
        let estimate = Fees {
            max_fee: 80 * GWEI,
            tip: 2 * GWEI,
        };
        // No cap, or a cap above the estimate: unchanged, not binding.
        assert_eq!(estimate.capped(None), (estimate, false));
        assert_eq!(estimate.capped(Some(80 * GWEI)), (estimate, false));
        assert_eq!(estimate.capped(Some(100 * GWEI)), (estimate, false));
        // Below: the max fee is the cap, the tip still fits.
        assert_eq!(
            estimate.capped(Some(50 * GWEI)),
            (
                Fees {
                    max_fee: 50 * GWEI,
                    tip: 2 * GWEI
                },
                true
            )
        );
        // A cap below the tip: the tip is cut to the max fee.
        assert_eq!(
            estimate.capped(Some(GWEI / 2)),
            (
                Fees {
                    max_fee: GWEI / 2,
                    tip: GWEI / 2
                },
                true
            )
        );
        // A raised urgent fee is clamped the same way.
        let raised = Fees {
            max_fee: estimate.max_fee * 3 / 2 + 1,
            tip: estimate.tip * 3 / 2 + 1,
        };
        assert_eq!(
            raised.capped(Some(100 * GWEI)),
            (
                Fees {
                    max_fee: 100 * GWEI,
                    tip: 3 * GWEI + 1
                },
                true
            )
        );
    }

    #[test]
    fn gwei_reads_like_the_setting() {
        assert_eq!(gwei(50 * GWEI), "50 gwei");
        assert_eq!(gwei(50_000_000), "0.05 gwei");
        assert_eq!(gwei(31 * GWEI + 1), "31.000000001 gwei");
        assert_eq!(gwei(0), "0 gwei");
    }
}
