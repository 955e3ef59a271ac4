//! `make demo`: wardend on a scratch config with the embedded store, a real
//! sshd on loopback guarded by pam_warden, and the real OpenSSH client playing
//! an attacker and then the owner. Everything it makes it removes.

use std::process::{Command, ExitCode};
use warden_e2e::bus::{wait_for_daemon, wardenctl, Bus};
use warden_e2e::daemon::Daemon;
use warden_e2e::sshd::{sshd_stack, Sshd};
use warden_e2e::users::TestUser;
use warden_e2e::{paths, unique};

const PASSWORD: &str = "demo-Corr3ct-Horse";

fn say(text: &str) {
    println!("\n== {text}");
}

fn main() -> ExitCode {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("make demo needs root: it adds a throwaway user, a PAM service in /etc/pam.d and runs sshd");
        return ExitCode::FAILURE;
    }
    say("Starting a private system bus (dbus-daemon) with warden's D-Bus policy");
    let bus = Bus::start();
    println!("{}", bus.address);
    say("Starting wardend with a scratch config and the embedded redb store");
    let daemon = Daemon::start_with_env(
        "[[rule]]\nname = \"user\"\ntrack = [\"user\"]\nlimit = 3\nwindow = \"15m\"\nlockout = \"15m\"\nescalate = 2.0\nmax_lockout = \"24h\"\n\n\
         [[rule]]\nname = \"rhost\"\ntrack = [\"rhost\"]\nlimit = 20\nwindow = \"15m\"\nlockout = \"1h\"\n",
        &bus.env(),
    );
    if !wait_for_daemon(&bus.address) {
        eprintln!("wardend did not come on the bus:\n{}", daemon.log_text());
        return ExitCode::FAILURE;
    }
    let ctl = |args: &[&str]| {
        println!("   $ wardenctl {}", args.join(" "));
        let c = wardenctl(&bus.address, None, args);
        for line in c.stdout.lines().chain(c.stderr.lines()) {
            println!("   {line}");
        }
    };
    let check = Command::new(paths::wardend())
        .arg("--config")
        .arg(&daemon.config)
        .arg("--check-config")
        .output();
    if let Ok(out) = check {
        print!("{}", String::from_utf8_lossy(&out.stdout));
    }
    println!("state: {}", daemon.state.display());

    let user = TestUser::create(&unique("wdemo"), PASSWORD);
    let service = "sshd-warden";
    say(&format!(
        "Starting a real sshd on 127.0.0.1 with PAM service {service} (/etc/pam.d/{service})"
    ));
    let sshd = Sshd::start(service, &sshd_stack(&daemon.socket), "");
    println!("port {}, throwaway user {}", sshd.port, user.name);
    print!("{}", sshd_stack(&daemon.socket));

    say("1. An attacker tries wrong passwords with the OpenSSH client");
    for i in 1..=3 {
        let (ok, _) = sshd.login(&user.name, &format!("guess-{i}"));
        println!(
            "   attempt {i} with a wrong password: {}",
            if ok {
                "LOGGED IN (unexpected)"
            } else {
                "refused"
            }
        );
    }

    say("2. The owner types the right password, but the user is locked");
    let (ok, out) = sshd.login(&user.name, PASSWORD);
    println!(
        "   right password: {}",
        if ok {
            "LOGGED IN (unexpected)"
        } else {
            "refused"
        }
    );
    for line in out.lines().filter(|l| l.contains("Too many")) {
        println!("   ssh showed: {line}");
    }

    say("3. The lock, as wardend reports it");
    ctl(&["locks"]);
    ctl(&["failures", "--user", &user.name]);
    ctl(&["user-status", &user.name]);
    ctl(&[
        "explain",
        &user.name,
        "--rhost",
        "127.0.0.1",
        "--service",
        "sshd-warden",
    ]);
    for line in daemon
        .log_text()
        .lines()
        .filter(|l| l.contains("locked ") || l.contains("refused "))
    {
        println!("   log: {line}");
    }

    say("4. An admin unlocks the user");
    ctl(&["unlock", &user.name]);

    say("5. The owner logs in");
    let (ok, out) = sshd.login(&user.name, PASSWORD);
    println!(
        "   right password: {}",
        if ok {
            "logged in"
        } else {
            "REFUSED (unexpected)"
        }
    );
    if !ok {
        println!("{out}\n{}", sshd.log());
    }

    say("Cleaning up: the user, /etc/pam.d/sshd-warden, sshd, wardend and the bus");
    drop(sshd);
    drop(user);
    drop(daemon);
    drop(bus);
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
