//! Drives real libpam once, the way sshd does, and prints what it saw.
//!
//! Usage: pam-driver CONFDIR SERVICE USER [--rhost R] [--tty T] [--ruser R]
//!        [--password P]... [--account] [--locale L]
//! Each `--password` answers one echo-off prompt, in order. Prints every message
//! as `msg: TEXT`, every prompt as `prompt: TEXT`, then `auth: CODE NAME` (and
//! `account: CODE NAME`).

use warden_e2e::libpam::{login, Login};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 3 {
        eprintln!("usage: pam-driver CONFDIR SERVICE USER [--rhost R] [--tty T] [--ruser R] [--password P]... [--account] [--locale L]");
        std::process::exit(2);
    }
    let (mut rhost, mut tty, mut ruser, mut answers, mut account) =
        (None, None, None, Vec::new(), false);
    let mut rest = args[3..].iter();
    while let Some(a) = rest.next() {
        match a.as_str() {
            "--rhost" => rhost = rest.next().cloned(),
            "--tty" => tty = rest.next().cloned(),
            "--ruser" => ruser = rest.next().cloned(),
            "--password" => answers.extend(rest.next().cloned()),
            "--account" => account = true,
            // As sudo and su do: the messages' language, from a locale that
            // must exist (LOCPATH may point at one the test made).
            "--locale" => {
                let name = std::ffi::CString::new(rest.next().cloned().unwrap_or_default())
                    .unwrap_or_default();
                // SAFETY: a NUL-terminated name; nothing else runs yet.
                let set = unsafe { libc::setlocale(libc::LC_MESSAGES, name.as_ptr()) };
                if set.is_null() {
                    eprintln!("no such locale: {name:?}");
                    std::process::exit(2);
                }
            }
            other => {
                eprintln!("unknown argument {other}");
                std::process::exit(2);
            }
        }
    }
    let r = login(&Login {
        confdir: &args[0],
        service: &args[1],
        user: &args[2],
        rhost: rhost.as_deref(),
        tty: tty.as_deref(),
        ruser: ruser.as_deref(),
        answers: &answers,
        account,
    });
    for p in &r.prompts {
        println!("prompt: {p}");
    }
    for m in &r.messages {
        println!("msg: {m}");
    }
    println!("auth: {} {}", r.auth, r.auth_name);
    if let Some((code, name)) = r.account {
        println!("account: {code} {name}");
    }
}
