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

/// The largest count the config accepts (thresholds, probes, slots, queues).
pub(crate) const MAX_COUNT: u32 = 1_000_000;
/// The most worker threads one thread-pool dependency may have.
pub(crate) const MAX_WORKERS: u32 = 1024;
/// The largest failure-rate window, in calls (one byte each, per dependency).
pub(crate) const MAX_WINDOW: u32 = 10_000;
/// The shortest duration the config accepts: a finer one would round to 0.
const MIN_SECONDS: f64 = 0.001;
/// The longest duration the config accepts: a day.
const MAX_SECONDS: f64 = 86_400.0;

fn whole(v: f64, min: u32, max: u32) -> Option<u32> {
    (v.fract() == 0.0 && v >= f64::from(min) && v <= f64::from(max)).then_some(v as u32)
}

/// Seconds from 1 ms to a day (or exactly 0, when `allow_zero`).
fn seconds(v: f64, allow_zero: bool) -> Option<Duration> {
    bounded_seconds(v, allow_zero, MAX_SECONDS)
}

/// Seconds from 1 ms to `max` (or exactly 0, when `allow_zero`).
fn bounded_seconds(v: f64, allow_zero: bool, max: f64) -> Option<Duration> {
    let ok = v.is_finite() && ((MIN_SECONDS..=max).contains(&v) || (allow_zero && v == 0.0));
    ok.then(|| Duration::try_from_secs_f64(v).ok()).flatten()
}

checked!(
    /// A whole number from 1 to 1,000,000 (slots, thresholds, probes).
    Count(u32),
    "a whole number from 1 to 1000000",
    |v| whole(v, 1, MAX_COUNT)
);
checked!(
    /// A whole number from 0 to 1,000,000 (queue capacity).
    Size(u32),
    "a whole number from 0 to 1000000",
    |v| whole(v, 0, MAX_COUNT)
);
checked!(
    /// Worker threads: 1 to 1024.
    Workers(u32),
    "a whole number of threads from 1 to 1024",
    |v| whole(v, 1, MAX_WORKERS)
);
checked!(
    /// A failure-rate window: 1 to 10,000 calls.
    Window(u32),
    "a whole number of calls from 1 to 10000",
    |v| whole(v, 1, MAX_WINDOW)
);
checked!(
    /// Seconds: 0, or 0.001 to 86400 (waits).
    Seconds(Duration),
    "0, or a number of seconds from 0.001 to 86400",
    |v| seconds(v, true)
);
checked!(
    /// Seconds: 0.001 to 86400 (timeouts).
    PositiveSeconds(Duration),
    "a number of seconds from 0.001 to 86400",
    |v| seconds(v, false)
);
checked!(
    /// A failure rate in (0, 1].
    Rate(f64),
    "a failure rate above 0 and at most 1, such as 0.5",
    |v| (v > 0.0 && v <= 1.0).then_some(v)
);

checked!(
    /// Retries after the first attempt: 0 to 100.
    Attempts(u32),
    "a whole number from 0 to 100",
    |v| whole(v, 0, 100)
);
checked!(
    /// A retry wait: 0 to 3600 seconds.
    DelaySeconds(Duration),
    "0, or a number of seconds from 0.001 to 3600",
    |v| bounded_seconds(v, true, 3600.0)
);
checked!(
    /// The longest retry wait: above 0, at most 3600 seconds.
    MaxDelaySeconds(Duration),
    "a number of seconds from 0.001 to 3600",
    |v| bounded_seconds(v, false, 3600.0)
);
checked!(
    /// A whole call's deadline: above 0, at most 86400 seconds (a day).
    ElapsedSeconds(Duration),
    "a number of seconds from 0.001 to 86400",
    |v| bounded_seconds(v, false, 86_400.0)
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
    |v| whole(v, 0, MAX_COUNT)
);
checked!(
    /// Calls per second: above 0, at most 1,000,000 (fractions allowed).
    CallRate(f64),
    "a number of calls per second above 0 and at most 1000000, such as 50 or 0.5",
    |v| (v.is_finite() && v > 0.0 && v <= 1_000_000.0).then_some(v)
);
checked!(
    /// A time window: 1 to 3600 whole seconds.
    WindowSeconds(u32),
    "a whole number of seconds from 1 to 3600",
    |v| whole(v, 1, 3600)
);
checked!(
    /// A share of calls: 0 to 1.
    Share(f64),
    "a share of calls from 0 to 1, such as 0.1",
    |v| (v.is_finite() && (0.0..=1.0).contains(&v)).then_some(v)
);
checked!(
    /// A seed: a whole number from 0 to 2^53 (exact in YAML's numbers).
    Seed(u64),
    "a whole number from 0 to 9007199254740992",
    |v| (v.fract() == 0.0 && (0.0..=9_007_199_254_740_992.0).contains(&v)).then_some(v as u64)
);
checked!(
    /// Instances sharing a cluster limit: 1 to 10,000.
    Instances(u32),
    "a whole number of instances from 1 to 10000",
    |v| whole(v, 1, 10_000)
);
checked!(
    /// A round trip's bound: 0.001 to 60 seconds.
    RoundTripSeconds(Duration),
    "a number of seconds from 0.001 to 60",
    |v| bounded_seconds(v, false, 60.0)
);

/// A string value that may read the environment: `${NAME}` is the variable,
/// `${NAME:-default}` falls back to `default` when it is unset. An unset
/// variable without a default is an error at the key, naming the variable
/// but never a value (the value may be a secret).
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Interpolated(pub String);

/// The most characters a string value may have, before or after reading
/// the environment.
const MAX_STRING: usize = 4096;

impl fmt::Debug for Interpolated {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Interpolated(<not shown>)")
    }
}

impl<'de> Deserialize<'de> for Interpolated {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        interpolate(&raw, |name| std::env::var(name).ok())
            .map(Interpolated)
            .map_err(D::Error::custom)
    }
}

/// Replaces every `${NAME}` and `${NAME:-default}` in `raw`.
pub(crate) fn interpolate(
    raw: &str,
    env: impl Fn(&str) -> Option<String>,
) -> Result<String, String> {
    if raw.chars().count() > MAX_STRING {
        return Err(format!("a value of at most {MAX_STRING} characters"));
    }
    let mut out = String::new();
    let mut rest = raw;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find('}').ok_or_else(|| {
            "`${` without its closing `}`; write ${NAME} or ${NAME:-default}".to_owned()
        })?;
        let (name, default) = match after[..end].split_once(":-") {
            Some((name, default)) => (name, Some(default)),
            None => (&after[..end], None),
        };
        let valid = !name.is_empty()
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !name.starts_with(|c: char| c.is_ascii_digit());
        if !valid {
            return Err(format!(
                "`${{{}}}` does not name an environment variable: use letters, digits and `_`",
                super::shape::cut(name, 40)
            ));
        }
        match (env(name), default) {
            (Some(value), _) => out.push_str(&value),
            (None, Some(default)) => out.push_str(default),
            (None, None) => {
                return Err(format!(
                    "the environment variable {name} is not set; set it, or give a default: \
                     ${{{name}:-value}}"
                ))
            }
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    if out.chars().count() > MAX_STRING {
        return Err(format!(
            "a value of at most {MAX_STRING} characters, once read from the environment"
        ));
    }
    Ok(out)
}
