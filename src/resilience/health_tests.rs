//! Health state-machine tests: the breaker opening, probing and closing, cooldowns doubling to their cap, probes released, rate-limit cooldowns and broken keys.

use super::*;

const CONF: BreakerConf = BreakerConf {
    failures: 3,
    cooldown: Duration::from_secs(30),
    max_cooldown: Duration::from_secs(100),
};

#[test]
fn breaker_opens_probes_closes() {
    let h = Health::default();
    let t0 = Instant::now();
    assert_eq!(h.failure(&CONF, t0), None);
    assert_eq!(h.failure(&CONF, t0), None);
    assert_eq!(
        h.failure(&CONF, t0),
        Some(Transition::BreakerOpened {
            cooldown: CONF.cooldown
        }),
        "third failure opens"
    );
    assert!(matches!(
        h.check(t0 + Duration::from_secs(29)),
        Availability::Unavailable {
            rate_limited: false,
            ..
        }
    ));
    let t1 = t0 + Duration::from_secs(30);
    assert_eq!(
        h.check(t1),
        Availability::Probe,
        "after the cooldown one request probes"
    );
    assert!(
        matches!(h.check(t1), Availability::Unavailable { until: None, .. }),
        "only one probe at a time"
    );
    assert_eq!(h.success(), Some(Transition::BreakerClosed), "a good probe closes it");
    assert_eq!(h.check(t1), Availability::Available);
}

#[test]
fn failed_probes_double_the_cooldown_up_to_the_cap() {
    let h = Health::default();
    let mut t = Instant::now();
    for _ in 0..3 {
        h.failure(&CONF, t);
    }
    for expected in [60, 100, 100] {
        t += Duration::from_secs(200);
        assert_eq!(h.check(t), Availability::Probe);
        assert_eq!(
            h.failure(&CONF, t),
            Some(Transition::BreakerReopened {
                cooldown: Duration::from_secs(expected)
            })
        );
        assert_eq!(
            h.state(t),
            State::Open {
                until: t + Duration::from_secs(expected)
            }
        );
    }
}

#[test]
fn a_released_probe_lets_the_next_request_probe() {
    let h = Health::default();
    let t = Instant::now();
    for _ in 0..3 {
        h.failure(&CONF, t);
    }
    let later = t + CONF.cooldown;
    assert_eq!(h.check(later), Availability::Probe);
    h.release_probe();
    assert_eq!(h.check(later), Availability::Probe, "not stuck half-open forever");
}

#[test]
fn rate_limits_cool_down_then_come_back_by_themselves() {
    let h = Health::default();
    let t = Instant::now();
    assert_eq!(
        h.rate_limited(Duration::from_secs(2), &CONF, t),
        Some(Transition::CooledDown {
            for_: Duration::from_secs(2)
        })
    );
    assert_eq!(
        h.check(t + Duration::from_millis(1999)),
        Availability::Unavailable {
            until: Some(t + Duration::from_secs(2)),
            rate_limited: true
        }
    );
    assert_eq!(
        h.check(t + Duration::from_secs(2)),
        Availability::Available,
        "back without any probe"
    );
    h.rate_limited(Duration::from_secs(86_400), &CONF, t);
    assert_eq!(
        h.state(t),
        State::CoolingDown {
            until: t + CONF.max_cooldown
        },
        "capped: no cooldown lasting days"
    );
    assert_eq!(
        h.rate_limited(Duration::from_secs(1), &CONF, t),
        None,
        "a shorter cooldown does not shorten a longer one"
    );
}

#[test]
fn broken_keys_stay_out_until_reset_and_success_resets_the_count() {
    let h = Health::default();
    let t = Instant::now();
    assert_eq!(h.key_broken(), Some(Transition::KeyBroken));
    assert_eq!(
        h.check(t + Duration::from_secs(3600)),
        Availability::Unavailable {
            until: None,
            rate_limited: false
        }
    );
    assert_eq!(h.reset(), Some(Transition::Recovered));
    assert_eq!(h.check(t), Availability::Available);
    h.failure(&CONF, t);
    h.failure(&CONF, t);
    h.success();
    assert_eq!(h.failure(&CONF, t), None, "failures must be consecutive");
}
