//! The TOTP part of the service: deciding at authsucc, checking codes, and
//! the admin's enrollment operations. Records live in memory (few users enrol)
//! and in the store; every change is durable before it is answered.

use super::{ServiceError, TotpError, Warden};
use crate::engine::{parse_ip, source_of, Attempt, AttemptId, FailureKind, Origin, Prefixes};
use crate::logline::quote;
use crate::store::{Durability, StoreError};
use crate::time::Time;
use crate::totp::{self, CodeCheck, Need, Situation, TotpRecord};
use std::collections::HashMap;
use zeroize::Zeroizing;

/// What authsucc answers.
#[derive(Debug, PartialEq, Eq)]
pub enum SuccessOutcome {
    Recorded,
    /// Recorded, and the user should read this.
    Notice(String),
    /// Ask for a code and send it back.
    NeedCode,
    /// The password was right but the login may not go on.
    Refused(String),
}

use warden_proto::message::{grace_notice, START_AGAIN};
pub use warden_proto::message::{CODE_PROMPT, NEEDS_PROMPT, NOT_ENROLLED};

/// Random bytes for secrets, salts and recovery codes.
fn random(n: usize) -> Result<Zeroizing<Vec<u8>>, ServiceError> {
    let mut buf = Zeroizing::new(vec![0u8; n]);
    getrandom::fill(&mut buf).map_err(TotpError::NoRandomness)?;
    Ok(buf)
}

/// The source of an attempt as the lockout rules spell it.
fn source_of_attempt(config: &crate::config::Config, attempt: &Attempt) -> String {
    source_of(
        attempt.rhost.as_deref(),
        attempt.ruser.as_deref(),
        Prefixes {
            v4: config.policy.ipv4_prefix,
            v6: config.policy.ipv6_prefix,
        },
    )
}

impl Warden {
    pub(super) fn book(
        &self,
    ) -> Result<std::sync::MutexGuard<'_, HashMap<String, TotpRecord>>, ServiceError> {
        self.totp.lock().map_err(|_| ServiceError::Poisoned)
    }

    /// preauth: whether a right password would lead to a code prompt, so that
    /// the module can show the same prompt after a wrong one. The second
    /// value is what is shown after it when the login cannot succeed anyway.
    pub fn code_expected(
        &self,
        attempt: &Attempt,
        origin: Origin,
        groups: &[String],
        now: Time,
    ) -> Result<(Option<String>, Option<String>), ServiceError> {
        let need = self.totp_need(attempt, origin, groups, now)?;
        Ok(match need {
            Need::Code => (Some(CODE_PROMPT.into()), None),
            Need::Refuse => (Some(CODE_PROMPT.into()), Some(NOT_ENROLLED.into())),
            Need::Nothing | Need::Grace(_) => (None, None),
        })
    }

    fn totp_need(
        &self,
        attempt: &Attempt,
        origin: Origin,
        groups: &[String],
        now: Time,
    ) -> Result<Need, ServiceError> {
        let config = self.config();
        let source = source_of_attempt(&config, attempt);
        let book = self.book()?;
        Ok(totp::decide(
            &config.totp,
            &Situation {
                user: &attempt.user,
                service: &attempt.service,
                ip: attempt.rhost.as_deref().and_then(parse_ip),
                source: &source,
                groups,
                record: book.get(&attempt.user),
                now,
                strict: origin != Origin::Root,
            },
        ))
    }

    /// The application answered the code prompt with the password: it cannot
    /// ask for a code. The login is refused, and no wrong code is counted.
    pub async fn no_code(
        &self,
        id: Option<AttemptId>,
        attempt: &Attempt,
        origin: Origin,
        now: Time,
    ) -> Result<String, ServiceError> {
        self.apply_durably(origin, |e, fx| {
            e.refuse_after_password(id, attempt, origin, "no-code-prompt", now, fx)
        })
        .await??;
        Ok(NEEDS_PROMPT.into())
    }

    /// authsucc: the password passed. Decides whether a code is needed.
    pub async fn succeed_or_ask(
        &self,
        id: Option<AttemptId>,
        attempt: &Attempt,
        origin: Origin,
        groups: &[String],
        now: Time,
    ) -> Result<SuccessOutcome, ServiceError> {
        let need = self.totp_need(attempt, origin, groups, now)?;
        match need {
            Need::Nothing => {
                self.succeed(id, attempt, origin, now).await?;
                Ok(SuccessOutcome::Recorded)
            }
            Need::Grace(until) => {
                self.succeed(id, attempt, origin, now).await?;
                let day = until.minus(std::time::Duration::from_secs(1)).to_string();
                Ok(SuccessOutcome::Notice(grace_notice(
                    day.get(..10).unwrap_or(&day),
                )))
            }
            // Asked for a code all the same, as after a wrong password: the
            // refusal comes after it, and says the same either way.
            Need::Refuse | Need::Code => {
                let held = self
                    .apply_durably(origin, |e, _| e.await_code(id, attempt, origin, now))
                    .await??;
                Ok(if held {
                    SuccessOutcome::NeedCode
                } else {
                    SuccessOutcome::Refused(START_AGAIN.into())
                })
            }
        }
    }

    /// Checks the code typed at the prompt. Wrong codes are failures in the
    /// lockout rules; a good one records the success.
    pub async fn check_code(
        &self,
        id: Option<AttemptId>,
        attempt: &Attempt,
        origin: Origin,
        typed: &str,
        now: Time,
    ) -> Result<Option<String>, ServiceError> {
        let config = self.config();
        let source = source_of_attempt(&config, attempt);
        // An unprivileged peer's good code proves the code, not the password:
        // it never earns `remember`.
        let remember = config.totp.remember.filter(|_| origin == Origin::Root);
        let refusal = self
            .apply_durably(
                origin,
                |engine, fx| -> Result<Option<String>, ServiceError> {
                    if !engine.awaiting_code(id, attempt, origin) {
                        return Ok(Some(START_AGAIN.into()));
                    }
                    let mut book = self.book()?;
                    let Some(rec) = book.get_mut(&attempt.user).filter(|r| r.confirmed) else {
                        engine.refuse_after_password(
                            id,
                            attempt,
                            origin,
                            "totp-not-enrolled",
                            now,
                            fx,
                        )?;
                        return Ok(Some(NOT_ENROLLED.into()));
                    };
                    let checked = totp::check(rec, typed, now);
                    match checked {
                        CodeCheck::Good(step) => rec.last_step = step,
                        CodeCheck::Recovery(i) => {
                            rec.recovery.remove(i);
                        }
                        CodeCheck::Replayed | CodeCheck::Wrong => {
                            let kind = if checked == CodeCheck::Replayed {
                                FailureKind::TotpReplayed
                            } else {
                                FailureKind::Totp
                            };
                            engine.fail(id, attempt, origin, kind, now, fx)?;
                            // Nothing that a wrong password would not say.
                            return Ok(Some(String::new()));
                        }
                    }
                    if let Some(d) = remember {
                        rec.remember(&source, now.plus(d), now);
                    }
                    fx.totp.push((attempt.user.clone(), Some(rec.clone())));
                    if let CodeCheck::Recovery(_) = checked {
                        self.log.info(&format!(
                            "totp-recovery-used user={} left={}",
                            quote(&attempt.user),
                            rec.recovery.len()
                        ));
                    }
                    engine.succeed(id, attempt, origin, now, fx)?;
                    Ok(None)
                },
            )
            .await??;
        Ok(refusal)
    }

    /// Creates an unconfirmed enrollment, replacing an unconfirmed one. Returns
    /// the otpauth URI and the recovery codes, shown once.
    pub async fn totp_enroll(
        &self,
        user: &str,
        by_uid: u32,
        now: Time,
    ) -> Result<(Zeroizing<String>, Vec<Zeroizing<String>>), ServiceError> {
        let issuer = self.config().totp.issuer.clone();
        let bytes = random(20 + 16 + 10 * 12)?;
        let rx = {
            let mut book = self.book()?;
            if book.get(user).is_some_and(|r| r.confirmed) {
                return Err(TotpError::AlreadyConfirmed(user.to_string()).into());
            }
            let e = totp::new_enrollment(user, &issuer, &bytes, now).map_err(TotpError::Record)?;
            book.insert(user.to_string(), e.record.clone());
            let mut fx = crate::engine::Effects::default();
            fx.totp.push((user.to_string(), Some(e.record.clone())));
            (
                self.writer.submit(fx, Durability::Immediate),
                e.uri,
                e.recovery,
            )
        };
        self.durable(rx.0).await?;
        self.log.info(&format!(
            "totp-enrolled user={} by=uid={by_uid} confirmed=no",
            quote(user)
        ));
        Ok((rx.1, rx.2))
    }

    /// Activates an enrollment once a first code checks out.
    pub async fn totp_confirm(
        &self,
        user: &str,
        typed: &str,
        by_uid: u32,
        now: Time,
    ) -> Result<(), ServiceError> {
        let rx = {
            let mut book = self.book()?;
            let Some(rec) = book.get_mut(user) else {
                return Err(TotpError::NotEnrolled(user.to_string()).into());
            };
            if rec.confirmed {
                return Err(TotpError::AlreadyActive(user.to_string()).into());
            }
            match totp::check(rec, typed, now) {
                CodeCheck::Good(step) => {
                    rec.confirmed = true;
                    rec.last_step = step;
                }
                _ => return Err(TotpError::WrongCode.into()),
            }
            let mut fx = crate::engine::Effects::default();
            fx.totp.push((user.to_string(), Some(rec.clone())));
            self.writer.submit(fx, Durability::Immediate)
        };
        self.durable(rx).await?;
        self.log.info(&format!(
            "totp-confirmed user={} by=uid={by_uid}",
            quote(user)
        ));
        Ok(())
    }

    /// `(confirmed, recovery codes left, created)`, or `None` when not enrolled.
    pub fn totp_status(&self, user: &str) -> Result<Option<(bool, u32, Time)>, ServiceError> {
        Ok(self.book()?.get(user).map(|r| {
            (
                r.confirmed,
                u32::try_from(r.recovery.len()).unwrap_or(0),
                r.created,
            )
        }))
    }

    pub async fn totp_remove(&self, user: &str, by_uid: u32) -> Result<bool, ServiceError> {
        let rx = {
            let mut book = self.book()?;
            if book.remove(user).is_none() {
                return Ok(false);
            }
            let mut fx = crate::engine::Effects::default();
            fx.totp.push((user.to_string(), None));
            self.writer.submit(fx, Durability::Immediate)
        };
        self.durable(rx).await?;
        self.log.info(&format!(
            "totp-removed user={} by=uid={by_uid}",
            quote(user)
        ));
        Ok(true)
    }

    /// Replaces the user's recovery codes; the old ones stop working. Someone
    /// who is not an admin must give a current code from the authenticator:
    /// new codes are a second factor, and whoever holds only the user's
    /// session must not mint them. A wrong code counts as a wrong code at a
    /// login does, and a locked user is refused.
    pub async fn totp_new_recovery(
        &self,
        user: &str,
        by_uid: u32,
        admin: bool,
        code: &str,
        now: Time,
    ) -> Result<Vec<Zeroizing<String>>, ServiceError> {
        let bytes = random(10 * 12)?;
        if !admin {
            self.prove_code(user, by_uid, code, now).await?;
        }
        let (rx, codes) = {
            let mut book = self.book()?;
            let Some(rec) = book.get_mut(user) else {
                return Err(TotpError::NotEnrolled(user.to_string()).into());
            };
            let codes = totp::recovery_codes(rec, &bytes).map_err(TotpError::Record)?;
            let mut fx = crate::engine::Effects::default();
            fx.totp.push((user.to_string(), Some(rec.clone())));
            (self.writer.submit(fx, Durability::Immediate), codes)
        };
        self.durable(rx).await?;
        self.log.info(&format!(
            "totp-recovery-codes-replaced user={} by=uid={by_uid}",
            quote(user)
        ));
        Ok(codes)
    }

    /// Checks a current TOTP code (not a recovery code) for a self-service
    /// call, counting a wrong one in the user's lockout rules.
    async fn prove_code(
        &self,
        user: &str,
        by_uid: u32,
        code: &str,
        now: Time,
    ) -> Result<(), ServiceError> {
        let attempt = Attempt {
            service: "wardenctl".into(),
            user: user.to_string(),
            rhost: None,
            tty: None,
            ruser: None,
        };
        let origin = Origin::Peer(by_uid);
        let refused = self
            .apply_durably(origin, |engine, fx| -> Result<Option<String>, ServiceError> {
                if engine.account_lock(&attempt, origin, now).is_some() {
                    return Ok(Some(format!(
                        "{user} is locked after too many wrong passwords or codes; ask an admin, or wait"
                    )));
                }
                let mut book = self.book()?;
                let Some(rec) = book.get_mut(user).filter(|r| r.confirmed) else {
                    return Ok(Some(format!(
                        "{user} has no confirmed code; an admin must replace the recovery codes"
                    )));
                };
                match totp::check(rec, code, now) {
                    CodeCheck::Good(step) => {
                        rec.last_step = step;
                        fx.totp.push((user.to_string(), Some(rec.clone())));
                        Ok(None)
                    }
                    _ => {
                        engine.fail(None, &attempt, origin, FailureKind::Totp, now, fx)?;
                        Ok(Some(
                            "new recovery codes need a current code from your authenticator app; that one is wrong or used"
                                .into(),
                        ))
                    }
                }
            })
            .await??;
        match refused {
            None => Ok(()),
            Some(why) => Err(ServiceError::NotAuthorized(why)),
        }
    }

    async fn durable(&self, rx: super::Durable) -> Result<(), ServiceError> {
        rx.await.unwrap_or(Err(StoreError::WriterGone))?;
        Ok(())
    }
}
