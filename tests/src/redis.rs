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
fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("bind: {e}"));
    l.local_addr()
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("{e}"))
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
        let out = Command::new("redis-cli")
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("redis-cli: {e}"));
        String::from_utf8_lossy(&out.stdout).into_owned()
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
