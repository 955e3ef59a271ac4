//! A real redis-server on 127.0.0.1, on a port of its own, in a scratch
//! directory; gone when dropped.

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Redis {
    pub dir: tempfile::TempDir,
    pub port: u16,
    /// Serving TLS only, with a certificate for 127.0.0.1 signed by `ca.pem`
    /// in `dir`.
    tls: bool,
    extra: Vec<String>,
    child: Option<Child>,
}

/// Makes a CA and a server certificate for 127.0.0.1 in `dir` with openssl:
/// `ca.pem`, `server.pem`, `server.key`; `other-ca.pem` signed nothing.
pub fn make_certs(dir: &std::path::Path) {
    let sh = |script: &str| {
        let out = Command::new("sh")
            .arg("-c")
            .arg(script)
            .current_dir(dir)
            .output()
            .unwrap_or_else(|e| panic!("openssl: {e}"));
        assert!(
            out.status.success(),
            "openssl failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let ec = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
    sh(&format!(
        "openssl req -x509 {ec} -keyout ca.key -out ca.pem -days 2 -subj /CN=warden-test-ca"
    ));
    sh(&format!(
        "openssl req -x509 {ec} -keyout other.key -out other-ca.pem -days 2 -subj /CN=someone-else"
    ));
    sh(&format!(
        "openssl req {ec} -keyout server.key -out server.csr -subj /CN=127.0.0.1"
    ));
    sh("printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n' > ext && openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem -days 2 -extfile ext");
}

/// A port nothing listens on now.
/// A port no server holds now and none of this process's tests was given:
/// tests that run at once each start several servers, and the kernel may hand
/// a just-released port out again before its server binds it.
fn free_port() -> u16 {
    use std::sync::Mutex;
    static GIVEN: Mutex<Vec<u16>> = Mutex::new(Vec::new());
    loop {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("bind: {e}"));
        let port = l
            .local_addr()
            .map(|a| a.port())
            .unwrap_or_else(|e| panic!("{e}"));
        let mut given = GIVEN
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
}

/// Why the Redis tests cannot run here, if they cannot.
pub fn unavailable() -> Option<String> {
    let found = Command::new("redis-server")
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    (!found).then(|| "redis-server is not installed (make test installs it)".into())
}

impl Redis {
    pub fn start() -> Redis {
        let dir = tempfile::Builder::new()
            .prefix("warden-redis")
            .tempdir()
            .unwrap_or_else(|e| panic!("{e}"));
        let mut r = Redis {
            dir,
            port: free_port(),
            tls: false,
            extra: Vec::new(),
            child: None,
        };
        r.spawn();
        r
    }

    /// A server that speaks TLS only (`make_certs` in its directory).
    pub fn start_tls() -> Redis {
        let dir = tempfile::Builder::new()
            .prefix("warden-redis")
            .tempdir()
            .unwrap_or_else(|e| panic!("{e}"));
        make_certs(dir.path());
        let mut r = Redis {
            dir,
            port: free_port(),
            tls: true,
            extra: Vec::new(),
            child: None,
        };
        r.spawn();
        r
    }

    pub fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    pub fn url(&self) -> String {
        let scheme = if self.tls { "rediss" } else { "redis" };
        format!("{scheme}://127.0.0.1:{}/0", self.port)
    }

    fn spawn(&mut self) {
        let log: PathBuf = self.dir.path().join("redis.log");
        let port = self.port.to_string();
        let d = self.dir.path();
        let ports: Vec<String> = if self.tls {
            vec![
                "--port".into(),
                "0".into(),
                "--tls-port".into(),
                port,
                "--tls-cert-file".into(),
                d.join("server.pem").display().to_string(),
                "--tls-key-file".into(),
                d.join("server.key").display().to_string(),
                "--tls-ca-cert-file".into(),
                d.join("ca.pem").display().to_string(),
                "--tls-auth-clients".into(),
                "no".into(),
            ]
        } else {
            vec!["--port".into(), port]
        };
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1"])
            .args(&ports)
            .args(&self.extra)
            .args([
                "--save",
                "",
                "--appendonly",
                "no",
                "--protected-mode",
                "yes",
            ])
            .arg("--dir")
            .arg(self.dir.path())
            .arg("--logfile")
            .arg(&log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("start redis-server: {e}"));
        self.child = Some(child);
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(10) {
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("redis-server did not listen on {} within 10 s", self.port);
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// SIGKILL: the server is gone, with all it held (no persistence).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts again on the same port.
    pub fn start_again(&mut self) {
        self.kill();
        self.spawn();
    }

    /// A plain server started with extra arguments (`--maxmemory-policy ...`).
    pub fn start_with(args: &[&str]) -> Redis {
        let mut r = Redis::start();
        r.kill();
        r.extra = args.iter().map(|a| a.to_string()).collect();
        r.spawn();
        r
    }

    /// Runs redis-cli against it and returns what it printed.
    pub fn cli(&self, args: &[&str]) -> String {
        redis_cli(self.port, args)
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The `[fleet]` block for a host of the fleet on this server.
pub fn fleet_block(redis: &Redis, host: &str, extra: &str) -> String {
    format!(
        "[fleet]\nbackend = \"redis\"\nurl = \"{}\"\nhost_id = \"{host}\"\n{extra}",
        redis.url()
    )
}

/// A primary, one replica and three Sentinels on 127.0.0.1, as Debian's
/// redis-server and redis-sentinel run them, with a fast failover
/// (down-after 500 ms).
pub struct Sentinels {
    pub primary: Redis,
    pub replica: Redis,
    pub ports: Vec<u16>,
    dir: tempfile::TempDir,
    sentinels: Vec<Child>,
}

pub const MASTER_NAME: &str = "warden";

impl Sentinels {
    pub fn start() -> Sentinels {
        let primary = Redis::start();
        let replica = Redis::start_with(&["--replicaof", "127.0.0.1", &primary.port.to_string()]);
        let dir = tempfile::Builder::new()
            .prefix("warden-sentinel")
            .tempdir()
            .unwrap_or_else(|e| panic!("{e}"));
        let mut s = Sentinels {
            primary,
            replica,
            ports: Vec::new(),
            dir,
            sentinels: Vec::new(),
        };
        s.wait_for(
            || {
                s.replica
                    .cli(&["INFO", "replication"])
                    .contains("master_link_status:up")
            },
            "the replica's first sync",
        );
        for i in 0..3 {
            let port = free_port();
            let conf = s.dir.path().join(format!("sentinel-{i}.conf"));
            std::fs::write(
                &conf,
                format!(
                    "port {port}\nbind 127.0.0.1\ndir {}\nlogfile {}\n\
                     sentinel monitor {MASTER_NAME} 127.0.0.1 {} 2\n\
                     sentinel down-after-milliseconds {MASTER_NAME} 500\n\
                     sentinel failover-timeout {MASTER_NAME} 2000\n\
                     sentinel parallel-syncs {MASTER_NAME} 1\n",
                    s.dir.path().display(),
                    s.dir.path().join(format!("sentinel-{i}.log")).display(),
                    s.primary.port
                ),
            )
            .unwrap_or_else(|e| panic!("{e}"));
            let child = Command::new("redis-sentinel")
                .arg(&conf)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("start redis-sentinel: {e}"));
            s.sentinels.push(child);
            s.ports.push(port);
        }
        // Each Sentinel must know the replica and the two others before a
        // failover can reach its quorum.
        for port in s.ports.clone() {
            s.wait_for(
                || {
                    let others = redis_cli(port, &["SENTINEL", "sentinels", MASTER_NAME]);
                    let replicas = redis_cli(port, &["SENTINEL", "replicas", MASTER_NAME]);
                    others.matches("runid").count() >= 2 && replicas.contains("slave")
                },
                "the Sentinels to find each other and the replica",
            );
        }
        s
    }

    fn wait_for(&self, mut ok: impl FnMut() -> bool, what: &str) {
        let start = Instant::now();
        // Sentinels greet each other every 2 s; a loaded 2-core machine
        // running other tests beside may need several rounds.
        while start.elapsed() < Duration::from_secs(40) {
            if ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("timed out waiting for {what}");
    }

    /// The primary's port as the first Sentinel names it now.
    pub fn primary_port(&self) -> u16 {
        let out = redis_cli(
            self.ports[0],
            &["SENTINEL", "get-master-addr-by-name", MASTER_NAME],
        );
        out.lines()
            .nth(1)
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or(0)
    }

    /// The `[fleet]` block of a host that finds the primary through them.
    pub fn fleet_block(&self, host: &str, extra: &str) -> String {
        let list: Vec<String> = self
            .ports
            .iter()
            .map(|p| format!("\"127.0.0.1:{p}\""))
            .collect();
        format!(
            "[fleet]\nbackend = \"redis\"\nurl = \"redis://127.0.0.1:{}/0\"\nhost_id = \"{host}\"\nsentinels = [{}]\nmaster_name = \"{MASTER_NAME}\"\n{extra}",
            self.primary.port,
            list.join(", ")
        )
    }

    /// redis-cli against whichever server is on `port`.
    pub fn cli_on(port: u16, args: &[&str]) -> String {
        redis_cli(port, args)
    }
}

/// redis-cli against whatever listens on `port` of 127.0.0.1; what it printed.
fn redis_cli(port: u16, args: &[&str]) -> String {
    let out = Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("redis-cli: {e}"));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

impl Drop for Sentinels {
    fn drop(&mut self) {
        for c in &mut self.sentinels {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
