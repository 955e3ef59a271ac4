//! `explain`: what would happen to an attempt now, and why, read-only.

use super::refusal::refusal_message;
use super::{ServiceError, Warden};
use crate::engine::{parse_ip, AddressReport, Attempt, Explanation, Origin};
use crate::time::Time;
use crate::totp::Need;
use warden_proto::AttemptFields;

/// An explanation, with what the user would read and whether a code would
/// be asked after a right password.
#[derive(Clone, Debug)]
pub struct ExplainView {
    pub attempt: Attempt,
    pub explanation: Explanation,
    /// What the user is told when refused.
    pub message: Option<String>,
    pub code: Need,
    pub code_why: &'static str,
}

impl Warden {
    /// As a root PAM stack (sshd, sudo, su) would ask at preauth. Changes
    /// nothing: no reservation, no expiry, no log line.
    pub async fn explain(
        &self,
        user: &str,
        rhost: Option<&str>,
        service: &str,
        tty: Option<&str>,
        now: Time,
    ) -> Result<ExplainView, ServiceError> {
        let fields = AttemptFields {
            service: service.as_bytes().to_vec(),
            user: user.as_bytes().to_vec(),
            rhost: rhost.map(|r| r.as_bytes().to_vec()),
            tty: tty.map(|t| t.as_bytes().to_vec()),
            ruser: None,
            locale: None,
        };
        let mut attempt = fields
            .validate()
            .map_err(|e| ServiceError::Invalid(e.to_string()))?;
        let config = self.config();
        attempt.user = config.users.fold(&attempt.user);
        self.note_groups(&attempt.user).await;
        let explanation = self.backend.explain(&attempt, Origin::Root, now).await?;
        let allowed = explanation.verdict.kind.allows();
        let groups = self.groups(&attempt.user).await;
        let (code, code_why) = self
            .totp_need_why(&attempt, Origin::Root, &groups, now)
            .await?;
        Ok(ExplainView {
            message: (!allowed).then(|| {
                let words = crate::words::Words::english(config.messages.clone());
                refusal_message(&explanation.verdict, now, &words)
            }),
            attempt,
            explanation,
            code,
            code_why,
        })
    }

    /// What stands against an address, whoever tries from it.
    pub async fn rhost_status(
        &self,
        rhost: &str,
        now: Time,
    ) -> Result<AddressReport, ServiceError> {
        let ip = parse_ip(rhost).ok_or_else(|| {
            ServiceError::Invalid(format!(
                "\"{rhost}\" is not an address; give one such as 203.0.113.7 or 2001:db8::7"
            ))
        })?;
        self.backend.address(ip, now).await
    }

    /// The user's groups, looked up only when the TOTP policy names groups.
    pub async fn groups(&self, user: &str) -> Vec<String> {
        if self.config().totp.required_for_groups.is_empty() {
            return Vec::new();
        }
        let user = user.to_string();
        tokio::task::spawn_blocking(move || crate::accounts::groups_of(&user))
            .await
            .unwrap_or_default()
    }
}
