//! An account's health: healthy, cooling down (rate limited, until a time), open (breaker, until
//! a time), half-open (one probe request in flight) or broken key. A pure state machine over an
//! injected clock; every change it makes is returned as a [`Transition`] for the caller to log.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The longest a stated usage-limit reset keeps an account out (a weekly limit's reset).
pub const USAGE_LIMIT_MAX: Duration = Duration::from_secs(8 * 24 * 3600);
/// Breaker settings of the account's pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerConf {
    /// Consecutive failures that open the breaker.
    pub failures: u32,
    /// How long the breaker stays open the first time (`breaker.cooldown`); each failed probe
    /// doubles it.
    pub cooldown: Duration,
    /// The longest an open breaker or a rate-limit cooldown lasts (`breaker.max_cooldown`).
    pub max_cooldown: Duration,
}

/// Where an account stands; time-driven changes (a cooldown ending, an open breaker going
/// half-open) happen when the state is next read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Takes requests.
    Healthy,
    /// Rate limited (429, 529, overloaded): no requests until the upstream's reset time.
    CoolingDown {
        /// When requests may go to the account again.
        until: Instant,
    },
    /// The breaker is open after consecutive failures: no requests until the cooldown ends.
    Open {
        /// When the breaker goes half-open.
        until: Instant,
    },
    /// The cooldown ended: one request may probe the account; success closes the breaker, failure
    /// reopens it with twice the cooldown.
    HalfOpen {
        /// A request has claimed the probe and its outcome is not known yet.
        probing: bool,
    },
    /// The upstream answered 401 or 403: out of rotation until a reload, an admin reset or a
    /// passing health check.
    BrokenKey,
}

impl State {
    /// The state's name in `/admin/pools` and the `account_state` metric label.
    pub fn name(&self) -> &'static str {
        match self {
            State::Healthy => "healthy",
            State::CoolingDown { .. } => "cooling_down",
            State::Open { .. } => "open",
            State::HalfOpen { .. } => "half_open",
            State::BrokenKey => "broken_key",
        }
    }
}

/// What a check of availability says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Availability {
    /// Takes requests now.
    Available,
    /// Available as the breaker's single probe: report its outcome (or [`Health::release_probe`]).
    Probe,
    /// Not available; `until` is when it may be again (`None`: not by itself).
    Unavailable {
        /// When it may be available again (`None`: not by itself, e.g. a broken key or a probe in
        /// flight).
        until: Option<Instant>,
        /// It is cooling down for a rate limit (answered 429 `rate_limited` when no account can
        /// serve).
        rate_limited: bool,
    },
}

/// A change worth a log line (and a notification).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// Consecutive failures opened the breaker.
    BreakerOpened {
        /// How long it stays open.
        cooldown: Duration,
    },
    /// A failed probe opened the breaker again.
    BreakerReopened {
        /// How long it stays open this time (doubled, capped at `max_cooldown`).
        cooldown: Duration,
    },
    /// A successful probe closed the breaker.
    BreakerClosed,
    /// A rate limit cooled the account down.
    CooledDown {
        /// How long the account takes no requests (capped at `max_cooldown`).
        for_: Duration,
    },
    /// The upstream refused the key (401/403).
    KeyBroken,
    /// An admin reset, a reload or a passing health check brought the account back.
    Recovered,
}

#[derive(Debug)]
struct Inner {
    state: State,
    consecutive_failures: u32,
    /// The cooldown the breaker last opened with (doubles on a failed probe).
    last_cooldown: Duration,
}

/// An account's health state, shared by every request and snapshot that uses the account.
#[derive(Debug)]
pub struct Health {
    inner: Mutex<Inner>,
    /// Fast path: true while the state is `Healthy`.
    healthy: AtomicBool,
}

impl Default for Health {
    fn default() -> Self {
        Health {
            inner: Mutex::new(Inner {
                state: State::Healthy,
                consecutive_failures: 0,
                last_cooldown: Duration::ZERO,
            }),
            healthy: AtomicBool::new(true),
        }
    }
}

impl Health {
    fn with<T>(&self, f: impl FnOnce(&mut Inner) -> T) -> T {
        let mut guard = match self.inner.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        let out = f(&mut guard);
        self.healthy.store(guard.state == State::Healthy, Ordering::Release);
        out
    }

    /// The state now, after time-driven changes.
    pub fn state(&self, now: Instant) -> State {
        self.with(|i| {
            expire(i, now);
            i.state
        })
    }

    /// Can this account take a request now? Claims the probe when half-open.
    pub fn check(&self, now: Instant) -> Availability {
        if self.healthy.load(Ordering::Acquire) {
            return Availability::Available;
        }
        self.with(|i| {
            expire(i, now);
            match i.state {
                State::Healthy => Availability::Available,
                State::HalfOpen { probing: false } => {
                    i.state = State::HalfOpen { probing: true };
                    Availability::Probe
                }
                State::HalfOpen { probing: true } => Availability::Unavailable {
                    until: None,
                    rate_limited: false,
                },
                State::CoolingDown { until } => Availability::Unavailable {
                    until: Some(until),
                    rate_limited: true,
                },
                State::Open { until } => Availability::Unavailable {
                    until: Some(until),
                    rate_limited: false,
                },
                State::BrokenKey => Availability::Unavailable {
                    until: None,
                    rate_limited: false,
                },
            }
        })
    }

    /// Like [`Health::check`] but claims nothing (for ranking candidates).
    pub fn peek(&self, now: Instant) -> Availability {
        if self.healthy.load(Ordering::Acquire) {
            return Availability::Available;
        }
        self.with(|i| {
            expire(i, now);
            match i.state {
                State::Healthy => Availability::Available,
                State::HalfOpen { probing: false } => Availability::Probe,
                State::HalfOpen { probing: true } => Availability::Unavailable {
                    until: None,
                    rate_limited: false,
                },
                State::CoolingDown { until } => Availability::Unavailable {
                    until: Some(until),
                    rate_limited: true,
                },
                State::Open { until } => Availability::Unavailable {
                    until: Some(until),
                    rate_limited: false,
                },
                State::BrokenKey => Availability::Unavailable {
                    until: None,
                    rate_limited: false,
                },
            }
        })
    }

    /// Whether it could take a request now, without claiming anything.
    pub fn could_serve(&self, now: Instant) -> bool {
        self.healthy.load(Ordering::Acquire)
            || self.with(|i| {
                expire(i, now);
                matches!(i.state, State::Healthy | State::HalfOpen { probing: false })
            })
    }

    /// A response the account answered properly (2xx, or a 4xx that is the request's fault).
    pub fn success(&self) -> Option<Transition> {
        if self.healthy.load(Ordering::Acquire) {
            self.with(|i| i.consecutive_failures = 0);
            return None;
        }
        self.with(|i| {
            i.consecutive_failures = 0;
            match i.state {
                State::HalfOpen { .. } => {
                    i.state = State::Healthy;
                    i.last_cooldown = Duration::ZERO;
                    Some(Transition::BreakerClosed)
                }
                _ => None,
            }
        })
    }

    /// A failure: connect error, 5xx, first-byte timeout, a stream cut.
    pub fn failure(&self, conf: &BreakerConf, now: Instant) -> Option<Transition> {
        self.with(|i| {
            expire(i, now);
            i.consecutive_failures += 1;
            match i.state {
                State::HalfOpen { .. } => {
                    let cooldown = (i.last_cooldown * 2).clamp(conf.cooldown, conf.max_cooldown);
                    i.last_cooldown = cooldown;
                    i.state = State::Open { until: now + cooldown };
                    Some(Transition::BreakerReopened { cooldown })
                }
                State::Healthy | State::CoolingDown { .. } if i.consecutive_failures >= conf.failures => {
                    i.last_cooldown = conf.cooldown;
                    i.state = State::Open {
                        until: now + conf.cooldown,
                    };
                    Some(Transition::BreakerOpened {
                        cooldown: conf.cooldown,
                    })
                }
                _ => None,
            }
        })
    }

    /// Rate limited (429, 529, overloaded): no traffic for `for_`, capped at `max_cooldown`.
    pub fn rate_limited(&self, for_: Duration, conf: &BreakerConf, now: Instant) -> Option<Transition> {
        self.cool(for_.min(conf.max_cooldown), now)
    }

    /// A subscription's usage limit (claude-cli): no traffic until the reset it states, which
    /// may be hours or days away (a 5-hour block, a week), at most [`USAGE_LIMIT_MAX`].
    pub fn usage_limited(&self, for_: Duration, now: Instant) -> Option<Transition> {
        self.cool(for_.min(USAGE_LIMIT_MAX), now)
    }

    fn cool(&self, for_: Duration, now: Instant) -> Option<Transition> {
        self.with(|i| {
            expire(i, now);
            match i.state {
                State::BrokenKey | State::Open { .. } => None,
                State::CoolingDown { until } if until >= now + for_ => None,
                _ => {
                    i.state = State::CoolingDown { until: now + for_ };
                    Some(Transition::CooledDown { for_ })
                }
            }
        })
    }

    /// 401/403: the key does not work. Out of rotation until a reload or a passing health check.
    pub fn key_broken(&self) -> Option<Transition> {
        self.with(|i| {
            if i.state == State::BrokenKey {
                return None;
            }
            i.state = State::BrokenKey;
            Some(Transition::KeyBroken)
        })
    }

    /// A probe ended without an outcome (the client left first): let another request probe.
    pub fn release_probe(&self) {
        self.with(|i| {
            if i.state == (State::HalfOpen { probing: true }) {
                i.state = State::HalfOpen { probing: false };
            }
        });
    }

    /// A passing health check: an open or broken account comes back; a rate-limit cooldown
    /// runs its course (the check's endpoint is not what was rate limited).
    pub fn recover_if_down(&self) -> Option<Transition> {
        let down = self.with(|i| matches!(i.state, State::Open { .. } | State::HalfOpen { .. } | State::BrokenKey));
        if down {
            self.reset()
        } else {
            None
        }
    }

    /// An admin reset, or a reload with a possibly new key.
    pub fn reset(&self) -> Option<Transition> {
        self.with(|i| {
            let was = i.state;
            *i = Inner {
                state: State::Healthy,
                consecutive_failures: 0,
                last_cooldown: Duration::ZERO,
            };
            (was != State::Healthy).then_some(Transition::Recovered)
        })
    }
}

/// Time-driven changes: a cooldown ends, an open breaker goes half-open.
fn expire(i: &mut Inner, now: Instant) {
    match i.state {
        State::CoolingDown { until } if now >= until => i.state = State::Healthy,
        State::Open { until } if now >= until => i.state = State::HalfOpen { probing: false },
        _ => {}
    }
}

#[cfg(test)]
#[path = "health_tests.rs"]
mod tests;
