//! The flow against a fake host and a scripted daemon.

use super::*;
use std::cell::RefCell;
use warden_proto::Verdict;

#[derive(Default)]
struct FakeHost {
    told: Vec<String>,
    logged: RefCell<Vec<(Level, String)>>,
    config_errors: RefCell<Vec<String>>,
    begun: Option<Begun>,
    delay: Option<u32>,
    /// PAM_RHOST when set; 203.0.113.7 otherwise.
    rhost: Option<&'static str>,
    ssh_ip: Option<&'static str>,
    /// PAM_AUTHTOK: the password given, if any.
    password: Option<&'static str>,
    /// Answers to prompts, in order; none left means the conversation fails.
    answers: Vec<&'static str>,
    prompts: Vec<String>,
}

impl Host for FakeHost {
    fn user(&mut self) -> Option<Vec<u8>> {
        Some(b"alice".to_vec())
    }
    fn service(&self) -> Option<Vec<u8>> {
        Some(b"sshd".to_vec())
    }
    fn rhost(&self) -> Option<Vec<u8>> {
        Some(self.rhost.unwrap_or("203.0.113.7").as_bytes().to_vec())
    }
    fn tty(&self) -> Option<Vec<u8>> {
        None
    }
    fn ruser(&self) -> Option<Vec<u8>> {
        None
    }
    fn locale(&self) -> Option<Vec<u8>> {
        None
    }
    fn ssh_client_ip(&self) -> Option<Vec<u8>> {
        self.ssh_ip.map(|s| s.as_bytes().to_vec())
    }
    fn tell(&mut self, _error: bool, text: &str) {
        self.told.push(text.to_string());
    }
    fn prompt(&mut self, text: &str) -> Option<crate::host::Answer> {
        self.prompts.push(text.to_string());
        if self.answers.is_empty() {
            return None;
        }
        let a = self.answers.remove(0);
        Some(crate::host::Answer::new(a.as_bytes().to_vec()))
    }
    fn log(&self, level: Level, text: &str) {
        self.logged.borrow_mut().push((level, text.to_string()));
    }
    fn config_error(&self, text: &str) {
        self.config_errors.borrow_mut().push(text.to_string());
    }
    fn begun(&self) -> Option<Begun> {
        self.begun.clone()
    }
    fn set_begun(&mut self, begun: Option<Begun>) {
        self.begun = begun;
    }
    fn password_given(&self) -> bool {
        self.password.is_some_and(|p| !p.is_empty())
    }
    fn password_tag(
        &self,
        key: &warden_proto::repeat::RepeatKey,
    ) -> Option<warden_proto::repeat::Tag> {
        self.password
            .filter(|p| !p.is_empty())
            .map(|p| warden_proto::repeat::tag(key, p.as_bytes()))
    }
    fn is_password(&self, answer: &[u8]) -> bool {
        self.password
            .is_some_and(|p| !p.is_empty() && p.as_bytes() == answer)
    }
    fn fail_delay(&mut self, micros: u32) {
        self.delay = Some(micros);
    }
}

fn with_password(p: &'static str) -> FakeHost {
    FakeHost {
        password: Some(p),
        ..Default::default()
    }
}

/// Answers with canned replies in order and remembers the requests.
struct Scripted {
    replies: RefCell<Vec<Result<ResponseBody, ClientError>>>,
    seen: RefCell<Vec<RequestBody>>,
}

fn daemon(reply: Result<ResponseBody, ClientError>) -> Scripted {
    script(vec![reply])
}

fn script(replies: Vec<Result<ResponseBody, ClientError>>) -> Scripted {
    Scripted {
        replies: RefCell::new(replies.into_iter().rev().collect()),
        seen: RefCell::new(Vec::new()),
    }
}

impl Daemon for Scripted {
    fn call(&self, request: RequestBody) -> Result<ResponseBody, ClientError> {
        self.seen.borrow_mut().push(request);
        self.replies
            .borrow_mut()
            .pop()
            .unwrap_or(Err(ClientError::Timeout))
    }

    fn send(&self, request: RequestBody) -> Result<(), ClientError> {
        self.call(request).map(|_| ())
    }
}

fn verdict(allowed: bool) -> ResponseBody {
    ResponseBody::Verdict(Verdict {
        allowed,
        attempt: allowed.then_some(77),
        reason: if allowed { "clear" } else { "locked" }.into(),
        rule: None,
        failures: 5,
        seconds_left: Some(840),
        message: (!allowed).then(|| "Too many failed attempts. Try again in 14 minutes.".into()),
        code_prompt: None,
        code_refusal: None,
        quiet_success: false,
        repeat_key: allowed.then_some([3; 32]),
    })
}

fn opts(args: &[&str]) -> Options {
    Options::parse(args.iter().copied())
}

#[test]
fn preauth_keeps_the_attempt_for_the_later_phases() {
    let mut h = with_password("wrong");
    let d = daemon(Ok(verdict(true)));
    assert_eq!(
        authenticate(&mut h, &opts(&["preauth"]), &d),
        PamResultCode::PAM_SUCCESS
    );
    assert_eq!(h.begun.as_ref().and_then(|b| b.attempt), Some(77));

    let d = daemon(Ok(ResponseBody::Recorded));
    assert_eq!(
        authenticate(&mut h, &opts(&["authfail"]), &d),
        PamResultCode::PAM_AUTH_ERR
    );
    match &d.seen.borrow()[0] {
        RequestBody::Fail {
            attempt,
            fields,
            repeat,
        } => {
            assert_eq!(*attempt, Some(77));
            assert_eq!(fields.user, b"alice");
            // The tag of the password under the verdict's key; never the password.
            assert_eq!(*repeat, Some(warden_proto::repeat::tag(&[3; 32], b"wrong")));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(h.begun, None, "an attempt is resolved once");
}

#[test]
fn a_refusal_tells_the_user_and_asks_for_a_delay() {
    let mut h = FakeHost::default();
    let d = daemon(Ok(verdict(false)));
    assert_eq!(
        authenticate(&mut h, &opts(&["preauth"]), &d),
        PamResultCode::PAM_AUTH_ERR
    );
    assert_eq!(
        h.told,
        ["Too many failed attempts. Try again in 14 minutes."]
    );
    assert_eq!(h.delay, Some(2_000_000));
    let mut h = FakeHost::default();
    let d = daemon(Ok(verdict(false)));
    authenticate(&mut h, &opts(&["preauth", "silent", "nodelay"]), &d);
    assert!(h.told.is_empty());
    assert_eq!(h.delay, None);
}

#[test]
fn an_outage_follows_on_unavailable() {
    for (args, code) in [
        (&["preauth"][..], PamResultCode::PAM_IGNORE),
        (
            &["preauth", "on_unavailable=deny"][..],
            PamResultCode::PAM_AUTHINFO_UNAVAIL,
        ),
        (&["authsucc"][..], PamResultCode::PAM_SUCCESS),
        (
            &["authsucc", "on_unavailable=deny"][..],
            PamResultCode::PAM_AUTHINFO_UNAVAIL,
        ),
        (
            &["authfail", "on_unavailable=deny"][..],
            PamResultCode::PAM_AUTHINFO_UNAVAIL,
        ),
    ] {
        let mut h = with_password("pw");
        let d = daemon(Err(ClientError::Unreachable("no socket".into())));
        assert_eq!(authenticate(&mut h, &opts(args), &d), code, "{args:?}");
        let logged = h.logged.borrow();
        assert!(
            logged
                .iter()
                .any(|(l, t)| *l == Level::Alert && t.contains("unreachable")),
            "an outage must raise an alert: {logged:?}"
        );
    }
    let mut h = with_password("pw");
    let store_full = Ok(ResponseBody::Error {
        code: ErrorCode::Store,
        message: "disk full".into(),
    });
    assert_eq!(
        authenticate(&mut h, &opts(&["authfail"]), &daemon(store_full)),
        PamResultCode::PAM_IGNORE
    );
}

#[test]
fn bad_names_are_refused_not_ignored() {
    let mut h = FakeHost::default();
    let d = daemon(Ok(ResponseBody::Error {
        code: ErrorCode::BadField,
        message: "user is not valid UTF-8".into(),
    }));
    assert_eq!(
        authenticate(&mut h, &opts(&["preauth"]), &d),
        PamResultCode::PAM_AUTH_ERR
    );
}

#[test]
fn account_allows_unless_enforcing() {
    let mut h = FakeHost::default();
    let d = daemon(Err(ClientError::Timeout));
    assert_eq!(account(&mut h, &opts(&[]), &d), PamResultCode::PAM_SUCCESS);
    assert!(
        d.seen.borrow().is_empty(),
        "no call without enforce_in_account"
    );
    let d = daemon(Ok(ResponseBody::Account {
        locked: true,
        message: Some("Too many failed attempts. Try again in 3 minutes.".into()),
    }));
    assert_eq!(
        account(&mut h, &opts(&["enforce_in_account"]), &d),
        PamResultCode::PAM_PERM_DENIED
    );
    assert_eq!(h.told.len(), 1);
}

#[test]
fn a_line_it_cannot_read_refuses_every_login() {
    for args in [
        &[][..],
        &["preuath"][..],
        &["preauth", "on_unavailable=Deny"][..],
        &["authfail", "timeout_ms=0"][..],
    ] {
        let mut h = with_password("pw");
        let d = daemon(Ok(verdict(true)));
        assert_eq!(
            authenticate(&mut h, &opts(args), &d),
            PamResultCode::PAM_AUTH_ERR,
            "{args:?}"
        );
        assert!(d.seen.borrow().is_empty(), "nothing is asked of the daemon");
        assert!(!h.config_errors.borrow().is_empty(), "{args:?}: logged");
    }
    let mut h = FakeHost::default();
    let d = daemon(Err(ClientError::Timeout));
    assert_eq!(
        account(&mut h, &opts(&["enforce_in_acount"]), &d),
        PamResultCode::PAM_AUTH_ERR
    );
}

#[test]
fn no_password_given_is_no_guess() {
    for password in [None, Some("")] {
        let mut h = FakeHost {
            password,
            begun: Some(Begun {
                attempt: Some(9),
                ..Default::default()
            }),
            ..Default::default()
        };
        let d = daemon(Ok(ResponseBody::Recorded));
        assert_eq!(
            authenticate(&mut h, &opts(&["authfail"]), &d),
            PamResultCode::PAM_AUTH_ERR
        );
        assert!(
            matches!(
                &d.seen.borrow()[0],
                RequestBody::Release {
                    attempt: Some(9),
                    ..
                }
            ),
            "{password:?}: {:?}",
            d.seen.borrow()
        );
    }
}

#[test]
fn a_code_is_asked_for_and_an_outage_then_refuses() {
    let mut h = FakeHost::default();
    let need = ResponseBody::NeedCode {
        prompt: "Verification code: ".into(),
    };
    let d = script(vec![Ok(need.clone()), Ok(ResponseBody::Recorded)]);
    assert_eq!(
        authenticate(&mut h, &opts(&["authsucc"]), &d),
        PamResultCode::PAM_SUCCESS
    );
    // The fake host had no answer, so the daemon is sent an empty code.
    assert!(matches!(&d.seen.borrow()[1], RequestBody::Code { code, .. } if code.is_empty()));

    let d = script(vec![Ok(need.clone()), Err(ClientError::Timeout)]);
    assert_eq!(
        authenticate(&mut h, &opts(&["authsucc"]), &d),
        PamResultCode::PAM_AUTH_ERR,
        "on_unavailable=ignore must not skip a second factor"
    );
    let refused = |m: &str| {
        Ok(ResponseBody::Refused {
            message: m.to_string(),
        })
    };
    let mut h = FakeHost::default();
    let d = script(vec![Ok(need.clone()), refused("")]);
    assert_eq!(
        authenticate(&mut h, &opts(&["authsucc"]), &d),
        PamResultCode::PAM_AUTH_ERR
    );
    assert!(h.told.is_empty(), "a wrong code says nothing: {:?}", h.told);
    let d = script(vec![Ok(need), refused("none is set up")]);
    authenticate(&mut h, &opts(&["authsucc"]), &d);
    assert_eq!(h.told, ["none is set up"]);
}

#[test]
fn a_wrong_password_meets_the_same_prompt_as_a_wrong_code() {
    let code_prompt = || Begun {
        attempt: Some(5),
        code_prompt: Some("Verification code: ".into()),
        code_refusal: None,
        quiet_success: false,
        repeat_key: None,
    };
    // Right password, wrong code.
    let mut right = FakeHost {
        password: Some("right"),
        begun: Some(code_prompt()),
        answers: vec!["123456"],
        ..Default::default()
    };
    let d = script(vec![
        Ok(ResponseBody::NeedCode {
            prompt: "Verification code: ".into(),
        }),
        Ok(ResponseBody::Refused {
            message: String::new(),
        }),
    ]);
    let a = authenticate(&mut right, &opts(&["authsucc"]), &d);
    // Wrong password.
    let mut wrong = FakeHost {
        password: Some("wrong"),
        begun: Some(code_prompt()),
        answers: vec!["123456"],
        ..Default::default()
    };
    let d = daemon(Ok(ResponseBody::Recorded));
    let b = authenticate(&mut wrong, &opts(&["authfail"]), &d);
    assert_eq!(a, b);
    assert_eq!((&right.prompts, &right.told), (&wrong.prompts, &wrong.told));
    assert_eq!(wrong.prompts, ["Verification code: "]);
    assert!(matches!(&d.seen.borrow()[0], RequestBody::Fail { .. }));
}

#[test]
fn the_password_at_the_code_prompt_is_not_a_wrong_code() {
    // sshd's password method answers every prompt with the password.
    let mut h = FakeHost {
        password: Some("hunter2hunter2"),
        answers: vec!["hunter2hunter2"],
        ..Default::default()
    };
    let d = script(vec![
        Ok(ResponseBody::NeedCode {
            prompt: "Verification code: ".into(),
        }),
        Ok(ResponseBody::Refused {
            message: "use keyboard-interactive".into(),
        }),
    ]);
    assert_eq!(
        authenticate(&mut h, &opts(&["authsucc"]), &d),
        PamResultCode::PAM_AUTH_ERR
    );
    assert!(matches!(&d.seen.borrow()[1], RequestBody::NoCode { .. }));
}

#[test]
fn a_name_rhost_gives_way_to_the_ssh_address() {
    let rhost_sent = |rhost, ssh_ip| {
        let mut h = FakeHost {
            rhost: Some(rhost),
            ssh_ip,
            ..Default::default()
        };
        let d = daemon(Ok(verdict(true)));
        authenticate(&mut h, &opts(&["preauth"]), &d);
        let seen = d.seen.borrow();
        match &seen[0] {
            RequestBody::Begin(f) => f.rhost.clone().map(|r| String::from_utf8(r).unwrap()),
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(
        rhost_sent("evil.example", Some("198.51.100.7")).as_deref(),
        Some("198.51.100.7")
    );
    assert_eq!(
        rhost_sent("203.0.113.9", Some("198.51.100.7")).as_deref(),
        Some("203.0.113.9"),
        "an address is kept as given"
    );
    assert_eq!(
        rhost_sent("evil.example", None).as_deref(),
        Some("evil.example"),
        "no SSH_CONNECTION: the daemon's policy for names applies"
    );
}

#[test]
fn a_quiet_success_is_sent_and_not_waited_for() {
    // preauth keeps the promise on the handle...
    let mut h = FakeHost::default();
    let mut v = match verdict(true) {
        ResponseBody::Verdict(v) => v,
        _ => unreachable!(),
    };
    v.quiet_success = true;
    let d = daemon(Ok(ResponseBody::Verdict(v)));
    assert_eq!(
        authenticate(&mut h, &opts(&["preauth"]), &d),
        PamResultCode::PAM_SUCCESS
    );
    assert!(h.begun.as_ref().is_some_and(|b| b.quiet_success));
    // ...and authsucc reports with Passed, whatever comes back.
    let d = daemon(Ok(ResponseBody::Refused {
        message: "never read".into(),
    }));
    assert_eq!(
        authenticate(&mut h, &opts(&["authsucc"]), &d),
        PamResultCode::PAM_SUCCESS
    );
    assert!(matches!(
        d.seen.borrow().as_slice(),
        [RequestBody::Passed {
            attempt: Some(77),
            ..
        }]
    ));
    assert!(h.begun.is_none(), "the attempt is over");
}

#[test]
fn a_quiet_success_that_cannot_be_sent_follows_on_unavailable() {
    let quiet = || Begun {
        attempt: Some(9),
        quiet_success: true,
        ..Default::default()
    };
    for (args, want) in [
        (&["authsucc"][..], PamResultCode::PAM_SUCCESS),
        (
            &["authsucc", "on_unavailable=deny"][..],
            PamResultCode::PAM_AUTHINFO_UNAVAIL,
        ),
    ] {
        let mut h = FakeHost {
            begun: Some(quiet()),
            ..Default::default()
        };
        let d = daemon(Err(ClientError::Unreachable("no socket".into())));
        assert_eq!(authenticate(&mut h, &opts(args), &d), want, "{args:?}");
        assert!(h
            .logged
            .borrow()
            .iter()
            .any(|(l, t)| *l == Level::Alert && t.contains("authsucc")));
    }
}
