//! Checked scalar values. Each check runs inside the YAML deserializer's
//! visitor, so a bad value is reported with its full key path, line and column.

use serde::de::{Deserialize, Deserializer, Error, Unexpected, Visitor};
use std::fmt;
use std::marker::PhantomData;
use std::time::Duration;

/// Reads any YAML number as `f64` and lets `T::check` accept or refuse it.
struct Checked<T>(PhantomData<T>);

trait Check: Sized {
    const EXPECTING: &'static str;
    fn check(v: f64) -> Option<Self>;
}

impl<'de, T: Check> Visitor<'de> for Checked<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(T::EXPECTING)
    }

    fn visit_f64<E: Error>(self, v: f64) -> Result<T, E> {
        T::check(v).ok_or_else(|| E::invalid_value(Unexpected::Float(v), &self))
    }

    fn visit_u64<E: Error>(self, v: u64) -> Result<T, E> {
        T::check(v as f64).ok_or_else(|| E::invalid_value(Unexpected::Unsigned(v), &self))
    }

    fn visit_i64<E: Error>(self, v: i64) -> Result<T, E> {
        T::check(v as f64).ok_or_else(|| E::invalid_value(Unexpected::Signed(v), &self))
    }
}

macro_rules! checked {
    ($(#[$doc:meta])* $name:ident($inner:ty), $expecting:literal, |$v:ident| $body:expr) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq)]
        pub(crate) struct $name(pub $inner);

        impl Check for $name {
            const EXPECTING: &'static str = $expecting;
            fn check($v: f64) -> Option<Self> {
                $body.map($name)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                d.deserialize_any(Checked::<$name>(PhantomData))
            }
        }
    };
}

fn whole(v: f64, min: f64) -> Option<u32> {
    (v.fract() == 0.0 && v >= min && v <= u32::MAX as f64).then_some(v as u32)
}

fn seconds(v: f64, allow_zero: bool) -> Option<Duration> {
    let ok = v.is_finite() && (v > 0.0 || (allow_zero && v == 0.0));
    ok.then(|| Duration::try_from_secs_f64(v).ok()).flatten()
}

checked!(
    /// A whole number of at least 1 (capacities, thresholds, window sizes).
    Count(u32),
    "a whole number of at least 1",
    |v| whole(v, 1.0)
);
checked!(
    /// A whole number of at least 0 (queue capacity).
    Size(u32),
    "a whole number of at least 0",
    |v| whole(v, 0.0)
);
checked!(
    /// Seconds, finite and at least 0 (waits).
    Seconds(Duration),
    "a finite number of seconds, at least 0",
    |v| seconds(v, true)
);
checked!(
    /// Seconds, finite and above 0 (timeouts).
    PositiveSeconds(Duration),
    "a finite number of seconds above 0",
    |v| seconds(v, false)
);
checked!(
    /// A failure rate in (0, 1].
    Rate(f64),
    "a failure rate above 0 and at most 1, such as 0.5",
    |v| (v > 0.0 && v <= 1.0).then_some(v)
);

fn bounded_seconds(v: f64, min_exclusive: bool, max: f64) -> Option<Duration> {
    (v <= max).then(|| seconds(v, !min_exclusive)).flatten()
}

checked!(
    /// Retries after the first attempt: 0 to 100.
    Attempts(u32),
    "a whole number from 0 to 100",
    |v| whole(v, 0.0).filter(|&n| n <= 100)
);
checked!(
    /// A retry wait: 0 to 3600 seconds.
    DelaySeconds(Duration),
    "a finite number of seconds from 0 to 3600",
    |v| bounded_seconds(v, false, 3600.0)
);
checked!(
    /// The longest retry wait: above 0, at most 3600 seconds.
    MaxDelaySeconds(Duration),
    "a finite number of seconds above 0, at most 3600",
    |v| bounded_seconds(v, true, 3600.0)
);
checked!(
    /// A whole call's deadline: above 0, at most 86400 seconds (a day).
    ElapsedSeconds(Duration),
    "a finite number of seconds above 0, at most 86400",
    |v| bounded_seconds(v, true, 86_400.0)
);
checked!(
    /// Backoff growth: 1 to 100.
    Multiplier(f64),
    "a number from 1 to 100, such as 2.0",
    |v| (v.is_finite() && (1.0..=100.0).contains(&v)).then_some(v)
);
checked!(
    /// A retry budget's share of first attempts: 0 to 1000.
    BudgetRatio(f64),
    "a number from 0 to 1000, such as 0.2",
    |v| (v.is_finite() && (0.0..=1000.0).contains(&v)).then_some(v)
);
checked!(
    /// Retries per second: 0 to 1,000,000.
    PerSecond(u32),
    "a whole number from 0 to 1000000",
    |v| whole(v, 0.0).filter(|&n| n <= 1_000_000)
);
