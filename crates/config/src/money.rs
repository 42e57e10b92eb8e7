//! US dollars as integer micro-dollars, from the configuration parser to the report, so sums over
//! a day never drift the way floats do and a comparison with a budget means what it says.

use std::fmt;
use std::iter::Sum;
use std::ops::{Add, AddAssign, Sub};

use serde::{Deserialize, Serialize};

/// An amount of US dollars, stored as micro-dollars (1 USD = 1 000 000).
///
/// Configuration and harness output carry `f64` dollars; they are converted once, at the edge:
/// [`Usd::from_dollars`] (nearest micro-dollar) for amounts people write, [`Usd::from_dollars_up`]
/// (the next micro-dollar up, the safe side) for costs a harness reports. Sums, comparisons
/// against budgets and the cap, and the stored ledger all use the integer, so `$0.10 × 100` is
/// exactly `$10.00`. Arithmetic saturates: nothing on this type panics, whatever the input.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Usd(i64);

impl Usd {
    pub const ZERO: Usd = Usd(0);
    /// The largest amount; sums saturate here.
    pub const MAX: Usd = Usd(i64::MAX);
    const MICROS: i64 = 1_000_000;
    const MICROS_PER_DOLLAR: f64 = 1_000_000.0;

    pub const fn from_micros(micros: i64) -> Usd {
        Usd(micros)
    }

    /// Whole dollars (saturating).
    pub const fn from_whole_dollars(dollars: i64) -> Usd {
        Usd(dollars.saturating_mul(Self::MICROS))
    }

    /// Dollars rounded to the nearest micro-dollar: for amounts people write (the configuration,
    /// the price table) and for reading back what was stored. A non-finite input is zero; amounts
    /// beyond ±9.2 trillion dollars saturate (neither can come from a validated configuration).
    pub fn from_dollars(dollars: f64) -> Usd {
        if !dollars.is_finite() {
            return Usd::ZERO;
        }
        // `as` saturates on overflow, which is the behaviour we want at this edge.
        Usd((dollars * Self::MICROS_PER_DOLLAR).round() as i64)
    }

    /// Dollars rounded **up** to the next micro-dollar: for costs a harness reports, so a cost is
    /// never read as less than it was (the safe side) and `cost > budget` holds for the amount
    /// exactly when it held for the reported number.
    ///
    /// The rounding is decimal, on the number as the harness meant it: its first 15 significant
    /// digits (all an f64 holds exactly), so `0.29` is exactly 290 000 micro-dollars, not one
    /// more because `0.29 × 10⁶` is `290000.00000000006` in binary, and the noise of a harness's
    /// own float sums (`0.0045000000000000005` for `0.003 + 0.0015`) does not add a
    /// micro-dollar to every message. Only a number within that noise (10⁻¹⁵ of itself) of a
    /// budget compares differently than the float did. A non-finite input is zero; huge amounts
    /// saturate.
    pub fn from_dollars_up(dollars: f64) -> Usd {
        if !dollars.is_finite() {
            return Usd::ZERO;
        }
        // 15 significant digits, correctly rounded: `2.90000000000000e-1`.
        let text = format!("{dollars:.14e}");
        Usd(decimal_micros_up(&text).unwrap_or_else(|| Usd::from_dollars(dollars).0))
    }

    /// `tokens` at `per_million` dollars per million tokens, rounded up to the micro-dollar.
    pub fn per_million_tokens(tokens: u64, per_million: Usd) -> Usd {
        let micros = i128::from(tokens) * i128::from(per_million.0);
        Usd::saturating_from_i128(div_ceil_i128(micros, 1_000_000))
    }

    pub const fn micros(self) -> i64 {
        self.0
    }

    /// The amount as `f64` dollars, for display, JSON and APIs that take floats.
    pub fn dollars(self) -> f64 {
        self.0 as f64 / Self::MICROS_PER_DOLLAR
    }

    pub const fn saturating_add(self, other: Usd) -> Usd {
        Usd(self.0.saturating_add(other.0))
    }

    pub const fn saturating_sub(self, other: Usd) -> Usd {
        Usd(self.0.saturating_sub(other.0))
    }

    pub const fn checked_add(self, other: Usd) -> Option<Usd> {
        match self.0.checked_add(other.0) {
            Some(v) => Some(Usd(v)),
            None => None,
        }
    }

    pub const fn checked_sub(self, other: Usd) -> Option<Usd> {
        match self.0.checked_sub(other.0) {
            Some(v) => Some(Usd(v)),
            None => None,
        }
    }

    /// `self - other`, but never below zero.
    pub fn left_after(self, other: Usd) -> Usd {
        self.saturating_sub(other).max(Usd::ZERO)
    }

    pub const fn is_positive(self) -> bool {
        self.0 > 0
    }

    pub const fn is_zero(self) -> bool {
        self.0 == 0
    }

    fn saturating_from_i128(v: i128) -> Usd {
        Usd(i64::try_from(v).unwrap_or(if v < 0 { i64::MIN } else { i64::MAX }))
    }
}

/// `⌈n / d⌉` for a positive `d`.
fn div_ceil_i128(n: i128, d: i128) -> i128 {
    let q = n / d;
    if n % d > 0 { q + 1 } else { q }
}

/// Micro-dollars for a number in Rust's `{:e}` form (`-1.2345e3`), rounded towards +∞.
/// `None` when the text is not in that form (it always is for a finite f64).
fn decimal_micros_up(text: &str) -> Option<i64> {
    let (negative, text) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (mantissa, exponent) = text.split_once('e')?;
    let exponent: i32 = exponent.parse().ok()?;
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if whole.is_empty() || !(whole.bytes().chain(fraction.bytes())).all(|b| b.is_ascii_digit()) {
        return None;
    }
    // At most 17 significant digits: fits an i128 with room to spare.
    let digits: i128 = format!("{whole}{fraction}").parse().ok()?;
    let fraction_len = i32::try_from(fraction.len()).ok()?;
    // value = digits × 10^(exponent − fraction_len); micros = value × 10^6.
    let power = exponent.saturating_sub(fraction_len).saturating_add(6);
    let magnitude_up = |round_up: bool| -> i128 {
        if power >= 0 {
            if power > 30 {
                return if digits == 0 { 0 } else { i128::MAX };
            }
            digits.saturating_mul(10i128.pow(power.unsigned_abs()))
        } else if power < -38 {
            i128::from(round_up && digits != 0)
        } else {
            let scale = 10i128.pow(power.unsigned_abs());
            let q = digits / scale;
            if round_up && digits % scale != 0 {
                q + 1
            } else {
                q
            }
        }
    };
    // Towards +∞: a positive amount rounds its magnitude up, a negative one down.
    let micros = if negative {
        -magnitude_up(false)
    } else {
        magnitude_up(true)
    };
    Some(Usd::saturating_from_i128(micros).0)
}

/// `$4.20`: dollars rounded to cents, half a cent up, the way people read money (`$0.004` shows
/// as `$0.00`). Reports that show amounts under a cent differently use [`Usd::dollars`].
impl fmt::Display for Usd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cents = (i128::from(self.0) + if self.0 < 0 { -5_000 } else { 5_000 }) / 10_000;
        let sign = if cents < 0 { "-" } else { "" };
        let cents = cents.abs();
        write!(f, "{sign}${}.{:02}", cents / 100, cents % 100)
    }
}

/// `+` saturates (like [`Usd::saturating_add`]): money arithmetic never panics and never wraps.
impl Add for Usd {
    type Output = Usd;
    fn add(self, other: Usd) -> Usd {
        self.saturating_add(other)
    }
}

impl AddAssign for Usd {
    fn add_assign(&mut self, other: Usd) {
        *self = self.saturating_add(other);
    }
}

/// `-` saturates (like [`Usd::saturating_sub`]); it may go below zero, [`Usd::left_after`] does not.
impl Sub for Usd {
    type Output = Usd;
    fn sub(self, other: Usd) -> Usd {
        self.saturating_sub(other)
    }
}

impl Sum for Usd {
    fn sum<I: Iterator<Item = Usd>>(iter: I) -> Usd {
        iter.fold(Usd::ZERO, Usd::saturating_add)
    }
}

/// Serialized as dollars (`4.2`), the unit every consumer of the JSON expects: the journal, the
/// `--json` outputs, the state-github log, the configuration's JSON.
impl Serialize for Usd {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(self.dollars())
    }
}

/// Read back from dollars, to the nearest micro-dollar (what [`Serialize`] wrote reads back
/// exactly).
impl<'de> Deserialize<'de> for Usd {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Usd, D::Error> {
        f64::deserialize(d).map(Usd::from_dollars)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn dollars_round_trip_exactly_at_micro_precision() {
        for d in [0.0, 0.25, 4.2, 10.0, 0.1, 1234.567891] {
            assert_eq!(Usd::from_dollars(d).dollars(), d);
        }
        assert_eq!(Usd::from_dollars(f64::NAN), Usd::ZERO);
        assert_eq!(Usd::from_dollars(0.0000004), Usd::ZERO);
        assert_eq!(Usd::from_dollars(0.0000006), Usd::from_micros(1));
    }

    #[test]
    fn a_hundred_dimes_are_ten_dollars() {
        let dime = Usd::from_dollars(0.1);
        let sum: Usd = std::iter::repeat_n(dime, 100).sum();
        assert_eq!(sum, Usd::from_dollars(10.0));
        // The float sum the integer avoids:
        assert_ne!((0..100).map(|_| 0.1f64).sum::<f64>(), 10.0);
    }

    #[test]
    fn displays_as_cents() {
        assert_eq!(Usd::from_dollars(4.2).to_string(), "$4.20");
        assert_eq!(Usd::from_dollars(10.0).to_string(), "$10.00");
        assert_eq!(Usd::from_dollars(0.004).to_string(), "$0.00");
        assert_eq!(Usd::from_dollars(0.005).to_string(), "$0.01");
        assert_eq!(Usd::from_dollars(-1.5).to_string(), "-$1.50");
        assert_eq!(Usd::ZERO.to_string(), "$0.00");
        assert_eq!(Usd::MAX.to_string(), "$9223372036854.78");
        assert_eq!(Usd::from_micros(i64::MIN).to_string(), "-$9223372036854.78");
    }

    #[test]
    fn left_after_never_goes_negative() {
        let five = Usd::from_dollars(5.0);
        assert_eq!(five.left_after(Usd::from_dollars(7.0)), Usd::ZERO);
        assert_eq!(
            five.left_after(Usd::from_dollars(0.8)),
            Usd::from_dollars(4.2)
        );
    }

    #[test]
    fn reported_costs_round_up_on_their_decimal_digits() {
        let up = Usd::from_dollars_up;
        let cases: &[(f64, i64)] = &[
            (0.0, 0),
            (0.29, 290_000),
            (0.1, 100_000),
            // A harness's float sum: the noise past the 15th digit is not a micro-dollar.
            (0.003 + 0.0015, 4_500),
            (0.0045000000000000005, 4_500),
            (0.24722425, 247_225),
            (0.2500001, 250_001),
            (2.675, 2_675_000),
            (0.123_456_1, 123_457),
            (0.000_000_1, 1),
            (1e-300, 1),
            (5e-324, 1),
            (-0.000_000_1, 0),
            (-1.500_000_9, -1_500_000),
            (1234.567891, 1_234_567_891),
            (1e30, i64::MAX),
            (-1e30, i64::MIN),
            (f64::MAX, i64::MAX),
            (f64::NAN, 0),
            (f64::INFINITY, 0),
        ];
        for &(dollars, micros) in cases {
            assert_eq!(up(dollars), Usd::from_micros(micros), "{dollars:e}");
        }
    }

    #[test]
    fn tokens_are_priced_per_million_rounding_up() {
        let three = Usd::from_dollars(3.0);
        assert_eq!(Usd::per_million_tokens(1_000_000, three), three);
        assert_eq!(Usd::per_million_tokens(1, three), Usd::from_micros(3));
        // $0.30 per million: one token is 0.3 micro-dollars, charged as one.
        assert_eq!(
            Usd::per_million_tokens(1, Usd::from_dollars(0.3)),
            Usd::from_micros(1)
        );
        assert_eq!(Usd::per_million_tokens(0, three), Usd::ZERO);
        assert_eq!(Usd::per_million_tokens(u64::MAX, Usd::MAX), Usd::MAX);
    }

    /// The serialized forms are a compatibility surface (journal, `--json`, the state-github
    /// log, stored JSON): dollars as a JSON number, exactly as the f64 dollars were written.
    #[test]
    fn serde_forms_are_pinned() {
        let cases: &[(i64, &str)] = &[
            (0, "0.0"),
            (4_200_000, "4.2"),
            (10_000_000, "10.0"),
            (290_000, "0.29"),
            (1, "1e-6"),
            (123_457, "0.123457"),
            (-1_500_000, "-1.5"),
        ];
        for &(micros, json) in cases {
            let usd = Usd::from_micros(micros);
            assert_eq!(serde_json::to_string(&usd).unwrap(), json, "{micros}");
            assert_eq!(serde_json::from_str::<Usd>(json).unwrap(), usd, "{json}");
        }
        assert_eq!(
            serde_json::from_str::<Usd>("5").unwrap(),
            Usd::from_dollars(5.0)
        );
        assert!(serde_json::from_str::<Usd>("\"5\"").is_err());
    }

    proptest! {
        #[test]
        /// Up to a billion dollars either way: beyond that an f64 no longer tells micro-dollars
        /// apart as shortest decimals, and no budget comes near it.
        fn serde_round_trips_every_amount_up_to_a_billion(
            micros in -1_000_000_000_000_000i64..1_000_000_000_000_000,
        ) {
            let usd = Usd::from_micros(micros);
            let json = serde_json::to_string(&usd).unwrap();
            prop_assert_eq!(serde_json::from_str::<Usd>(&json).unwrap(), usd);
            prop_assert_eq!(Usd::from_dollars(usd.dollars()), usd);
            prop_assert_eq!(Usd::from_dollars_up(usd.dollars()), usd);
        }

        #[test]
        fn display_is_the_amount_rounded_to_cents(micros in -(1i64 << 52)..(1i64 << 52)) {
            let shown = Usd::from_micros(micros).to_string();
            let (sign, digits) = match shown.strip_prefix("-$") {
                Some(d) => (-1i128, d),
                None => (1, shown.strip_prefix('$').unwrap()),
            };
            let (whole, cents) = digits.split_once('.').unwrap();
            prop_assert_eq!(cents.len(), 2);
            let shown_cents = sign * (whole.parse::<i128>().unwrap() * 100 + cents.parse::<i128>().unwrap());
            // Within half a cent of the amount.
            prop_assert!((shown_cents * 10_000 - i128::from(micros)).abs() <= 5_000);
        }

        #[test]
        fn arithmetic_never_panics(a in any::<i64>(), b in any::<i64>(), f in any::<f64>(), t in any::<u64>()) {
            let (a, b) = (Usd::from_micros(a), Usd::from_micros(b));
            let _ = a.saturating_add(b);
            let _ = a.saturating_sub(b);
            let _ = a.checked_add(b);
            let _ = a.checked_sub(b);
            let mut c = a;
            c += b;
            prop_assert_eq!(c, a + b);
            prop_assert_eq!(a - b, a.saturating_sub(b));
            let _ = a.left_after(b);
            let _ = [a, b].into_iter().sum::<Usd>();
            let _ = a.to_string();
            let _ = Usd::from_dollars(f);
            let _ = Usd::from_dollars_up(f);
            let _ = Usd::per_million_tokens(t, a);
            let _ = serde_json::to_string(&a);
        }

        /// Rounding up keeps every comparison with a budget: a reported cost passes a budget
        /// exactly when its amount does, so the supervisor kills at the same event it did when
        /// it compared floats — unless the cost is within float noise (10⁻¹⁵ of itself) of the
        /// budget, where the float's answer was the noise's.
        #[test]
        fn rounding_up_keeps_comparisons_with_a_budget(
            cost in 0.0f64..1e6,
            budget_micros in 0i64..1_000_000_000_000,
        ) {
            let budget = Usd::from_micros(budget_micros);
            // The budget as the float the old comparison used.
            let noise = (cost - budget.dollars()).abs() <= cost.abs() * 1e-15;
            if !noise {
                prop_assert_eq!(Usd::from_dollars_up(cost) > budget, cost > budget.dollars());
            }
        }

        /// The same, for budgets next to the cost: a tenth of a micro-dollar over is over.
        #[test]
        fn a_cost_just_over_a_budget_is_over_it(
            budget_micros in 0i64..1_000_000_000_000,
            tenths in 1i64..10,
        ) {
            let budget = Usd::from_micros(budget_micros);
            let cost = (budget_micros as f64 + tenths as f64 / 10.0) / 1e6;
            prop_assert!(Usd::from_dollars_up(cost) > budget, "{cost:e}");
            prop_assert!(Usd::from_dollars_up(budget.dollars()) <= budget);
        }

        /// (Below $100 million, where 15 digits still hold a tenth of a micro-dollar.)
        #[test]
        fn rounding_up_is_never_below_the_cost(cost in -1e8f64..1e8) {
            // At or one micro-dollar above the nearest.
            let above = Usd::from_dollars_up(cost).micros() - Usd::from_dollars(cost).micros();
            prop_assert!(above == 0 || above == 1, "{cost:e}: {above}");
        }
    }
}
