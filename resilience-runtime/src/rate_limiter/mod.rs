//! The rate limiter: how many calls of a dependency may *start* per second,
//! where the bulkhead caps how many run at once.
//!
//! GCRA (the generic cell rate algorithm): the whole state is one number,
//! the theoretical arrival time (TAT) of the next call on tokio's clock. A
//! call at `now` conforms when `TAT - tolerance <= now`, and moves the TAT
//! to `max(TAT, now) + interval`. `interval` is one second over the rate,
//! `tolerance` is `(burst - 1) × interval`: `burst` calls pass at once, then
//! one per interval. The TAT lives in one `AtomicU64`, updated by a CAS
//! loop: no lock, no allocation.

#[cfg(feature = "cluster")]
mod cluster;

use crate::clock::Clock;
use crate::sync::atomic::{AtomicU64, Ordering};
use crate::sync::Arc;
use std::time::Duration;

/// A resolved rate limit.
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub struct RateLimitConfig {
    /// Sustained calls per second (fractions allowed).
    pub rate_per_second: f64,
    /// Calls allowed at once above the sustained rate.
    pub burst: u32,
    /// How long a call may wait for its turn; zero refuses at once.
    pub max_wait: Duration,
    /// This process alone, or every instance through Redis.
    pub scope: RateLimitScope,
    /// For the cluster scope's fallback: each instance takes the rate over
    /// this many instances while Redis is unreachable.
    pub cluster_instances: u32,
}

/// Where a rate limit holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RateLimitScope {
    /// This process.
    Local,
    /// Every instance sharing the cluster backend.
    Cluster,
}

impl RateLimitConfig {
    /// Nanoseconds between two calls at the sustained rate, rounded up, so
    /// that the rate is never exceeded: over any interval of length L at
    /// most `rate × L + burst` calls pass. A caller whose calls are never
    /// closer than one over the rate (on a nanosecond clock, rounded up) is
    /// never refused. At the largest rates the rounding costs a little: at
    /// 10⁶ per second, one nanosecond is a tenth of a percent.
    pub(crate) fn interval_nanos(&self) -> u64 {
        ((1e9 / self.rate_per_second).ceil() as u64).max(1)
    }
}

/// The backend that cluster-scope limits share.
#[derive(Clone, PartialEq)]
pub(crate) struct ClusterConfig {
    /// May hold a password: never shown (see `Debug`).
    pub redis_url: String,
    pub key_prefix: String,
    /// The bound on one Redis round trip.
    pub timeout: Duration,
}

impl std::fmt::Debug for ClusterConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterConfig")
            .field("redis_url", &"<not shown>")
            .field("key_prefix", &self.key_prefix)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// What a runtime's limiters share: the connection to the cluster backend,
/// made when some dependency has the cluster scope.
#[derive(Default)]
pub(crate) struct Shared {
    #[cfg(feature = "cluster")]
    backend: Option<std::sync::Arc<cluster::Backend>>,
}

impl Shared {
    pub(crate) fn new(cluster: Option<ClusterConfig>, needed: bool) -> Shared {
        #[cfg(feature = "cluster")]
        {
            Shared {
                backend: cluster
                    .filter(|_| needed)
                    .map(|c| std::sync::Arc::new(cluster::Backend::new(c))),
            }
        }
        #[cfg(not(feature = "cluster"))]
        {
            let _ = (cluster, needed);
            Shared {}
        }
    }
}

/// A dependency's limiter as the call path uses it.
pub(crate) struct RateLimiter {
    pub(crate) config: RateLimitConfig,
    /// The local limiter; for the cluster scope, the fallback at the rate
    /// over `cluster_instances`.
    local: Gcra,
    /// `config.max_wait` in nanoseconds, computed once.
    max_wait: u64,
    #[cfg(feature = "cluster")]
    cluster: Option<cluster::ClusterLimiter>,
}

impl RateLimiter {
    pub(crate) fn new(config: RateLimitConfig, dependency: &str, shared: &Shared) -> Self {
        Self::with_local(config, dependency, shared, None)
    }

    /// The limiter a reload puts in this one's place: the new settings, the
    /// same turns already taken (see [`Gcra::retuned`]).
    pub(crate) fn retuned(
        &self,
        config: RateLimitConfig,
        dependency: &str,
        shared: &Shared,
    ) -> Self {
        Self::with_local(config, dependency, shared, Some(&self.local))
    }

    fn with_local(
        config: RateLimitConfig,
        dependency: &str,
        shared: &Shared,
        before: Option<&Gcra>,
    ) -> Self {
        let local_rate = match config.scope {
            RateLimitScope::Local => config.rate_per_second,
            RateLimitScope::Cluster => config.rate_per_second / f64::from(config.cluster_instances),
        };
        let interval = RateLimitConfig {
            rate_per_second: local_rate,
            ..config
        }
        .interval_nanos();
        #[cfg(not(feature = "cluster"))]
        let _ = (dependency, shared);
        RateLimiter {
            config,
            local: match before {
                Some(gcra) => gcra.retuned(interval, config.burst),
                None => Gcra::new(interval, config.burst),
            },
            max_wait: config.max_wait.as_nanos().min(u128::from(u64::MAX)) as u64,
            #[cfg(feature = "cluster")]
            cluster: match (config.scope, &shared.backend) {
                (RateLimitScope::Cluster, Some(backend)) => Some(cluster::ClusterLimiter::new(
                    backend.clone(),
                    dependency,
                    config.interval_nanos(),
                    config.burst,
                    config.max_wait,
                )),
                _ => None,
            },
        }
    }

    /// Takes a local turn if one is due now: the admitting path, which
    /// builds no [`Reservation`]. `Err` when the call must wait for its
    /// turn, be refused, or ask Redis (the cluster scope), with the reading
    /// of the policy clock this decided on, for [`RateLimiter::local_turn`]
    /// to decide the rest without a second reading. `now` as for
    /// `local_turn`.
    #[inline(always)]
    pub(crate) fn take_due(&self, now: u64) -> Result<(), u64> {
        let now = if now == crate::stats::UNTIMED {
            crate::clock::fast_now()
        } else {
            now
        };
        #[cfg(feature = "cluster")]
        if self.cluster.is_some() {
            return Err(now);
        }
        if self.local.take_due(now) {
            Ok(())
        } else {
            Err(now)
        }
    }

    /// The local decision, or `None` when Redis decides (the cluster scope).
    /// `now` is a reading of the policy clock (`clock::fast_now`) the call
    /// already took, or `UNTIMED` for the limiter to read its own.
    #[inline]
    pub(crate) fn local_turn(&self, now: u64) -> Option<Result<Reservation, NotYet>> {
        #[cfg(feature = "cluster")]
        if self.cluster.is_some() {
            return None;
        }
        Some(self.local.reserve_at(now, self.max_wait))
    }

    /// Takes a turn from Redis, or from the local limiter when Redis cannot
    /// answer. Only for the cluster scope (see [`RateLimiter::local_turn`]).
    #[cfg(feature = "cluster")]
    pub(crate) async fn cluster_turn(&self) -> Result<Reservation, NotYet> {
        if let Some(cluster) = &self.cluster {
            match cluster.decide().await {
                cluster::Decision::Turn(wait) => return Ok(Reservation { wait, taken: None }),
                cluster::Decision::Refused(not_yet) => return Err(not_yet),
                cluster::Decision::Unavailable => {}
            }
        }
        self.local.reserve(self.max_wait)
    }

    /// Gives back a turn its caller stopped waiting for.
    pub(crate) fn give_back(&self, turn: &Reservation) {
        self.local.cancel(turn)
    }

    /// Calls that could start now without waiting, as the local limiter
    /// sees it (for the cluster scope: its fallback's share).
    pub(crate) fn available(&self) -> u32 {
        self.local.available()
    }

    /// Whether decisions are made by Redis now.
    pub(crate) fn on_redis(&self) -> bool {
        #[cfg(feature = "cluster")]
        if let Some(cluster) = &self.cluster {
            return cluster.healthy();
        }
        false
    }

    /// False while a cluster limiter cannot reach its backend.
    pub(crate) fn backend_healthy(&self) -> bool {
        #[cfg(feature = "cluster")]
        if let Some(cluster) = &self.cluster {
            return cluster.healthy();
        }
        true
    }
}

/// A refusal: the call may start after this long.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct NotYet(pub Duration);

/// The local limiter.
pub(crate) struct Gcra {
    /// Theoretical arrival time, nanoseconds on `clock`; shared with the
    /// limiter a reload puts in this one's place, so a reload never hands
    /// out a fresh burst.
    tat: Arc<AtomicU64>,
    interval: u64,
    tolerance: u64,
    clock: Clock,
}

impl Gcra {
    pub(crate) fn new(interval: u64, burst: u32) -> Self {
        Gcra {
            tat: Arc::new(AtomicU64::new(0)),
            interval,
            tolerance: interval.saturating_mul(u64::from(burst.max(1)) - 1),
            clock: Clock::new(),
        }
    }

    /// A limiter at a new rate and burst that goes on from this one's
    /// state: calls already admitted still count against the next ones.
    pub(crate) fn retuned(&self, interval: u64, burst: u32) -> Self {
        Gcra {
            tat: Arc::clone(&self.tat),
            clock: self.clock,
            ..Gcra::new(interval, burst)
        }
    }

    /// Takes a turn now, or says how long until one comes.
    #[cfg(test)]
    pub(crate) fn try_acquire(&self) -> Result<(), NotYet> {
        self.reserve(0).map(|_| ())
    }

    /// Takes the next turn if it comes within `max_wait` nanoseconds: `Ok(wait)` is how
    /// long the caller must wait for it (zero: go now). The turn is taken at
    /// once, so waiting callers queue in arrival order and hold no slot.
    #[cfg(any(test, feature = "cluster"))]
    #[inline]
    pub(crate) fn reserve(&self, max_wait: u64) -> Result<Reservation, NotYet> {
        self.reserve_at(crate::stats::UNTIMED, max_wait)
    }

    /// Takes the next turn if it is due at `now`, a reading of the policy
    /// clock (`clock::fast_now`); false, taking nothing, if it is not. The same
    /// decision as `reserve_at(now, 0)`, without the reservation: the
    /// ready path of a rate-limited site (callgrind counted 73
    /// instructions a call for the limiter's step before, most of them
    /// building a `Duration` nobody waited for).
    #[inline(always)]
    pub(crate) fn take_due(&self, now: u64) -> bool {
        self.take_within(self.clock.nanos_from(now), 0).is_ok()
    }

    /// The algorithm itself, as of `now` on this limiter's clock: takes the
    /// next turn if it comes within `max_wait`, with `Ok((wait, new TAT))`,
    /// or `Err(wait)`. Always inlined, so a caller that ignores the wait
    /// computes none.
    #[inline(always)]
    fn take_within(&self, now: u64, max_wait: u64) -> Result<(u64, u64), u64> {
        let mut tat = self.tat.load(Ordering::Relaxed);
        loop {
            let wait = tat.saturating_sub(self.tolerance).saturating_sub(now);
            if wait > max_wait {
                return Err(wait);
            }
            let next = tat.max(now).saturating_add(self.interval);
            match self
                .tat
                .compare_exchange_weak(tat, next, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => return Ok((wait, next)),
                Err(actual) => tat = actual,
            }
        }
    }

    /// [`Gcra::reserve`] as of `now` on the policy clock, taken by the
    /// caller a moment before, or `UNTIMED` to read the clock here. A
    /// reading a little old decides as if the call came that much earlier:
    /// never more turns than the rate allows.
    #[inline]
    pub(crate) fn reserve_at(&self, now: u64, max_wait: u64) -> Result<Reservation, NotYet> {
        let now = if now == crate::stats::UNTIMED {
            self.clock.nanos()
        } else {
            self.clock.nanos_from(now)
        };
        match self.take_within(now, max_wait) {
            Ok((wait, next)) => Ok(Reservation {
                wait: Duration::from_nanos(wait),
                taken: Some(next),
            }),
            Err(wait) => Err(NotYet(Duration::from_nanos(wait))),
        }
    }

    /// Gives back a turn that was never used (its caller stopped waiting),
    /// when no later caller has taken a turn after it; otherwise the turn
    /// stays spent, which only ever admits fewer calls. (A turn Redis gave
    /// is not given back.)
    pub(crate) fn cancel(&self, reservation: &Reservation) {
        if let Some(taken) = reservation.taken {
            let _ = self.tat.compare_exchange(
                taken,
                taken - self.interval,
                Ordering::AcqRel,
                Ordering::Relaxed,
            );
        }
    }

    /// Calls that could start now without waiting, at most `burst`.
    pub(crate) fn available(&self) -> u32 {
        let now = self.clock.nanos();
        let tat = self.tat.load(Ordering::Relaxed).max(now);
        let limit = now.saturating_add(self.tolerance);
        if tat > limit {
            return 0;
        }
        // At most `burst`: `tat` is at least `now`, so `limit - tat` is at
        // most the tolerance.
        ((limit - tat) / self.interval + 1) as u32
    }
}

/// A turn taken by [`Gcra::reserve`].
#[derive(Debug)]
pub(crate) struct Reservation {
    /// How long until the turn comes.
    pub wait: Duration,
    /// The local TAT this turn set, to give it back.
    taken: Option<u64>,
}

#[cfg(all(test, not(loom)))]
mod tests;
