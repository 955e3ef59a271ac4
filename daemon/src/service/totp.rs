//! The TOTP part of the service: deciding at authsucc, checking codes, and
//! the admin's enrollment operations. The backend keeps the records and
//! checks codes atomically with the lockout; every change is durable before
//! it is answered.

use super::backend::{CodeEntry, CodeVerdict, Proof};
use super::{ServiceError, TotpError, Warden};
use crate::engine::{parse_ip, source_of, Attempt, AttemptId, Origin, Prefixes};
use crate::logline::quote;
use crate::time::Time;
use crate::totp::{self, CodeCheck, Need, Situation};
use zeroize::Zeroizing;

/// What authsucc answers.
#[derive(Debug, PartialEq, Eq)]
pub enum SuccessOutcome {
    Recorded,
    /// Recorded, inside the grace period: the user should read that a code
    /// is needed from this day (YYYY-MM-DD) on.
    Grace(String),
    /// Ask for a code and send it back.
    NeedCode,
    /// The password was right but the login may not go on.
    Refused(String),
}

/// What preauth learns of the attempt's end.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Expected {
    /// The code prompt a right password would lead to.
    pub prompt: Option<String>,
    /// What follows that prompt when the login cannot succeed anyway.
    pub refusal: Option<String>,
    /// A right password leads to nothing but `Recorded`.
    pub quiet_success: bool,
}

use warden_proto::message::START_AGAIN;
pub use warden_proto::message::{CODE_PROMPT, NEEDS_PROMPT, NOT_ENROLLED};

/// Random bytes for secrets, salts and recovery codes.
fn random(n: usize) -> Result<Zeroizing<Vec<u8>>, ServiceError> {
    let mut buf = Zeroizing::new(vec![0u8; n]);
    getrandom::fill(&mut buf).map_err(TotpError::NoRandomness)?;
    Ok(buf)
}

/// The source of an attempt as the lockout rules spell it.
pub(super) fn source_of_attempt(config: &crate::config::Config, attempt: &Attempt) -> String {
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
    /// preauth: what a right password would lead to, so that the module can
    /// show the same code prompt after a wrong one, and need not wait for an
    /// answer to a success that can lead to nothing else.
    pub async fn code_expected(
        &self,
        attempt: &Attempt,
        origin: Origin,
        groups: &[String],
        now: Time,
    ) -> Result<Expected, ServiceError> {
        let need = self.totp_need(attempt, origin, groups, now).await?;
        let (prompt, refusal) = match need {
            Need::Code => (Some(CODE_PROMPT.into()), None),
            Need::Refuse => (Some(CODE_PROMPT.into()), Some(NOT_ENROLLED.into())),
            Need::Nothing | Need::Grace(_) => (None, None),
        };
        Ok(Expected {
            prompt,
            refusal,
            quiet_success: need == Need::Nothing,
        })
    }

    async fn totp_need(
        &self,
        attempt: &Attempt,
        origin: Origin,
        groups: &[String],
        now: Time,
    ) -> Result<Need, ServiceError> {
        Ok(self.totp_need_why(attempt, origin, groups, now).await?.0)
    }

    /// The decision, and the policy line behind it (for `explain`).
    pub(super) async fn totp_need_why(
        &self,
        attempt: &Attempt,
        origin: Origin,
        groups: &[String],
        now: Time,
    ) -> Result<(Need, &'static str), ServiceError> {
        let config = self.config();
        let source = source_of_attempt(&config, attempt);
        let record = self.backend.totp_record(&attempt.user).await?;
        Ok(totp::decide_why(
            &config.totp,
            &Situation {
                user: &attempt.user,
                service: &attempt.service,
                ip: attempt.rhost.as_deref().and_then(parse_ip),
                source: &source,
                groups,
                record: record.as_ref(),
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
        let d = self
            .backend
            .refuse_after_password(id, attempt, origin, "no-code-prompt", now)
            .await?;
        self.durable(d.durable).await?;
        d.value?;
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
        let need = self.totp_need(attempt, origin, groups, now).await?;
        match need {
            Need::Nothing => {
                self.succeed(id, attempt, origin, now).await?;
                Ok(SuccessOutcome::Recorded)
            }
            Need::Grace(until) => {
                self.succeed(id, attempt, origin, now).await?;
                let day = until.minus(std::time::Duration::from_secs(1)).to_string();
                Ok(SuccessOutcome::Grace(
                    day.get(..10).unwrap_or(&day).to_string(),
                ))
            }
            // Asked for a code all the same, as after a wrong password: the
            // refusal comes after it, and says the same either way.
            Need::Refuse | Need::Code => {
                let d = self.backend.await_code(id, attempt, origin, now).await?;
                self.durable(d.durable).await?;
                Ok(if d.value {
                    SuccessOutcome::NeedCode
                } else {
                    SuccessOutcome::Refused(START_AGAIN.into())
                })
            }
        }
    }

    /// authsucc sent as `Passed`: the module has let the login through, since
    /// preauth found that a right password leads to nothing but success. The
    /// success is recorded whatever the policy says now; returns what is due
    /// now if that is no longer nothing (a code enrolled or required while
    /// the password was typed), for the caller to say loudly.
    pub async fn passed(
        &self,
        id: Option<AttemptId>,
        attempt: &Attempt,
        origin: Origin,
        groups: &[String],
        now: Time,
    ) -> Result<Option<&'static str>, ServiceError> {
        let need = self.totp_need(attempt, origin, groups, now).await?;
        self.succeed(id, attempt, origin, now).await?;
        Ok(match need {
            Need::Nothing => None,
            Need::Grace(_) => Some("grace notice"),
            Need::Code => Some("code"),
            Need::Refuse => Some("refusal: a code is required and none is set up"),
        })
    }

    /// Checks the code typed at the prompt. Wrong codes are failures in the
    /// lockout rules; a good one records the success. Returns what the user
    /// reads when refused (empty after a wrong code: nothing that a wrong
    /// password would not say).
    pub async fn check_code(
        &self,
        id: Option<AttemptId>,
        attempt: &Attempt,
        origin: Origin,
        typed: &str,
        now: Time,
    ) -> Result<Option<String>, ServiceError> {
        let config = self.config();
        // An unprivileged peer's good code proves the code, not the password:
        // it never earns `remember`.
        let remember = config
            .totp
            .remember
            .filter(|_| origin == Origin::Root)
            .map(|d| (source_of_attempt(&config, attempt), now.plus(d)));
        let d = self
            .backend
            .check_code(CodeEntry {
                id,
                attempt,
                origin,
                typed,
                remember,
                now,
            })
            .await?;
        self.durable(d.durable).await?;
        Ok(match d.value {
            CodeVerdict::Accepted { recovery_left } => {
                if let Some(left) = recovery_left {
                    self.log.info(&format!(
                        "totp-recovery-used user={} left={left}",
                        quote(&attempt.user)
                    ));
                }
                None
            }
            CodeVerdict::Wrong => Some(String::new()),
            CodeVerdict::NotEnrolled => Some(NOT_ENROLLED.into()),
            CodeVerdict::StartAgain => Some(START_AGAIN.into()),
        })
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
        let mut shown = None;
        let d = self
            .backend
            .totp_change(
                user,
                Box::new(|rec| {
                    if rec.as_ref().is_some_and(|r| r.confirmed) {
                        return Err(TotpError::AlreadyConfirmed(user.to_string()).into());
                    }
                    let e = totp::new_enrollment(user, &issuer, &bytes, now)
                        .map_err(TotpError::Record)?;
                    *rec = Some(e.record);
                    shown = Some((e.uri, e.recovery));
                    Ok(true)
                }),
            )
            .await?;
        self.durable(d.durable).await?;
        let (uri, codes) = shown.ok_or_else(|| {
            ServiceError::Totp(TotpError::Record("the enrollment was not made".into()))
        })?;
        self.log.info(&format!(
            "totp-enrolled user={} by=uid={by_uid} confirmed=no",
            quote(user)
        ));
        Ok((uri, codes))
    }

    /// Activates an enrollment once a first code checks out.
    pub async fn totp_confirm(
        &self,
        user: &str,
        typed: &str,
        by_uid: u32,
        now: Time,
    ) -> Result<(), ServiceError> {
        let d = self
            .backend
            .totp_change(
                user,
                Box::new(|rec| {
                    let Some(rec) = rec.as_mut() else {
                        return Err(TotpError::NotEnrolled(user.to_string()).into());
                    };
                    if rec.confirmed {
                        return Err(TotpError::AlreadyActive(user.to_string()).into());
                    }
                    match totp::check(rec, typed, now) {
                        CodeCheck::Good(step) => {
                            rec.confirmed = true;
                            rec.last_step = step;
                            Ok(true)
                        }
                        _ => Err(TotpError::WrongCode.into()),
                    }
                }),
            )
            .await?;
        self.durable(d.durable).await?;
        self.log.info(&format!(
            "totp-confirmed user={} by=uid={by_uid}",
            quote(user)
        ));
        Ok(())
    }

    /// `(confirmed, recovery codes left, created)`, or `None` when not enrolled.
    pub async fn totp_status(&self, user: &str) -> Result<Option<(bool, u32, Time)>, ServiceError> {
        Ok(self.backend.totp_record(user).await?.map(|r| {
            (
                r.confirmed,
                u32::try_from(r.recovery.len()).unwrap_or(0),
                r.created,
            )
        }))
    }

    pub async fn totp_remove(&self, user: &str, by_uid: u32) -> Result<bool, ServiceError> {
        let d = self
            .backend
            .totp_change(user, Box::new(|rec| Ok(rec.take().is_some())))
            .await?;
        self.durable(d.durable).await?;
        if d.value {
            self.log.info(&format!(
                "totp-removed user={} by=uid={by_uid}",
                quote(user)
            ));
        }
        Ok(d.value)
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
        let mut shown = None;
        let d = self
            .backend
            .totp_change(
                user,
                Box::new(|rec| {
                    let Some(rec) = rec.as_mut() else {
                        return Err(TotpError::NotEnrolled(user.to_string()).into());
                    };
                    shown = Some(totp::recovery_codes(rec, &bytes).map_err(TotpError::Record)?);
                    Ok(true)
                }),
            )
            .await?;
        self.durable(d.durable).await?;
        let codes = shown.ok_or_else(|| {
            ServiceError::Totp(TotpError::Record("no recovery codes were made".into()))
        })?;
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
        let d = self.backend.prove_code(&attempt, origin, code, now).await?;
        self.durable(d.durable).await?;
        let why = match d.value {
            Proof::Good => return Ok(()),
            Proof::Locked => format!(
                "{user} is locked after too many wrong passwords or codes; ask an admin, or wait"
            ),
            Proof::NoCode => {
                format!("{user} has no confirmed code; an admin must replace the recovery codes")
            }
            Proof::Wrong => "new recovery codes need a current code from your authenticator app; that one is wrong or used".into(),
        };
        Err(ServiceError::NotAuthorized(why))
    }
}
