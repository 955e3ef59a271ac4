use super::*;

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::parse(text, Path::new("/etc/warden/warden.toml"))
}

fn err(text: &str) -> String {
    match parse(text) {
        Ok(_) => panic!("config should be refused:\n{text}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn empty_file_gives_the_documented_defaults() {
    let c = parse("").unwrap();
    assert_eq!(c.socket, PathBuf::from("/run/warden/warden.sock"));
    assert_eq!(c.state_dir, PathBuf::from("/var/lib/warden"));
    assert_eq!(c.admin_group, "warden-admin");
    let p = &c.policy;
    assert_eq!(p.rules.len(), 2);
    let user = &p.rules[0];
    assert_eq!((user.name.as_str(), user.limit), ("user", 5));
    assert_eq!(user.track, vec![Field::User]);
    assert_eq!(user.window, Duration::from_secs(900));
    assert_eq!(user.lockout, Lockout::For(Duration::from_secs(900)));
    assert_eq!(user.max_lockout, Duration::from_secs(86_400));
    let rhost = &p.rules[1];
    assert_eq!((rhost.name.as_str(), rhost.limit), ("rhost", 20));
    assert_eq!(rhost.max_lockout, Duration::from_secs(7 * 86_400));
    assert_eq!(p.attempt_timeout, Duration::from_secs(60));
    assert!(p.reset_on_success && p.extend_on_failure_while_locked && !p.lock_root);
    assert!(p.familiar_enabled);
    assert_eq!((p.ipv4_prefix, p.ipv6_prefix), (32, 64));
    assert_eq!(p.max_tracked_keys, 1_000_000);
}

#[test]
fn rules_replace_the_defaults() {
    let c = parse(
        r#"
[[rule]]
name = "pair"
track = ["rhost", "user"]
limit = 3
window = "10m"
lockout = "permanent"
services = ["sshd"]
"#,
    )
    .unwrap();
    assert_eq!(c.policy.rules.len(), 1);
    let r = &c.policy.rules[0];
    assert_eq!(r.track, vec![Field::User, Field::Rhost]);
    assert_eq!(r.lockout, Lockout::Permanent);
    assert!(r.applies_to_service("sshd") && !r.applies_to_service("sudo"));
}

#[test]
fn unknown_key_names_file_line_and_key() {
    let e = err("socket = \"/tmp/s\"\n\n[familiar]\nenabled = true\nremembr = \"1d\"\n");
    assert!(
        e.starts_with("/etc/warden/warden.toml:5: familiar.remembr: unknown field `remembr`"),
        "{e}"
    );
}

#[test]
fn unknown_top_level_key() {
    let e = err("lock_roots = true\n");
    assert!(
        e.starts_with("/etc/warden/warden.toml:1: lock_roots: unknown field"),
        "{e}"
    );
}

#[test]
fn bad_duration_names_the_rule_and_key() {
    let text = r#"
[[rule]]
name = "a"
track = ["user"]
limit = 5
window = "15m"
lockout = "15m"

[[rule]]
name = "b"
track = ["rhost"]
limit = 5
window = "15x"
lockout = "15m"
"#;
    let e = err(text);
    assert!(
        e.starts_with("/etc/warden/warden.toml:13: rule[2].window: invalid duration \"15x\""),
        "{e}"
    );
}

#[test]
fn bad_cidr_is_named() {
    let e = err("[allow]\nrhosts = [\"10.0.0.0/8\", \"10.0.0.0/33\"]\n");
    assert!(
        e.starts_with("/etc/warden/warden.toml:2: allow.rhosts: invalid CIDR \"10.0.0.0/33\""),
        "{e}"
    );
}

#[test]
fn bad_cidr_in_a_multiline_array() {
    let e = err("[deny]\nrhosts = [\n  \"192.0.2.0/24\",\n  \"nonsense\",\n]\n");
    assert!(
        e.starts_with("/etc/warden/warden.toml:2: deny.rhosts: invalid CIDR \"nonsense\""),
        "{e}"
    );
}

#[test]
fn missing_rule_key_is_named() {
    let e = err("[[rule]]\nname = \"x\"\ntrack = [\"user\"]\nwindow = \"1m\"\nlockout = \"1m\"\n");
    assert!(
        e.contains("rule[1].limit") && e.contains("missing field"),
        "{e}"
    );
}

#[test]
fn values_out_of_range_are_refused() {
    let rule = |extra: &str| {
        format!("[[rule]]\nname = \"x\"\ntrack = [\"user\"]\nwindow = \"1m\"\nlockout = \"1m\"\nlimit = 5\n{extra}\n")
    };
    assert!(err(&rule("escalate = 0.5")).contains("rule[1].escalate: must be a factor"));
    assert!(
        err(&rule("max_lockout = \"30s\"")).contains("rule[1].max_lockout: max_lockout is shorter")
    );
    assert!(
        err("ipv6_prefix = 129\n").contains("ipv6_prefix: must be a prefix length from 1 to 128")
    );
    assert!(err("attempt_timeout = \"0s\"\n").contains("attempt_timeout: must be longer than zero"));
    assert!(err(
        "[[rule]]\nname = \"x\"\ntrack = []\nwindow = \"1m\"\nlockout = \"1m\"\nlimit = 5\n"
    )
    .contains("rule[1].track: must name at least one"));
    assert!(err(
        "[[rule]]\nname = \"x\"\ntrack = [\"uid\"]\nwindow = \"1m\"\nlockout = \"1m\"\nlimit = 5\n"
    )
    .contains("rule[1].track: unknown variant `uid`"));
    assert!(err("[[rule]]\nname = \"x\"\ntrack = [\"user\"]\nwindow = \"1m\"\nlockout = \"1m\"\nlimit = 0\n")
        .contains("rule[1].limit: must be a whole number"));
}

#[test]
fn duplicate_rule_names_are_refused() {
    let one = "[[rule]]\nname = \"x\"\ntrack = [\"user\"]\nwindow = \"1m\"\nlockout = \"1m\"\nlimit = 5\n";
    let e = err(&format!("{one}{one}"));
    assert!(
        e.starts_with("/etc/warden/warden.toml:8: rule[2].name: rule name \"x\" is used twice"),
        "{e}"
    );
}

#[test]
fn missing_file_says_what_to_do() {
    let e = Config::load(Path::new("/nonexistent/warden.toml"))
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("/nonexistent/warden.toml: cannot read the config file"),
        "{e}"
    );
    assert!(e.contains("--config"), "{e}");
}

#[test]
fn syntax_error_has_a_line() {
    let e = err("socket = \"/tmp/x\"\nstate_dir = \n");
    assert!(
        e.starts_with("/etc/warden/warden.toml:2: state_dir:"),
        "{e}"
    );
}

#[test]
fn totp_section_parses_and_checks_dates() {
    let c = parse("[totp]\nrequired_for_users = [\"alice\"]\nservices = [\"sshd\"]\ngrace_until = \"2026-12-31\"\ntrusted_rhosts = [\"10.0.0.0/8\"]\nremember = \"12h\"\n").unwrap();
    assert_eq!(c.totp.required_for_users, ["alice"]);
    assert_eq!(c.totp.services, Some(vec!["sshd".to_string()]));
    // Through the end of 2026-12-31 UTC.
    assert_eq!(
        c.totp.grace_until.unwrap().to_string(),
        "2027-01-01T00:00:00Z"
    );
    assert_eq!(c.totp.remember, Some(Duration::from_secs(43_200)));
    assert!(c.totp.optional && !c.totp.self_enroll);
    let e = err("[totp]\ngrace_until = \"2026-02-30\"\n");
    assert!(
        e.starts_with("/etc/warden/warden.toml:2: totp.grace_until: invalid date"),
        "{e}"
    );
    assert!(err("[totp]\nrequired_users = []\n").contains("totp.required_users: unknown field"));
}

#[test]
fn host_bits_are_an_error_not_a_wider_network() {
    let e = err("[deny]\nrhosts = [\"10.1.2.3/8\"]\n");
    assert!(
        e.starts_with("/etc/warden/warden.toml:2: deny.rhosts: \"10.1.2.3/8\" has host bits set: the network is \"10.0.0.0/8\""),
        "{e}"
    );
    assert!(parse("[allow]\nrhosts = [\"10.0.0.0/8\", \"192.0.2.7\"]\n").is_ok());
}

#[test]
fn an_empty_service_list_guards_nothing_and_is_refused() {
    let e = err("[[rule]]\nname = \"u\"\ntrack = [\"user\"]\nlimit = 3\nwindow = \"1h\"\nlockout = \"1h\"\nservices = []\n");
    assert!(
        e.starts_with(
            "/etc/warden/warden.toml:7: rule[1].services: an empty list matches no PAM service"
        ),
        "{e}"
    );
    let e = err("[totp]\nservices = []\n");
    assert!(
        e.starts_with("/etc/warden/warden.toml:2: totp.services:"),
        "{e}"
    );
}

/// What an admin reads has no Rust type names, and names the usual slips.
#[test]
fn errors_are_in_the_admins_words() {
    let e = err("[[rule]]\nname = \"x\"\ntrack = [\"user\"]\nlimit = \"5\"\nwindow = \"1m\"\nlockout = \"1m\"\n");
    assert!(
        e.contains(
            ":4: rule[1].limit: is the text \"5\", but must be a number, written without quotes"
        ),
        "{e}"
    );
    assert!(
        !e.contains("i64") && !e.contains("u32") && !e.contains("invalid type"),
        "{e}"
    );
    let e = err("reset_on_success = \"yes\"\n");
    assert!(e.contains("must be true or false"), "{e}");
    let e = err(
        "[rule]\nname = \"x\"\ntrack = [\"user\"]\nlimit = 3\nwindow = \"1m\"\nlockout = \"1m\"\n",
    );
    assert!(e.contains("write [[rule]] with two brackets"), "{e}");
    let e = err("[familiar]\nenabled = true\nmax_tracked_keys = 10\n");
    assert!(
        e.contains(":3: familiar.max_tracked_keys: `max_tracked_keys` is a top-level key, but it comes after [familiar]"),
        "{e}"
    );
}

#[test]
fn durations_take_weeks_and_compound_forms() {
    let c = Config::parse(
        "attempt_timeout = \"1m30s\"\nescalation_memory = \"2w\"\n",
        Path::new("/etc/warden/warden.toml"),
    )
    .unwrap();
    assert_eq!(c.policy.attempt_timeout, Duration::from_secs(90));
    assert_eq!(c.policy.escalation_memory, Duration::from_secs(14 * 86_400));
}

#[test]
fn fleet_is_off_by_default_and_checked_when_on() {
    assert_eq!(parse("").unwrap().fleet, None);
    let c = parse(
        "[fleet]\nbackend = \"redis\"\nurl = \"redis://127.0.0.1:6379/0\"\nhost_id = \"b7\"\n",
    )
    .unwrap();
    let f = c.fleet.unwrap();
    assert_eq!((f.prefix.as_str(), f.host_id.as_str()), ("w:", "b7"));
    assert_eq!(f.on_unavailable, crate::config::OnUnavailable::Local);
    assert_eq!(f.call_timeout, Duration::from_millis(250));
    // A password in the URL would sit in a world-readable file: refused,
    // with the file, the line and the key.
    let e = err("socket = \"/run/w.sock\"\n[fleet]\nbackend = \"redis\"\nurl = \"redis://:hunter2@10.0.0.5/0\"\n");
    assert!(
        e.starts_with("/etc/warden/warden.toml:4: fleet.url:"),
        "{e}"
    );
    assert!(e.contains("password_file"), "{e}");
    let e = err("[fleet]\nbackend = \"etcd\"\nurl = \"redis://h/0\"\n");
    assert!(
        e.contains(":2: fleet.backend:") && e.contains("\"redis\""),
        "{e}"
    );
    let e =
        err("[fleet]\nbackend = \"redis\"\nurl = \"redis://h/0\"\non_unavailable = \"maybe\"\n");
    assert!(e.contains("fleet.on_unavailable"), "{e}");
    // Plain text only on this machine: across a network, TLS.
    let e = err("[fleet]\nbackend = \"redis\"\nurl = \"redis://10.0.0.5:6379/0\"\n");
    assert!(
        e.contains(":3: fleet.url:") && e.contains("rediss://"),
        "{e}"
    );
    for ok in [
        "redis://localhost/0",
        "redis://[::1]:6379/0",
        "redis://127.0.0.2/1",
        "rediss://10.0.0.5/0",
    ] {
        assert!(
            parse(&format!("[fleet]\nbackend = \"redis\"\nurl = \"{ok}\"\n")).is_ok(),
            "{ok}"
        );
    }
    let e = err(
        "[fleet]\nbackend = \"redis\"\nurl = \"redis://127.0.0.1/0\"\ntls_ca = \"/etc/ca.pem\"\n",
    );
    assert!(e.contains("fleet.tls_ca") && e.contains("rediss://"), "{e}");
    let e =
        err("[fleet]\nbackend = \"redis\"\nurl = \"redis://127.0.0.1/0\"\ncall_timeout = \"5s\"\n");
    assert!(e.contains("fleet.call_timeout") && e.contains("2s"), "{e}");
}

#[test]
fn hooks_are_read_and_checked_before_any_lock() {
    assert!(parse("").unwrap().hooks.is_empty());
    let c = parse("[[hook]]\non = [\"locked\"]\nexec = [\"/bin/true\", \"--quiet\"]\n").unwrap();
    assert_eq!(
        c.hooks,
        [Hook {
            on: vec![HookEvent::Locked],
            exec: vec!["/bin/true".into(), "--quiet".into()],
            user: "nobody".into(),
            timeout: std::time::Duration::from_secs(10),
        }]
    );
    let e = err("[[hook]]\non = [\"locked\"]\nexec = [\"notify-owner\"]\n");
    assert!(
        e.contains(":3: hook[1].exec:") && e.contains("not an absolute path"),
        "{e}"
    );
    let e = err("[[hook]]\non = [\"locked\"]\nexec = [\"/nonexistent/notify\"]\n");
    assert!(
        e.contains(":3: hook[1].exec:") && e.contains("does not exist"),
        "{e}"
    );
    let e = err("[[hook]]\non = [\"lockd\"]\nexec = [\"/bin/true\"]\n");
    assert!(
        e.contains(":2: hook[1].on:") && e.contains("\"lockd\""),
        "{e}"
    );
    let e = err("[[hook]]\non = []\nexec = [\"/bin/true\"]\n");
    assert!(e.contains(":2: hook[1].on:"), "{e}");
    let e =
        err("[[hook]]\non = [\"unlocked\"]\nexec = [\"/bin/true\"]\nuser = \"no-such-user-x\"\n");
    assert!(
        e.contains(":4: hook[1].user:") && e.contains("no-such-user-x"),
        "{e}"
    );
    let e = err("[[hook]]\non = [\"unlocked\"]\nexec = [\"/bin/true\"]\ntimeout = \"1h\"\n");
    assert!(
        e.contains(":4: hook[1].timeout:") && e.contains("5m"),
        "{e}"
    );
    let e = err("[[hook]]\non = [\"locked\"]\nexec = [\"/bin/true\"]\nshell = true\n");
    assert!(e.contains("hook[1]") && e.contains("shell"), "{e}");
}

#[test]
fn jitter_needs_a_lock_with_an_end() {
    let c = parse("[[rule]]\nname = \"u\"\ntrack = [\"user\"]\nlimit = 5\nwindow = \"15m\"\nlockout = \"15m\"\njitter = \"5m\"\n").unwrap();
    assert_eq!(
        c.policy.rules[0].jitter,
        std::time::Duration::from_secs(300)
    );
    assert!(parse("")
        .unwrap()
        .policy
        .rules
        .iter()
        .all(|r| r.jitter.is_zero()));
    let e = err("[[rule]]\nname = \"u\"\ntrack = [\"user\"]\nlimit = 5\nwindow = \"15m\"\nlockout = \"permanent\"\njitter = \"5m\"\n");
    assert!(
        e.contains(":7: rule[1].jitter:") && e.contains("permanent"),
        "{e}"
    );
    let e = err("[[rule]]\nname = \"u\"\ntrack = [\"user\"]\nlimit = 5\nwindow = \"15m\"\nlockout = \"15m\"\njitter = \"2d\"\n");
    assert!(e.contains(":7: rule[1].jitter:") && e.contains("1d"), "{e}");
}

#[test]
fn observe_mode_is_global_or_per_rule_and_never_silently_off_in_a_fleet() {
    let rule = "[[rule]]\nname = \"u\"\ntrack = [\"user\"]\nlimit = 5\nwindow = \"15m\"\nlockout = \"15m\"\n";
    let c = parse(&format!("mode = \"observe\"\n{rule}")).unwrap();
    assert!(c.policy.observe && c.policy.rules[0].observe);
    assert!(c.policy.aggregate.unwrap().rule.observe);
    // A rule may enforce inside an observing file, and the reverse.
    let c = parse(&format!("mode = \"observe\"\n{rule}mode = \"enforce\"\n")).unwrap();
    assert!(c.policy.observe && !c.policy.rules[0].observe);
    let c = parse(&format!("{rule}mode = \"observe\"\n")).unwrap();
    assert!(!c.policy.observe && c.policy.rules[0].observe);
    assert!(!parse("").unwrap().policy.rules.iter().any(|r| r.observe));
    let e = err("mode = \"watch\"\n");
    assert!(e.contains(":1: mode:") && e.contains("observe"), "{e}");
    let fleet = "[fleet]\nbackend = \"redis\"\nurl = \"redis://127.0.0.1:6379/0\"\n";
    let e = err(&format!("{rule}mode = \"observe\"\n{fleet}"));
    assert!(
        e.contains(":7: rule[1].mode:") && e.contains("[fleet]"),
        "{e}"
    );
    let e = err(&format!("mode = \"observe\"\n{fleet}"));
    assert!(e.contains(":1: mode:") && e.contains("[fleet]"), "{e}");
}

#[test]
fn firewall_is_off_by_default_and_names_its_backend() {
    assert_eq!(parse("").unwrap().firewall, None);
    let c = parse("[firewall]\nbackend = \"nftables\"\n").unwrap();
    assert_eq!(c.firewall, Some(Firewall::Nftables));
    let e = err("[firewall]\nbackend = \"iptables\"\n");
    assert!(
        e.contains(":2: firewall.backend:") && e.contains("nftables"),
        "{e}"
    );
    let e = err("[firewall]\n");
    assert!(e.contains("firewall") && e.contains("backend"), "{e}");
}

#[test]
fn the_same_password_counts_once_unless_turned_off() {
    assert!(parse("").unwrap().same_password_once);
    assert!(
        !parse("same_password_once = false\n")
            .unwrap()
            .same_password_once
    );
    let e = err("same_password_once = \"yes\"\n");
    assert!(e.contains(":1: same_password_once:"), "{e}");
}

#[test]
fn rule_scopes_are_read_folded_and_checked() {
    let rule = "[[rule]]\nname = \"u\"\ntrack = [\"user\"]\nlimit = 5\nwindow = \"15m\"\nlockout = \"15m\"\n";
    let c = parse(&format!(
        "[users]\nfold_case = true\n{rule}users = [\"Root\"]\ngroups = [\"sudo\"]\nexclude_users = [\"CI\"]\nexclude_groups = [\"svc\"]\n"
    ))
    .unwrap();
    let s = &c.policy.rules[0].scope;
    assert_eq!(s.users.as_deref(), Some(&["root".to_string()][..]));
    assert_eq!(s.exclude_users, ["ci"]);
    assert_eq!(s.groups.as_deref(), Some(&["sudo".to_string()][..]));
    assert!(s.needs_groups());
    assert_eq!(
        parse(rule).unwrap().policy.rules[0].scope,
        UserScope::default()
    );
    let e = err(&format!("{rule}groups = []\n"));
    assert!(
        e.contains(":7: rule[1].groups:") && e.contains("empty list"),
        "{e}"
    );
    let e = err(&format!("{rule}exclude_users = [\"a b\"]\n"));
    assert!(e.contains(":7: rule[1].exclude_users:"), "{e}");
}

#[test]
fn messages_templates_are_checked_with_their_line() {
    let c = parse(
        "[messages]\ncontact = \"IT, +1 555 0100\"\nlocked = \"Locked. {try_again} {contact}\"\n",
    )
    .unwrap();
    assert_eq!(c.messages.contact, "IT, +1 555 0100");
    assert_eq!(c.messages.catalogs, Path::new("/usr/share/locale"));
    assert!(parse("").unwrap().messages.locked.is_none());
    let e = err("[messages]\n\nadmin_locked = \"Held: {why}\"\n");
    assert!(
        e.contains(":3: messages.admin_locked:") && e.contains("{why}") && e.contains("{reason}"),
        "{e}"
    );
    let e = err("[messages]\ncatalogs = \"po\"\n");
    assert!(
        e.contains(":2: messages.catalogs:") && e.contains("absolute"),
        "{e}"
    );
    let e = err("[messages]\nlocked = \"x\"\nwelcome = \"hi\"\n");
    assert!(e.contains("welcome"), "{e}");
}
