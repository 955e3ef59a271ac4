use super::*;
use crate::config::Config;
use std::path::Path;

const T0: u64 = 1_795_000_000_000;

fn policy(text: &str) -> Policy {
    Config::parse(text, Path::new("test.toml")).unwrap().policy
}

fn rule(name: &str, track: &str, limit: u32, window: &str, lockout: &str, extra: &str) -> String {
    format!(
        "[[rule]]\nname = \"{name}\"\ntrack = [{track}]\nlimit = {limit}\nwindow = \"{window}\"\nlockout = \"{lockout}\"\n{extra}\n"
    )
}

fn att(user: &str, rhost: Option<&str>) -> Attempt {
    Attempt {
        service: "sshd".into(),
        user: user.into(),
        rhost: rhost.map(str::to_string),
        tty: Some("ssh".into()),
        ruser: None,
    }
}

/// Drives an engine through simulated time.
struct Sim {
    e: Engine,
    now: Time,
    events: Vec<Event>,
}

impl Sim {
    fn new(config: &str) -> Sim {
        Sim {
            e: Engine::new(policy(config), 7),
            now: Time(T0),
            events: Vec::new(),
        }
    }

    /// With the jitter drawn from `seed`, as the daemon's start draws one.
    fn seeded(config: &str, seed: u64) -> Sim {
        let mut s = Sim::new(config);
        s.e = Engine::new(policy(config), 7).with_jitter_seed(seed);
        s
    }

    fn advance(&mut self, secs: u64) {
        self.now = Time(self.now.0 + secs * 1000);
    }

    fn begin(&mut self, a: &Attempt) -> Verdict {
        let mut fx = Effects::default();
        let v = self.e.begin(a, Origin::Root, self.now, &mut fx);
        self.events.extend(fx.events);
        v
    }

    fn fail(&mut self, a: &Attempt, id: Option<AttemptId>) {
        let mut fx = Effects::default();
        self.e
            .fail(
                id,
                a,
                Origin::Root,
                FailureKind::Password,
                self.now,
                &mut fx,
            )
            .unwrap();
        self.events.extend(fx.events);
    }

    fn succeed(&mut self, a: &Attempt, id: Option<AttemptId>) {
        let mut fx = Effects::default();
        self.e
            .succeed(id, a, Origin::Root, self.now, &mut fx)
            .unwrap();
        self.events.extend(fx.events);
    }

    fn tick(&mut self) {
        let mut fx = Effects::default();
        self.e.tick(self.now, &mut fx);
        self.events.extend(fx.events);
    }

    /// A whole wrong-password attempt: Some(true) if it reached the password check.
    fn wrong(&mut self, a: &Attempt) -> bool {
        let v = self.begin(a);
        match v.attempt {
            Some(id) => {
                self.fail(a, Some(id));
                true
            }
            None => false,
        }
    }

    fn right(&mut self, a: &Attempt) -> bool {
        let v = self.begin(a);
        match v.attempt {
            Some(id) => {
                self.succeed(a, Some(id));
                true
            }
            None => false,
        }
    }

    fn count(&self, kind: EventKind) -> usize {
        self.events.iter().filter(|e| e.kind == kind).count()
    }
}

fn until_secs(v: &Verdict) -> Option<u64> {
    match v.reason.until {
        Some(Until::At(t)) => Some((t.0 - T0) / 1000),
        _ => None,
    }
}

#[test]
fn locks_after_limit_and_says_why() {
    let mut s = Sim::new(&rule("user", "\"user\"", 3, "15m", "10m", ""));
    let a = att("alice", Some("203.0.113.7"));
    for _ in 0..3 {
        assert!(s.wrong(&a));
    }
    let v = s.begin(&a);
    assert!(!v.allowed());
    assert_eq!(v.reason.kind, ReasonKind::Locked);
    assert_eq!(v.reason.rule.as_deref(), Some("user"));
    assert_eq!(v.reason.failures, 3);
    assert_eq!(v.reason.key.as_ref().unwrap().part("user"), Some("alice"));
    // Locked at the third failure (t=0) for 10m; the refusal restarted the cool-off.
    assert_eq!(until_secs(&v), Some(600));
    assert_eq!(s.count(EventKind::Locked), 1);
    let locked = s
        .events
        .iter()
        .find(|e| e.kind == EventKind::Locked)
        .unwrap();
    assert_eq!(locked.rhost.as_deref(), Some("203.0.113.7"));
    assert_eq!(locked.failures, Some(3));
}

#[test]
fn the_window_slides() {
    let mut s = Sim::new(&rule("user", "\"user\"", 3, "10m", "10m", ""));
    let a = att("alice", None);
    assert!(s.wrong(&a)); // t=0
    s.advance(240);
    assert!(s.wrong(&a)); // t=4m
    s.advance(420);
    assert!(s.wrong(&a)); // t=11m: the first has left the window
    s.advance(60);
    // t=12m: 4m, 11m and this one make three inside 10m.
    assert!(s.wrong(&a));
    let v = s.begin(&a);
    assert_eq!(v.reason.kind, ReasonKind::Locked);
}

#[test]
fn lockouts_escalate_up_to_the_cap_and_memory_forgets() {
    let cfg = format!(
        "escalation_memory = \"1d\"\nextend_on_failure_while_locked = false\n{}",
        rule(
            "user",
            "\"user\"",
            2,
            "1h",
            "1m",
            "escalate = 2.0\nmax_lockout = \"5m\""
        )
    );
    let mut s = Sim::new(&cfg);
    let a = att("alice", None);
    let mut lengths = Vec::new();
    for _ in 0..5 {
        assert!(s.wrong(&a));
        assert!(s.wrong(&a));
        let v = s.begin(&a);
        assert_eq!(v.reason.kind, ReasonKind::Locked);
        let start = s.now;
        let until = match v.reason.until {
            Some(Until::At(t)) => t,
            other => panic!("{other:?}"),
        };
        lengths.push(start.until(until).as_secs());
        s.now = until;
        s.tick();
    }
    assert_eq!(lengths, [60, 120, 240, 300, 300]);

    // A day without lockouts and the sequence starts over.
    s.advance(86_400 + 600);
    s.tick();
    let mut s2 = s;
    let b = att("alice", None);
    assert!(s2.wrong(&b));
    assert!(s2.wrong(&b));
    let v = s2.begin(&b);
    let until = match v.reason.until {
        Some(Until::At(t)) => t,
        other => panic!("{other:?}"),
    };
    assert_eq!(s2.now.until(until).as_secs(), 60);
}

#[test]
fn permanent_locks_last_until_an_admin_unlocks() {
    let mut s = Sim::new(&rule("user", "\"user\"", 2, "15m", "permanent", ""));
    let a = att("alice", None);
    assert!(s.wrong(&a));
    assert!(s.wrong(&a));
    s.advance(30 * 86_400);
    s.tick();
    let v = s.begin(&a);
    assert_eq!(v.reason.until, Some(Until::Permanent));
    let mut fx = Effects::default();
    assert_eq!(
        s.e.unlock(&Selector::User("alice".into()), 0, s.now, &mut fx),
        1
    );
    assert!(fx
        .events
        .iter()
        .any(|e| e.kind == EventKind::Unlocked && e.by.as_deref() == Some("uid=0")));
    assert!(fx.keys.iter().any(|(_, st)| st.is_none()));
    assert!(s.begin(&a).allowed());
}

#[test]
fn expiry_lifts_the_lock_logs_it_and_starts_a_fresh_budget() {
    let cfg = format!(
        "extend_on_failure_while_locked = false\n{}",
        rule("user", "\"user\"", 2, "1h", "10m", "")
    );
    let mut s = Sim::new(&cfg);
    let a = att("alice", None);
    s.wrong(&a);
    s.wrong(&a);
    s.advance(599);
    s.tick();
    assert!(!s.begin(&a).allowed());
    s.advance(1);
    s.tick();
    let unlocked = s
        .events
        .iter()
        .find(|e| e.kind == EventKind::Unlocked)
        .unwrap();
    assert_eq!(unlocked.by.as_deref(), Some("expired"));
    assert_eq!(unlocked.user.as_deref(), Some("alice"));
    // The old failures are gone with the lock: one more failure does not relock.
    assert!(s.wrong(&a));
    assert!(s.begin(&a).allowed());
}

#[test]
fn refusals_while_locked_restart_the_cool_off_only_when_asked() {
    for extend in [true, false] {
        let cfg = format!(
            "extend_on_failure_while_locked = {extend}\n{}",
            rule("user", "\"user\"", 2, "1h", "10m", "")
        );
        let mut s = Sim::new(&cfg);
        let a = att("alice", None);
        s.wrong(&a);
        s.wrong(&a);
        s.advance(500);
        let v = s.begin(&a);
        let expected = if extend { 500 + 600 } else { 600 };
        assert_eq!(until_secs(&v), Some(expected), "extend={extend}");
    }
}

#[test]
fn success_resets_user_keys_but_never_rhost_keys() {
    let cfg = format!(
        "[familiar]\nenabled = false\n{}{}",
        rule("user", "\"user\"", 3, "1h", "10m", ""),
        rule("rhost", "\"rhost\"", 3, "1h", "10m", "")
    );
    let mut s = Sim::new(&cfg);
    let nat = Some("198.51.100.1");
    s.wrong(&att("alice", nat));
    s.wrong(&att("alice", nat));
    assert!(s.right(&att("alice", nat)));
    let user_key = KeyId::new("user", [("user", "alice")]);
    let rhost_key = KeyId::new("rhost", [("rhost", "198.51.100.1")]);
    assert!(s.e.key(&user_key).unwrap().failures.is_empty());
    assert_eq!(s.e.key(&rhost_key).unwrap().failures.len(), 2);
    // The attacker's third failure on that address still locks the address.
    s.wrong(&att("mallory", nat));
    let v = s.begin(&att("bob", nat));
    assert_eq!(v.reason.kind, ReasonKind::Locked);
    assert_eq!(v.reason.rule.as_deref(), Some("rhost"));
}

#[test]
fn success_can_be_told_not_to_reset() {
    let cfg = format!(
        "reset_on_success = false\n[familiar]\nenabled = false\n{}",
        rule("user", "\"user\"", 3, "1h", "10m", "")
    );
    let mut s = Sim::new(&cfg);
    let a = att("alice", None);
    s.wrong(&a);
    s.wrong(&a);
    s.right(&a);
    s.wrong(&a);
    assert_eq!(s.begin(&a).reason.kind, ReasonKind::Locked);
}

#[test]
fn allowlists_are_never_locked_but_are_recorded() {
    let cfg = format!(
        "[allow]\nusers = [\"breakglass\"]\nrhosts = [\"192.0.2.0/24\"]\n{}{}",
        rule("user", "\"user\"", 2, "1h", "10m", ""),
        rule("rhost", "\"rhost\"", 2, "1h", "10m", "")
    );
    let mut s = Sim::new(&cfg);
    for _ in 0..20 {
        assert!(s.wrong(&att("breakglass", Some("203.0.113.9"))));
        assert!(s.wrong(&att("alice", Some("192.0.2.44"))));
    }
    assert_eq!(s.count(EventKind::Failure), 40);
    assert_eq!(s.count(EventKind::Locked), 0);
    let v = s.begin(&att("alice", Some("192.0.2.44")));
    assert_eq!(v.reason.kind, ReasonKind::Allowlisted);
}

#[test]
fn deny_wins_over_allow() {
    let cfg = "[allow]\nusers = [\"alice\"]\nrhosts = [\"10.0.0.0/8\"]\n[deny]\nrhosts = [\"10.6.6.0/24\"]\n";
    let mut s = Sim::new(cfg);
    let v = s.begin(&att("alice", Some("10.6.6.6")));
    assert!(!v.allowed());
    assert_eq!(v.reason.kind, ReasonKind::Denied);
    assert!(s.begin(&att("alice", Some("10.7.0.1"))).allowed());
}

#[test]
fn unfamiliar_failures_do_not_lock_the_owner_at_home() {
    let cfg = format!(
        "[familiar]\nremember = \"30d\"\n{}",
        rule("user", "\"user\"", 3, "1h", "1h", "")
    );
    let mut s = Sim::new(&cfg);
    let home = Some("192.0.2.10");
    assert!(s.right(&att("alice", home)));
    s.advance(3600);
    for _ in 0..3 {
        s.wrong(&att("alice", Some("203.0.113.50")));
    }
    let attacker = s.begin(&att("alice", Some("203.0.113.77")));
    assert_eq!(attacker.reason.kind, ReasonKind::Locked);
    assert_eq!(
        attacker.reason.key.as_ref().unwrap().part("from"),
        Some("unfamiliar")
    );
    // The owner at home keeps her own budget of three.
    assert!(s.right(&att("alice", home)));
    for _ in 0..3 {
        assert!(s.wrong(&att("alice", home)));
    }
    let v = s.begin(&att("alice", home));
    assert_eq!(
        v.reason.key.as_ref().unwrap().part("from"),
        Some("192.0.2.10"),
        "a familiar source's budget is its own"
    );
}

#[test]
fn familiarity_fades_after_remember() {
    let cfg = format!(
        "[familiar]\nremember = \"1d\"\n{}",
        rule("user", "\"user\"", 1, "1h", "1h", "")
    );
    let mut s = Sim::new(&cfg);
    let home = Some("192.0.2.10");
    s.right(&att("alice", home));
    s.wrong(&att("alice", Some("203.0.113.50")));
    assert!(s.begin(&att("alice", home)).allowed());
    s.advance(2 * 86_400);
    s.tick();
    s.wrong(&att("alice", Some("203.0.113.50")));
    assert!(!s.begin(&att("alice", home)).allowed());
}

#[test]
fn ipv6_rhosts_are_keyed_by_prefix() {
    let cfg = rule("rhost", "\"rhost\"", 3, "1h", "1h", "");
    let mut s = Sim::new(&cfg);
    for host in ["2001:db8:0:1::a", "2001:db8:0:1::b", "2001:db8:0:1:ffff::c"] {
        assert!(s.wrong(&att("alice", Some(host))));
    }
    let v = s.begin(&att("bob", Some("2001:db8:0:1::dead")));
    assert_eq!(v.reason.kind, ReasonKind::Locked);
    assert_eq!(
        v.reason.key.as_ref().unwrap().part("rhost"),
        Some("2001:db8:0:1::/64")
    );
    assert!(s.begin(&att("bob", Some("2001:db8:0:2::1"))).allowed());
}

#[test]
fn concurrent_attempts_reserve_their_places_exactly() {
    let mut s = Sim::new(&rule("user", "\"user\"", 5, "15m", "15m", ""));
    let a = att("alice", Some("203.0.113.7"));
    let verdicts: Vec<Verdict> = (0..32).map(|_| s.begin(&a)).collect();
    let admitted: Vec<AttemptId> = verdicts.iter().filter_map(|v| v.attempt).collect();
    assert_eq!(admitted.len(), 5);
    let busy = verdicts
        .iter()
        .filter(|v| v.reason.kind == ReasonKind::Busy)
        .count();
    assert_eq!(busy, 27);
    for id in admitted {
        s.fail(&a, Some(id));
    }
    assert_eq!(s.begin(&a).reason.kind, ReasonKind::Locked);
}

#[test]
fn random_interleavings_never_admit_more_than_the_limit() {
    // A small xorshift keeps the test deterministic without a dependency.
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut rand = move |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    for _round in 0..50 {
        let cfg = format!(
            "[familiar]\nenabled = false\n{}",
            rule("user", "\"user\"", 5, "1h", "permanent", "")
        );
        let mut s = Sim::new(&cfg);
        let a = att("alice", None);
        let mut open: Vec<AttemptId> = Vec::new();
        let mut checks = 0;
        for _ in 0..200 {
            match rand(3) {
                0 | 1 => {
                    if let Some(id) = s.begin(&a).attempt {
                        checks += 1;
                        open.push(id);
                    }
                }
                _ if !open.is_empty() => {
                    let i = usize::try_from(rand(open.len() as u64)).unwrap();
                    let id = open.swap_remove(i);
                    s.fail(&a, Some(id));
                }
                _ => {}
            }
        }
        assert!(checks <= 5, "{checks} password checks with limit 5");
    }
}

#[test]
fn abandoned_attempts_count_once_as_failures() {
    let cfg = format!(
        "attempt_timeout = \"60s\"\n{}",
        rule("user", "\"user\"", 2, "1h", "1h", "")
    );
    let mut s = Sim::new(&cfg);
    // The service's stack reports how attempts end.
    assert!(s.right(&att("someone", None)));
    let a = att("alice", None);
    let first = s.begin(&a).attempt;
    let second = s.begin(&a).attempt;
    assert!(first.is_some() && second.is_some());
    assert!(!s.begin(&a).allowed(), "both places are reserved");
    s.advance(61);
    s.tick();
    assert_eq!(s.count(EventKind::Abandoned), 2);
    assert_eq!(s.begin(&a).reason.kind, ReasonKind::Locked);
    // A late report for an abandoned attempt is not counted twice.
    let key = s.e.locks_page(None, 1)[0].0.clone();
    let before = s.e.key(&key).unwrap().failures.len();
    s.fail(&a, first);
    assert_eq!(s.e.key(&key).unwrap().failures.len(), before);
    assert_eq!(s.count(EventKind::Failure), 0);
}

#[test]
fn a_slow_success_still_resets() {
    let cfg = format!(
        "attempt_timeout = \"60s\"\n{}",
        rule("user", "\"user\"", 3, "1h", "1h", "")
    );
    let mut s = Sim::new(&cfg);
    let a = att("alice", None);
    s.wrong(&a);
    let id = s.begin(&a).attempt;
    s.advance(90);
    s.succeed(&a, id);
    let key = KeyId::new("user", [("user", "alice"), ("from", "unfamiliar")]);
    assert!(s.e.key(&key).unwrap().failures.is_empty());
}

#[test]
fn ids_from_before_a_restart_still_count() {
    let cfg = rule("user", "\"user\"", 2, "1h", "1h", "");
    let mut s = Sim::new(&cfg);
    let a = att("alice", None);
    let old = s.begin(&a).attempt;
    // The daemon restarts: a new epoch, reservations gone.
    s.e = Engine::new(policy(&cfg), 8);
    s.fail(&a, old);
    s.fail(&a, None);
    assert_eq!(s.begin(&a).reason.kind, ReasonKind::Locked);
}

#[test]
fn an_attempt_cannot_be_resolved_for_another_user() {
    let mut s = Sim::new("");
    let id = s.begin(&att("alice", None)).attempt;
    let mut fx = Effects::default();
    let err = s.e.fail(
        id,
        &att("bob", None),
        Origin::Root,
        FailureKind::Password,
        s.now,
        &mut fx,
    );
    assert_eq!(err, Err(AttemptError::UserMismatch));
}

#[test]
fn root_is_not_locked_by_user_rules_unless_asked() {
    let rules = format!(
        "{}{}",
        rule("user", "\"user\"", 3, "1h", "1h", ""),
        rule("rhost", "\"rhost\"", 10, "1h", "1h", "")
    );
    let mut s = Sim::new(&rules);
    for i in 0..9 {
        let host = format!("203.0.113.{i}");
        assert!(s.wrong(&att("root", Some(&host))));
    }
    assert!(s.begin(&att("root", Some("198.51.100.1"))).allowed());
    // Rules on the rhost alone still apply to attempts on root.
    for _ in 0..10 {
        s.wrong(&att("root", Some("192.0.2.1")));
    }
    let v = s.begin(&att("root", Some("192.0.2.1")));
    assert_eq!(v.reason.rule.as_deref(), Some("rhost"));

    let mut s = Sim::new(&format!("lock_root = true\n{rules}"));
    for i in 0..3 {
        let host = format!("203.0.113.{i}");
        s.wrong(&att("root", Some(&host)));
    }
    assert_eq!(
        s.begin(&att("root", Some("198.51.100.1")))
            .reason
            .rule
            .as_deref(),
        Some("user")
    );
}

#[test]
fn unknown_users_get_exactly_the_same_decisions() {
    let run = |user: &str| {
        let mut s = Sim::new("");
        let mut trace = Vec::new();
        for i in 0..12 {
            let a = att(user, Some("203.0.113.7"));
            let v = s.begin(&a);
            trace.push((
                v.allowed(),
                v.reason.kind,
                v.reason.failures,
                v.reason.until,
            ));
            if let Some(id) = v.attempt {
                s.fail(&a, Some(id));
            }
            s.advance(i);
        }
        trace
    };
    assert_eq!(run("alice"), run("no-such-user-zq"));
}

#[test]
fn rules_scoped_to_services_leave_others_alone() {
    let cfg = rule("ssh", "\"user\"", 2, "1h", "1h", "services = [\"sshd\"]");
    let mut s = Sim::new(&cfg);
    let ssh = att("alice", None);
    let sudo = Attempt {
        service: "sudo".into(),
        ..att("alice", None)
    };
    for _ in 0..5 {
        s.wrong(&sudo);
    }
    assert!(s.begin(&ssh).allowed());
    s.wrong(&ssh);
    s.wrong(&ssh);
    assert!(!s.begin(&att("alice", None)).allowed());
    assert!(s.begin(&sudo).allowed());
}

#[test]
fn combined_keys_track_the_pair() {
    let cfg = rule("pair", "\"user\", \"rhost\"", 2, "1h", "1h", "");
    let mut s = Sim::new(&cfg);
    s.wrong(&att("alice", Some("203.0.113.1")));
    s.wrong(&att("alice", Some("203.0.113.1")));
    assert!(!s.begin(&att("alice", Some("203.0.113.1"))).allowed());
    assert!(s.begin(&att("alice", Some("203.0.113.2"))).allowed());
    assert!(s.begin(&att("bob", Some("203.0.113.1"))).allowed());
}

#[test]
fn admin_locks_outrank_the_allowlist_and_unlock_by_rhost() {
    let mut s = Sim::new("[allow]\nusers = [\"alice\"]\n");
    let mut fx = Effects::default();
    let lock = |target, value: &str, length| AdminLock {
        target,
        value: value.into(),
        length,
        reason: "left the company".into(),
        by_uid: 0,
    };
    s.e.admin_lock(&lock(Field::User, "alice", None), s.now, &mut fx);
    let v = s.begin(&att("alice", None));
    assert_eq!(v.reason.kind, ReasonKind::Locked);
    assert_eq!(v.reason.rule.as_deref(), Some(ADMIN_RULE));
    s.e.admin_lock(
        &lock(Field::Rhost, "2001:db8::7", Some(Duration::from_secs(60))),
        s.now,
        &mut fx,
    );
    assert!(!s.begin(&att("bob", Some("2001:db8::99"))).allowed());
    assert_eq!(
        s.e.unlock(&Selector::Rhost("2001:db8::1".into()), 0, s.now, &mut fx),
        1
    );
    assert!(s.begin(&att("bob", Some("2001:db8::99"))).allowed());
}

#[test]
fn purge_drops_idle_keys_and_keeps_locks() {
    let cfg = format!(
        "escalation_memory = \"1h\"\n{}",
        rule("user", "\"user\"", 2, "10m", "permanent", "")
    );
    let mut s = Sim::new(&cfg);
    s.wrong(&att("alice", None));
    s.wrong(&att("bob", None));
    s.wrong(&att("bob", None));
    assert_eq!(s.e.tracked_keys(), 2);
    s.advance(3 * 3600);
    let mut fx = Effects::default();
    s.e.purge(s.now, &mut fx);
    assert_eq!(s.e.tracked_keys(), 1, "only bob's permanent lock remains");
    assert!(fx
        .keys
        .iter()
        .any(|(k, st)| k.part("user") == Some("alice") && st.is_none()));
}

#[test]
fn memory_stays_bounded_and_locks_survive_eviction() {
    let cfg = format!(
        "max_tracked_keys = 1000\n{}",
        rule("rhost", "\"rhost\"", 3, "1d", "1d", "")
    );
    let mut s = Sim::new(&cfg);
    let locked = att("x", Some("192.0.2.1"));
    for _ in 0..3 {
        s.wrong(&locked);
    }
    for i in 0..5000u32 {
        let host = format!("10.{}.{}.{}", i >> 16, (i >> 8) & 255, i & 255);
        s.wrong(&att("x", Some(&host)));
        s.advance(1);
        assert!(s.e.tracked_keys() <= 1000);
    }
    assert!(!s.begin(&locked).allowed(), "the lock survived the flood");
}

#[test]
fn rhost_rules_ignore_local_attempts() {
    let cfg = format!(
        "{}{}",
        rule("user", "\"user\"", 3, "1h", "1h", ""),
        rule("rhost", "\"rhost\"", 3, "1h", "1h", "")
    );
    let mut s = Sim::new(&cfg);
    // Three local users fail at sudo; no shared "local" address gets locked.
    for user in ["mallory", "eve", "trudy"] {
        s.wrong(&att(user, None));
    }
    assert!(s.begin(&att("alice", None)).allowed());
    assert_eq!(s.e.lock_count(), 0);
}

#[test]
fn wrong_codes_count_with_passwords_and_waiting_keeps_the_place() {
    let cfg = format!(
        "attempt_timeout = \"60s\"\n{}",
        rule("user", "\"user\"", 2, "1h", "1h", "")
    );
    let mut s = Sim::new(&cfg);
    let a = att("alice", None);
    s.wrong(&a);
    let id = s.begin(&a).attempt;
    s.advance(50);
    assert!(s.e.await_code(id, &a, Origin::Root, s.now).unwrap());
    assert!(s.e.awaiting_code(id, &a, Origin::Root));
    assert!(!s.e.awaiting_code(id, &att("bob", None), Origin::Root));
    // The wait restarted the timeout: at 50 + 59 s it is still pending.
    s.advance(59);
    s.tick();
    assert_eq!(s.count(EventKind::Abandoned), 0);
    let mut fx = Effects::default();
    s.e.fail(id, &a, Origin::Root, FailureKind::Totp, s.now, &mut fx)
        .unwrap();
    assert!(fx.events.iter().any(|e| e.kind == EventKind::TotpFailure));
    assert_eq!(
        s.begin(&a).reason.kind,
        ReasonKind::Locked,
        "one password and one code failure make two"
    );
}

// ----- attacks: each test runs the attack against the engine --------------

fn peer(uid: u32) -> Origin {
    Origin::Peer(uid)
}

fn local(user: &str, ruser: Option<&str>) -> Attempt {
    Attempt {
        service: "su".into(),
        user: user.into(),
        rhost: None,
        tty: Some("/dev/pts/3".into()),
        ruser: ruser.map(str::to_string),
    }
}

impl Sim {
    fn begin_as(&mut self, a: &Attempt, o: Origin) -> Verdict {
        let mut fx = Effects::default();
        let v = self.e.begin(a, o, self.now, &mut fx);
        self.events.extend(fx.events);
        v
    }

    fn wrong_as(&mut self, a: &Attempt, o: Origin) -> bool {
        let v = self.begin_as(a, o);
        let Some(id) = v.attempt else { return false };
        let mut fx = Effects::default();
        self.e
            .fail(Some(id), a, o, FailureKind::Password, self.now, &mut fx)
            .unwrap();
        self.events.extend(fx.events);
        true
    }

    fn right_as(&mut self, a: &Attempt, o: Origin) -> bool {
        let v = self.begin_as(a, o);
        let Some(id) = v.attempt else { return false };
        let mut fx = Effects::default();
        self.e.succeed(Some(id), a, o, self.now, &mut fx).unwrap();
        self.events.extend(fx.events);
        true
    }
}

#[test]
fn a_peers_success_neither_resets_nor_makes_familiar() {
    let mut s = Sim::new(&rule("user", "\"user\"", 5, "1h", "1h", ""));
    let me = att("mallory", None);
    let mut checks = 0;
    // The attack: four wrong passwords through sudo (root), then a success
    // claimed from the user's own shell, again and again.
    for _ in 0..6 {
        for _ in 0..4 {
            checks += usize::from(s.wrong(&me));
        }
        s.right_as(&me, peer(1000));
    }
    assert_eq!(checks, 5, "the limit holds whatever the peer claims");
    assert!(!s.begin(&me).allowed());
    assert!(
        s.e.familiar.is_empty(),
        "a peer's word makes nothing familiar"
    );
}

#[test]
fn a_peer_cannot_end_someone_elses_attempt() {
    let mut s = Sim::new(&rule("user", "\"user\"", 2, "1h", "1h", ""));
    let me = att("mallory", None);
    let id = s.begin(&me).attempt.unwrap();
    let mut fx = Effects::default();
    // Ending sudo's attempt first would uncount its failure.
    assert_eq!(
        s.e.succeed(Some(id), &me, peer(1000), s.now, &mut fx),
        Err(AttemptError::NotYours)
    );
    s.fail(&me, Some(id));
    assert_eq!(s.count(EventKind::Failure), 1);
}

#[test]
fn a_peer_cannot_name_a_service_no_rule_covers() {
    let mut s = Sim::new(&rule(
        "user",
        "\"user\"",
        2,
        "1h",
        "1h",
        "services = [\"sudo\"]",
    ));
    let mut a = att("mallory", None);
    a.service = "made-up".into();
    assert!(s.wrong_as(&a, peer(1000)));
    assert!(s.wrong_as(&a, peer(1000)));
    assert!(
        !s.begin_as(&a, peer(1000)).allowed(),
        "the rule applies anyway"
    );
    assert!(s.begin(&a).allowed(), "a root peer's service is believed");
}

#[test]
fn wrong_codes_count_whatever_the_service() {
    let mut s = Sim::new(&rule(
        "user",
        "\"user\"",
        3,
        "1h",
        "1h",
        "services = [\"sshd\"]",
    ));
    let mut a = att("alice", None);
    a.service = "sudo".into();
    for _ in 0..3 {
        let id = s.begin(&a).attempt.unwrap();
        let mut fx = Effects::default();
        s.e.fail(
            Some(id),
            &a,
            Origin::Root,
            FailureKind::Totp,
            s.now,
            &mut fx,
        )
        .unwrap();
    }
    let ssh = att("alice", Some("198.51.100.1"));
    assert!(
        !s.begin(&ssh).allowed(),
        "three wrong codes via sudo lock alice"
    );
}

#[test]
fn without_a_user_rule_wrong_codes_meet_the_code_rule() {
    let mut s = Sim::new(&rule("rhost", "\"rhost\"", 20, "1h", "1h", ""));
    let a = att("alice", None);
    for _ in 0..5 {
        let id = s.begin(&a).attempt.unwrap();
        let mut fx = Effects::default();
        s.e.fail(
            Some(id),
            &a,
            Origin::Root,
            FailureKind::Totp,
            s.now,
            &mut fx,
        )
        .unwrap();
    }
    let v = s.begin(&a);
    assert_eq!(v.reason.kind, ReasonKind::Locked);
    assert_eq!(v.reason.rule.as_deref(), Some(CODE_RULE));
}

#[test]
fn a_full_table_never_switches_lockout_off() {
    let cfg = format!(
        "max_tracked_keys = 1000\n[familiar]\nenabled = false\n{}",
        rule("user", "\"user\"", 3, "1d", "1d", "")
    );
    let mut s = Sim::new(&cfg);
    // The table fills with 1,200 locks: three wrong passwords each.
    for i in 0..1200 {
        let a = att(&format!("filler{i}"), None);
        for _ in 0..3 {
            s.wrong(&a);
        }
    }
    assert!(s.e.tracked_keys() <= 1000, "{}", s.e.tracked_keys());
    assert!(s.e.pressure().evicted_locks > 0, "locks had to go, loudly");
    // A new attacker's key, the only unlocked one, still locks at its limit.
    let target = att("victim", None);
    let checks = (0..10).filter(|_| s.wrong(&target)).count();
    assert_eq!(checks, 3);
    assert!(!s.begin(&target).allowed());
    s.e.check_invariants(s.now).unwrap();
}

#[test]
fn a_flood_of_fresh_keys_does_not_push_out_the_key_under_attack() {
    let cfg = format!(
        "max_tracked_keys = 1000\n[familiar]\nenabled = false\n{}",
        rule("user", "\"user\"", 5, "1d", "1d", "")
    );
    let mut s = Sim::new(&cfg);
    let target = att("victim", None);
    let mut checks = usize::from(s.wrong(&target)) + usize::from(s.wrong(&target));
    for round in 0..10 {
        // Between its guesses the attacker floods more fresh names than the
        // table holds, each with one failure and each newer than the target.
        for i in 0..1200 {
            s.advance(1);
            s.wrong(&att(&format!("a{round}x{i}"), None));
        }
        checks += usize::from(s.wrong(&target));
    }
    assert!(s.e.tracked_keys() <= 1000);
    assert_eq!(checks, 5);
}

#[test]
fn a_table_full_is_an_alert() {
    let cfg = format!(
        "max_tracked_keys = 1000\n[familiar]\nenabled = false\n{}",
        rule("user", "\"user\"", 5, "1d", "1d", "")
    );
    let mut s = Sim::new(&cfg);
    let mut alerts = Vec::new();
    for i in 0..1100 {
        let a = att(&format!("u{i}"), None);
        let id = s.begin(&a).attempt.unwrap();
        let mut fx = Effects::default();
        s.e.fail(
            Some(id),
            &a,
            Origin::Root,
            FailureKind::Password,
            s.now,
            &mut fx,
        )
        .unwrap();
        alerts.extend(fx.alerts);
    }
    assert!(
        matches!(alerts.first(), Some(Alert::TableFull { max: 1000, evicted_keys, .. }) if *evicted_keys > 0),
        "{alerts:?}"
    );
    assert!(s.e.pressure().last_full.is_some());
}

#[test]
fn one_name_cannot_fill_the_table_through_its_ttys() {
    let cfg = format!(
        "max_keys_per_user = 8\n{}",
        rule("tty", "\"user\", \"tty\"", 3, "1h", "1h", "")
    );
    let mut s = Sim::new(&cfg);
    let mut checks = 0;
    for i in 0..200 {
        let mut a = local("mallory", Some("mallory"));
        a.tty = Some(format!("/dev/pts/{i}"));
        checks += usize::from(s.wrong(&a));
    }
    let keys = s.e.user_keys("mallory").len();
    assert!(keys <= 9, "{keys} keys for one name");
    // Eight ttys with one failure each, then the overflow key's three.
    assert_eq!(checks, 8 + 3);
}

#[test]
fn many_locked_addresses_in_one_prefix_lock_the_prefix() {
    let cfg = format!(
        "[aggregate]\nlocks = 4\n{}",
        rule("rhost", "\"rhost\"", 1, "1h", "1h", "")
    );
    let mut s = Sim::new(&cfg);
    // The owner logged in from one /64 of the /48 before.
    let home = att("alice", Some("2001:db8:1:77::5"));
    assert!(s.right(&home));
    for i in 0..4 {
        assert!(s.wrong(&att("x", Some(&format!("2001:db8:1:{i}::1")))));
    }
    let v = s.begin(&att("x", Some("2001:db8:1:99::1")));
    assert_eq!(v.reason.kind, ReasonKind::Locked);
    assert_eq!(v.reason.rule.as_deref(), Some(PREFIX_RULE));
    assert!(
        s.begin(&att("x", Some("2001:db8:2::1"))).allowed(),
        "another /48 is not touched"
    );
    assert!(
        s.begin(&home).allowed(),
        "a familiar address in the prefix is spared"
    );
    // The same for IPv4 /24s.
    for i in 1..=4 {
        s.wrong(&att("y", Some(&format!("198.51.100.{i}"))));
    }
    assert!(!s.begin(&att("y", Some("198.51.100.200"))).allowed());
    assert!(s.begin(&att("y", Some("198.51.101.1"))).allowed());
}

#[test]
fn attempts_in_flight_are_bounded() {
    let cfg = format!(
        "max_attempts_in_flight = 50\nmax_attempts_per_uid = 4\n[allow]\nusers = [\"free\"]\n{}",
        rule("user", "\"user\"", 5, "1h", "1h", "services = [\"sshd\"]")
    );
    let mut s = Sim::new(&cfg);
    let mut a = att("mallory", None);
    a.service = "nothing-covers-this".into();
    let mut allowed = 0;
    for _ in 0..100 {
        allowed += usize::from(s.begin_as(&a, peer(1000)).allowed());
    }
    assert_eq!(allowed, 4, "per uid");
    let free = att("free", None);
    let allowed = (0..100).filter(|_| s.begin(&free).allowed()).count();
    assert_eq!(allowed, 50 - 4, "in all, allowlisted or not");
    assert_eq!(s.e.pending_attempts(), 50);
    s.e.check_invariants(s.now).unwrap();
}

#[test]
fn local_attackers_do_not_share_the_owners_local_budget() {
    let mut s = Sim::new(&rule("user", "\"user\"", 3, "1h", "1h", ""));
    // alice uses sudo herself, so "local as alice" is familiar to her.
    assert!(s.right(&local("alice", Some("alice"))));
    // bob guesses her password with su, and someone from afar too.
    for _ in 0..3 {
        s.wrong(&local("alice", Some("bob")));
    }
    for _ in 0..3 {
        s.wrong(&att("alice", Some("203.0.113.9")));
    }
    assert!(!s.begin(&local("alice", Some("bob"))).allowed());
    assert!(s.begin(&local("alice", Some("alice"))).allowed());
}

#[test]
fn sharing_one_familiar_source_locks_only_that_one() {
    let mut s = Sim::new(&rule("user", "\"user\"", 3, "1h", "1h", ""));
    let (home, office) = (
        att("alice", Some("192.0.2.10")),
        att("alice", Some("198.51.100.20")),
    );
    assert!(s.right(&home));
    assert!(s.right(&office));
    // Someone behind the office NAT.
    for _ in 0..3 {
        s.wrong(&office);
    }
    assert!(!s.begin(&office).allowed());
    assert!(s.begin(&home).allowed());
}

#[test]
fn every_spelling_of_a_locked_address_is_refused() {
    let mut s = Sim::new(&rule("rhost", "\"rhost\"", 1, "1h", "1h", ""));
    s.wrong(&att("x", Some("198.51.100.7")));
    for spelling in [
        "::198.51.100.7",
        "64:ff9b::198.51.100.7",
        "198.051.100.7",
        "::ffff:198.51.100.7",
    ] {
        assert!(!s.begin(&att("x", Some(spelling))).allowed(), "{spelling}");
    }
    s.wrong(&att("x", Some("fe80::1%eth0")));
    assert!(!s.begin(&att("x", Some("fe80::1%eth1"))).allowed());
    s.wrong(&att("x", Some("Host.Example.")));
    assert!(!s.begin(&att("x", Some("host.example"))).allowed());
}

#[test]
fn a_name_cannot_slip_past_the_deny_list() {
    let mut s = Sim::new("[deny]\nrhosts = [\"203.0.113.0/24\"]\n");
    let v = s.begin(&att("alice", Some("attacker.example")));
    assert_eq!(v.reason.kind, ReasonKind::Unverifiable);
    let mut t = Sim::new("");
    assert!(t.begin(&att("alice", Some("host.example"))).allowed());
}

#[test]
fn random_interleavings_of_root_and_peers_keep_the_invariants() {
    let cfg = format!(
        "max_tracked_keys = 1000\nmax_keys_per_user = 4\n[aggregate]\nlocks = 3\n{}{}",
        rule("user", "\"user\"", 3, "10m", "5m", ""),
        rule("pair", "\"user\", \"rhost\"", 2, "10m", "5m", "")
    );
    let mut s = Sim::new(&cfg);
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    let mut live: Vec<(AttemptId, Attempt, Origin)> = Vec::new();
    for _ in 0..20_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let user = format!("u{}", x % 7);
        let rhost = format!("10.0.{}.{}", (x >> 8) % 3, (x >> 16) % 5);
        let o = if x % 3 == 0 {
            peer(1000 + (x % 2) as u32)
        } else {
            Origin::Root
        };
        let a = if o == Origin::Root {
            att(&user, Some(&rhost))
        } else {
            att(&user, None)
        };
        let mut fx = Effects::default();
        match (x >> 24) % 6 {
            0 | 1 => {
                if let Some(id) = s.e.begin(&a, o, s.now, &mut fx).attempt {
                    live.push((id, a, o));
                }
            }
            2 | 3 if !live.is_empty() => {
                let (id, a, o) = live.swap_remove((x >> 32) as usize % live.len());
                let _ =
                    s.e.fail(Some(id), &a, o, FailureKind::Password, s.now, &mut fx);
            }
            4 if !live.is_empty() => {
                let (id, a, o) = live.swap_remove((x >> 32) as usize % live.len());
                let _ = s.e.succeed(Some(id), &a, o, s.now, &mut fx);
            }
            _ => s.advance((x >> 40) % 90),
        }
        s.e.check_invariants(s.now).unwrap();
    }
}

#[test]
fn a_stack_wired_by_half_does_not_lock_out_good_logins() {
    let cfg = format!(
        "attempt_timeout = \"60s\"\n[familiar]\nenabled = false\n{}",
        rule("user", "\"user\"", 3, "1h", "1h", "")
    );
    let mut s = Sim::new(&cfg);
    let a = att("owner", None);
    // Only the preauth line is there: every good login begins and never ends.
    let mut alerts = Vec::new();
    for _ in 0..5 {
        assert!(s.begin(&a).allowed(), "never locked by its own good logins");
        s.advance(61);
        let mut fx = Effects::default();
        s.e.tick(s.now, &mut fx);
        alerts.extend(fx.alerts);
    }
    assert_eq!(
        alerts,
        [Alert::HalfWired {
            service: "sshd".into()
        }],
        "one alert"
    );
    assert_eq!(s.e.half_wired(), ["sshd"]);
    // Once the service reports an end, abandoned attempts count again: the
    // first abandoned one, this failure and the next abandoned one make 3.
    assert!(s.wrong(&a));
    assert!(s.e.half_wired().is_empty());
    s.begin(&a);
    s.advance(61);
    s.tick();
    assert_eq!(s.begin(&a).reason.kind, ReasonKind::Locked, "counted again");
}

/// A login settles only the keys it touches: another key's expiry waits for
/// the tick, and its own expired lock is lifted first, so that the new
/// failure starts a fresh budget instead of restarting the old cool-off.
#[test]
fn expiry_stays_off_the_login_path() {
    let mut s = Sim::new(&format!(
        "[familiar]\nenabled = false\n{}",
        rule("user", "\"user\"", 2, "1h", "10m", "")
    ));
    for u in ["alice", "bob"] {
        for _ in 0..2 {
            s.fail(&att(u, None), None);
        }
    }
    assert_eq!(s.e.lock_count(), 2);
    s.advance(11 * 60);
    s.events.clear();
    // carol's failure touches neither lock: both stay until the tick.
    s.fail(&att("carol", None), None);
    assert!(
        !s.events.iter().any(|e| e.kind == EventKind::Unlocked),
        "{:?}",
        s.events
    );
    assert_eq!(s.e.lock_count(), 2);
    // alice's own failure lifts her expired lock, then counts afresh.
    s.fail(&att("alice", None), None);
    let unlocked: Vec<_> = s
        .events
        .iter()
        .filter(|e| e.kind == EventKind::Unlocked)
        .map(|e| e.user.clone())
        .collect();
    assert_eq!(unlocked, [Some("alice".to_string())]);
    let alice = KeyId::new("user", [("user", "alice")]);
    let st = s.e.key(&alice).unwrap();
    assert!(st.lock().is_none());
    assert_eq!(st.failures.len(), 1);
    // begin settles too: bob may try again at once, with a fresh budget.
    let v = s.begin(&att("bob", None));
    assert!(v.allowed(), "{v:?}");
    s.tick();
    assert_eq!(s.e.lock_count(), 0);
}

/// The end of the lock the last `locked` event announced, in ms after `now`.
fn last_lock_ends_in(s: &Sim) -> u64 {
    let e = s
        .events
        .iter()
        .rev()
        .find(|e| e.kind == EventKind::Locked)
        .unwrap();
    match e.until {
        Some(Until::At(t)) => t.0 - s.now.0,
        other => panic!("{other:?}"),
    }
}

/// One failure locks a user for 10 minutes, plus up to 5 of jitter.
fn jittered() -> String {
    rule(
        "user",
        "\"user\"",
        1,
        "1h",
        "10m",
        "escalate = 1.0\njitter = \"5m\"",
    )
}

#[test]
fn jitter_blurs_each_lock_end_within_its_bound() {
    let config = jittered();
    let (base, jitter) = (600_000, 300_000);
    let ends = |seed: u64| -> Vec<u64> {
        let mut s = Sim::seeded(&config, seed);
        (0..40)
            .map(|i| {
                s.wrong(&att(&format!("u{i}"), None));
                last_lock_ends_in(&s)
            })
            .collect()
    };
    let a = ends(1);
    assert!(
        a.iter().all(|&t| (base..=base + jitter).contains(&t)),
        "{a:?}"
    );
    let distinct: std::collections::BTreeSet<_> = a.iter().collect();
    assert!(distinct.len() > 30, "spread over the window: {a:?}");
    // Another seed (another daemon start), other ends: nothing to learn
    // from one run's locks about the next's.
    assert_ne!(a, ends(2));
    // A failure while locked restarts the cool-off with a jitter of its own.
    let mut s = Sim::seeded(&config, 3);
    let bob = att("bob", None);
    s.wrong(&bob);
    s.advance(60);
    s.wrong(&bob);
    let left = match s.begin(&bob).reason.until {
        Some(Until::At(t)) => t.0 - s.now.0,
        other => panic!("{other:?}"),
    };
    assert!((base..=base + jitter).contains(&left), "{left}");
    // Without jitter, every end is exact.
    let plain = rule("user", "\"user\"", 1, "1h", "10m", "escalate = 1.0");
    let mut s = Sim::new(&plain);
    s.wrong(&att("carol", None));
    assert_eq!(last_lock_ends_in(&s), base);
}

#[test]
fn a_refused_user_reads_the_end_rounded_up_to_the_jitter() {
    let config = jittered();
    let rules = policy(&config).rules;
    let now = Time(T0);
    let mut r = Reason::plain(ReasonKind::Locked);
    r.rule = Some("user".into());
    r.until = Some(Until::At(Time(T0 + 610_000)));
    let told = crate::service::blurred(r.clone(), &rules, now);
    assert_eq!(told.until, Some(Until::At(Time(T0 + 900_000))));
    // An admin's lock, and a rule without jitter, are told as they are.
    let mut admin = r.clone();
    admin.admin = Some("left".into());
    assert_eq!(crate::service::blurred(admin.clone(), &rules, now), admin);
    let plain = policy(&rule("user", "\"user\"", 1, "1h", "10m", "")).rules;
    assert_eq!(crate::service::blurred(r.clone(), &plain, now), r);
}

#[test]
fn observe_mode_locks_and_logs_but_refuses_no_one() {
    let mut s = Sim::new(&format!(
        "mode = \"observe\"\n[deny]\nrhosts = [\"198.51.100.0/24\"]\n{}",
        rule("user", "\"user\"", 3, "1h", "1h", "")
    ));
    let a = att("alice", Some("203.0.113.9"));
    for _ in 0..3 {
        assert!(s.wrong(&a));
    }
    assert_eq!(s.count(EventKind::WouldLock), 1);
    assert_eq!(
        s.count(EventKind::Locked),
        0,
        "observe mode announced a real lock"
    );
    // The would-be lock stands, so `locks` and `explain` can show it...
    let k = s
        .events
        .iter()
        .find(|e| e.kind == EventKind::WouldLock)
        .and_then(|e| e.key.clone())
        .unwrap();
    assert_eq!(k.part("user"), Some("alice"));
    assert!(s.e.is_locked(&k, s.now));
    let ex = s.e.explain(&a, Origin::Root, s.now);
    assert!(ex.verdict.kind.allows());
    assert_eq!(ex.would.as_ref().map(|w| w.kind), Some(ReasonKind::Locked));
    assert_eq!(ex.would.and_then(|w| w.key), Some(k.clone()));
    // ...yet the next attempt goes ahead, logged as what enforcing would do.
    assert!(s.right(&a));
    assert_eq!(s.count(EventKind::WouldRefuse), 1);
    assert_eq!(s.count(EventKind::Refused), 0);
    assert!(s.e.account_lock(&a, Origin::Root, s.now).is_none());
    // The deny list is observed too.
    assert!(s.right(&att("bob", Some("198.51.100.7"))));
    let mut denied = s.events.iter().filter(|e| e.kind == EventKind::WouldRefuse);
    assert_eq!(
        denied.next_back().and_then(|e| e.reason.clone()).as_deref(),
        Some("denied")
    );
}

#[test]
fn observe_mode_is_exact_about_what_it_would_have_refused() {
    // Concurrency: with 2 places, the third attempt in flight would be busy.
    let mut s = Sim::new(&rule(
        "user",
        "\"user\"",
        2,
        "1h",
        "1h",
        "mode = \"observe\"",
    ));
    let a = att("alice", None);
    let ids: Vec<_> = (0..3).map(|_| s.begin(&a).attempt).collect();
    assert!(ids.iter().all(Option::is_some), "observe mode refused");
    let would: Vec<_> = s
        .events
        .iter()
        .filter(|e| e.kind == EventKind::WouldRefuse)
        .map(|e| e.reason.clone())
        .collect();
    assert_eq!(would, vec![Some("busy".to_string())]);
}

#[test]
fn an_observing_rule_beside_an_enforcing_one_refuses_only_by_the_enforcer() {
    let mut s = Sim::new(&format!(
        "{}{}",
        rule("watch", "\"user\"", 2, "1h", "1h", "mode = \"observe\""),
        rule("guard", "\"rhost\"", 4, "1h", "1h", "")
    ));
    let a = att("alice", Some("203.0.113.9"));
    for _ in 0..4 {
        assert!(s.wrong(&a));
    }
    assert_eq!(s.count(EventKind::WouldLock), 1);
    assert_eq!(s.count(EventKind::Locked), 1);
    let v = s.begin(&a);
    assert!(!v.allowed());
    assert_eq!(v.reason.rule.as_deref(), Some("guard"));
    // Another address: only the observed user lock stands, so it goes ahead.
    assert!(s.begin(&att("alice", Some("192.0.2.1"))).allowed());
    // The observed lock's end is logged as such, never as a real unlock
    // (the attempt left open above is abandoned and restarts it once).
    s.advance(3661);
    s.tick();
    assert_eq!(s.count(EventKind::WouldUnlock), 1);
    assert_eq!(s.count(EventKind::Unlocked), 1);
}

#[test]
fn admin_locks_are_enforced_in_observe_mode() {
    let mut s = Sim::new(&format!(
        "mode = \"observe\"\n{}",
        rule("user", "\"user\"", 3, "1h", "1h", "")
    ));
    let mut fx = Effects::default();
    s.e.admin_lock(
        &AdminLock {
            target: Field::User,
            value: "mallory".into(),
            length: None,
            reason: "left the company".into(),
            by_uid: 0,
        },
        s.now,
        &mut fx,
    );
    assert!(!s.begin(&att("mallory", None)).allowed());
}

fn scoped() -> String {
    format!(
        "{}{}{}",
        rule(
            "admins",
            "\"user\"",
            2,
            "1h",
            "1h",
            "groups = [\"sudo\"]\nusers = [\"root\"]"
        ),
        rule(
            "everyone",
            "\"user\"",
            4,
            "1h",
            "1h",
            "exclude_users = [\"ci-bot\"]\nexclude_groups = [\"svc\"]"
        ),
        "[familiar]\nenabled = false\n"
    )
}

#[test]
fn rules_scoped_to_users_and_groups_count_only_theirs() {
    let mut s = Sim::new(&scoped());
    let groups = |g: &[&str]| Some(g.iter().map(|x| x.to_string()).collect::<Vec<_>>());
    s.e.note_groups("alice", groups(&["users", "sudo"]));
    s.e.note_groups("bob", groups(&["users"]));
    s.e.note_groups("svc1", groups(&["svc"]));
    // A sudo member meets the stricter rule: locked after 2.
    let alice = att("alice", None);
    for _ in 0..2 {
        assert!(s.wrong(&alice));
    }
    let v = s.begin(&alice);
    assert_eq!(v.reason.rule.as_deref(), Some("admins"), "{v:?}");
    // Everyone else meets only the looser one.
    let bob = att("bob", None);
    for _ in 0..3 {
        assert!(s.wrong(&bob));
    }
    assert!(s.begin(&bob).allowed(), "bob met the admins' rule");
    // Excluded by name and by group: no rule counts them.
    for who in ["ci-bot", "svc1"] {
        let a = att(who, None);
        for _ in 0..6 {
            assert!(s.wrong(&a), "{who} was locked");
        }
    }
    // Root, named in `users`, is locked although lock_root is off.
    let root = att("root", None);
    for _ in 0..2 {
        assert!(s.wrong(&root));
    }
    assert!(
        !s.begin(&root).allowed(),
        "an explicit users = [\"root\"] did not hold"
    );
}

#[test]
fn an_account_database_that_cannot_answer_reads_strictly() {
    let mut s = Sim::new(&scoped());
    // No answer: the group's rule applies, the group's exclusion does not.
    s.e.note_groups("dave", None);
    let dave = att("dave", None);
    for _ in 0..2 {
        assert!(s.wrong(&dave));
    }
    assert_eq!(s.begin(&dave).reason.rule.as_deref(), Some("admins"));
    // A name that is no account reads as an account in no group.
    s.e.note_groups("nosuch", Some(Vec::new()));
    let ghost = att("nosuch", None);
    for _ in 0..3 {
        assert!(s.wrong(&ghost));
    }
    assert!(s.begin(&ghost).allowed());
}

#[test]
fn wrong_codes_count_whatever_the_rules_users() {
    let mut s = Sim::new(&scoped());
    s.e.note_groups("ci-bot", Some(Vec::new()));
    let a = att("ci-bot", None);
    let mut fx = Effects::default();
    // ci-bot is exempt from the password rules, but a wrong code still counts.
    for _ in 0..4 {
        s.e.fail(None, &a, Origin::Root, FailureKind::Totp, s.now, &mut fx)
            .unwrap();
    }
    assert!(
        !s.begin(&a).allowed(),
        "code guessing was free for an exempt user"
    );
}

/// A user rule scoped to sshd does not cover sudo, but a code guesser who
/// knows the password gets no more codes at sudo than anywhere: the
/// wrong-code rule counts them on every service, and its lock refuses there.
#[test]
fn wrong_codes_are_limited_on_a_service_no_rule_covers() {
    let mut s = Sim::new(&rule(
        "ssh",
        "\"user\"",
        10,
        "1h",
        "1h",
        "services = [\"sshd\"]",
    ));
    let mut sudo = att("alice", None);
    sudo.service = "sudo".into();
    let mut codes = 0;
    while s.begin(&sudo).allowed() && codes < 50 {
        let mut fx = Effects::default();
        s.e.fail(None, &sudo, Origin::Root, FailureKind::Totp, s.now, &mut fx)
            .unwrap();
        codes += 1;
    }
    assert_eq!(codes, 5, "wrong codes at sudo before a refusal");
    assert_eq!(s.begin(&sudo).reason.rule.as_deref(), Some(CODE_RULE));
    // Password guessing at sshd does not lock sudo: the scope still holds.
    let mut t = Sim::new(&rule(
        "ssh",
        "\"user\"",
        3,
        "1h",
        "1h",
        "services = [\"sshd\"]",
    ));
    for _ in 0..3 {
        t.wrong(&att("alice", Some("203.0.113.4")));
    }
    assert!(t.begin(&sudo).allowed(), "ssh's password lock reached sudo");
}
