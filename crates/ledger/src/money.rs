//! US dollars as integer micro-dollars, so sums over a day never drift the way floats do.

use std::fmt;
use std::iter::Sum;

use serde::{Deserialize, Serialize};

/// An amount of US dollars, stored as micro-dollars (1 USD = 1 000 000).
///
/// Configuration and harness output carry `f64` dollars; they are converted once, at the edge,
/// with [`Usd::from_dollars`]. Sums, comparisons against the cap and the stored ledger all use
/// the integer, so `$0.10 × 100` is exactly `$10.00`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Usd(i64);

impl Usd {
    pub const ZERO: Usd = Usd(0);
    const MICROS_PER_DOLLAR: f64 = 1_000_000.0;

    pub const fn from_micros(micros: i64) -> Usd {
        Usd(micros)
    }

    /// Dollars rounded to the nearest micro-dollar. A non-finite input is zero; amounts beyond
    /// ±9.2 trillion dollars saturate (neither can come from a validated configuration).
    pub fn from_dollars(dollars: f64) -> Usd {
        if !dollars.is_finite() {
            return Usd::ZERO;
        }
        // `as` saturates on overflow, which is the behaviour we want at this edge.
        Usd((dollars * Self::MICROS_PER_DOLLAR).round() as i64)
    }

    pub const fn micros(self) -> i64 {
        self.0
    }

    /// The amount as `f64` dollars, for JSON and for APIs that take floats.
    pub fn dollars(self) -> f64 {
        self.0 as f64 / Self::MICROS_PER_DOLLAR
    }

    pub const fn saturating_add(self, other: Usd) -> Usd {
        Usd(self.0.saturating_add(other.0))
    }

    pub const fn saturating_sub(self, other: Usd) -> Usd {
        Usd(self.0.saturating_sub(other.0))
    }

    /// `self - other`, but never below zero.
    pub fn left_after(self, other: Usd) -> Usd {
        self.saturating_sub(other).max(Usd::ZERO)
    }

    pub const fn is_positive(self) -> bool {
        self.0 > 0
    }
}

/// `$4.20`: dollars rounded to cents, the way people read money (`$0.004` shows as `$0.00`).
impl fmt::Display for Usd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cents = (self.0 as i128 + if self.0 < 0 { -5_000 } else { 5_000 }) / 10_000;
        let sign = if cents < 0 { "-" } else { "" };
        let cents = cents.abs();
        write!(f, "{sign}${}.{:02}", cents / 100, cents % 100)
    }
}

impl Sum for Usd {
    fn sum<I: Iterator<Item = Usd>>(iter: I) -> Usd {
        iter.fold(Usd::ZERO, Usd::saturating_add)
    }
}

/// Serialized as dollars (`4.2`), the unit every consumer of the JSON expects.
impl Serialize for Usd {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(self.dollars())
    }
}

impl<'de> Deserialize<'de> for Usd {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Usd, D::Error> {
        f64::deserialize(d).map(Usd::from_dollars)
    }
}

#[cfg(test)]
mod tests {
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
}
