//! Token amounts. The node counts in base units (`u128`); people write decimal strings in
//! token units ("12.5" USDC = 12 500 000 base units at 6 decimals).

/// Why a decimal amount string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    /// Nothing to parse.
    #[error("the amount is empty: write a decimal number like 12.5")]
    Empty,
    /// Not the grammar: digits, optionally one '.' followed by more digits.
    #[error(
        "'{0}' is not an amount: write digits with an optional '.' and more digits, like 12.5 or 0.001 (no spaces, sign, exponent or bare '.')"
    )]
    Malformed(String),
    /// A non-zero digit below the token's smallest unit.
    #[error(
        "'{amount}' is more precise than the token's smallest unit ({}): use at most {decimals} decimals",
        format_amount(1, *decimals)
    )]
    TooPrecise {
        /// The input.
        amount: String,
        /// The token's decimals.
        decimals: u8,
    },
    /// Larger than the bound the caller set.
    #[error("'{amount}' is larger than the maximum of {max}")]
    TooLarge {
        /// The input.
        amount: String,
        /// The bound, in token units.
        max: String,
    },
}

/// Parse a decimal amount in token units into base units, refusing anything above `max`
/// (base units).
///
/// The grammar is strict, so that what a person typed is what is paid: `DIGITS` or
/// `DIGITS.DIGITS` — no surrounding spaces, no sign, no exponent, no bare leading or trailing
/// point (`.5`, `5.`). Trailing zeros past the token's decimals are accepted (`0.0010000` is
/// 0.001); a non-zero digit past them is refused rather than rounded.
///
/// ```
/// use farthing_core::parse_amount;
/// assert_eq!(parse_amount("12.5", 6, u128::MAX), Ok(12_500_000));
/// assert_eq!(parse_amount("0.0010000", 6, u128::MAX), Ok(1_000));
/// assert!(parse_amount(".5", 6, u128::MAX).is_err());
/// ```
pub fn parse_amount(text: &str, decimals: u8, max: u128) -> Result<u128, AmountError> {
    if text.is_empty() {
        return Err(AmountError::Empty);
    }
    let (whole, frac) = text.split_once('.').unwrap_or((text, ""));
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(whole) || (text.contains('.') && !digits(frac)) {
        return Err(AmountError::Malformed(text.to_owned()));
    }
    let frac = frac.trim_end_matches('0');
    if frac.len() > usize::from(decimals) {
        return Err(AmountError::TooPrecise {
            amount: text.to_owned(),
            decimals,
        });
    }
    let too_large = || AmountError::TooLarge {
        amount: text.to_owned(),
        max: format_amount(max, decimals),
    };
    let mut value: u128 = 0;
    let padding = usize::from(decimals) - frac.len();
    for digit in whole
        .bytes()
        .chain(frac.bytes())
        .chain(std::iter::repeat_n(b'0', padding))
    {
        value = value
            .checked_mul(10)
            .and_then(|v| v.checked_add(u128::from(digit - b'0')))
            .ok_or_else(too_large)?;
    }
    if value > max {
        return Err(too_large());
    }
    Ok(value)
}

/// Show base units as a decimal string in token units, without trailing zeros ("12.5").
pub fn format_amount(value: u128, decimals: u8) -> String {
    // 10^39 overflows u128: every u128 value is then below one whole token.
    let (whole, frac) = match 10u128.checked_pow(u32::from(decimals)) {
        Some(scale) => (value / scale, value % scale),
        None => (0, value),
    };
    if frac == 0 {
        return whole.to_string();
    }
    let frac = format!("{frac:0width$}", width = usize::from(decimals));
    format!("{whole}.{}", frac.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_usdc_amounts() {
        assert_eq!(parse_amount("0", 6, u128::MAX), Ok(0));
        assert_eq!(parse_amount("12.5", 6, u128::MAX), Ok(12_500_000));
        assert_eq!(parse_amount("0.5", 6, u128::MAX), Ok(500_000));
        assert_eq!(parse_amount("007", 6, u128::MAX), Ok(7_000_000));
        assert_eq!(parse_amount("0.000001", 6, u128::MAX), Ok(1));
        // Trailing zeros past the decimals change nothing: accepted.
        assert_eq!(parse_amount("0.0010000", 6, u128::MAX), Ok(1_000));
        assert_eq!(parse_amount("3.000000000", 6, u128::MAX), Ok(3_000_000));
        assert_eq!(parse_amount("5", 0, u128::MAX), Ok(5));
    }

    #[test]
    fn refuses_what_is_not_an_amount() {
        let strict = [" 1", "1 ", " 3 ", ".5", "5.", "1._5", "\u{665}"];
        for bad in ["-1", "+1", "1e6", "1.2.3", "0x10", "one", ".", "1,5"]
            .into_iter()
            .chain(strict)
        {
            assert!(
                matches!(
                    parse_amount(bad, 6, u128::MAX),
                    Err(AmountError::Malformed(_))
                ),
                "{bad}"
            );
        }
        assert_eq!(parse_amount("", 6, u128::MAX), Err(AmountError::Empty));
        assert!(matches!(
            parse_amount("0.0000001", 6, u128::MAX),
            Err(AmountError::TooPrecise { .. })
        ));
        assert!(matches!(
            parse_amount("0.0000010", 0, u128::MAX),
            Err(AmountError::TooPrecise { .. })
        ));
        assert_eq!(
            parse_amount("0.5", 0, u128::MAX).unwrap_err().to_string(),
            "'0.5' is more precise than the token's smallest unit (1): use at most 0 decimals"
        );
        let err = parse_amount("2", 6, 1_999_999).unwrap_err();
        assert_eq!(
            err.to_string(),
            "'2' is larger than the maximum of 1.999999",
            "in token units"
        );
        assert_eq!(
            parse_amount("0.0000001", 6, u128::MAX)
                .unwrap_err()
                .to_string(),
            "'0.0000001' is more precise than the token's smallest unit (0.000001): use at most 6 decimals"
        );
        let huge = "9".repeat(60);
        assert!(matches!(
            parse_amount(&huge, 6, u128::MAX),
            Err(AmountError::TooLarge { .. })
        ));
    }

    #[test]
    fn formats_without_trailing_zeros() {
        assert_eq!(format_amount(12_500_000, 6), "12.5");
        assert_eq!(format_amount(1, 6), "0.000001");
        assert_eq!(format_amount(5_000_000, 6), "5");
        assert_eq!(format_amount(0, 6), "0");
        assert_eq!(format_amount(7, 0), "7");
    }

    proptest! {
        #[test]
        fn format_then_parse_round_trips(value in any::<u128>(), decimals in 0u8..=60) {
            prop_assert_eq!(parse_amount(&format_amount(value, decimals), decimals, u128::MAX), Ok(value));
        }

        #[test]
        fn never_panics(text in ".{0,64}", decimals in 0u8..=30) {
            let _ = parse_amount(&text, decimals, u128::MAX);
        }
    }
}
