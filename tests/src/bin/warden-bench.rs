//! `make bench`: pam_warden against pam_faillock and a bare stack, through real
//! libpam as sshd drives it (pam_start_confdir, a new handle per attempt, rhost
//! and tty set). Writes a Markdown report to target/bench/report.md.
//!
//! Usage: warden-bench [--secs S] [--keys N] [--scale-max N] [--only-stacks | --only-keys | --only-scale | --only-load | --only-attacks | --only-fleet]
//!        warden-bench [--secs S] --profile STACK-OUTCOME PROCS   (one run, e.g. warden-fail 8, to profile beside)
//! (internal) warden-bench --worker CONFDIR SERVICE USER SECS
//! (internal) warden-bench --dbus-flood ADDRESS SECS USER

use std::collections::HashMap;
use std::io::Write as _;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use warden_e2e::daemon::{user_rule, Daemon, NO_FAMILIAR};
use warden_e2e::libpam::{login, Login};
use warden_e2e::users::TestUser;
use warden_e2e::{client, paths};

const USERS: usize = 32;

/// High limits over a short window, so the throughput runs never lock anyone:
/// they measure the cost of counting, not of refusing.
fn bench_config() -> String {
    format!("{NO_FAMILIAR}{}", user_rule(10_000, "1s", "1s"))
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--dbus-flood") {
        dbus_flood(&args[1], args[2].parse().unwrap_or(10.0), &args[3]);
        return;
    }
    if args.first().map(String::as_str) == Some("--worker") {
        worker(&args[1], &args[2], &args[3], args[4].parse().unwrap_or(2.0));
        return;
    }
    if !nix::unistd::geteuid().is_root() {
        eprintln!("warden-bench needs root: it creates bench users and pam_faillock tally files");
        std::process::exit(1);
    }
    let opt = |name: &str, default: f64| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let secs = opt("--secs", 3.0);
    let keys = opt("--keys", 1_000_000.0) as u64;
    if args.iter().any(|a| a == "--only-load") {
        load_phases(keys);
        return;
    }
    if args.iter().any(|a| a == "--only-keys") {
        println!("{}", keys_report(keys));
        return;
    }
    let scale_max = opt("--scale-max", 10_000_000.0) as u64;
    if args.iter().any(|a| a == "--only-scale") {
        println!("{}", scale_report(scale_max));
        return;
    }
    if args.iter().any(|a| a == "--only-attacks") {
        println!("{}", attacks_report());
        return;
    }
    if let Some(i) = args.iter().position(|a| a == "--profile") {
        let service = args.get(i + 1).map_or("warden-fail", String::as_str);
        let procs = args.get(i + 2).and_then(|p| p.parse().ok()).unwrap_or(8);
        profile(service, procs, secs);
        return;
    }
    let only_stacks = args.iter().any(|a| a == "--only-stacks");
    if args.iter().any(|a| a == "--only-fleet") {
        println!("{}", fleet_report(secs));
        return;
    }
    let mut report = String::new();
    let machine = machine();
    report.push_str(&format!("# warden benchmark\n\n{machine}\n\n"));

    let daemon = Daemon::start(&bench_config());
    let (_dir, confdir) = stacks(&daemon.socket);
    let users = bench_users();

    // Latency and throughput per stack. The one-process latency runs go round
    // the stacks three times and keep each stack's median, so that a burst of
    // load on the machine does not land on one stack alone.
    let mut rows = Vec::new();
    let mut results: HashMap<(String, String), Run> = HashMap::new();
    let pid_of = |stack: &str| (stack == "warden").then(|| daemon.pid()).flatten();
    let mut rounds: HashMap<(String, String), Vec<Run>> = HashMap::new();
    for _ in 0..3 {
        for stack in ["bare", "faillock", "warden"] {
            for outcome in ["fail", "ok"] {
                let service = format!("{stack}-{outcome}");
                let one = run(&confdir, &service, &users, 1, secs, pid_of(stack));
                eprintln!(
                    "{service}: 1 process: p50 {} us, p99 {} us, {:.0}/s",
                    one.p50, one.p99, one.rate
                );
                rounds
                    .entry((stack.into(), format!("{outcome}-1")))
                    .or_default()
                    .push(one);
            }
        }
    }
    for (k, mut runs) in rounds {
        runs.sort_by_key(|r| r.p50);
        results.insert(k, runs[runs.len() / 2].clone());
    }
    // Throughput, median of three runs each, the stacks in turn.
    let mut many: HashMap<(String, String), Vec<Run>> = HashMap::new();
    for _ in 0..3 {
        for stack in ["bare", "faillock", "warden"] {
            let service = format!("{stack}-fail");
            for procs in [8, 32] {
                let r = run(&confdir, &service, &users, procs, secs, pid_of(stack));
                eprintln!("{service}: {procs} processes: {:.0}/s", r.rate);
                many.entry((stack.into(), format!("fail-{procs}")))
                    .or_default()
                    .push(r);
            }
        }
    }
    for (k, mut runs) in many {
        runs.sort_by(|a, b| a.rate.total_cmp(&b.rate));
        results.insert(k, runs[runs.len() / 2].clone());
    }
    let get = |s: &str, k: &str| {
        results
            .get(&(s.to_string(), k.to_string()))
            .cloned()
            .unwrap_or_default()
    };
    for stack in ["bare", "faillock", "warden"] {
        let (f, o) = (get(stack, "fail-1"), get(stack, "ok-1"));
        rows.push(format!(
            "| {stack} | {} | {} | {} | {} | {:.0} | {:.0} | {:.0} |",
            f.p50,
            f.p99,
            o.p50,
            o.p99,
            f.rate,
            get(stack, "fail-8").rate,
            get(stack, "fail-32").rate
        ));
    }
    report.push_str(
        "## Latency (µs per attempt, one process) and failed-attempt throughput (attempts/s), each the median of three runs\n\n\
         Three stacks of one shape (four auth lines; the bare one has pam_permit.so where the modules are), run in turn.\n\n",
    );
    report.push_str("| stack | fail p50 | fail p99 | success p50 | success p99 | fail/s ×1 | fail/s ×8 | fail/s ×32 |\n|---|---|---|---|---|---|---|---|\n");
    for r in &rows {
        report.push_str(r);
        report.push('\n');
    }
    let cost = |s: &str, k: &str| get(s, k).p50 as i64 - get("bare", k).p50 as i64;
    let (wf, ff) = (cost("warden", "fail-1"), cost("faillock", "fail-1"));
    let (wo, fo) = (cost("warden", "ok-1"), cost("faillock", "ok-1"));
    report.push_str(&format!(
        "\n| warden ÷ faillock | cost over bare of a failure (p50) | of a success (p50) | failures/s ×8 | failures/s ×32 |\n|---|---|---|---|---|\n| | {:.2} ({wf} / {ff} µs) | {:.2} ({wo} / {fo} µs) | {:.2} | {:.2} |\n",
        ratio(wf, ff),
        ratio(wo, fo),
        get("warden", "fail-8").rate / get("faillock", "fail-8").rate.max(1.0),
        get("warden", "fail-32").rate / get("faillock", "fail-32").rate.max(1.0),
    ));
    report.push_str(&format!(
        "\nCost over bare (p50): a failure costs {wf} µs with warden, {ff} µs with faillock (ratio {:.2}); \
         a successful login costs {wo} µs with warden, {fo} µs with faillock (ratio {:.2}).\n\
         Failed attempts with 8 processes: warden {:.0}/s, faillock {:.0}/s; every warden failure is fsynced before its reply.\n",
        ratio(wf, ff),
        ratio(wo, fo),
        get("warden", "fail-8").rate,
        get("faillock", "fail-8").rate
    ));
    report.push_str("\n## CPU per failed attempt, 8 processes (µs; the machine from /proc/stat, the processes from their user and system times)\n\n| stack | machine busy | whole machine | PAM processes, user | PAM processes, kernel | wardend, user | wardend, kernel |\n|---|---|---|---|---|---|---|\n");
    for stack in ["bare", "faillock", "warden"] {
        let r = get(stack, "fail-8");
        let daemon = |v: f64| {
            if stack == "warden" {
                format!("{v:.0}")
            } else {
                "-".into()
            }
        };
        report.push_str(&format!(
            "| {stack} | {:.0}% | {:.0} | {:.0} | {:.0} | {} | {} |\n",
            r.busy * 100.0,
            r.cpu_us,
            r.pam_user_us,
            r.pam_kernel_us,
            daemon(r.daemon_user_us),
            daemon(r.daemon_kernel_us),
        ));
    }
    report.push_str(&round_trips(&daemon.socket));

    if only_stacks {
        println!("{report}");
        return;
    }
    // Exactness: 32 concurrent attackers, limit (deny) 5, checks that take 300 ms.
    let exact_daemon = Daemon::start(&format!("{NO_FAMILIAR}{}", user_rule(5, "15m", "15m")));
    let exact_dir = tempfile::tempdir().unwrap();
    let exact_tally = exact_dir.path().join("faillock");
    std::fs::create_dir(&exact_tally).unwrap();
    let (fl, wd) = exactness(
        exact_dir.path(),
        &exact_daemon.socket,
        &exact_tally,
        &users[0].name,
    );
    report.push_str(&format!(
        "\n## Exactness: 32 concurrent attempts on one user, limit / deny 5\n\n| stack | password checks let through |\n|---|---|\n| pam_faillock | {fl} |\n| pam_warden | {wd} |\n"
    ));
    eprintln!("exactness: faillock {fl}, warden {wd}");
    drop(users);

    // Logins while local users attack the daemon.
    report.push_str(&attacks_report());

    // The fleet: the same requests through hosts sharing a Redis.
    report.push_str(&fleet_report(secs));

    // Memory and restart with many keys.
    report.push_str(&keys_report(keys));
    report.push_str(&scale_report(scale_max));

    let out = paths::target_dir().join("..").join("bench");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("report.md"), &report).unwrap();
    println!("{report}");
    drop(daemon);
}

/// One stack and outcome alone, for `perf record -a` beside it: the same
/// set-up as the main table, one run, its figures on stderr.
fn profile(service: &str, procs: usize, secs: f64) {
    let daemon = Daemon::start(&bench_config());
    let (_dir, confdir) = stacks(&daemon.socket);
    let users = bench_users();
    let pid = service
        .starts_with("warden")
        .then(|| daemon.pid())
        .flatten();
    let r = run(&confdir, service, &users, procs, secs, pid);
    eprintln!(
        "{service} x{procs}: p50 {} us, p99 {} us, {:.0}/s, CPU {:.0} us per attempt (PAM {:.0} user + {:.0} kernel, wardend {:.0} user + {:.0} kernel), machine {:.0}% busy",
        r.p50, r.p99, r.rate, r.cpu_us, r.pam_user_us, r.pam_kernel_us, r.daemon_user_us, r.daemon_kernel_us, r.busy * 100.0
    );
    if service.starts_with("warden") {
        round_trips(&daemon.socket);
    }
}

/// The socket alone, as the module uses it for a success: one connection to
/// the root socket, preauth answered, the success sent unanswered, closed.
/// Beside it, a connection opened and closed with nothing said, and the old
/// way (two connections, both answered), to show where the time goes.
fn round_trips(socket: &Path) -> String {
    use warden_proto::{RequestBody, ResponseBody};
    let root = socket.with_file_name("warden-root.sock");
    let fields = |i: u32| client::fields(&format!("rt{}", i % 64), None);
    let p50 = |f: &dyn Fn(u32)| {
        let mut lat: Vec<u128> = (0..5000u32)
            .map(|i| {
                let start = Instant::now();
                f(i);
                start.elapsed().as_micros()
            })
            .collect();
        lat.sort_unstable();
        lat[lat.len() / 2]
    };
    let begin = |s: &mut std::os::unix::net::UnixStream, i: u32| match client::request_on(
        s,
        RequestBody::Begin(fields(i)),
    ) {
        Ok(ResponseBody::Verdict(v)) => v.attempt,
        other => panic!("preauth: {other:?}"),
    };
    let now = p50(&|i| {
        let mut s = client::connect(&root).unwrap();
        let attempt = begin(&mut s, i);
        let body = RequestBody::Passed {
            attempt,
            fields: fields(i),
        };
        client::send_on(&mut s, body).unwrap();
    });
    let bare = p50(&|_| drop(client::connect(&root).unwrap()));
    let kept = std::cell::RefCell::new(client::connect(&root).unwrap());
    let begin_kept = p50(&|i| {
        begin(&mut kept.borrow_mut(), i);
    });
    let account_kept = p50(&|i| {
        let _ = client::request_on(&mut kept.borrow_mut(), RequestBody::Account(fields(i)));
    });
    let before = p50(&|i| {
        let mut s = client::connect(&root).unwrap();
        let attempt = begin(&mut s, i);
        let mut s = client::connect(&root).unwrap();
        let body = RequestBody::Succeed {
            attempt,
            fields: fields(i),
        };
        assert!(matches!(
            client::request_on(&mut s, body),
            Ok(ResponseBody::Recorded)
        ));
    });
    eprintln!("socket: success {now} us, connect+close {bare} us, two connections {before} us, preauth on a kept connection {begin_kept} us, account on it {account_kept} us");
    format!(
        "\nThe socket's part of a success (p50, root socket): {now} µs as the module does it now (one connection, preauth answered, the success sent unanswered); {bare} µs of it is opening and closing a connection; {before} µs the old way (two connections, both answered).\n"
    )
}

fn ratio(a: i64, b: i64) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")
                .map(|m| m.trim_start_matches([' ', '\t', ':']).to_string())
        })
        .unwrap_or_default();
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let pam = Command::new("dpkg-query")
        .args(["-W", "-f=${Version}", "libpam-modules"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    format!("Machine: {cpu}, {cores} cores; Linux-PAM {pam}; release build; state on the machine's disk.")
}

/// The three stacks against `socket` in a PAM directory of their own (kept
/// while the directory is), pam_faillock's tally inside it; and its path.
fn stacks(socket: &Path) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let tally = dir.path().join("faillock");
    std::fs::create_dir(&tally).unwrap();
    write_stacks(dir.path(), socket, &tally);
    let confdir = dir.path().to_str().unwrap().to_string();
    (dir, confdir)
}

/// The bench users, one per worker, removed when dropped.
fn bench_users() -> Vec<TestUser> {
    (0..USERS)
        .map(|i| TestUser::create(&format!("wbench{i}"), "bench-Passw0rd"))
        .collect()
}

fn write_stacks(dir: &Path, socket: &Path, tally: &Path) {
    let m = paths::module();
    let (m, s, t) = (m.display(), socket.display(), tally.display());
    let fl = format!("dir={t} nodelay deny=100000 fail_interval=1 unlock_time=1");
    let wrong = wrong_password_module();
    for (outcome, check) in [("fail", wrong.as_str()), ("ok", "pam_permit.so")] {
        // Three stacks of one shape: the same four auth lines, the module's
        // three replaced by pam_permit.so in the bare one, so that loading a
        // module is in every figure and the cost over bare is the module's own.
        let files = [
            (
                "bare",
                format!(
                    "auth requisite pam_permit.so\nauth [success=1 default=bad] {check}\nauth [default=die] pam_permit.so\nauth required pam_permit.so\n"
                ),
            ),
            (
                "faillock",
                format!(
                    "auth required pam_faillock.so preauth {fl}\nauth [success=1 default=bad] {check}\nauth [default=die] pam_faillock.so authfail {fl}\nauth sufficient pam_faillock.so authsucc {fl}\n"
                ),
            ),
            (
                "warden",
                format!(
                    "auth requisite {m} preauth socket={s} nodelay\nauth [success=1 default=bad] {check}\nauth [default=die] {m} authfail socket={s}\nauth required {m} authsucc socket={s}\n"
                ),
            ),
        ];
        for (stack, text) in files {
            std::fs::write(dir.join(format!("{stack}-{outcome}")), text).unwrap();
        }
    }
}

#[derive(Clone, Default)]
struct Run {
    p50: u64,
    p99: u64,
    rate: f64,
    /// Whole-machine CPU time per attempt, µs, and how busy the machine was.
    cpu_us: f64,
    busy: f64,
    /// µs per attempt in the PAM processes, user and kernel, and wardend's.
    pam_user_us: f64,
    pam_kernel_us: f64,
    daemon_user_us: f64,
    daemon_kernel_us: f64,
}

/// `procs` worker processes, one bench user each, for `secs` seconds.
fn run(
    confdir: &str,
    service: &str,
    users: &[TestUser],
    procs: usize,
    secs: f64,
    daemon: Option<u32>,
) -> Run {
    let cpu0 = machine_cpu();
    let me = Some(std::process::id());
    let (children0, split0) = (process_split(me, 16), process_split(daemon, 14));
    let worker = c_worker();
    let children: Vec<_> = (0..procs)
        .map(|i| {
            let mut cmd = match &worker {
                Some(c) => Command::new(c),
                None => {
                    let mut c = Command::new(std::env::current_exe().unwrap());
                    c.arg("--worker");
                    c
                }
            };
            cmd.args([
                confdir,
                service,
                &users[i % users.len()].name,
                &secs.to_string(),
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
        })
        .collect();
    let mut lat: Vec<u64> = Vec::new();
    let mut total = 0u64;
    for c in children {
        let out = c.wait_with_output().unwrap();
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            if let Ok(us) = line.parse::<u64>() {
                lat.push(us);
                total += 1;
            }
        }
    }
    let cpu = machine_cpu().sub(cpu0);
    let per = |ticks: u64| ticks as f64 / ticks_per_sec() * 1e6 / (total.max(1) as f64);
    let (children, split) = (process_split(me, 16), process_split(daemon, 14));
    lat.sort_unstable();
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0)
    };
    Run {
        p50: pct(0.50),
        p99: pct(0.99),
        rate: total as f64 / secs,
        cpu_us: per(cpu.busy),
        busy: cpu.busy as f64 / (cpu.busy + cpu.idle).max(1) as f64,
        pam_user_us: per(children.0.saturating_sub(children0.0)),
        pam_kernel_us: per(children.1.saturating_sub(children0.1)),
        daemon_user_us: per(split.0.saturating_sub(split0.0)),
        daemon_kernel_us: per(split.1.saturating_sub(split0.1)),
    }
}

#[derive(Clone, Copy)]
struct Cpu {
    busy: u64,
    idle: u64,
}

impl Cpu {
    fn sub(self, earlier: Cpu) -> Cpu {
        Cpu {
            busy: self.busy.saturating_sub(earlier.busy),
            idle: self.idle.saturating_sub(earlier.idle),
        }
    }
}

/// All CPUs' busy and idle ticks from /proc/stat (idle includes iowait).
fn machine_cpu() -> Cpu {
    let text = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let v: Vec<u64> = text
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
    Cpu {
        busy: v.iter().take(8).sum::<u64>().saturating_sub(idle),
        idle,
    }
}

/// User and system ticks from /proc/PID/stat, starting at field `first`: 14
/// for the process's own, 16 for its children's that it has waited for.
fn process_split(pid: Option<u32>, first: usize) -> (u64, u64) {
    let Some(pid) = pid else { return (0, 0) };
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = text.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
    let f: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are stat's fields 14 and 15; what follows ')' starts at field 3.
    let field = |n: usize| {
        f.get(n - 3)
            .and_then(|x| x.parse::<u64>().ok())
            .unwrap_or(0)
    };
    (field(first), field(first + 1))
}

fn ticks_per_sec() -> f64 {
    nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .unwrap_or(100) as f64
}

fn worker(confdir: &str, service: &str, user: &str, secs: f64) {
    let end = Instant::now() + Duration::from_secs_f64(secs);
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut i = 0u32;
    while Instant::now() < end {
        i += 1;
        // A fresh guess each time: a repeated wrong password counts once.
        let answers = vec![format!("guess-{}-{i}", std::process::id())];
        let rhost = format!(
            "10.{}.{}.{}",
            std::process::id() % 250,
            (i >> 8) & 255,
            i & 255
        );
        let start = Instant::now();
        login(&Login {
            confdir,
            service,
            user,
            rhost: Some(&rhost),
            tty: Some("ssh"),
            ruser: None,
            answers: &answers,
            account: false,
        });
        let _ = writeln!(out, "{}", start.elapsed().as_micros());
    }
}

/// The C worker (tests/fixtures/pam-worker.c), compiled once; `None` (the
/// Rust worker then, which already maps libgcc_s) when no compiler is there.
/// The always-failing password check that asks for the password first
/// (`tests/fixtures/pam-wrong-password.c`), built once; pam_deny where no C
/// compiler is found.
fn wrong_password_module() -> String {
    static BUILT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            let so = paths::target_dir().join("pam-wrong-password.so");
            if build_c("pam-wrong-password.c", &so, &["-shared", "-fPIC"]) {
                so.display().to_string()
            } else {
                eprintln!("could not build the wrong-password check: pam_deny stands in, and warden counts no failure (no password was given)");
                "pam_deny.so".into()
            }
        })
        .clone()
}

/// Compiles `tests/fixtures/{source}` against libpam into `out`.
fn build_c(source: &str, out: &Path, flags: &[&str]) -> bool {
    Command::new("cc")
        .arg("-O2")
        .args(flags)
        .arg("-o")
        .arg(out)
        .arg(paths::repo_file(&format!("tests/fixtures/{source}")))
        .arg("-lpam")
        .status()
        .is_ok_and(|s| s.success())
}

fn c_worker() -> Option<std::path::PathBuf> {
    static BUILT: std::sync::OnceLock<Option<std::path::PathBuf>> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            let exe = paths::target_dir().join("pam-worker-c");
            let ok = build_c("pam-worker.c", &exe, &[]);
            if !ok {
                eprintln!("no C compiler for the worker: the Rust worker runs, which maps libgcc_s for every stack");
            }
            ok.then_some(exe)
        })
        .clone()
}

/// How many password checks 32 concurrent attempts get through, each stack
/// with a counting check that takes 300 ms.
fn exactness(dir: &Path, socket: &Path, tally: &Path, user: &str) -> (usize, usize) {
    let counter = |name: &str| dir.join(format!("{name}.count"));
    let m = paths::module();
    let (m, s, t) = (m.display(), socket.display(), tally.display());
    for name in ["faillock", "warden"] {
        let script = dir.join(format!("{name}-check"));
        std::fs::write(
            &script,
            format!(
                "#!/bin/sh\necho x >> '{}'\nsleep 0.3\nexit 1\n",
                counter(name).display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        let check = format!("pam_exec.so quiet {}", script.display());
        let fl = format!("dir={t} nodelay deny=5 fail_interval=900 unlock_time=600");
        let text = if name == "faillock" {
            format!("auth required pam_faillock.so preauth {fl}\nauth [success=1 default=bad] {check}\nauth [default=die] pam_faillock.so authfail {fl}\nauth sufficient pam_faillock.so authsucc {fl}\n")
        } else {
            format!("auth requisite {m} preauth socket={s} nodelay\nauth [success=1 default=bad] {check}\nauth [default=die] {m} authfail socket={s}\nauth required {m} authsucc socket={s}\n")
        };
        std::fs::write(dir.join(format!("{name}-exact")), text).unwrap();
    }
    let confdir = dir.to_str().unwrap().to_string();
    let mut counts = Vec::new();
    for name in ["faillock", "warden"] {
        let service = format!("{name}-exact");
        let handles: Vec<_> = (0..32)
            .map(|i| {
                let (confdir, service, user) = (confdir.clone(), service.clone(), user.to_string());
                std::thread::spawn(move || {
                    Command::new(paths::pam_driver())
                        .args([
                            &confdir,
                            &service,
                            &user,
                            "--rhost",
                            &format!("198.51.100.{i}"),
                            "--password",
                            &format!("x{i}"),
                        ])
                        .output()
                })
            })
            .collect();
        for h in handles {
            let _ = h.join();
        }
        counts.push(
            std::fs::read_to_string(counter(name))
                .map(|c| c.lines().count())
                .unwrap_or(0),
        );
    }
    (counts[0], counts[1])
}

/// Floods `n` distinct rhosts, reads the daemon's RSS and times a restart; then
/// floods `n / 5` more past `max_tracked_keys = n` to show the bound holding.
/// What a daemon tracking `n` keys costs.
struct Scale {
    keys: u64,
    /// Durable failures per second while they were reported.
    rate: f64,
    rss: u64,
    file: u64,
    restart_ms: u128,
    rss_restarted: u64,
}

/// A fresh daemon flooded with one failure from each of `n` addresses (an
/// rhost rule, so each is a key), measured, then restarted and timed until
/// its socket answers. The daemon is returned for more.
fn measure_keys(n: u64) -> (Daemon, Scale) {
    let mut d = Daemon::start(&format!("max_tracked_keys = {n}\n[[rule]]\nname = \"rhost\"\ntrack = [\"rhost\"]\nlimit = 20\nwindow = \"1h\"\nlockout = \"1h\"\n"));
    let took = flood(&d.socket, 0..n);
    let rss = rss_mib(d.pid());
    let file = std::fs::metadata(d.state.join("warden.redb"))
        .map(|m| m.len() / (1024 * 1024))
        .unwrap_or(0);
    d.stop();
    let start = Instant::now();
    d.restart();
    let ready = start.elapsed();
    let s = Scale {
        keys: n,
        rate: n as f64 / took.as_secs_f64(),
        rss,
        file,
        restart_ms: ready.as_millis(),
        rss_restarted: rss_mib(d.pid()),
    };
    eprintln!(
        "{n} keys: flood {took:?}, RSS {rss} MiB, store {file} MiB, restart {ready:?}, RSS after restart {} MiB",
        s.rss_restarted
    );
    (d, s)
}

fn tracked_after_start(d: &Daemon) -> String {
    d.log_text()
        .lines()
        .rfind(|l| l.contains("started"))
        .unwrap_or_default()
        .to_string()
}

fn keys_report(n: u64) -> String {
    let (mut d, s) = measure_keys(n);
    let beyond = n / 5;
    flood(&d.socket, n..n + beyond);
    let rss_beyond = rss_mib(d.pid());
    d.restart();
    let after = tracked_after_start(&d);
    let keys_after = after
        .split_whitespace()
        .find_map(|w| w.strip_prefix("keys="))
        .unwrap_or("?")
        .to_string();
    eprintln!("{beyond} more: RSS {rss_beyond} MiB, then {after}");
    format!(
        "\n## Many keys\n\n| distinct rhosts | durable failures/s (32 clients) | daemon RSS | store file | restart until the socket answers | RSS after the restart |\n|---|---|---|---|---|---|\n{}\n\
         Then {beyond} more distinct rhosts against `max_tracked_keys = {n}`: daemon RSS {rss_beyond} MiB, keys tracked after a restart {keys_after}.\n",
        scale_row(&s)
    )
}

fn scale_row(s: &Scale) -> String {
    format!(
        "| {} | {:.0} | {} MiB | {} MiB | {} ms | {} MiB |",
        s.keys, s.rate, s.rss, s.file, s.restart_ms, s.rss_restarted
    )
}

/// How memory, the store and a restart grow with the keys tracked, from
/// 10,000 to `max` in tenfold steps; the table, and a plot written to
/// target/bench/scale.svg.
fn scale_report(max: u64) -> String {
    let mut rows = Vec::new();
    let mut n = 10_000;
    while n <= max {
        rows.push(measure_keys(n).1);
        n *= 10;
    }
    let out = paths::target_dir().join("..").join("bench");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("scale.svg"), scale_svg(&rows)).unwrap();
    let mut text = String::from(
        "\n## How the cost grows with the keys tracked (plot: target/bench/scale.svg)\n\n| distinct rhosts | durable failures/s (32 clients) | daemon RSS | store file | restart until the socket answers | RSS after the restart |\n|---|---|---|---|---|---|\n",
    );
    for s in &rows {
        text.push_str(&scale_row(s));
        text.push('\n');
    }
    // What each further key costs, between one size and the next: the
    // daemon's fixed part (runtime, caches) cancels out.
    for pair in rows.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        let bytes = (b.rss_restarted as f64 - a.rss_restarted as f64) * 1024.0 * 1024.0
            / (b.keys - a.keys) as f64;
        let ms = (b.restart_ms as f64 - a.restart_ms as f64) / ((b.keys - a.keys) as f64 / 1e6);
        text.push_str(&format!(
            "\nFrom {} to {} keys: {bytes:.0} bytes of RSS per key more, and {ms:.0} ms of restart per million keys more.",
            a.keys, b.keys
        ));
    }
    text.push('\n');
    text
}

/// Two log-log panels: RSS after a restart (MiB) and restart time (ms),
/// against keys tracked.
fn scale_svg(rows: &[Scale]) -> String {
    let (w, h, pad) = (360.0, 260.0, 50.0);
    let panel = |x0: f64, title: &str, ys: Vec<(u64, f64)>, unit: &str| -> String {
        let lx = |k: u64| (k as f64).log10();
        let (xmin, xmax) = (4.0, 7.0);
        let ly: Vec<f64> = ys.iter().map(|(_, v)| v.max(1.0).log10()).collect();
        let ymin = ly.iter().cloned().fold(f64::MAX, f64::min).floor();
        let ymax = ly
            .iter()
            .cloned()
            .fold(f64::MIN, f64::max)
            .ceil()
            .max(ymin + 1.0);
        let px = |x: f64| x0 + pad + (x - xmin) / (xmax - xmin) * (w - 2.0 * pad);
        let py = |y: f64| h - pad - (y - ymin) / (ymax - ymin) * (h - 2.0 * pad);
        let mut s = format!(
            "<text x=\"{}\" y=\"20\" font-size=\"14\" text-anchor=\"middle\">{title}</text>\n",
            x0 + w / 2.0
        );
        for d in 4..=7 {
            let x = px(d as f64);
            s.push_str(&format!(
                "<line x1=\"{x}\" y1=\"{}\" x2=\"{x}\" y2=\"{}\" stroke=\"#ddd\"/><text x=\"{x}\" y=\"{}\" font-size=\"11\" text-anchor=\"middle\">10^{d}</text>\n",
                pad,
                h - pad,
                h - pad + 16.0
            ));
        }
        let mut d = ymin;
        while d <= ymax {
            let y = py(d);
            s.push_str(&format!(
                "<line x1=\"{}\" y1=\"{y}\" x2=\"{}\" y2=\"{y}\" stroke=\"#ddd\"/><text x=\"{}\" y=\"{}\" font-size=\"11\" text-anchor=\"end\">{} {unit}</text>\n",
                px(xmin),
                px(xmax),
                px(xmin) - 4.0,
                y + 4.0,
                10f64.powf(d)
            ));
            d += 1.0;
        }
        let points: Vec<String> = ys
            .iter()
            .zip(&ly)
            .map(|((k, _), y)| format!("{:.1},{:.1}", px(lx(*k)), py(*y)))
            .collect();
        s.push_str(&format!(
            "<polyline fill=\"none\" stroke=\"#1f5fa8\" stroke-width=\"2\" points=\"{}\"/>\n",
            points.join(" ")
        ));
        for ((k, v), y) in ys.iter().zip(&ly) {
            s.push_str(&format!(
                "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\" fill=\"#1f5fa8\"/><text x=\"{:.1}\" y=\"{:.1}\" font-size=\"10\">{v:.0}</text>\n",
                px(lx(*k)),
                py(*y),
                px(lx(*k)) + 5.0,
                py(*y) - 5.0
            ));
        }
        s.push_str(&format!(
            "<text x=\"{}\" y=\"{}\" font-size=\"11\" text-anchor=\"middle\">keys tracked</text>\n",
            x0 + w / 2.0,
            h - 10.0
        ));
        s
    };
    let rss = rows
        .iter()
        .map(|r| (r.keys, r.rss_restarted as f64))
        .collect();
    let restart = rows.iter().map(|r| (r.keys, r.restart_ms as f64)).collect();
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{h}\" font-family=\"sans-serif\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n{}{}</svg>\n",
        2.0 * w,
        panel(0.0, "wardend RSS after a restart", rss, "MiB"),
        panel(w, "restart until the socket answers", restart, "ms")
    )
}

/// Reports one failure for each address in `range` from 32 clients.
fn flood(socket: &Path, range: std::ops::Range<u64>) -> Duration {
    let next = Arc::new(AtomicU64::new(range.start));
    let start = Instant::now();
    let threads: Vec<_> = (0..32)
        .map(|_| {
            let (socket, next, end) = (socket.to_path_buf(), next.clone(), range.end);
            std::thread::spawn(move || loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= end {
                    break;
                }
                let _ = client::fail(&socket, "flood", Some(&nth_address(i)));
            })
        })
        .collect();
    for t in threads {
        let _ = t.join();
    }
    start.elapsed()
}

fn rss_mib(pid: Option<u32>) -> u64 {
    let Some(pid) = pid else { return 0 };
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix("VmRSS:").map(|v| {
                v.trim()
                    .trim_end_matches(" kB")
                    .trim()
                    .parse::<u64>()
                    .unwrap_or(0)
                    / 1024
            })
        })
        .unwrap_or(0)
}

/// Where a restart's time goes: a store of `n` keys written directly, then
/// opened, read back and handed to an engine, each phase timed.
fn load_phases(n: u64) {
    use warden_daemon::engine::{Effects, Engine, KeyId, KeyState};
    use warden_daemon::store::{Durability, RedbStore, Store};
    use warden_daemon::time::Time;
    let dir = tempfile::tempdir().unwrap();
    {
        let store = RedbStore::open(dir.path(), Time(0)).unwrap().store;
        let mut i = 0;
        while i < n {
            let mut fx = Effects::default();
            for j in i..(i + 10_000).min(n) {
                let rhost = nth_address(j);
                let at = Time(1_800_000_000_000);
                let st = KeyState::new([at].into_iter().collect(), at);
                fx.keys
                    .push((KeyId::new("rhost", [("rhost", rhost.as_str())]), Some(st)));
            }
            store.commit(&fx, Durability::Immediate).unwrap();
            i += 10_000;
        }
    }
    let t = Instant::now();
    let store = RedbStore::open(dir.path(), Time(0)).unwrap().store;
    let open = t.elapsed();
    let t = Instant::now();
    let snap = store.load().unwrap();
    let load = t.elapsed();
    let t = Instant::now();
    let config = warden_daemon::config::Config::parse("", Path::new("x.toml")).unwrap();
    let mut engine = Engine::new(config.policy, 1);
    engine.restore(snap.keys, snap.familiar);
    let restore = t.elapsed();
    println!(
        "{n} keys: open {open:?}, load {load:?}, restore {restore:?}, tracked {}, RSS {} MiB",
        engine.tracked_keys(),
        rss_mib(Some(std::process::id()))
    );
}

/// The n-th of a run of distinct IPv4 addresses, from 1.0.0.0 up.
fn nth_address(n: u64) -> String {
    format!(
        "{}.{}.{}.{}",
        1 + (n >> 24),
        (n >> 16) & 255,
        (n >> 8) & 255,
        n & 255
    )
}

/// Latencies of legitimate logins, gathered while an attack runs: root's
/// preauth round trips on the root socket, and whole logins through libpam
/// (preauth, pam_permit, authsucc), as sshd makes them.
#[derive(Default)]
struct Legit {
    round_trips: Vec<u128>,
    logins: Vec<u128>,
}

impl Legit {
    fn gather(&mut self, confdir: &str, socket: &Path, n: usize) {
        use warden_proto::{RequestBody, ResponseBody};
        let root_socket = socket.with_file_name("warden-root.sock");
        for i in 0..n {
            let fields = client::fields(&format!("legit{}", i % 16), None);
            let start = Instant::now();
            let mut s = client::connect(&root_socket).unwrap();
            let attempt = match client::request_on(&mut s, RequestBody::Begin(fields.clone())) {
                Ok(ResponseBody::Verdict(v)) => v.attempt,
                other => panic!("{other:?}"),
            };
            self.round_trips.push(start.elapsed().as_micros());
            // Ended as a right password ends it, so that the legitimate
            // users never hold more attempts in flight than their logins do.
            client::send_on(&mut s, RequestBody::Passed { attempt, fields }).unwrap();
        }
        let answers = vec!["x".to_string()];
        for i in 0..n / 4 {
            let start = Instant::now();
            let r = login(&Login {
                confdir,
                service: "warden-ok",
                user: &format!("legit{}", i % 16),
                rhost: Some("192.0.2.1"),
                tty: Some("ssh"),
                ruser: None,
                answers: &answers,
                account: false,
            });
            assert_eq!(r.auth, 0, "{} {:?}", r.auth_name, r.messages);
            self.logins.push(start.elapsed().as_micros());
        }
    }

    /// (p50, p99) of the round trips and of the logins.
    fn percentiles(&self) -> ((u128, u128), (u128, u128)) {
        let pct = |v: &[u128]| {
            let mut v = v.to_vec();
            v.sort_unstable();
            (v[v.len() / 2], v[v.len() * 99 / 100])
        };
        (pct(&self.round_trips), pct(&self.logins))
    }
}

/// `--dbus-flood ADDRESS SECS USER`, run as an unprivileged user: eight
/// connections to the bus, each calling Status and GetUserStatus (its own
/// name) back to back, as a desktop applet gone wild would.
fn dbus_flood(address: &str, secs: f64, user: &str) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let end = tokio::time::Instant::now() + Duration::from_secs_f64(secs);
        let callers: Vec<_> = (0..8)
            .map(|_| {
                let (address, user) = (address.to_string(), user.to_string());
                tokio::spawn(async move {
                    let conn = zbus::connection::Builder::address(address.as_str())
                        .build()
                        .await
                        .unwrap();
                    let proxy = warden_api::Warden1Proxy::new(&conn).await.unwrap();
                    while tokio::time::Instant::now() < end {
                        let _ = proxy.status().await;
                        let _ = proxy.get_user_status(&user).await;
                    }
                })
            })
            .collect();
        for c in callers {
            let _ = c.await;
        }
    });
}

/// Legitimate logins, p50 and p99, quiet and during each attack, with
/// 100,000 keys tracked: local floods of the public socket, an unprivileged
/// D-Bus flood, a remote flood from a million addresses, a frozen store.
fn attacks_report() -> String {
    use warden_e2e::bus::{wait_for_daemon, Bus};
    let bus = Bus::start();
    let daemon = Daemon::start_with_env(&bench_config(), &bus.env());
    assert!(wait_for_daemon(&bus.address));
    let attacker = TestUser::create("wbenchattack", "unused-Passw0rd");
    let (_dir, confdir) = stacks(&daemon.socket);
    flood(&daemon.socket, 0..100_000);
    let sample = |n: usize| {
        let mut l = Legit::default();
        l.gather(&confdir, &daemon.socket, n);
        l
    };
    let mut rows: Vec<(String, Legit)> = Vec::new();
    rows.push(("none".to_string(), sample(800)));
    let as_attacker = |program: &Path, args: &[&str]| {
        let mut c = warden_e2e::as_uid(attacker.uid, program);
        c.args(args).stdout(Stdio::null()).stderr(Stdio::null());
        c
    };
    let raw = paths::raw_client();
    let socket = daemon.socket.to_str().unwrap().to_string();
    let stop_all = |mut v: Vec<std::process::Child>| {
        v.iter_mut().for_each(|c| {
            let _ = c.kill();
            let _ = c.wait();
        })
    };
    // A connect() flood on the public socket: two processes of 32 threads.
    let floods: Vec<_> = (0..2)
        .map(|_| {
            as_attacker(&raw, &[&socket, "connect-flood", "x", "--repeat", "30"])
                .spawn()
                .unwrap()
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    rows.push(("local connect() flood, 64 threads".into(), sample(800)));
    stop_all(floods);
    // Requests from the attacker's shell as fast as it can (budgeted).
    let floods: Vec<_> = (0..64)
        .map(|_| {
            as_attacker(
                &raw,
                &[&socket, "fail", &attacker.name, "--repeat", "200000"],
            )
            .spawn()
            .unwrap()
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    rows.push(("local request flood, 64 processes".into(), sample(800)));
    stop_all(floods);
    // Unprivileged D-Bus calls: four processes of eight connections each.
    let me = std::env::current_exe().unwrap();
    let floods: Vec<_> = (0..4)
        .map(|_| {
            as_attacker(&me, &["--dbus-flood", &bus.address, "60", &attacker.name])
                .spawn()
                .unwrap()
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    rows.push((
        "unprivileged D-Bus Status and GetUserStatus, 32 connections".into(),
        sample(800),
    ));
    stop_all(floods);
    // sshd reporting failures from 1,000,000 addresses, one each, while the
    // logins go on: the table grows from 100,000 keys to 1,100,000.
    let (socket_path, done) = (daemon.socket.clone(), Arc::new(AtomicU64::new(0)));
    let flood = {
        let done = done.clone();
        std::thread::spawn(move || {
            flood(&socket_path, 100_000..1_100_000);
            done.store(1, Ordering::SeqCst);
        })
    };
    let mut during = Legit::default();
    while done.load(Ordering::SeqCst) == 0 {
        during.gather(&confdir, &daemon.socket, 200);
    }
    let _ = flood.join();
    rows.push(("remote failures from 1,000,000 addresses".into(), during));
    drop(daemon);
    if let Some(frozen) = frozen_row() {
        rows.push(frozen);
    }

    let quiet_p99 = rows[0].1.percentiles().1 .1;
    let mut out = String::from(
        "\n## Legitimate logins while an attack runs\n\n| attack | root socket round trip p50 / p99 µs | whole libpam login p50 / p99 µs | login p99 added (µs) |\n|---|---|---|---|\n",
    );
    for (name, legit) in &rows {
        let ((rp50, rp99), (lp50, lp99)) = legit.percentiles();
        let added = lp99.saturating_sub(quiet_p99);
        out.push_str(&format!(
            "| {name} | {rp50} / {rp99} | {lp50} / {lp99} | {added} |\n"
        ));
        eprintln!("attack {name}: round trip {rp50}/{rp99} us, login {lp50}/{lp99} us");
    }
    out
}

/// Logins while the store's filesystem is frozen (every write and fsync
/// waits, as on a dying disk): a daemon of its own, its state on ext4 in a
/// loop file. `None` where this machine cannot mount one.
fn frozen_row() -> Option<(String, Legit)> {
    use warden_e2e::disk::{loop_ext4, Frozen};
    let mut daemon = Daemon::start(&bench_config());
    daemon.stop();
    let image = daemon.state.with_file_name("state.img");
    let _mounted = loop_ext4(&image, &daemon.state, "64M")?;
    daemon.restart();
    let (_dir, confdir) = stacks(&daemon.socket);
    let frozen = Frozen::freeze(&daemon.state)?;
    let mut legit = Legit::default();
    legit.gather(&confdir, &daemon.socket, 800);
    drop(frozen);
    daemon.stop();
    Some(("the store's filesystem frozen (fsfreeze)".into(), legit))
}

/// One attempt as the module makes it when the password is wrong: preauth,
/// then authfail, on one connection. Returns its latency in µs.
fn failed_attempt(socket: &Path, user: &str) -> u128 {
    use warden_proto::{RequestBody, ResponseBody};
    let t = Instant::now();
    let Ok(mut s) = client::connect(socket) else {
        return t.elapsed().as_micros();
    };
    let id = match client::request_on(
        &mut s,
        RequestBody::Begin(client::fields(user, Some("192.0.2.200"))),
    ) {
        Ok(ResponseBody::Verdict(v)) => v.attempt,
        _ => None,
    };
    let _ = client::request_on(
        &mut s,
        RequestBody::Fail {
            attempt: id,
            fields: client::fields(user, Some("192.0.2.200")),
            repeat: None,
        },
    );
    t.elapsed().as_micros()
}

/// p50 and p99 of failed attempts from one client, and failed attempts per
/// second from 8 clients spread over `sockets`.
fn fleet_run(sockets: &[&Path], secs: f64) -> (u128, u128, f64) {
    let mut lat: Vec<u128> = (0..2000u32)
        .map(|i| failed_attempt(sockets[0], &format!("fb{}", i % 500)))
        .collect();
    lat.sort_unstable();
    let (p50, p99) = (lat[lat.len() / 2], lat[lat.len() * 99 / 100]);
    let done = Arc::new(AtomicU64::new(0));
    let until = Instant::now() + Duration::from_secs_f64(secs);
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let socket = sockets[t % sockets.len()].to_path_buf();
            let done = done.clone();
            std::thread::spawn(move || {
                let mut i = 0u32;
                while Instant::now() < until {
                    failed_attempt(&socket, &format!("fb{t}x{}", i % 500));
                    done.fetch_add(1, Ordering::Relaxed);
                    i += 1;
                }
            })
        })
        .collect();
    for t in threads {
        let _ = t.join();
    }
    (p50, p99, done.load(Ordering::Relaxed) as f64 / secs)
}

/// The fleet's row: what sharing decisions through Redis on loopback costs
/// per attempt, and failures per second across hosts.
fn fleet_report(secs: f64) -> String {
    use warden_e2e::redis::{fleet_block, Redis};
    if let Some(why) = warden_e2e::redis::unavailable() {
        return format!("\n## Fleet\n\nnot measured: {why}\n");
    }
    let single = Daemon::start(&bench_config());
    let redis = Redis::start();
    let hosts: Vec<Daemon> = (0..2)
        .map(|i| {
            let d = Daemon::start(&format!(
                "{}{}",
                bench_config(),
                fleet_block(&redis, &format!("bench{i}"), "")
            ));
            d.wait_for_log("fleet-available", 10);
            d
        })
        .collect();
    // Through libpam, the same stack shape on each: a single host, a fleet host.
    let pam_dir = tempfile::tempdir().unwrap();
    let confdir = pam_dir.path().to_str().unwrap().to_string();
    let m = paths::module();
    for (name, socket) in [
        ("single-fail", &single.socket),
        ("fleet-fail", &hosts[0].socket),
    ] {
        std::fs::write(
            pam_dir.path().join(name),
            format!(
                "auth requisite {m} preauth socket={s} nodelay\nauth [success=1 default=bad] {w}\nauth [default=die] {m} authfail socket={s}\nauth required {m} authsucc socket={s}\n",
                m = m.display(),
                s = socket.display(),
                w = wrong_password_module()
            ),
        )
        .unwrap();
    }
    let users: Vec<TestUser> = (0..8)
        .map(|i| TestUser::create(&format!("wfleet{i}"), "bench-Passw0rd"))
        .collect();
    let mut pam_rows = String::new();
    for (label, service) in [
        ("single host (redb)", "single-fail"),
        ("fleet host (Redis)", "fleet-fail"),
    ] {
        let mut ones: Vec<Run> = (0..3)
            .map(|_| run(&confdir, service, &users, 1, secs, None))
            .collect();
        ones.sort_by_key(|r| r.p50);
        let one = ones[1].clone();
        let eight = run(&confdir, service, &users, 8, secs, None);
        eprintln!(
            "fleet pam {service}: p50 {} us, ×8 {:.0}/s",
            one.p50, eight.rate
        );
        pam_rows.push_str(&format!(
            "| {label} | {} | {} | {:.0} |\n",
            one.p50, one.p99, eight.rate
        ));
    }
    drop(users);
    let (s50, s99, srate) = fleet_run(&[&single.socket], secs);
    let (f50, f99, frate) = fleet_run(&[&hosts[0].socket, &hosts[1].socket], secs);
    eprintln!("fleet: single {s50}/{s99} us {srate:.0}/s; fleet {f50}/{f99} us {frate:.0}/s");
    // Propagation: 300 admin locks through the first host, 10 ms apart; each
    // host times every one from its XADD to its own log line and signal.
    let call = |socket: &Path, method: &str, args: String| {
        let root = warden_daemon::config::root_socket_for(socket);
        match client::request(
            &root,
            warden_proto::RequestBody::Admin(warden_proto::AdminRequest::Call {
                method: method.into(),
                args,
            }),
        ) {
            Ok(warden_proto::ResponseBody::Json(j)) => serde_json::from_str(&j).unwrap_or_default(),
            _ => serde_json::Value::Null,
        }
    };
    for i in 0..300 {
        call(
            &hosts[0].socket,
            "Lock",
            format!(r#"["user","sig{i}",3600,false,"bench"]"#),
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(500));
    let sig = |i: usize| {
        let r = call(&hosts[i].socket, "FleetStatus", "[]".into());
        (
            r["signals"].as_u64().unwrap_or(0),
            r["signal_p50_ms"].as_u64().unwrap_or(0),
            r["signal_p99_ms"].as_u64().unwrap_or(0),
        )
    };
    let (a, b) = (sig(0), sig(1));
    eprintln!("fleet signals: origin {a:?}, other {b:?}");
    // The cost of WAIT: admin locks through a host of a primary with one
    // replica, waiting for it (replicas_to_wait = 1) and not (0).
    let sentinels = warden_e2e::redis::Sentinels::start();
    let waits: Vec<(u32, u128, u128)> = [1u32, 0]
        .iter()
        .map(|n| {
            let d = Daemon::start(&format!(
                "{}{}",
                bench_config(),
                sentinels.fleet_block(&format!("wait{n}"), &format!("replicas_to_wait = {n}\n"))
            ));
            d.wait_for_log("fleet-available", 10);
            let mut lat: Vec<u128> = (0..300)
                .map(|i| {
                    let t = Instant::now();
                    call(
                        &d.socket,
                        "Lock",
                        format!(r#"["user","w{n}x{i}",3600,false,"bench"]"#),
                    );
                    t.elapsed().as_micros()
                })
                .collect();
            lat.sort_unstable();
            (*n, lat[lat.len() / 2], lat[lat.len() * 99 / 100])
        })
        .collect();
    eprintln!("fleet wait: {waits:?}");
    format!(
        "\n## Fleet: two hosts on one Redis (loopback, no persistence)\n\n\
         A failed attempt as the module makes it (preauth, then authfail), at the socket.\n\n\
         | backend | p50 µs | p99 µs | failures/s, 8 clients |\n|---|---|---|---|\n\
         | single host (redb) | {s50} | {s99} | {srate:.0} |\n\
         | fleet, 2 hosts (Redis) | {f50} | {f99} | {frate:.0} |\n\n\
         Cost per failed attempt over the single host (p50): {} µs.\n\n\
         Through libpam (a wrong password, the stack of the main table, median of three runs):\n\n\
         | backend | fail p50 µs | fail p99 µs | fail/s ×8 processes |\n|---|---|---|---|\n{pam_rows}\n\
         Lock propagation: 300 admin locks through one host, 10 ms apart, each timed by every \
         host from its XADD in Redis to that host's own log line and D-Bus signal \
         (after its local commit): the locking host p50 {} ms, p99 {} ms ({} events); \
         the other host p50 {} ms, p99 {} ms ({} events).\n\n\
         The cost of WAIT (a primary, one replica, three Sentinels): an admin lock at the root socket \
         with `replicas_to_wait = 1` p50 {} µs, p99 {} µs; with 0, p50 {} µs, p99 {} µs.\n",
        f50 as i64 - s50 as i64,
        a.1,
        a.2,
        a.0,
        b.1,
        b.2,
        b.0,
        waits[0].1,
        waits[0].2,
        waits[1].1,
        waits[1].2,
    )
}
