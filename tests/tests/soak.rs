//! `make soak`: 64 concurrent clients with random users and rhosts for 30 s.
//! Ignored by `make test` (it takes the better part of a minute).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use warden_e2e::bus::{wait_for_daemon, wardenctl, Bus};
use warden_e2e::client::fail;
use warden_e2e::daemon::{user_rule, Daemon, NO_FAMILIAR};
use warden_proto::ResponseBody;

const MAX_KEYS: u64 = 20_000;

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix("VmRSS:")
                .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

#[test]
#[ignore = "a 30 s soak: run it with make soak"]
fn a_64_client_flood_keeps_the_daemon_answering_within_its_bounds() {
    let bus = Bus::start();
    // Every rhost locks at its third failure; users are random, so the user
    // rule mostly tracks keys that eviction may drop.
    let mut d = Daemon::start_with_env(
        &format!(
            "max_tracked_keys = {MAX_KEYS}\n{NO_FAMILIAR}{}\
             [[rule]]\nname = \"rhost\"\ntrack = [\"rhost\"]\nlimit = 3\nwindow = \"1h\"\nlockout = \"1h\"\n",
            user_rule(5, "1h", "1h")
        ),
        &bus.env(),
    );
    assert!(wait_for_daemon(&bus.address));
    let pid = d.pid().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let answered = Arc::new(AtomicU64::new(0));
    let slowest = Arc::new(Mutex::new(Duration::ZERO));
    let workers: Vec<_> = (0..64u64)
        .map(|t| {
            let (socket, stop, answered, slowest) = (
                d.socket.clone(),
                stop.clone(),
                answered.clone(),
                slowest.clone(),
            );
            std::thread::spawn(move || {
                let mut x = 0x9E37_79B9_7F4A_7C15u64 ^ (t << 32);
                while !stop.load(Ordering::Relaxed) {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    let user = format!("u{}", x % 1_000_000);
                    let rhost = format!(
                        "10.{}.{}.{}",
                        (x >> 20) % 4,
                        (x >> 28) % 256,
                        (x >> 36) % 256
                    );
                    let start = Instant::now();
                    let r = fail(&socket, &user, Some(&rhost));
                    let took = start.elapsed();
                    assert!(matches!(r, Ok(ResponseBody::Recorded)), "{r:?}");
                    answered.fetch_add(1, Ordering::Relaxed);
                    let mut s = slowest.lock().unwrap();
                    *s = (*s).max(took);
                }
            })
        })
        .collect();
    let start = Instant::now();
    let mut peak_rss = 0;
    let mut peak_keys = 0;
    while start.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_secs(3));
        peak_rss = peak_rss.max(rss_kib(pid));
        let s = wardenctl(&bus.address, None, &["status", "--json"]);
        assert_eq!(s.code, 0, "the bus answers during the flood: {s:?}");
        let v: serde_json::Value = serde_json::from_str(&s.stdout).unwrap();
        let (keys, locks) = (v["keys"].as_u64().unwrap(), v["locks"].as_u64().unwrap());
        peak_keys = peak_keys.max(keys);
        // Locks are never evicted, so the bound is on the unlocked keys.
        assert!(
            keys <= MAX_KEYS + locks,
            "{keys} keys, {locks} locks, bound {MAX_KEYS}"
        );
    }
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.join().unwrap();
    }
    let n = answered.load(Ordering::Relaxed);
    let slowest = *slowest.lock().unwrap();

    // Nothing acknowledged is lost: after kill -9 the same keys and locks are back.
    let counts = || {
        assert!(wait_for_daemon(&bus.address));
        let s = wardenctl(&bus.address, None, &["status", "--json"]);
        let v: serde_json::Value = serde_json::from_str(&s.stdout).unwrap();
        (v["keys"].as_u64().unwrap(), v["locks"].as_u64().unwrap())
    };
    let before = counts();
    d.kill();
    d.restart();
    let after = counts();
    assert_eq!(
        after, before,
        "(keys, locks) before kill -9 and after the restart"
    );
    println!(
        "soak: {n} durable failures in 30 s from 64 clients ({:.0}/s), slowest answer {slowest:?}, peak {peak_keys} keys, peak RSS {} MiB; after kill -9: {} keys and {} locks, as before",
        n as f64 / 30.0,
        peak_rss / 1024,
        after.0,
        after.1
    );
    assert!(
        slowest < Duration::from_secs(5),
        "an answer took {slowest:?}"
    );
    assert!(
        peak_rss < 256 * 1024,
        "RSS peaked at {} MiB",
        peak_rss / 1024
    );
}
