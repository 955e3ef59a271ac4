//! What each mode does, over the [`Host`] and [`Daemon`] traits.

use crate::args::{Mode, OnUnavailable, Options};
use crate::client::{ClientError, Daemon};
use crate::host::{Begun, Host, Level};
use pam::constants::PamResultCode;
use warden_proto::{AttemptFields, ErrorCode, RequestBody, ResponseBody};

pub fn authenticate(host: &mut impl Host, opts: &Options, daemon: &impl Daemon) -> PamResultCode {
    // A line the module cannot read is a stack that does not do what its
    // admin thinks: refuse, as pam_faillock does, rather than guard nothing.
    if let Some(refused) = refuse_bad_arguments(host, opts, "auth") {
        return refused;
    }
    let Some(mode) = opts.mode else {
        host.config_error(
            "auth line has no mode: add preauth, authfail or authsucc; refusing every login until it does",
        );
        return PamResultCode::PAM_AUTH_ERR;
    };
    let Some(fields) = fields(host) else {
        host.log(Level::Warning, "no user name on the handle");
        return PamResultCode::PAM_USER_UNKNOWN;
    };
    match mode {
        Mode::Preauth => preauth(host, opts, daemon, fields),
        Mode::Authfail => authfail(host, opts, daemon, fields),
        Mode::Authsucc => {
            let begun = host.begun().unwrap_or_default();
            let attempt = begun.attempt;
            host.set_begun(None);
            // Preauth knew a right password leads to nothing else: report
            // it and go on without a round trip.
            if begun.quiet_success {
                return match daemon.send(RequestBody::Passed { attempt, fields }) {
                    Ok(()) => PamResultCode::PAM_SUCCESS,
                    Err(e) => unavailable_after_password(host, opts, Err(e)),
                };
            }
            match daemon.call(RequestBody::Succeed {
                attempt,
                fields: fields.clone(),
            }) {
                Ok(ResponseBody::Recorded) => PamResultCode::PAM_SUCCESS,
                Ok(ResponseBody::Notice { message }) => {
                    if !opts.silent {
                        host.tell(false, &message);
                    }
                    PamResultCode::PAM_SUCCESS
                }
                Ok(ResponseBody::Refused { message }) => {
                    tell_refusal(host, opts, &message);
                    host.log(Level::Notice, "authsucc refused after the password");
                    PamResultCode::PAM_AUTH_ERR
                }
                Ok(ResponseBody::NeedCode { prompt }) => {
                    second_factor(host, opts, daemon, attempt, fields, &prompt)
                }
                other => unavailable_after_password(host, opts, other),
            }
        }
    }
}

/// authsucc could not reach wardend.
fn unavailable_after_password(
    host: &mut impl Host,
    opts: &Options,
    outcome: Result<ResponseBody, ClientError>,
) -> PamResultCode {
    match unavailable(host, opts, "authsucc", outcome) {
        // The password passed and the stack reached us by a jump, which
        // libpam does not count as success: PAM_IGNORE here would fail the
        // login, so "ignore" must let it stand.
        PamResultCode::PAM_IGNORE => PamResultCode::PAM_SUCCESS,
        code => code,
    }
}

/// authfail: the password module said no. A wrong password is a failure; a
/// conversation that never produced one (Ctrl-C, end of input) frees the
/// attempt's place and counts nothing. When a right password would have led
/// to a code prompt, the same prompt comes now, so that the conversation
/// never tells which the password was.
fn authfail(
    host: &mut impl Host,
    opts: &Options,
    daemon: &impl Daemon,
    fields: AttemptFields,
) -> PamResultCode {
    let begun = host.begun().unwrap_or_default();
    host.set_begun(None);
    let attempt = begun.attempt;
    let guessed = host.password_given();
    let request = if guessed {
        // wardend never sees the password, only its tag under the key it
        // drew at start: enough to tell a repeat of a stale password.
        let repeat = begun
            .repeat_key
            .as_ref()
            .and_then(|key| host.password_tag(key));
        RequestBody::Fail {
            attempt,
            fields,
            repeat,
        }
    } else {
        RequestBody::Release { attempt, fields }
    };
    let recorded = daemon.call(request);
    if guessed {
        if let Some(prompt) = &begun.code_prompt {
            // The answer is never read: there is nothing to check it against.
            let _ = host.prompt(prompt);
            if let Some(message) = &begun.code_refusal {
                tell_refusal(host, opts, message);
            }
        }
    }
    match recorded {
        // The password was wrong: the stack fails whatever we record.
        Ok(ResponseBody::Recorded) => PamResultCode::PAM_AUTH_ERR,
        other => unavailable(host, opts, "authfail", other),
    }
}

/// What is said after a refused code or a refused password alike: nothing for
/// a wrong code (a wrong password says nothing either), the reason otherwise.
fn tell_refusal(host: &mut impl Host, opts: &Options, message: &str) {
    if !opts.silent && !message.is_empty() {
        host.tell(true, message);
    }
}

/// A bad argument on any line: logged loudly, and every call refused.
fn refuse_bad_arguments(host: &impl Host, opts: &Options, kind: &str) -> Option<PamResultCode> {
    if opts.unknown.is_empty() {
        return None;
    }
    for arg in &opts.unknown {
        host.config_error(&format!(
            "{kind} line: unknown or invalid argument \"{arg}\"; refusing every login until the line is fixed (see pam_warden(8))"
        ));
    }
    Some(PamResultCode::PAM_AUTH_ERR)
}

fn preauth(
    host: &mut impl Host,
    opts: &Options,
    daemon: &impl Daemon,
    fields: AttemptFields,
) -> PamResultCode {
    host.set_begun(None);
    match daemon.call(RequestBody::Begin(fields)) {
        Ok(ResponseBody::Verdict(v)) if v.allowed => {
            host.set_begun(Some(Begun {
                attempt: v.attempt,
                code_prompt: v.code_prompt.clone(),
                code_refusal: v.code_refusal.clone(),
                quiet_success: v.quiet_success,
                repeat_key: v.repeat_key,
            }));
            if opts.debug {
                host.log(
                    Level::Debug,
                    &format!(
                        "preauth allowed reason={} failures={}",
                        v.reason, v.failures
                    ),
                );
            }
            PamResultCode::PAM_SUCCESS
        }
        Ok(ResponseBody::Verdict(v)) => {
            if !opts.silent {
                if let Some(m) = &v.message {
                    host.tell(true, m);
                }
            }
            host.log(
                Level::Notice,
                &format!(
                    "preauth refused reason={} rule={}",
                    v.reason,
                    v.rule.as_deref().unwrap_or("-")
                ),
            );
            refuse(host, opts)
        }
        // A name that is too long, has a NUL, or is not UTF-8 is no account here.
        Ok(ResponseBody::Error {
            code: ErrorCode::BadField,
            message,
        }) => {
            host.log(Level::Notice, &format!("preauth refused: {message}"));
            refuse(host, opts)
        }
        other => unavailable(host, opts, "preauth", other),
    }
}

/// Asks for the code and has the daemon check it. Once a code has been asked
/// for, anything but a confirmed good code refuses: an outage must not turn a
/// required second factor into none.
fn second_factor(
    host: &mut impl Host,
    opts: &Options,
    daemon: &impl Daemon,
    attempt: Option<u64>,
    fields: AttemptFields,
    prompt: &str,
) -> PamResultCode {
    let code = match host.prompt(prompt) {
        Some(secret) => secret.as_bytes().to_vec(),
        // No way to ask (or no answer): checked as an empty, wrong code.
        None => Vec::new(),
    };
    // sshd's password method answers every prompt with the password: that is
    // no code, and counting it as a wrong one would lock the user out.
    let request = if host.is_password(&code) {
        host.log(
            Level::Notice,
            "the code prompt was answered with the password: this login method cannot ask for a code",
        );
        RequestBody::NoCode { attempt, fields }
    } else {
        RequestBody::Code {
            attempt,
            fields,
            code,
        }
    };
    match daemon.call(request) {
        Ok(ResponseBody::Recorded) => PamResultCode::PAM_SUCCESS,
        Ok(ResponseBody::Refused { message }) => {
            tell_refusal(host, opts, &message);
            host.log(Level::Notice, "second factor refused");
            PamResultCode::PAM_AUTH_ERR
        }
        other => {
            let _ = unavailable(host, opts, "code", other);
            PamResultCode::PAM_AUTH_ERR
        }
    }
}

pub fn account(host: &mut impl Host, opts: &Options, daemon: &impl Daemon) -> PamResultCode {
    if let Some(refused) = refuse_bad_arguments(host, opts, "account") {
        return refused;
    }
    if !opts.enforce_in_account {
        return PamResultCode::PAM_SUCCESS;
    }
    let Some(fields) = fields(host) else {
        return PamResultCode::PAM_USER_UNKNOWN;
    };
    match daemon.call(RequestBody::Account(fields)) {
        Ok(ResponseBody::Account { locked: false, .. }) => PamResultCode::PAM_SUCCESS,
        Ok(ResponseBody::Account {
            locked: true,
            message,
        }) => {
            if let (false, Some(m)) = (opts.silent, &message) {
                host.tell(true, m);
            }
            host.log(Level::Notice, "account refused: the user is locked");
            PamResultCode::PAM_PERM_DENIED
        }
        other => unavailable(host, opts, "account", other),
    }
}

fn refuse(host: &mut impl Host, opts: &Options) -> PamResultCode {
    let micros = u32::try_from(opts.fail_delay.as_micros()).unwrap_or(u32::MAX);
    if micros > 0 {
        host.fail_delay(micros);
    }
    PamResultCode::PAM_AUTH_ERR
}

fn unavailable(
    host: &mut impl Host,
    opts: &Options,
    phase: &str,
    outcome: Result<ResponseBody, ClientError>,
) -> PamResultCode {
    let why = match outcome {
        Ok(ResponseBody::Error { code, message }) => {
            format!("wardend refused the request ({code:?}): {message}")
        }
        Ok(other) => format!("unexpected answer from wardend: {other:?}"),
        Err(e) => e.to_string(),
    };
    let (action, code) = match opts.on_unavailable {
        OnUnavailable::Ignore => (
            "ignoring (on_unavailable=ignore)",
            PamResultCode::PAM_IGNORE,
        ),
        OnUnavailable::Deny => (
            "denying (on_unavailable=deny)",
            PamResultCode::PAM_AUTHINFO_UNAVAIL,
        ),
    };
    host.log(Level::Alert, &format!("{phase}: {why}; {action}"));
    code
}

fn fields(host: &mut impl Host) -> Option<AttemptFields> {
    let user = host.user()?;
    Some(AttemptFields {
        service: host.service().unwrap_or_default(),
        user,
        rhost: rhost(host),
        tty: host.tty(),
        ruser: host.ruser(),
        locale: host.locale(),
    })
}

/// The remote host as an address when there is one to be had: with UseDNS,
/// sshd sets PAM_RHOST to a name the client's own DNS chose, which would give
/// every name a key of its own and slip past `[deny]`; its SSH_CONNECTION
/// holds the address.
fn rhost(host: &impl Host) -> Option<Vec<u8>> {
    let given = host.rhost().filter(|r| !r.is_empty());
    let is_ip = given.as_deref().is_some_and(|r| {
        std::str::from_utf8(r)
            .ok()
            .map(|s| s.trim_start_matches('[').trim_end_matches(']'))
            .map(|s| s.split('%').next().unwrap_or(s))
            .is_some_and(|s| s.parse::<std::net::IpAddr>().is_ok())
    });
    if is_ip {
        return given;
    }
    given.and_then(|g| host.ssh_client_ip().or(Some(g)))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
#[path = "flow/tests.rs"]
mod tests;
