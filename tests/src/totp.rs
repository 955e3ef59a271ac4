//! TOTP helpers: enroll through wardenctl, and codes from oathtool, an
//! implementation independent of ours.

use crate::bus::wardenctl;
use std::process::Command;

pub struct Enrolled {
    pub secret: String,
    pub uri: String,
    pub recovery: Vec<String>,
}

/// Enrolls `user` as root over the bus; `confirm` also activates it with the
/// code of the previous step (so the current step stays unused for a login).
pub fn enroll(bus_address: &str, user: &str, confirm: bool) -> Enrolled {
    let c = wardenctl(bus_address, None, &["totp", "enroll", user, "--json"]);
    assert_eq!(c.code, 0, "{c:?}");
    let v: serde_json::Value =
        serde_json::from_str(&c.stdout).unwrap_or_else(|e| panic!("{e}: {}", c.stdout));
    let uri = v["uri"].as_str().unwrap_or_default().to_string();
    let secret = uri
        .split(['?', '&'])
        .find_map(|p| p.strip_prefix("secret="))
        .unwrap_or_else(|| panic!("no secret in {uri}"))
        .to_string();
    let recovery = v["recovery_codes"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|c| c.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    if confirm {
        let code = code_at(&secret, now() - 30);
        let c = wardenctl(bus_address, None, &["totp", "confirm", user, &code]);
        assert_eq!(c.code, 0, "{c:?}");
    }
    Enrolled {
        secret,
        uri,
        recovery,
    }
}

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// The code for the step holding `unix`, from `oathtool --totp -b`.
pub fn code_at(secret: &str, unix: i64) -> String {
    let out = Command::new("oathtool")
        .args(["--totp", "-b", "-N", &format!("@{unix}"), secret])
        .output()
        .unwrap_or_else(|e| panic!("oathtool: {e}"));
    assert!(
        out.status.success(),
        "oathtool failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Waits until at least `margin` seconds remain in the current 30 s step, so a
/// test's "one step off" cannot slide into the next step under it.
pub fn fresh_step(margin: i64) {
    let left = 30 - now().rem_euclid(30);
    if left < margin {
        std::thread::sleep(std::time::Duration::from_secs((left + 1) as u64));
    }
}
