//! One semantics, two engines: the same randomised runs of attempts,
//! failures (wrong passwords and wrong codes), successes, releases and admin locks and unlocks, with time
//! moving, against the in-memory engine and against the fleet backend on a
//! real redis-server. Every verdict and every standing lock must agree.
//!
//! Time: the fleet takes Redis's, guarded never to run backwards by the
//! `clock` key; the test sets that key ahead of the real clock before each
//! step, which moves Redis's time exactly where it moves the engine's.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use warden_daemon::config::{Config, Field};
use warden_daemon::engine::{
    AdminLock, Attempt, AttemptId, Effects, Engine, Origin, ReasonKind, Selector, Until, Verdict,
};
use warden_daemon::fleet::FleetBackend;
use warden_daemon::log::Log;
use warden_daemon::service::backend::Backend;
use warden_daemon::store::{RedbStore, Store, Writer};
use warden_daemon::time::Time;
use warden_e2e::redis::{fleet_block, unavailable, Redis};

const POLICY: &str = "attempt_timeout = \"1d\"\n[familiar]\nenabled = false\n\
[[rule]]\nname = \"user\"\ntrack = [\"user\"]\nlimit = 3\nwindow = \"10m\"\nlockout = \"5m\"\nescalate = 2.0\nmax_lockout = \"1h\"\n\
[[rule]]\nname = \"pair\"\ntrack = [\"user\", \"rhost\"]\nlimit = 2\nwindow = \"5m\"\nlockout = \"1m\"\n\
[[rule]]\nname = \"sudoers\"\ntrack = [\"user\"]\nservices = [\"sudo\"]\nlimit = 2\nwindow = \"10m\"\nlockout = \"3m\"\n";

/// A small deterministic generator: runs repeat from their seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn attempt(user: &str, rhost: &str) -> Attempt {
    Attempt {
        service: "sshd".into(),
        user: user.into(),
        rhost: Some(rhost.into()),
        tty: None,
        ruser: None,
    }
}

/// What a verdict must agree on.
fn shape(v: &Verdict) -> String {
    let r = &v.reason;
    match r.kind {
        ReasonKind::Locked => format!(
            "locked key={:?} until={:?}",
            r.key.as_ref().map(ToString::to_string),
            r.until
        ),
        ReasonKind::Busy | ReasonKind::Clear => format!(
            "{} key={:?} failures={}",
            r.kind.name(),
            r.key.as_ref().map(ToString::to_string),
            r.failures
        ),
        k => k.name().to_string(),
    }
}

fn standing(
    locks: Vec<(
        warden_daemon::engine::KeyId,
        warden_daemon::engine::KeyState,
    )>,
    now: Time,
) -> Vec<String> {
    let mut out: Vec<String> = locks
        .into_iter()
        .filter_map(|(k, st)| {
            let l = st.lock()?;
            if l.expired(now) {
                return None;
            }
            Some(format!("{k} until={:?}", Until::from_option(l.until)))
        })
        .collect();
    out.sort();
    out
}

#[test]
fn the_redis_functions_and_the_engine_decide_alike() {
    if let Some(why) = unavailable() {
        println!("skipping the_redis_functions_and_the_engine_decide_alike: {why}");
        return;
    }
    let redis = Redis::start();
    let dir = tempfile::tempdir().unwrap();
    let text = format!("{POLICY}{}", fleet_block(&redis, "diff", ""));
    let config = Config::parse(&text, Path::new("diff.toml")).unwrap();
    let fleet = config.fleet.clone().unwrap();
    let mut config = config;
    config.state_dir = dir.path().to_path_buf();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let start = Time::now();
    let store: Arc<dyn Store> = Arc::new(RedbStore::open(dir.path(), start).unwrap().store);
    let writer = rt.block_on(async { Writer::spawn(store.clone()) }).unwrap();
    let (_warden, backend): (_, Arc<FleetBackend>) = warden_daemon::fleet::warden(
        config.clone(),
        fleet,
        Engine::new(config.policy.clone(), 1),
        Vec::new(),
        store,
        writer,
        Arc::new(Log::stderr()),
        start,
    )
    .unwrap();
    rt.spawn(warden_daemon::fleet::run_tasks(backend.clone()));
    for _ in 0..100 {
        if backend.fleet().is_some_and(|f| f.healthy) {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        backend.fleet().is_some_and(|f| f.healthy),
        "the fleet never came up"
    );

    let mut engine = Engine::new(config.policy.clone(), 7);
    // A year ahead of the real clock, so the `clock` key rules Redis's time.
    let mut now = Time(start.0 + 365 * 24 * 3600 * 1000);
    let users = ["ann", "bob"];
    let rhosts = ["192.0.2.1", "192.0.2.2", "198.51.100.3"];
    let mut steps = 0;
    let mut trace: Vec<String> = Vec::new();
    // Whether wrong codes ever locked a rule no password failure reaches.
    let mut code_locks = 0;
    for seed in [0x9e37_79b9_7f4a_7c15_u64, 42, 7777] {
        let mut rng = Rng(seed);
        // Attempts in flight: (engine's id, fleet's id, attempt).
        let mut live: Vec<(AttemptId, AttemptId, Attempt)> = Vec::new();
        for _ in 0..150 {
            now = Time(now.0 + rng.below(50_000));
            redis.cli(&["SET", "w:clock", &now.0.to_string()]);
            let mut fx = Effects::default();
            let step = rng.below(10);
            let what = match step {
                0..=3 => {
                    let a = attempt(users[rng.below(2) as usize], rhosts[rng.below(3) as usize]);
                    let e = engine.begin(&a, Origin::Root, now, &mut fx);
                    let f = rt
                        .block_on(backend.begin(&a, Origin::Root, now))
                        .unwrap()
                        .value;
                    assert_eq!(
                        shape(&e),
                        shape(&f),
                        "step {steps} (seed {seed}): begin {a:?} at {now:?}; before:\n{}",
                        trace.join("\n")
                    );
                    trace.push(format!(
                        "{now:?} begin {} {:?} -> {}",
                        a.user,
                        a.rhost,
                        shape(&e)
                    ));
                    if let (Some(ei), Some(fi)) = (e.attempt, f.attempt) {
                        live.push((ei, fi, a));
                    }
                    "begin"
                }
                4..=6 if !live.is_empty() => {
                    let (ei, fi, a) = live.remove(rng.below(live.len() as u64) as usize);
                    // One failure in four is a wrong code: it counts in every
                    // rule that tracks the user, whatever its services.
                    let kind = if rng.below(4) == 0 {
                        warden_daemon::engine::FailureKind::Totp
                    } else {
                        warden_daemon::engine::FailureKind::Password
                    };
                    engine
                        .fail(Some(ei), &a, Origin::Root, kind, now, &mut fx)
                        .unwrap();
                    rt.block_on(backend.fail(Some(fi), &a, Origin::Root, kind, now))
                        .unwrap()
                        .value
                        .unwrap();
                    trace.push(format!("{now:?} fail {kind:?} {} {:?}", a.user, a.rhost));
                    "fail"
                }
                7 if !live.is_empty() => {
                    let (ei, fi, a) = live.remove(rng.below(live.len() as u64) as usize);
                    if rng.below(2) == 0 {
                        engine
                            .succeed(Some(ei), &a, Origin::Root, now, &mut fx)
                            .unwrap();
                        rt.block_on(backend.succeed(Some(fi), &a, Origin::Root, now))
                            .unwrap()
                            .value
                            .unwrap();
                        trace.push(format!("{now:?} succeed {} {:?}", a.user, a.rhost));
                        "succeed"
                    } else {
                        engine
                            .release(Some(ei), &a, Origin::Root, now, &mut fx)
                            .unwrap();
                        rt.block_on(backend.release(Some(fi), &a, Origin::Root, now))
                            .unwrap()
                            .value
                            .unwrap();
                        trace.push(format!("{now:?} release {} {:?}", a.user, a.rhost));
                        "release"
                    }
                }
                8 => {
                    let req = AdminLock {
                        target: Field::User,
                        value: users[rng.below(2) as usize].into(),
                        length: Some(Duration::from_secs(120)),
                        reason: "diff".into(),
                        by_uid: 0,
                    };
                    engine.admin_lock(&req, now, &mut fx);
                    rt.block_on(backend.lock(&req, now)).unwrap();
                    trace.push(format!("{now:?} lock {}", req.value));
                    "lock"
                }
                _ => {
                    let sel = Selector::User(users[rng.below(2) as usize].into());
                    engine.unlock(&sel, 0, now, &mut fx);
                    rt.block_on(backend.unlock_page(&sel, 0, None, 4096, now))
                        .unwrap();
                    trace.push(format!("{now:?} unlock {sel:?}"));
                    "unlock"
                }
            };
            let e = standing(engine.locks_page(None, 1000), now);
            let f = standing(rt.block_on(backend.locks_page(None, 1000)).unwrap(), now);
            assert_eq!(
                e, f,
                "step {steps} (seed {seed}, {what}): standing locks differ"
            );
            code_locks += e.iter().filter(|l| l.starts_with("sudoers")).count();
            // Decided by Redis, not by the fallback: a degraded backend would
            // compare the engine with itself.
            let report = backend.fleet().unwrap();
            assert!(
                report.healthy,
                "step {steps} ({what}): the fleet fell back to the local engine: {}",
                report.last_error
            );
            steps += 1;
        }
        // Each run ends with its attempts ended, so the next starts clean.
        for (ei, fi, a) in live.drain(..) {
            let mut fx = Effects::default();
            engine
                .release(Some(ei), &a, Origin::Root, now, &mut fx)
                .unwrap();
            rt.block_on(backend.release(Some(fi), &a, Origin::Root, now))
                .unwrap()
                .value
                .unwrap();
        }
    }
    assert!(
        code_locks > 0,
        "no run locked by wrong codes: the test lost its point"
    );
    println!("{steps} steps agreed; {code_locks} step-locks by wrong codes");
}
