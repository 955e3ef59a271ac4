//! What the store keeps per enrolled user. The secret never leaves the daemon
//! except once, in the enrollment URI given to the admin or user who asked.

use crate::time::Time;
use serde::{Deserialize, Serialize};
use zeroize::Zeroize;

#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct TotpRecord {
    /// 20 random bytes (RFC 4226's recommended 160 bits).
    pub secret: Vec<u8>,
    /// Codes are asked for only once a first code has been confirmed.
    pub confirmed: bool,
    pub created: Time,
    /// The last accepted time step: a step is accepted at most once.
    pub last_step: u64,
    /// Salt of the recovery code hashes.
    pub salt: Vec<u8>,
    /// HMAC-SHA256(salt, code) of each unused recovery code.
    pub recovery: Vec<Vec<u8>>,
    /// Sources (rhost prefixes) spared the code until the given time.
    pub remembered: Vec<(String, Time)>,
}

impl TotpRecord {
    pub fn remembers(&self, source: &str, now: Time) -> bool {
        self.remembered
            .iter()
            .any(|(s, until)| s == source && *until > now)
    }

    pub fn remember(&mut self, source: &str, until: Time, now: Time) {
        self.remembered.retain(|(s, t)| s != source && *t > now);
        self.remembered.push((source.to_string(), until));
    }
}

impl std::fmt::Debug for TotpRecord {
    /// Never prints the secret or the hashes.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TotpRecord")
            .field("confirmed", &self.confirmed)
            .field("created", &self.created)
            .field("recovery_left", &self.recovery.len())
            .finish_non_exhaustive()
    }
}

impl Drop for TotpRecord {
    fn drop(&mut self) {
        self.secret.zeroize();
        self.salt.zeroize();
    }
}
