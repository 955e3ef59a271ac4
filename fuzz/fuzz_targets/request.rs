//! Request handling without I/O: decoded requests from root and from
//! unprivileged peers, driven through the engine with time moving as the
//! input says, against a model of what each key has been charged.
//!
//! The invariant: no key ever sees more than its rule's `limit` password
//! checks by root peers (sshd, sudo, su) that did not end in a success, since
//! the last success that reset it, whatever the sequence. An unprivileged
//! peer's word resets nothing, so its successes never make room. The one
//! exception is by design: a service that has never reported how an attempt
//! ended is wired by half, and from its second abandoned attempt on they
//! stop counting (wardend raises an alert and `wardenctl doctor` names it);
//! the model follows the same rule.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::collections::{HashMap, HashSet};
use std::path::Path;
use warden_daemon::config::{Config, Field};
use warden_daemon::engine::{Attempt, AttemptId, Effects, Engine, FailureKind, KeyId, Origin};
use warden_daemon::time::Time;
use warden_proto::{decode_request, AttemptFields, RequestBody};

/// Long windows and permanent locks, so that only successes reset a key and
/// the count of guesses is the whole story; small limits, so they are reached.
const POLICY: &str = r#"
max_keys_per_user = 4
[aggregate]
locks = 3
[[rule]]
name = "user"
track = ["user"]
limit = 3
window = "100d"
lockout = "permanent"
[[rule]]
name = "rhost"
track = ["rhost"]
limit = 5
window = "100d"
lockout = "permanent"
[[rule]]
name = "pair"
track = ["user", "tty"]
limit = 2
window = "100d"
lockout = "permanent"
"#;

struct Model {
    limits: HashMap<String, (u32, bool)>,
    /// Attempts in flight, root's and peers', and the keys each holds a
    /// place on: a root success on any of them resets its keys.
    live: HashMap<AttemptId, Vec<KeyId>>,
    /// Per key, the root attempts charged to it: in flight, or ended without
    /// a success since the key was last reset.
    charged: HashMap<KeyId, HashSet<AttemptId>>,
    /// Each attempt's origin and service.
    begun_as: HashMap<AttemptId, (Origin, String)>,
    /// Per service: whether a root attempt of it was ever ended by a report,
    /// and how many were abandoned before that.
    wiring: HashMap<String, (bool, u32)>,
}

/// The engine's `HALF_WIRED_AFTER` and its cap on services followed.
const HALF_WIRED_AFTER: u32 = 2;
const MAX_SERVICES: usize = 1024;

impl Model {
    fn begun(&mut self, id: AttemptId, keys: Vec<KeyId>, origin: Origin, service: &str) {
        self.begun_as.insert(id, (origin, service.to_string()));
        if origin != Origin::Root {
            self.live.insert(id, keys);
            return;
        }
        for k in &keys {
            let set = self.charged.entry(k.clone()).or_default();
            set.insert(id);
            let (limit, _) = self
                .limits
                .get(k.rule())
                .copied()
                .unwrap_or((u32::MAX, false));
            assert!(
                set.len() <= limit as usize,
                "{k}: {} checks against a limit of {limit}",
                set.len()
            );
        }
        self.live.insert(id, keys);
    }

    fn succeeded(&mut self, id: AttemptId) {
        let Some(keys) = self.live.remove(&id) else {
            return;
        };
        for k in keys {
            let tracks_user = self.limits.get(k.rule()).is_some_and(|(_, u)| *u);
            if let Some(set) = self.charged.get_mut(&k) {
                set.remove(&id);
                if tracks_user {
                    let live = &self.live;
                    set.retain(|a| live.contains_key(a));
                }
            }
        }
    }

    /// Forgets what ended on every key of `user` in a rule that tracks users.
    fn reset_user(&mut self, user: &str) {
        let live = &self.live;
        for (k, set) in self.charged.iter_mut() {
            let tracks_user = self.limits.get(k.rule()).is_some_and(|(_, u)| *u);
            if tracks_user && k.part("user") == Some(user) {
                set.retain(|a| live.contains_key(a));
            }
        }
    }

    /// A report ended a live attempt: its service, if root's, is wired.
    fn reported(&mut self, id: AttemptId) {
        if let Some((Origin::Root, service)) = self.begun_as.get(&id) {
            if self.wiring.contains_key(service) || self.wiring.len() < MAX_SERVICES {
                self.wiring.insert(service.clone(), (true, 0));
            }
        }
    }

    /// Attempts the engine let go by itself (abandoned), in deadline order
    /// (which is begin order here): charged, unless their service is past
    /// the half-wired line.
    fn sync(&mut self, engine: &Engine) {
        let mut gone: Vec<AttemptId> = self
            .live
            .keys()
            .filter(|id| engine.pending_keys(**id).is_none())
            .copied()
            .collect();
        gone.sort();
        for id in gone {
            let uncounted = match self.begun_as.get(&id) {
                Some((Origin::Root, service)) => {
                    if !self.wiring.contains_key(service) && self.wiring.len() >= MAX_SERVICES {
                        false
                    } else {
                        let w = self.wiring.entry(service.clone()).or_default();
                        if w.0 {
                            false
                        } else {
                            w.1 = w.1.saturating_add(1);
                            w.1 >= HALF_WIRED_AFTER
                        }
                    }
                }
                _ => false,
            };
            if uncounted {
                for set in self.charged.values_mut() {
                    set.remove(&id);
                }
            }
            self.ended(id);
        }
    }

    /// Ended without a success (failed, or abandoned): stays charged.
    fn ended(&mut self, id: AttemptId) {
        self.live.remove(&id);
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(config) = Config::parse(POLICY, Path::new("fuzz.toml")) else {
        return;
    };
    let limits = config
        .policy
        .rules
        .iter()
        .map(|r| (r.name.clone(), (r.limit, r.tracks(Field::User))))
        .collect();
    let mut engine = Engine::new(config.policy, 1);
    let mut model = Model {
        limits,
        live: HashMap::new(),
        charged: HashMap::new(),
        begun_as: HashMap::new(),
        wiring: HashMap::new(),
    };
    let mut now = Time(1_800_000_000_000);
    let mut ids: Vec<(AttemptId, Origin)> = Vec::new();
    // The input is a sequence of (length, step, origin, body) records.
    let mut rest = data;
    while rest.len() > 3 {
        let len = usize::from(rest[0]).min(rest.len() - 3);
        let step = u64::from(rest[1]);
        let origin = match rest[2] % 3 {
            0 => Origin::Root,
            n => Origin::Peer(1000 + u32::from(n)),
        };
        let (body, tail) = rest[3..].split_at(len);
        rest = tail;
        now = Time(now.0 + step * 1000);
        let mut fx = Effects::default();
        // Time's own work first (attempts abandoned at their deadline), so the
        // model sees it in the order the engine does it.
        engine.tick(now, &mut fx);
        model.sync(&engine);
        let pick = |ids: &Vec<(AttemptId, Origin)>| {
            ids.get(usize::from(step as u8) % ids.len().max(1))
                .map(|(id, _)| *id)
        };
        // As the socket handler does: a peer acts for its own name, with no
        // rhost, tty or invoking user.
        let attempt = |f: AttemptFields| -> Option<Attempt> {
            let mut a = f.validate().ok()?;
            // Root attempts often name a peer's own user, so that what a peer
            // does to its own keys meets root's checks on them.
            if origin == Origin::Root {
                match a.user.as_bytes()[0] % 4 {
                    0 => a.user = "p1001".into(),
                    1 => a.user = "p1002".into(),
                    _ => {}
                }
            }
            if let Origin::Peer(uid) = origin {
                a.user = format!("p{uid}");
                a.rhost = None;
                a.tty = None;
                a.ruser = None;
            }
            Some(a)
        };
        let trace = std::env::var_os("FUZZ_TRACE").is_some();
        if trace {
            eprintln!("t+{step} {origin:?} {:?}", decode_request(body));
        }
        match decode_request(body) {
            Ok(RequestBody::Begin(f)) => {
                if let Some(a) = attempt(f) {
                    let v = engine.begin(&a, origin, now, &mut fx);
                    if trace {
                        eprintln!("  begin {a:?} -> {v:?}");
                    }
                    if let Some(id) = v.attempt {
                        ids.push((id, origin));
                        let keys = engine
                            .pending_keys(id)
                            .map(<[KeyId]>::to_vec)
                            .unwrap_or_default();
                        model.begun(id, keys, origin, &a.service);
                    }
                }
            }
            Ok(RequestBody::Fail { fields, .. }) => {
                if let Some(a) = attempt(fields) {
                    let id = pick(&ids);
                    let live = id.is_some_and(|id| engine.pending_keys(id).is_some());
                    if engine
                        .fail(id, &a, origin, FailureKind::Password, now, &mut fx)
                        .is_ok()
                    {
                        if let (true, Some(id)) = (live, id) {
                            model.reported(id);
                        }
                        id.into_iter().for_each(|id| model.ended(id));
                    }
                }
            }
            Ok(RequestBody::Succeed { fields, .. }) => {
                if let Some(a) = attempt(fields) {
                    let id = pick(&ids);
                    let live = id.is_some_and(|id| engine.pending_keys(id).is_some());
                    let ok = engine.succeed(id, &a, origin, now, &mut fx).is_ok();
                    if let (true, true, Some(id)) = (ok, live, id) {
                        model.reported(id);
                    }
                    match (ok, live, id, origin) {
                        (true, true, Some(id), Origin::Root) => model.succeeded(id),
                        // A peer's word resets nothing.
                        (true, true, Some(id), Origin::Peer(_)) => model.ended(id),
                        // A root success for an attempt no longer in flight (a
                        // slow typist) resets the user's keys afresh.
                        (true, false, _, Origin::Root) => model.reset_user(&a.user),
                        _ => {}
                    }
                }
            }
            Ok(RequestBody::Code { fields, .. }) => {
                if let Some(a) = attempt(fields) {
                    let id = pick(&ids);
                    if engine.await_code(id, &a, origin, now).unwrap_or(false)
                        && engine
                            .fail(id, &a, origin, FailureKind::Totp, now, &mut fx)
                            .is_ok()
                    {
                        id.into_iter().for_each(|id| {
                            model.reported(id);
                            model.ended(id);
                        });
                    }
                }
            }
            _ => engine.tick(now, &mut fx),
        }
        model.sync(&engine);
        if let Err(e) = engine.check_invariants(now) {
            panic!("{e}");
        }
    }
    let mut fx = Effects::default();
    engine.purge(now, &mut fx);
});
