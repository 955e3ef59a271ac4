//! Request handling without I/O: decoded requests driven through the engine
//! under the default policy, with time moving as the input says.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;
use warden_daemon::config::Config;
use warden_daemon::engine::{AttemptId, Effects, Engine, FailureKind};
use warden_daemon::time::Time;
use warden_proto::{decode_request, RequestBody};

fuzz_target!(|data: &[u8]| {
    let Ok(config) = Config::parse("", Path::new("fuzz.toml")) else {
        return;
    };
    let mut engine = Engine::new(config.policy, 1);
    let mut now = Time(1_800_000_000_000);
    let mut ids: Vec<AttemptId> = Vec::new();
    // The input is a sequence of length-prefixed requests.
    let mut rest = data;
    while rest.len() > 2 {
        let len = usize::from(rest[0]).min(rest.len() - 2);
        let step = u64::from(rest[1]);
        let (body, tail) = rest[2..].split_at(len);
        rest = tail;
        now = Time(now.0 + step * 1000);
        let mut fx = Effects::default();
        let pick =
            |ids: &Vec<AttemptId>| ids.get(usize::from(step as u8) % ids.len().max(1)).copied();
        match decode_request(body) {
            Ok(RequestBody::Begin(f)) => {
                if let Ok(a) = f.validate() {
                    if let Some(id) = engine.begin(&a, now, &mut fx).attempt {
                        ids.push(id);
                    }
                }
            }
            Ok(RequestBody::Fail { fields, .. }) => {
                if let Ok(a) = fields.validate() {
                    let _ = engine.fail(pick(&ids), &a, FailureKind::Password, now, &mut fx);
                }
            }
            Ok(RequestBody::Succeed { fields, .. }) => {
                if let Ok(a) = fields.validate() {
                    let _ = engine.succeed(pick(&ids), &a, now, &mut fx);
                }
            }
            Ok(RequestBody::Code { fields, .. }) => {
                if let Ok(a) = fields.validate() {
                    let _ = engine.await_code(pick(&ids), &a, now);
                    let _ = engine.fail(pick(&ids), &a, FailureKind::Totp, now, &mut fx);
                }
            }
            _ => engine.tick(now, &mut fx),
        }
    }
    let mut fx = Effects::default();
    engine.purge(now, &mut fx);
});
