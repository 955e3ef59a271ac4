//! Requests to service calls, after the peer check.

use super::peer::Peer;
use crate::engine::{self, AttemptId, Selector, Verdict};
use crate::logline::quote;
use crate::service::{
    blurred, refusal_message, seconds_left, LockView, ServiceError, SuccessOutcome, Warden,
    CODE_PROMPT,
};
use crate::time::Time;
use crate::words::Words;
use warden_proto::{
    AdminRequest, AttemptFields, ErrorCode, LockInfo, RequestBody, ResponseBody, MAX_CODE,
    MAX_FRAME,
};

/// The answer to a request; `None` for `Passed`, which is never answered (its
/// sender does not read, so an answer would be read as the next one's).
pub async fn handle(warden: &Warden, peer: &Peer, request: RequestBody) -> Option<ResponseBody> {
    match request {
        RequestBody::Passed { attempt, fields } => {
            passed(warden, peer, attempt, &fields).await;
            None
        }
        other => Some(answer(warden, peer, other).await),
    }
}

/// authsucc when preauth promised that a right password leads to nothing but
/// success. What goes wrong is logged; nothing is said to the module.
async fn passed(warden: &Warden, peer: &Peer, id: Option<u64>, fields: &AttemptFields) {
    let Ok(a) = attempt(warden, peer, fields) else {
        return;
    };
    let groups = warden.groups(&a.user).await;
    match warden
        .passed(id.map(AttemptId), &a, peer.origin(), &groups, Time::now())
        .await
    {
        Ok(None) => {}
        // preauth found nothing due, and a code policy or enrolment changed
        // while the password was typed: the login has gone ahead without
        // what now applies to it. Said loudly; the next login gets it.
        Ok(Some(due)) => warden.log().warn(&format!(
            "passed-unchecked user={} due={} reason=\"it became due during the attempt; this login went ahead without it\"",
            quote(&a.user),
            quote(due)
        )),
        Err(e) => {
            service_error(warden, "passed", &e);
        }
    }
}

async fn answer(warden: &Warden, peer: &Peer, request: RequestBody) -> ResponseBody {
    let now = Time::now();
    let origin = peer.origin();
    match request {
        RequestBody::Passed { .. } => error(ErrorCode::Internal, "Passed is never answered"),
        RequestBody::Begin(fields) => match attempt(warden, peer, &fields) {
            Ok(a) => match warden.begin(&a, origin, now).await {
                Ok(mut v) => {
                    let words = words_for(warden, &fields);
                    v.reason = blurred(v.reason, &warden.config().policy.rules, now);
                    let mut wire = to_wire(&v, now, &words);
                    if v.allowed() {
                        let groups = warden.groups(&a.user).await;
                        match warden.code_expected(&a, origin, &groups, now).await {
                            Ok(expected) => {
                                wire.code_prompt = expected.prompt.map(|p| words.text(&p));
                                wire.code_refusal = expected.refusal.map(|r| words.text(&r));
                                wire.quiet_success = expected.quiet_success;
                                wire.repeat_key = warden.repeat_key(origin);
                            }
                            Err(e) => return service_error(warden, "begin", &e),
                        }
                    }
                    ResponseBody::Verdict(wire)
                }
                Err(e) => service_error(warden, "begin", &e),
            },
            Err(r) => *r,
        },
        RequestBody::Release {
            attempt: id,
            fields,
        } => match attempt(warden, peer, &fields) {
            Ok(a) => match warden.release(id.map(AttemptId), &a, origin, now).await {
                Ok(()) => ResponseBody::Recorded,
                Err(e) => service_error(warden, "release", &e),
            },
            Err(r) => *r,
        },
        RequestBody::NoCode {
            attempt: id,
            fields,
        } => match attempt(warden, peer, &fields) {
            Ok(a) => match warden.no_code(id.map(AttemptId), &a, origin, now).await {
                Ok(message) => ResponseBody::Refused {
                    message: words_for(warden, &fields).text(&message),
                },
                Err(e) => service_error(warden, "no-code", &e),
            },
            Err(r) => *r,
        },
        RequestBody::Fail {
            attempt: id,
            fields,
            repeat,
        } => match attempt(warden, peer, &fields) {
            Ok(a) => match warden
                .fail(id.map(AttemptId), &a, origin, repeat, now)
                .await
            {
                Ok(()) => ResponseBody::Recorded,
                Err(e) => service_error(warden, "fail", &e),
            },
            Err(r) => *r,
        },
        RequestBody::Succeed {
            attempt: id,
            fields,
        } => match attempt(warden, peer, &fields) {
            Ok(a) => {
                let groups = warden.groups(&a.user).await;
                match warden
                    .succeed_or_ask(id.map(AttemptId), &a, origin, &groups, now)
                    .await
                {
                    Ok(SuccessOutcome::Recorded) => ResponseBody::Recorded,
                    Ok(SuccessOutcome::Grace(day)) => ResponseBody::Notice {
                        message: words_for(warden, &fields).grace(&day),
                    },
                    Ok(SuccessOutcome::NeedCode) => ResponseBody::NeedCode {
                        prompt: words_for(warden, &fields).text(CODE_PROMPT),
                    },
                    Ok(SuccessOutcome::Refused(message)) => ResponseBody::Refused {
                        message: words_for(warden, &fields).text(&message),
                    },
                    Err(e) => service_error(warden, "succeed", &e),
                }
            }
            Err(r) => *r,
        },
        RequestBody::Code {
            attempt: id,
            fields,
            code,
        } => match attempt(warden, peer, &fields) {
            Ok(a) => {
                let Some(typed) = std::str::from_utf8(&code)
                    .ok()
                    .filter(|c| c.len() <= MAX_CODE)
                else {
                    return error(ErrorCode::BadField, "the code is not UTF-8 or is too long");
                };
                match warden
                    .check_code(id.map(AttemptId), &a, origin, typed, now)
                    .await
                {
                    Ok(None) => ResponseBody::Recorded,
                    Ok(Some(message)) => ResponseBody::Refused {
                        message: words_for(warden, &fields).text(&message),
                    },
                    Err(e) => service_error(warden, "code", &e),
                }
            }
            Err(r) => *r,
        },
        RequestBody::Account(fields) => match attempt(warden, peer, &fields) {
            Ok(a) => match warden.account(&a, origin, now).await {
                Ok(reason) => ResponseBody::Account {
                    locked: reason.is_some(),
                    message: reason.map(|r| {
                        let words = words_for(warden, &fields);
                        refusal_message(
                            &blurred(r, &warden.config().policy.rules, now),
                            now,
                            &words,
                        )
                    }),
                },
                Err(e) => service_error(warden, "account", &e),
            },
            Err(r) => *r,
        },
        RequestBody::Admin(req) => {
            if !peer.is_root() {
                warden
                    .log()
                    .warn(&format!("refused-peer uid={} op=admin", peer.uid()));
                return error(ErrorCode::Forbidden, "admin requests need root");
            }
            admin(warden, peer, req, now).await
        }
    }
}

/// Validates the fields and applies the peer rule: a non-root peer acts only for
/// its own username and reports no rhost, tty or invoking user (it could
/// otherwise lock any address, or make keys without end).
fn attempt(
    warden: &Warden,
    peer: &Peer,
    fields: &AttemptFields,
) -> Result<engine::Attempt, Box<ResponseBody>> {
    let mut a = fields
        .validate()
        .map_err(|e| Box::new(error(ErrorCode::BadField, &e.to_string())))?;
    let names = &warden.config().users;
    if !names.is_identity() {
        a.user = names.fold(&a.user);
    }
    if !peer.may_act_for(&a.user, names) {
        warden.log().warn(&format!(
            "refused-peer uid={} user={} reason=\"not the peer's own user\"",
            peer.uid(),
            quote(&a.user)
        ));
        return Err(Box::new(error(
            ErrorCode::Forbidden,
            "a non-root caller may act only for its own user",
        )));
    }
    if !peer.is_root() {
        a.rhost = None;
        a.tty = None;
        a.ruser = None;
    }
    Ok(a)
}

/// The words for the user of this request: the admin's `[messages]`, in the
/// PAM application's language where a catalogue has it.
fn words_for(warden: &Warden, fields: &AttemptFields) -> Words {
    Words::new(
        crate::words::locale_name(fields.locale.as_deref()),
        warden.config().messages.clone(),
    )
}

fn to_wire(v: &Verdict, now: Time, words: &Words) -> warden_proto::Verdict {
    let r = &v.reason;
    let refused = !v.allowed();
    warden_proto::Verdict {
        allowed: v.allowed(),
        attempt: v.attempt.map(|id| id.0),
        reason: r.kind.name().to_string(),
        rule: r.rule.clone(),
        failures: r.failures,
        seconds_left: seconds_left(r.until, now),
        message: refused.then(|| refusal_message(r, now, words)),
        code_prompt: None,
        code_refusal: None,
        quiet_success: false,
        repeat_key: None,
    }
}

async fn admin(warden: &Warden, peer: &Peer, req: AdminRequest, now: Time) -> ResponseBody {
    let sel = match req {
        AdminRequest::Call { method, args } => {
            return match super::admin_call::call(warden, peer.uid(), &method, &args, now).await {
                Ok(j) => ResponseBody::Json(j),
                Err(e) => service_error(warden, "admin-call", &e),
            }
        }
        AdminRequest::ListLocks => {
            return match warden.locks(now).await {
                Ok(all) => {
                    // Newest first (the service's order), and only what fits
                    // one frame: this root-only list is for tests and
                    // emergencies; wardenctl (D-Bus) has them all.
                    let mut size = 64;
                    let locks = all
                        .iter()
                        .map(lock_info)
                        .take_while(|l| {
                            size += l.key.len() + l.rule.len() + 48;
                            size < MAX_FRAME
                        })
                        .collect();
                    ResponseBody::Locks(locks)
                }
                Err(e) => service_error(warden, "list-locks", &e),
            };
        }
        AdminRequest::UnlockUser(u) => warden.user_selector(&u),
        AdminRequest::UnlockRhost(r) => warden.rhost_selector(&r),
        AdminRequest::UnlockAll => Ok(Selector::All),
    };
    let done = match sel {
        Ok(sel) => warden.unlock(&sel, peer.uid(), now).await,
        Err(e) => Err(e),
    };
    match done {
        Ok(u) => ResponseBody::Unlocked(u32::try_from(u.cleared).unwrap_or(u32::MAX)),
        Err(e) => service_error(warden, "unlock", &e),
    }
}

pub fn lock_info(l: &LockView) -> LockInfo {
    LockInfo {
        rule: l.key.rule().to_string(),
        key: l.key.to_string(),
        failures: l.failures,
        since: l.since.0 / 1000,
        until: l.until.map(|t| t.0 / 1000),
        lockouts: l.lockouts,
    }
}

fn error(code: ErrorCode, message: &str) -> ResponseBody {
    ResponseBody::Error {
        code,
        message: message.to_string(),
    }
}

fn service_error(warden: &Warden, op: &str, e: &ServiceError) -> ResponseBody {
    warden.log().error(&format!(
        "request-failed op={op} error={}",
        quote(&e.to_string())
    ));
    let code = match e {
        ServiceError::Store(_) | ServiceError::Unavailable(_) => ErrorCode::Store,
        ServiceError::Attempt(_) | ServiceError::NotAuthorized(_) => ErrorCode::Forbidden,
        ServiceError::Invalid(_) => ErrorCode::BadField,
        ServiceError::Poisoned | ServiceError::Totp(_) | ServiceError::Task(_) => {
            ErrorCode::Internal
        }
    };
    error(code, &e.to_string())
}
