//! The .deb on a Debian 12 guest booted with systemd as PID 1: what an admin
//! does, in order, with real ssh, sudo and su inside the guest. One test: each
//! step builds on the last. The host's own /etc is left as it was.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;
use warden_e2e::guest::{unavailable, Guest};
use warden_e2e::paths;

const LOCKED: &str = "Too many failed attempts";

/// /etc/pam.d, /etc/passwd and /etc/group of a root, to compare.
fn etc(root: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(root.join("etc/pam.d"))
        .into_iter()
        .flatten()
        .flatten()
    {
        if let Ok(b) = std::fs::read(entry.path()) {
            out.insert(entry.path().display().to_string(), b);
        }
    }
    for f in ["etc/passwd", "etc/group"] {
        out.insert(f.into(), std::fs::read(root.join(f)).unwrap_or_default());
    }
    out
}

/// The keys of the active locks, as `wardenctl locks --json` gives them.
fn lock_keys(g: &Guest) -> Vec<String> {
    let out = g.ok("wardenctl locks --json");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    let mut keys: Vec<String> = v
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|l| l["key"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    keys.sort();
    keys
}

/// Waits until wardend answers on the guest's bus.
fn answering(g: &Guest) {
    let start = Instant::now();
    while start.elapsed().as_secs() < 30 {
        if g.sh("wardenctl status >/dev/null").0 {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    panic!(
        "wardend does not answer in the guest:\n{}",
        g.sh("systemctl status wardend; journalctl -u wardend --no-pager | tail -20")
            .1
    );
}

fn ssh(g: &Guest, user: &str, password: &str) -> String {
    g.sh(&format!(
        "sshpass -p '{password}' ssh -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
         -o PreferredAuthentications=keyboard-interactive -o NumberOfPasswordPrompts=1 {user}@127.0.0.1 echo in-as-{user}"
    ))
    .1
}

/// Installs one of the packages' drop-ins for wardend.service.
fn install_drop_in(g: &Guest, name: &str) {
    g.ok(&format!("mkdir -p /etc/systemd/system/wardend.service.d && cp /usr/share/doc/warden/systemd/wardend.service.d/{name} /etc/systemd/system/wardend.service.d/ && systemctl daemon-reload"));
}

/// The journal's lines since wardend last started.
fn since_last_start(journal: &str) -> &str {
    journal.rsplit("started version").next().unwrap_or("")
}

fn sudo(g: &Guest, user: &str, password: &str) -> String {
    g.sh(&format!(
        "printf '%s\\n' '{password}' | runuser -u {user} -- sudo -S -k -p 'password: ' echo in-as-root"
    ))
    .1
}

/// su through a terminal (script), typing once the prompt is up: su turns
/// echo off with a flush that drops anything typed before.
fn su(g: &Guest, from: &str, to: &str, password: &str) -> String {
    g.sh(&format!(
        "(sleep 0.7; printf '%s\\n' '{password}') | runuser -u {from} -- script -qec 'su -c \"echo in-as-{to}\" {to}' /dev/null"
    ))
    .1
}

#[test]
fn the_package_on_a_booted_debian_12() {
    if let Some(why) = unavailable() {
        println!("SKIP the_package_on_a_booted_debian_12: {why}; CI runs as root with the packages from make deps");
        return;
    }
    let started = Instant::now();
    let host_before = etc(Path::new("/"));
    let deb = paths::target_dir().join("../debian/warden.deb");
    assert!(
        deb.exists(),
        "{} is missing: run make deb (make test does)",
        deb.display()
    );
    let mut g = Guest::boot();
    let pam_before = etc(&g.root);

    // 1. Install: the daemon and its socket run, and dbus knew the group.
    g.put(&deb, "/root/warden.deb");
    g.ok("dpkg -i /root/warden.deb");
    g.ok("systemctl is-active wardend.service wardend.socket");
    answering(&g);
    // The metrics timer ships disabled; run once, it writes the textfile.
    let (_, enabled) = g.sh("systemctl is-enabled warden-metrics.timer");
    assert_eq!(enabled.trim(), "disabled", "{enabled}");
    g.ok("systemctl start warden-metrics.service");
    let prom = g.read("/var/lib/prometheus/node-exporter/warden.prom");
    assert!(
        prom.contains("warden_up 1") && prom.contains("warden_events_total"),
        "{prom}"
    );
    let (_, journal) = g.sh("journalctl -b --no-pager");
    assert!(!journal.contains("Unknown group"), "{journal}");

    // 2. PAM, as the README says; users; ssh that can show PAM's messages.
    g.ok("pam-auth-update --enable warden warden-authfail warden-authsucc");
    for (user, pw) in [
        ("alice", "Alice-Pass-1"),
        ("bob", "Bob-Pass-1"),
        ("carol", "Carol-Pass-1"),
        ("dave", "Dave-Pass-1"),
    ] {
        g.ok(&format!(
            "useradd -m -s /bin/bash {user} && echo '{user}:{pw}' | chpasswd"
        ));
    }
    g.ok("printf 'alice ALL=(ALL) ALL\\nDefaults:alice passwd_tries=1\\n' > /etc/sudoers.d/alice && chmod 440 /etc/sudoers.d/alice");
    g.ok("printf 'KbdInteractiveAuthentication yes\\n' > /etc/ssh/sshd_config.d/warden-test.conf && systemctl restart ssh");
    assert!(ssh(&g, "carol", "Carol-Pass-1").contains("in-as-carol"));

    // 3. Five wrong passwords lock each way in; the right one is then refused
    //    with the reason.
    //    Five different guesses: a repeat of one counts once.
    for i in 0..5 {
        let wrong = format!("wrong-{i}");
        assert!(!ssh(&g, "carol", &wrong).contains("in-as-"));
        assert!(!sudo(&g, "alice", &wrong).contains("in-as-"));
        assert!(!su(&g, "bob", "dave", &wrong).contains("in-as-"));
    }
    let out = ssh(&g, "carol", "Carol-Pass-1");
    assert!(
        out.contains(LOCKED) && !out.contains("in-as-"),
        "ssh: {out}"
    );
    let out = sudo(&g, "alice", "Alice-Pass-1");
    assert!(
        out.contains(LOCKED) && !out.contains("in-as-"),
        "sudo: {out}"
    );
    let out = su(&g, "bob", "dave", "Dave-Pass-1");
    assert!(out.contains(LOCKED) && !out.contains("in-as-"), "su: {out}");
    let locks = lock_keys(&g);
    for user in ["alice", "carol", "dave"] {
        assert!(
            locks.iter().any(|k| k.contains(&format!("user={user}"))),
            "{locks:?}"
        );
    }

    // 4. kill -9, then a reboot: the locks are still there.
    g.ok("systemctl kill -s KILL wardend.service");
    std::thread::sleep(std::time::Duration::from_secs(2));
    answering(&g);
    assert_eq!(lock_keys(&g), locks, "after kill -9");
    g.reboot();
    answering(&g);
    assert_eq!(lock_keys(&g), locks, "after a reboot");
    g.ok("systemctl is-active wardend.service wardend.socket ssh");

    // 5. Unlocked, the right password works.
    g.ok("wardenctl unlock alice");
    assert!(sudo(&g, "alice", "Alice-Pass-1").contains("in-as-root"));

    // 6. Socket activation as the README says, with the service running; then
    //    the service stopped, and a login starts it through the socket.
    g.ok("systemctl enable --now wardend.socket");
    g.ok("systemctl stop wardend.service");
    g.ok("systemctl is-active wardend.socket");
    assert!(sudo(&g, "alice", "Alice-Pass-1").contains("in-as-root"));
    g.ok("systemctl is-active wardend.service");

    // 7. systemctl reload: the edited file is read; a broken one is refused.
    g.ok("printf '\\nattempt_timeout = \"90s\"\\n' >> /etc/warden/warden.toml");
    g.ok("systemctl reload wardend");
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert!(g
        .ok("journalctl -u wardend --no-pager")
        .contains("config-reloaded by=signal"));
    g.ok("systemctl is-active wardend.service");

    // 7b. A fleet host: the shipped unit cannot reach the network, so wardend
    //     says the fleet is unavailable (the address family is refused); the
    //     shipped drop-in opens TCP (the refusal is then Redis's port, closed
    //     in the guest), and the host keeps deciding alone meanwhile.
    g.ok("cp /etc/warden/warden.toml /root/warden.toml.bak");
    g.ok("printf '\\n[fleet]\\nbackend = \"redis\"\\nurl = \"redis://127.0.0.1:6390/0\"\\nhost_id = \"guest\"\\n' >> /etc/warden/warden.toml");
    let fleet_log = |g: &Guest| {
        g.ok("systemctl restart wardend && sleep 2");
        g.ok("journalctl -u wardend --no-pager -n 40 -o cat")
    };
    let shut = fleet_log(&g);
    assert!(
        shut.contains("fleet-unavailable") && shut.contains("os error 97"),
        "the shipped unit reached for Redis: {shut}"
    );
    install_drop_in(&g, "fleet.conf");
    let open = fleet_log(&g);
    let tail = since_last_start(&open);
    assert!(
        tail.contains("fleet-unavailable") && tail.contains("os error 111"),
        "with the drop-in, wardend did not reach TCP: {open}"
    );
    assert_eq!(
        g.ok("systemctl show wardend -p PrivateNetwork --value")
            .trim(),
        "no"
    );
    assert!(sudo(&g, "alice", "Alice-Pass-1").contains("in-as-root"));
    g.ok("rm -r /etc/systemd/system/wardend.service.d && cp /root/warden.toml.bak /etc/warden/warden.toml && systemctl daemon-reload && systemctl restart wardend");
    g.ok("systemctl is-active wardend.service");

    // 7c. A lock hook: under the shipped unit (no capability, no set*id
    //     calls) it cannot drop to nobody, and says so; with the shipped
    //     drop-in it runs as nobody with the event on stdin (the hook fails
    //     on purpose, so its stderr lands in the journal, out of the
    //     unit's private /tmp).
    g.ok(r#"printf '#!/bin/sh\necho "uid=$(id -u) $(head -c 60)" >&2\nexit 3\n' > /usr/local/sbin/warden-test-hook && chmod 755 /usr/local/sbin/warden-test-hook"#);
    g.ok(r#"printf '\n[[hook]]\non = ["locked"]\nexec = ["/usr/local/sbin/warden-test-hook"]\ntimeout = "5s"\n' >> /etc/warden/warden.toml"#);
    let hook_log = |g: &Guest| {
        let (ok, out) = g.sh("systemctl restart wardend && sleep 1 && wardenctl lock hooked --for 1m && sleep 1 && wardenctl unlock hooked");
        let journal = g.ok("journalctl -u wardend --no-pager -n 30 -o cat");
        assert!(ok, "{out}\n{journal}");
        journal
    };
    let shut = hook_log(&g);
    let shut = since_last_start(&shut);
    assert!(
        shut.contains("hook-failed on=locked") && shut.contains("Operation not permitted"),
        "the shipped unit let a hook change user: {shut}"
    );
    install_drop_in(&g, "hooks.conf");
    let open = hook_log(&g);
    let open = since_last_start(&open);
    assert!(
        open.contains("hook-failed on=locked") && open.contains("status=3")
            // The log quotes '=' inside a value as \x3d.
            && open.contains("uid\\x3d65534") && open.contains("locked"),
        "with the drop-in, the hook did not run as nobody: {open}"
    );
    g.ok("rm -r /etc/systemd/system/wardend.service.d /usr/local/sbin/warden-test-hook && cp /root/warden.toml.bak /etc/warden/warden.toml && systemctl daemon-reload && systemctl restart wardend");
    g.ok("systemctl is-active wardend.service");

    // 7d. The firewall: under the shipped unit (a private network, no
    //     capability) nft cannot touch the host's sets, and the log says
    //     so; with the shipped drop-in, an address lock is in the set.
    g.ok("nft -f /usr/share/warden/warden.nft");
    g.ok(r#"printf '\n[firewall]\nbackend = "nftables"\n' >> /etc/warden/warden.toml"#);
    let firewall_log = |g: &Guest| {
        let (ok, out) = g.sh("systemctl restart wardend && sleep 1 && wardenctl lock --rhost 192.0.2.77 --for 1h && sleep 1");
        let journal = g.ok("journalctl -u wardend --no-pager -n 30 -o cat");
        assert!(ok, "{out}\n{journal}");
        journal
    };
    let shut = firewall_log(&g);
    assert!(
        since_last_start(&shut).contains("firewall-failed"),
        "the shipped unit let wardend change the host's ruleset, or failed quietly: {shut}"
    );
    assert!(!g
        .ok("nft list set inet warden admin_v4")
        .contains("192.0.2.77"));
    install_drop_in(&g, "firewall.conf");
    let open = firewall_log(&g);
    assert!(
        since_last_start(&open).contains("firewall-synced why=start elements=1"),
        "with the drop-in, wardend did not sync the sets: {open}"
    );
    let set = g.ok("nft list set inet warden admin_v4");
    assert!(set.contains("192.0.2.77 timeout"), "{set}");
    g.ok("wardenctl unlock --rhost 192.0.2.77 && rm -r /etc/systemd/system/wardend.service.d && cp /root/warden.toml.bak /etc/warden/warden.toml && nft delete table inet warden && systemctl daemon-reload && systemctl restart wardend");
    g.ok("systemctl is-active wardend.service");

    // 8. An upgrade over the edited conffile keeps the edit and the state.
    g.ok("rm -rf /root/w && dpkg-deb -R /root/warden.deb /root/w \
         && sed -i 's/^Version: .*/Version: 99.0.0/' /root/w/DEBIAN/control \
         && echo '# shipped by the upgrade' >> /root/w/etc/warden/warden.toml \
         && dpkg-deb -b /root/w /root/warden-2.deb >/dev/null");
    g.ok("dpkg -i --force-confold /root/warden-2.deb");
    assert_eq!(
        g.ok("dpkg-query -W -f='${Version}' warden").trim(),
        "99.0.0"
    );
    let conf = g.read("/etc/warden/warden.toml");
    assert!(
        conf.contains("attempt_timeout = \"90s\"") && !conf.contains("# shipped by the upgrade"),
        "{conf}"
    );
    answering(&g);
    let left: Vec<String> = locks
        .iter()
        .filter(|k| !k.contains("alice"))
        .cloned()
        .collect();
    assert_eq!(lock_keys(&g), left, "the upgrade keeps the state");

    // 9. Disable and purge: the stack is back byte for byte, nothing is left.
    g.ok("pam-auth-update --disable warden warden-authfail warden-authsucc");
    g.ok("dpkg -P warden");
    let pam_after = etc(&g.root);
    for (file, before) in &pam_before {
        if file.contains("/etc/pam.d/") {
            assert_eq!(pam_after.get(file), Some(before), "{file} is not as it was");
        }
    }
    for gone in [
        "etc/warden",
        "var/lib/warden",
        "lib/x86_64-linux-gnu/security/pam_warden.so",
        "usr/sbin/wardend",
        "usr/lib/systemd/system/wardend.service",
    ] {
        assert!(!g.root.join(gone).exists(), "/{gone} left after purge");
    }
    assert!(
        !g.read("/etc/group").contains("warden-admin"),
        "the empty group goes"
    );
    assert!(!g.sh("systemctl cat wardend.service").0);

    drop(g);
    assert!(
        etc(Path::new("/")) == host_before,
        "the host's /etc/pam.d, passwd and group are untouched"
    );
    println!(
        "booted Debian 12 guest: install, pam-auth-update, locks through ssh, sudo and su, kept across kill -9 and a reboot, unlock, socket activation, reload, upgrade over an edited conffile, purge: ok in {:.0} s",
        started.elapsed().as_secs_f64()
    );
}
