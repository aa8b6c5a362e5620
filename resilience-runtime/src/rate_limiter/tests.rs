//! The local limiter on tokio's paused clock: bursts, pacing, fractional
//! rates, waiting and giving a turn back, and a property test of its
//! exactness over every interval.

use super::*;
use proptest::prelude::*;

fn paused() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap()
}

fn gcra(rate: f64, burst: u32) -> Gcra {
    let config = RateLimitConfig {
        rate_per_second: rate,
        burst,
        max_wait: Duration::ZERO,
        scope: RateLimitScope::Local,
        cluster_instances: 1,
    };
    Gcra::new(config.interval_nanos(), burst)
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[test]
fn a_burst_passes_at_once_then_one_call_per_interval() {
    paused().block_on(async {
        let limiter = gcra(10.0, 3);
        for left in [3, 2, 1] {
            assert_eq!(limiter.available(), left);
            assert_eq!(limiter.try_acquire(), Ok(()));
        }
        assert_eq!(limiter.available(), 0);
        assert_eq!(
            limiter.try_acquire(),
            Err(NotYet(ms(100))),
            "the exact wait"
        );
        tokio::time::advance(ms(99)).await;
        assert_eq!(limiter.try_acquire(), Err(NotYet(ms(1))));
        tokio::time::advance(ms(1)).await;
        assert_eq!(limiter.available(), 1, "one turn has come back");
        assert_eq!(limiter.try_acquire(), Ok(()));
        assert_eq!(limiter.try_acquire(), Err(NotYet(ms(100))));
        tokio::time::advance(ms(150)).await;
        assert_eq!(
            limiter.available(),
            1,
            "half an interval more is not a second turn"
        );
        tokio::time::advance(ms(50)).await;
        assert_eq!(limiter.available(), 2);
        // Idle time refills up to the burst, never beyond.
        tokio::time::advance(Duration::from_secs(60)).await;
        assert_eq!(limiter.available(), 3);
    });
}

#[test]
fn a_fractional_rate_spaces_calls_by_more_than_a_second() {
    paused().block_on(async {
        let limiter = gcra(0.5, 1);
        assert_eq!(limiter.try_acquire(), Ok(()));
        assert_eq!(limiter.try_acquire(), Err(NotYet(Duration::from_secs(2))));
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(limiter.try_acquire(), Ok(()));
    });
}

#[test]
fn waiting_callers_take_turns_in_order_and_a_cancelled_turn_comes_back() {
    paused().block_on(async {
        let limiter = gcra(10.0, 1);
        let first = limiter.reserve(ms(250).as_nanos() as u64).unwrap();
        let second = limiter.reserve(ms(250).as_nanos() as u64).unwrap();
        let third = limiter.reserve(ms(250).as_nanos() as u64).unwrap();
        assert_eq!(
            (first.wait, second.wait, third.wait),
            (ms(0), ms(100), ms(200))
        );
        assert_eq!(
            limiter.reserve(ms(250).as_nanos() as u64).unwrap_err(),
            NotYet(ms(300)),
            "past the longest wait: refused, with the time it would take"
        );
        // The last waiter gives up: its turn is the next one again.
        limiter.cancel(&third);
        assert_eq!(
            limiter.reserve(ms(250).as_nanos() as u64).unwrap().wait,
            ms(200)
        );
        // A middle one cannot give its turn back without moving the later
        // ones; its turn stays spent, which only admits fewer calls.
        limiter.cancel(&second);
        assert_eq!(
            limiter.reserve(ms(1000).as_nanos() as u64).unwrap().wait,
            ms(300)
        );
    });
}

/// The rates the property tests draw from: whole, fractional, and ones that
/// do not divide a second evenly.
const RATES: [f64; 8] = [0.5, 1.0, 2.5, 3.0, 7.0, 20.0, 50.0, 1000.0];

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    /// Over any interval of length L, admitted calls ≤ rate × L + burst.
    #[test]
    fn admitted_calls_never_exceed_the_rate_over_any_interval(
        rate in proptest::sample::select(RATES.to_vec()),
        burst in 1u32..6,
        gaps in proptest::collection::vec(0u64..3_000_000_000, 1..200),
    ) {
        let admitted = paused().block_on(async {
            let limiter = gcra(rate, burst);
            let start = tokio::time::Instant::now();
            let mut admitted = Vec::new();
            for gap in gaps {
                tokio::time::advance(Duration::from_nanos(gap / rate.ceil() as u64)).await;
                if limiter.try_acquire().is_ok() {
                    admitted.push(start.elapsed().as_nanos() as f64 / 1e9);
                }
            }
            admitted
        });
        for i in 0..admitted.len() {
            for j in i..admitted.len() {
                let count = (j - i + 1) as f64;
                let bound = rate * (admitted[j] - admitted[i]) + f64::from(burst);
                prop_assert!(count <= bound + 1e-9, "{count} calls in {}s at {rate}/s burst {burst}", admitted[j] - admitted[i]);
            }
        }
    }

    /// The admitting path's `take_due` decides as `reserve_at(now, 0)`
    /// does, call for call, and leaves the same turns behind.
    #[test]
    fn taking_a_due_turn_decides_as_reserving_one_does(
        rate in proptest::sample::select(RATES.to_vec()),
        burst in 1u32..6,
        gaps in proptest::collection::vec(0u64..3_000_000_000, 1..200),
    ) {
        let decisions = paused().block_on(async {
            let (taking, reserving) = (gcra(rate, burst), gcra(rate, burst));
            let mut decisions = Vec::new();
            for gap in gaps {
                tokio::time::advance(Duration::from_nanos(gap / rate.ceil() as u64)).await;
                let now = crate::clock::fast_now();
                decisions.push((taking.take_due(now), reserving.reserve_at(now, 0).is_ok()));
            }
            decisions
        });
        for (i, (taken, reserved)) in decisions.into_iter().enumerate() {
            prop_assert_eq!(taken, reserved, "call {}", i);
        }
    }

    /// A greedy caller, retrying exactly when told, gets every turn there is
    /// and not one more: the bound above, met with equality at most.
    #[test]
    fn a_greedy_caller_gets_the_rate_and_no_more(
        rate in proptest::sample::select(RATES.to_vec()),
        burst in 1u32..6,
        calls in 1usize..300,
    ) {
        let admitted = paused().block_on(async {
            let limiter = gcra(rate, burst);
            let start = tokio::time::Instant::now();
            let mut admitted = Vec::new();
            while admitted.len() < calls {
                match limiter.try_acquire() {
                    Ok(()) => admitted.push(start.elapsed().as_nanos()),
                    Err(NotYet(wait)) => tokio::time::advance(wait).await,
                }
            }
            admitted
        });
        let first = admitted[0];
        for (k, at) in admitted.iter().enumerate() {
            // Call k (0-based) comes no earlier than the rate allows after
            // the burst: (k + 1 - burst) / rate seconds.
            let earliest = (k as f64 + 1.0 - f64::from(burst)).max(0.0) / rate;
            prop_assert!((at - first) as f64 / 1e9 >= earliest - 1e-12, "call {k} at {at} ns, {rate}/s burst {burst}");
        }
    }

    /// A caller whose calls are never closer than one over the rate (in
    /// whole nanoseconds, rounded up) is never refused.
    #[test]
    fn a_caller_that_paces_itself_at_the_rate_is_never_refused(
        rate in proptest::sample::select(RATES.to_vec()),
        burst in 1u32..6,
        slack in proptest::collection::vec(0u64..1_000_000, 1..100),
    ) {
        paused().block_on(async {
            let limiter = gcra(rate, burst);
            let period = Duration::from_nanos((1e9 / rate).ceil() as u64);
            for extra in slack {
                prop_assert_eq!(limiter.try_acquire(), Ok(()));
                tokio::time::advance(period + Duration::from_nanos(extra)).await;
            }
            Ok(())
        })?;
    }
}

#[test]
fn the_cluster_config_never_shows_its_url() {
    let config = ClusterConfig {
        redis_url: "redis://:s3cret@cache:6379".into(),
        key_prefix: "petstore".into(),
        timeout: ms(50),
    };
    let shown = format!("{config:?}");
    assert!(
        !shown.contains("s3cret") && shown.contains("<not shown>") && shown.contains("petstore"),
        "{shown}"
    );
}

/// A call decides with the policy-clock reading it took when it began; a
/// reading a little old counts as an earlier arrival, so it can only be
/// refused more, never admitted beyond the rate.
#[test]
fn a_decision_on_an_earlier_reading_never_admits_more() {
    paused().block_on(async {
        let limiter = gcra(1.0, 1);
        let earlier = crate::clock::fast_now();
        tokio::time::advance(ms(500)).await;
        let now = crate::clock::fast_now();
        assert!(limiter.reserve_at(now, 0).is_ok(), "the one turn");
        // The turn after it comes a second after `now`.
        let refused = limiter.reserve_at(earlier, 0).unwrap_err();
        assert_eq!(refused, NotYet(ms(1500)), "as of the earlier reading");
        assert_eq!(limiter.reserve_at(now, 0).unwrap_err(), NotYet(ms(1000)));
        tokio::time::advance(ms(1000)).await;
        assert!(limiter.reserve_at(crate::clock::fast_now(), 0).is_ok());
        assert_eq!(
            limiter.reserve_at(crate::stats::UNTIMED, 0).unwrap_err(),
            NotYet(ms(1000))
        );
    });
}
