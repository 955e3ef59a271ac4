//! `[firewall] backend = "nftables"` with real nft in a network namespace the
//! test makes, wardend running inside it: a locked address's TCP connection
//! to a listener there is dropped, and its unlock lets it through; a user's
//! lock never blocks the address it came from; an admin's range is blocked
//! whole; a restart puts back what the sets lost; a ruleset without the table
//! is a loud failure, never a silent one.

use std::net::IpAddr;
use std::time::{Duration, Instant};
use warden_e2e::bus::{wardenctl, Ctl};
use warden_e2e::daemon::{rhost_rule, user_rule, Daemon, NO_FAMILIAR};
use warden_e2e::netns::Netns;
use warden_e2e::pam::PamDir;
use warden_e2e::{paths, root_or_skip};

/// Two failures lock a user, three an address.
fn rules() -> String {
    format!(
        "[firewall]\nbackend = \"nftables\"\n{NO_FAMILIAR}{}{}",
        user_rule(2, "1h", "1h"),
        rhost_rule(3, "1h", "1h")
    )
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// Waits up to 5 s for `connects` to become `want`.
fn settles(ns: &Netns, from: &str, to: std::net::SocketAddr, want: bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(5) {
        if ns.connects(ip(from), to) == want {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

fn ctl(d: &Daemon, args: &[&str]) -> Ctl {
    let root = d.socket.with_file_name("warden-root.sock");
    let mut all = args.to_vec();
    all.extend(["--root-socket", root.to_str().unwrap()]);
    let c = wardenctl("unix:path=/nonexistent", None, &all);
    assert_eq!(c.code, 0, "{c:?}");
    c
}

#[test]
fn locked_addresses_are_dropped_in_nftables_and_unlocks_let_them_through() {
    if !root_or_skip("locked_addresses_are_dropped_in_nftables_and_unlocks_let_them_through") {
        return;
    }
    let ns = Netns::new(
        &format!("wfw{}", std::process::id()),
        &[
            ip("192.0.2.1"),
            ip("192.0.2.2"),
            ip("192.0.2.3"),
            ip("198.51.100.9"),
            ip("2001:db8:1::1"),
            ip("2001:db8:2::2"),
        ],
    );
    let (ok, out) = ns.nft(&[
        "-f",
        paths::repo_file("packaging/nftables/warden.nft")
            .to_str()
            .unwrap(),
    ]);
    assert!(ok, "the shipped table does not load: {out}");
    let (_l4, v4) = ns.listen(ip("192.0.2.1"));
    let (_l6, v6) = ns.listen(ip("2001:db8:1::1"));
    for from in ["192.0.2.2", "192.0.2.3", "198.51.100.9"] {
        assert!(
            ns.connects(ip(from), v4),
            "{from} cannot connect before any lock"
        );
    }
    assert!(ns.connects(ip("2001:db8:2::2"), v6));

    let mut d = Daemon::start_wrapped(&rules(), &[], &ns.exec_prefix());
    assert!(
        d.wait_for_log("firewall-synced why=start elements=0", 5),
        "{}",
        d.log_text()
    );
    let pam = PamDir::new(&d.socket, "0", "");

    // A guesser trying three names from one address: the address lock.
    for u in ["u1", "u2", "u3"] {
        pam.attempt(u, "wrong", Some("192.0.2.2"));
    }
    // How long the set lags the lock, for the README (never asserted).
    let locked_at = Instant::now();
    while !ns
        .nft(&["list", "set", "inet", "warden", "rule_v4"])
        .1
        .contains("192.0.2.2")
        && locked_at.elapsed() < Duration::from_secs(5)
    {
        std::thread::sleep(Duration::from_millis(2));
    }
    println!(
        "the set held the lock {} ms after the PAM call returned",
        locked_at.elapsed().as_millis()
    );
    assert!(
        settles(&ns, "192.0.2.2", v4, false),
        "a locked address still connects:\n{}",
        d.log_text()
    );
    let (_, set) = ns.nft(&["list", "set", "inet", "warden", "rule_v4"]);
    assert!(set.contains("192.0.2.2 timeout 1h expires 59m"), "{set}");
    // The same from an IPv6 /64.
    for u in ["u4", "u5", "u6"] {
        pam.attempt(u, "wrong", Some("2001:db8:2::2"));
    }
    assert!(settles(&ns, "2001:db8:2::2", v6, false), "{}", d.log_text());

    // A user's lock never blocks the address it came from: it may be the owner's.
    for _ in 0..2 {
        pam.attempt("carol", "wrong", Some("192.0.2.3"));
    }
    assert!(d.wait_for_log("locked rule=user on=user", 5));
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        ns.connects(ip("192.0.2.3"), v4),
        "a user lock blocked its address"
    );

    // An admin's range is blocked whole, and its unlock lifts it.
    ctl(
        &d,
        &[
            "lock",
            "--rhost",
            "198.51.100.0/24",
            "--for",
            "1h",
            "--reason",
            "scanner",
        ],
    );
    assert!(settles(&ns, "198.51.100.9", v4, false), "{}", d.log_text());
    ctl(&d, &["unlock", "--rhost", "198.51.100.0/24"]);
    assert!(settles(&ns, "198.51.100.9", v4, true), "{}", d.log_text());

    // An admin's unlock of the address lets it through.
    ctl(&d, &["unlock", "--rhost", "192.0.2.2"]);
    assert!(settles(&ns, "192.0.2.2", v4, true), "{}", d.log_text());

    // Whatever the sets lost (a reload of the ruleset) comes back at start.
    let (ok, out) = ns.nft(&["flush", "set", "inet", "warden", "rule_v6"]);
    assert!(ok, "{out}");
    assert!(ns.connects(ip("2001:db8:2::2"), v6));
    d.restart();
    assert!(settles(&ns, "2001:db8:2::2", v6, false), "{}", d.log_text());
    assert!(
        ns.connects(ip("192.0.2.2"), v4),
        "an unlocked address came back"
    );

    // Without the table, every sync fails loudly; PAM still refuses.
    let (ok, out) = ns.nft(&["delete", "table", "inet", "warden"]);
    assert!(ok, "{out}");
    for u in ["u7", "u8", "u9"] {
        pam.attempt(u, "wrong", Some("192.0.2.3"));
    }
    assert!(
        d.wait_for_log("firewall-failed failures=1 error=", 5),
        "no loud failure:\n{}",
        d.log_text()
    );
    assert!(d
        .log_text()
        .contains("include /usr/share/warden/warden.nft"));
    let o = pam.attempt("u10", "right", Some("192.0.2.3"));
    assert_eq!(o.auth, warden_e2e::pam::PAM_AUTH_ERR, "{o:?}");
}
