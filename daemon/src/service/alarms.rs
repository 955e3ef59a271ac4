//! Loud, rate-limited warnings about the daemon's own health: a full table,
//! crowded attempts, a half-wired stack, a caller over budget.

use super::limits::AlertGate;
use crate::engine::Alert;
use crate::log::Log;
use crate::logline;
use crate::time::Time;
use std::sync::Arc;

pub struct Alarms {
    log: Arc<Log>,
    gate: AlertGate,
}

impl Alarms {
    pub fn new(log: Arc<Log>) -> Alarms {
        Alarms {
            log,
            gate: AlertGate::default(),
        }
    }

    pub fn log(&self) -> &Log {
        &self.log
    }

    /// Logs a line at most once a minute per kind, saying how many were held.
    pub fn say(&self, kind: &'static str, now: Time, line: &str) {
        if let Some(held) = self.gate.admit(kind, now) {
            if held > 0 {
                self.log.warn(&format!("{line} repeated={held}"));
            } else {
                self.log.warn(line);
            }
        }
    }

    pub fn raise(&self, a: &Alert, now: Time) {
        match a {
            Alert::TableFull {
                keys,
                max,
                evicted_keys,
                evicted_locks,
            } => self.say(
                "table-full",
                now,
                &format!(
                    "table-full keys={keys} max_tracked_keys={max} evicted_keys={evicted_keys} evicted_locks={evicted_locks} action=\"raise max_tracked_keys, or look for a flood with wardenctl locks\""
                ),
            ),
            Alert::Crowded { in_flight, uid } => {
                let who = uid.map_or("all".to_string(), |u| format!("uid={u}"));
                self.say(
                    "crowded",
                    now,
                    &format!(
                        "attempts-crowded in_flight={in_flight} limit_hit={who} action=\"attempts refused until some end; see max_attempts_in_flight and max_attempts_per_uid\""
                    ),
                );
            }
            // Once per service (the engine raises it once): not rate-limited.
            Alert::HalfWired { service } => self.log.warn(&format!(
                "service-half-wired service={} abandoned={} action=\"its PAM stack begins attempts and never reports how they end: add the authfail and authsucc lines (wardenctl doctor shows which); until then its abandoned attempts are not counted\"",
                logline::quote(service),
                crate::engine::HALF_WIRED_AFTER
            )),
        }
    }
}
