//! Rules scoped to users and groups, through real libpam with real accounts
//! and groups: a stricter rule for a group's members, a service account
//! exempt from the user rules, root's own rule (faillock's
//! `root_unlock_time`), a name that is no account treated as an account in
//! no group, and a membership change taking effect at the next attempt.

use warden_e2e::daemon::Daemon;
use warden_e2e::pam::{PamDir, PAM_AUTH_ERR, PAM_SUCCESS, WRONG_PASSWORD};
use warden_e2e::users::{TestGroup, TestUser};
use warden_e2e::{root_or_skip, unique};

#[test]
fn scoped_rules_count_only_their_users_and_groups() {
    if !root_or_skip("scoped_rules_count_only_their_users_and_groups") {
        return;
    }
    let admin = TestUser::create(&unique("wadm"), "pw-unused-a");
    let plain = TestUser::create(&unique("wpln"), "pw-unused-b");
    let bot = TestUser::create(&unique("wbot"), "pw-unused-c");
    let group = TestGroup::create(&unique("wgrp"), &[&admin.name]);
    let d = Daemon::start(&format!(
        "[familiar]\nenabled = false\n\
         [[rule]]\nname = \"admins\"\ntrack = [\"user\"]\nlimit = 2\nwindow = \"1h\"\nlockout = \"1h\"\ngroups = [\"{g}\"]\n\
         [[rule]]\nname = \"root\"\ntrack = [\"user\"]\nlimit = 1\nwindow = \"1h\"\nlockout = \"10m\"\nusers = [\"root\"]\n\
         [[rule]]\nname = \"user\"\ntrack = [\"user\"]\nlimit = 4\nwindow = \"1h\"\nlockout = \"15m\"\nexclude_users = [\"{bot}\", \"root\"]\n",
        g = group.name,
        bot = bot.name,
    ));
    let pam = PamDir::new(&d.socket, "0", "");
    let wrong = |user: &str, n: usize| {
        for _ in 0..n {
            let o = pam.attempt(user, "wrong", Some("203.0.113.9"));
            assert_eq!(o.auth, WRONG_PASSWORD, "{user}: {o:?}");
        }
    };
    let right = |user: &str| pam.attempt(user, "right", Some("203.0.113.9"));

    // The group's member meets the stricter rule.
    wrong(&admin.name, 2);
    let o = right(&admin.name);
    assert_eq!(o.auth, PAM_AUTH_ERR, "{o:?}");
    assert!(d.log_text().contains(&format!(
        "locked rule=admins on=user service=warden-test user={}",
        admin.name
    )));

    // Others meet only the everyone rule; a name that is no account, the same.
    let ghost = unique("wghost");
    for who in [plain.name.as_str(), ghost.as_str()] {
        wrong(who, 3);
        assert_eq!(right(who).auth, PAM_SUCCESS, "{who} met the admins' rule");
    }
    // The service account is exempt from the user rules.
    wrong(&bot.name, 8);
    assert_eq!(
        right(&bot.name).auth,
        PAM_SUCCESS,
        "the exempt account was locked"
    );

    // Root's own rule, though lock_root is off: faillock's root_unlock_time.
    wrong("root", 1);
    let o = right("root");
    assert_eq!(o.auth, PAM_AUTH_ERR, "{o:?}");
    assert_eq!(
        o.messages,
        ["Too many failed attempts. Try again in 10 minutes."]
    );

    // Joining the group takes effect at the next attempt, with no reload.
    group.add(&plain.name);
    wrong(&plain.name, 2);
    let o = right(&plain.name);
    assert_eq!(
        o.auth, PAM_AUTH_ERR,
        "the new member did not meet the group's rule: {o:?}"
    );
}
