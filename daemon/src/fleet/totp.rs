//! TOTP shared by the fleet: one record per user in Redis, sealed by the
//! hosts with the fleet's key (ChaCha20-Poly1305, the user name as
//! associated data, so a record cannot be moved to another user), and each
//! time step accepted once per user across every host. Each host keeps a
//! copy of what it last read or wrote in its own store, which is what it
//! checks while Redis is away.

use super::{FleetBackend, FleetError};
use crate::config::Fleet;
use crate::service::backend::Backend;
use crate::service::{CodeOutcome, ServiceError};
use crate::time::Time;
use crate::totp::{self, Spent, TotpRecord};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// The systemd credential the key is read from when `totp_key_file` is not set.
pub const KEY_CREDENTIAL: &str = "fleet-totp-key";

const AD: &[u8] = b"warden-totp-v1\0";

pub struct Sealer {
    cipher: ChaCha20Poly1305,
}

impl Sealer {
    /// The fleet's key, or `None` when none is configured (records then
    /// stay on each host).
    pub fn load(fleet: &Fleet) -> Result<Option<Sealer>, FleetError> {
        let Some(text) = super::secret::read(
            fleet.totp_key_file.as_deref(),
            KEY_CREDENTIAL,
            "the fleet's TOTP key",
        )?
        else {
            return Ok(None);
        };
        let bytes = Zeroizing::new(crate::hex::decode(text.trim()).unwrap_or_default());
        if bytes.len() != 32 {
            return Err(FleetError::Config(format!(
                "the fleet's TOTP key ({}) must hold 32 bytes in hex (64 characters); make one with: openssl rand -hex 32",
                fleet
                    .totp_key_file
                    .as_ref()
                    .map_or_else(|| format!("the credential {KEY_CREDENTIAL}"), |p| p.display().to_string())
            )));
        }
        Ok(Some(Sealer {
            cipher: ChaCha20Poly1305::new(Key::from_slice(&bytes)),
        }))
    }

    fn ad(user: &str) -> Vec<u8> {
        let mut ad = AD.to_vec();
        ad.extend_from_slice(user.as_bytes());
        ad
    }

    /// nonce ‖ ciphertext, in hex.
    pub fn seal(&self, user: &str, rec: &TotpRecord) -> Result<String, FleetError> {
        let plain =
            Zeroizing::new(serde_json::to_vec(rec).map_err(|e| FleetError::Reply(e.to_string()))?);
        let mut nonce = [0u8; 12];
        getrandom::fill(&mut nonce)
            .map_err(|e| FleetError::Config(format!("no randomness: {e}")))?;
        let ct = self
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: &plain,
                    aad: &Sealer::ad(user),
                },
            )
            .map_err(|_| FleetError::Reply("cannot seal a TOTP record".into()))?;
        Ok(crate::hex::encode(&[&nonce[..], &ct].concat()))
    }

    pub fn open(&self, user: &str, hex: &str) -> Result<TotpRecord, FleetError> {
        let bytes = crate::hex::decode(hex).unwrap_or_default();
        if bytes.len() < 12 + 16 {
            return Err(FleetError::Reply(format!(
                "{user}'s TOTP record is truncated"
            )));
        }
        let (nonce, ct) = bytes.split_at(12);
        let plain = Zeroizing::new(
            self.cipher
                .decrypt(
                    Nonce::from_slice(nonce),
                    Payload {
                        msg: ct,
                        aad: &Sealer::ad(user),
                    },
                )
                .map_err(|_| {
                    FleetError::Reply(format!(
                        "{user}'s TOTP record does not open with this host's key: another fleet key, or a record moved from another user"
                    ))
                })?,
        );
        serde_json::from_slice(&plain).map_err(|e| FleetError::Reply(e.to_string()))
    }
}

#[derive(Serialize)]
struct PutArg<'a> {
    p: &'a str,
    user: &'a str,
    old: &'a str,
    new: &'a str,
}

#[derive(Serialize)]
struct StepArg<'a> {
    p: &'a str,
    user: &'a str,
    step: u64,
}

#[derive(Deserialize)]
struct OkOut {
    #[serde(default)]
    ok: bool,
}

fn svc(e: FleetError) -> ServiceError {
    ServiceError::Unavailable(e.to_string())
}

impl FleetBackend {
    pub(super) fn shares_totp(&self) -> bool {
        self.sealer.is_some() && self.up()
    }

    /// The user's record as sealed in Redis, and opened; its replay marker
    /// folded in.
    pub(super) async fn totp_get(
        &self,
        user: &str,
    ) -> Result<Option<(String, TotpRecord)>, FleetError> {
        let Some(sealer) = &self.sealer else {
            return Ok(None);
        };
        let mut cmd = redis::cmd("HGET");
        cmd.arg(self.key("totp")).arg(user);
        let Some(hex): Option<String> = self.link.query(cmd).await? else {
            return Ok(None);
        };
        let mut rec = sealer.open(user, &hex)?;
        let mut cmd = redis::cmd("GET");
        cmd.arg(self.key(&format!("tstep:{user}")));
        let marker: Option<u64> = self.link.query(cmd).await?;
        rec.last_step = rec.last_step.max(marker.unwrap_or(0));
        Ok(Some((hex, rec)))
    }

    /// Replaces the record if it is still `old`; false when another host
    /// changed it first.
    pub(super) async fn totp_put(
        &self,
        user: &str,
        old: &str,
        new: Option<&TotpRecord>,
    ) -> Result<bool, FleetError> {
        let Some(sealer) = &self.sealer else {
            return Ok(false);
        };
        let new = match new {
            Some(r) => sealer.seal(user, r)?,
            None => String::new(),
        };
        let arg = PutArg {
            p: self.prefix(),
            user,
            old,
            new: &new,
        };
        let out: OkOut = self.link.call("warden_totp_put", &arg).await?;
        Ok(out.ok)
    }

    /// Claims a time step for the user, fleet-wide; false when any host
    /// has accepted it (or a later one) already.
    async fn claim_step(&self, user: &str, step: u64) -> Result<bool, FleetError> {
        let arg = StepArg {
            p: self.prefix(),
            user,
            step,
        };
        let out: OkOut = self.link.call("warden_totp_step", &arg).await?;
        Ok(out.ok)
    }

    /// Keeps this host's copy in step, for an outage.
    pub(super) async fn totp_mirror(&self, user: &str, rec: Option<TotpRecord>) {
        let _ = self
            .local
            .totp_change(
                user,
                Box::new(move |cur| {
                    let changed = *cur != rec;
                    *cur = rec;
                    Ok(changed)
                }),
            )
            .await;
    }

    /// Checks a typed code against the fleet's record.
    pub(super) async fn fleet_verify(
        &self,
        user: &str,
        typed: &str,
        remember: Option<&(String, Time)>,
        now: Time,
    ) -> Result<CodeOutcome, ServiceError> {
        for _ in 0..4 {
            let Some((hex, mut rec)) = self.totp_get(user).await.map_err(svc)? else {
                return Ok(CodeOutcome::NotEnrolled);
            };
            if !rec.confirmed {
                return Ok(CodeOutcome::NotEnrolled);
            }
            let recovery_left = match totp::spend(&mut rec, typed, now) {
                Spent::Code(step) => {
                    // The marker decides, whichever host gets there first;
                    // a record whose code was replayed is never stored.
                    if !self.claim_step(user, step).await.map_err(svc)? {
                        return Ok(CodeOutcome::Replayed);
                    }
                    None
                }
                Spent::Recovery(left) => Some(left),
                Spent::Replayed => return Ok(CodeOutcome::Replayed),
                Spent::Wrong => return Ok(CodeOutcome::Wrong),
            };
            if let Some((source, until)) = remember {
                rec.remember(source, *until, now);
            }
            let stored = self.totp_put(user, &hex, Some(&rec)).await.map_err(svc)?;
            if stored {
                self.totp_mirror(user, Some(rec)).await;
                return Ok(CodeOutcome::Good { recovery_left });
            }
            if recovery_left.is_none() {
                // The step is claimed: the code is good whoever wrote last.
                return Ok(CodeOutcome::Good { recovery_left });
            }
            // A recovery code is spent only by the write that removes it.
        }
        Err(ServiceError::Invalid(
            "the TOTP record kept changing on other hosts; try again".into(),
        ))
    }
}
