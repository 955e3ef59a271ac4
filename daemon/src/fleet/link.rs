//! The connection to the fleet's Redis: one multiplexed connection shared by
//! every call, each call bounded by `call_timeout`. A call never reconnects
//! inline: a login does not wait for a TCP handshake to a dead server. The
//! health task reconnects, and loads warden's function library each time,
//! so a fresh or failed-over server has it before any call needs it.

use super::FleetError;
use crate::config::Fleet;
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, IntoConnectionInfo};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::sync::Mutex;
use std::time::Duration;

/// The function library, loaded with `FUNCTION LOAD REPLACE`: functions
/// live in Redis's data set, so they are persisted and replicated, where
/// `EVALSHA` scripts vanish from a promoted replica's cache.
pub const LIBRARY: &str = include_str!("warden.lua");

/// Where the password is looked for when `password_file` is not set: the
/// credential `LoadCredential=redis-password:...` hands to the unit.
pub const CREDENTIAL: &str = "redis-password";

pub struct Link {
    fleet: Fleet,
    password: Option<String>,
    /// The client for the primary: `url`'s, or the one the Sentinels named.
    client: Mutex<redis::Client>,
    conn: Mutex<Option<MultiplexedConnection>>,
    timeout: Duration,
    reconnecting: tokio::sync::Mutex<()>,
}

impl Link {
    pub fn new(fleet: &Fleet) -> Result<Link, FleetError> {
        let password = password(fleet)?;
        let client = client_for(fleet, password.as_deref(), None)?;
        Ok(Link {
            fleet: fleet.clone(),
            password,
            client: Mutex::new(client),
            conn: Mutex::new(None),
            timeout: fleet.call_timeout,
            reconnecting: tokio::sync::Mutex::new(()),
        })
    }

    fn client(&self) -> Result<redis::Client, FleetError> {
        self.client
            .lock()
            .map(|c| c.clone())
            .map_err(|_| FleetError::Config("the client lock is poisoned".into()))
    }

    /// The primary's address as the Sentinels know it now: each is asked in
    /// turn, and the first that answers names it. After a failover this is
    /// how a host finds the new primary (redis-rs keeps open connections on
    /// the old one).
    async fn ask_sentinels(&self) -> Result<(String, u16), FleetError> {
        let mut last = FleetError::Down;
        for s in &self.fleet.sentinels {
            let url = format!("redis://{s}/");
            let asked = async {
                let client = redis::Client::open(url.as_str()).map_err(FleetError::from_redis)?;
                let cfg = AsyncConnectionConfig::new()
                    .set_connection_timeout(Some(Duration::from_millis(300)))
                    .set_response_timeout(Some(Duration::from_millis(300)));
                let mut conn = client
                    .get_multiplexed_async_connection_with_config(&cfg)
                    .await
                    .map_err(FleetError::from_redis)?;
                let addr: Option<(String, String)> = redis::cmd("SENTINEL")
                    .arg("get-master-addr-by-name")
                    .arg(&self.fleet.master_name)
                    .query_async(&mut conn)
                    .await
                    .map_err(FleetError::from_redis)?;
                let (host, port) = addr.ok_or_else(|| {
                    FleetError::Config(format!(
                        "Sentinel {s} monitors no primary named {}",
                        self.fleet.master_name
                    ))
                })?;
                let port: u16 = port
                    .parse()
                    .map_err(|_| FleetError::Reply(format!("Sentinel {s} gave port {port}")))?;
                Ok::<_, FleetError>((host, port))
            };
            match asked.await {
                Ok(a) => return Ok(a),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    fn current(&self) -> Option<MultiplexedConnection> {
        self.conn.lock().ok().and_then(|c| c.clone())
    }

    pub fn is_up(&self) -> bool {
        self.current().is_some()
    }

    /// Forgets the connection after a failed call: calls fail fast until the
    /// health task has a new one.
    pub fn drop_connection(&self) {
        if let Ok(mut c) = self.conn.lock() {
            *c = None;
        }
    }

    /// A new connection, with the library loaded; replaces the current one.
    pub async fn connect(&self) -> Result<(), FleetError> {
        if !self.fleet.sentinels.is_empty() {
            let (host, port) = self.ask_sentinels().await?;
            let plain = !self.fleet.url.starts_with("rediss://");
            let near = host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
                || host == "localhost";
            if plain && !near {
                return Err(FleetError::Config(format!(
                    "the Sentinels name {host}:{port} as the primary, which is not on this machine: plain redis:// is refused there; use rediss://"
                )));
            }
            let client = client_for(&self.fleet, self.password.as_deref(), Some((&host, port)))?;
            if let Ok(mut c) = self.client.lock() {
                *c = client;
            }
        }
        let cfg = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.timeout.max(Duration::from_millis(500))))
            .set_response_timeout(Some(self.timeout.max(Duration::from_millis(500))));
        let mut conn = self
            .client()?
            .get_multiplexed_async_connection_with_config(&cfg)
            .await
            .map_err(FleetError::from_redis)?;
        if !self.fleet.sentinels.is_empty() {
            // A Sentinel's answer can be a moment old: only a primary will do.
            let role: redis::Value = redis::cmd("ROLE")
                .query_async(&mut conn)
                .await
                .map_err(FleetError::from_redis)?;
            let first = match &role {
                redis::Value::Array(v) => v
                    .first()
                    .and_then(|x| redis::from_redis_value_ref::<String>(x).ok()),
                _ => None,
            };
            if first.as_deref() != Some("master") {
                return Err(FleetError::Redis(
                    "READONLY the Sentinels' primary is not a primary yet".into(),
                ));
            }
        }
        // Evicted keys are forgotten failures and vanished locks: a Redis
        // that may evict is refused, never used.
        let info: String = redis::cmd("INFO")
            .arg("memory")
            .query_async(&mut conn)
            .await
            .map_err(FleetError::from_redis)?;
        let policy = info
            .lines()
            .find_map(|l| l.strip_prefix("maxmemory_policy:"))
            .unwrap_or("")
            .trim()
            .to_string();
        if policy != "noeviction" {
            return Err(FleetError::Evicting(format!(
                "its maxmemory-policy is {policy}"
            )));
        }
        load_library(&mut conn).await?;
        if let Ok(mut c) = self.conn.lock() {
            *c = Some(conn);
        }
        Ok(())
    }

    /// A connection of its own, for blocking stream reads, which would
    /// hold up every call queued behind them on the shared one.
    pub async fn dedicated(&self) -> Result<MultiplexedConnection, FleetError> {
        let cfg = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(1)))
            .set_response_timeout(Some(Duration::from_secs(5)));
        self.client()?
            .get_multiplexed_async_connection_with_config(&cfg)
            .await
            .map_err(FleetError::from_redis)
    }

    /// Runs a raw command within the call timeout.
    pub async fn query<T: redis::FromRedisValue>(&self, cmd: redis::Cmd) -> Result<T, FleetError> {
        let mut conn = self.current().ok_or(FleetError::Down)?;
        match tokio::time::timeout(self.timeout, cmd.query_async::<T>(&mut conn)).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => {
                let e = FleetError::from_redis(e);
                if e.is_outage() {
                    self.drop_connection();
                }
                Err(e)
            }
            Err(_) => {
                self.drop_connection();
                Err(FleetError::Timeout(self.timeout))
            }
        }
    }

    /// Runs a pipeline within the call timeout.
    pub async fn pipeline(&self, pipe: redis::Pipeline) -> Result<(), FleetError> {
        let mut conn = self.current().ok_or(FleetError::Down)?;
        match tokio::time::timeout(self.timeout, pipe.query_async::<()>(&mut conn)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(FleetError::from_redis(e)),
            Err(_) => Err(FleetError::Timeout(self.timeout)),
        }
    }

    /// Calls one of warden's functions with one JSON argument.
    pub async fn call<T: DeserializeOwned>(
        &self,
        function: &str,
        arg: &impl Serialize,
    ) -> Result<T, FleetError> {
        let json = serde_json::to_string(arg).map_err(|e| FleetError::Reply(e.to_string()))?;
        let mut cmd = redis::cmd("FCALL");
        cmd.arg(function).arg(0).arg(json);
        let text: String = match self.query(cmd.clone()).await {
            // A failover: the old primary is a replica now (READONLY), the
            // new one lacks the library (NOSCRIPT), or the old one is gone
            // (an I/O error). Ask the Sentinels again and retry once, within
            // the call's own bound; redis-rs does not move a connection. One
            // call reconnects at a time; the others fail over to the local
            // engine meanwhile.
            Err(e) if e.after_failover() && !self.fleet.sentinels.is_empty() => {
                let Ok(_one) = self.reconnecting.try_lock() else {
                    return Err(e);
                };
                match tokio::time::timeout(self.timeout, async {
                    self.connect().await?;
                    self.query(cmd).await
                })
                .await
                {
                    Ok(r) => r?,
                    Err(_) => return Err(FleetError::Timeout(self.timeout)),
                }
            }
            other => other?,
        };
        serde_json::from_str(&text).map_err(|e| FleetError::Reply(format!("{function}: {e}")))
    }
}

/// Loads warden's library, or, for a host whose ACL user may not load
/// functions (the shipped ACL), checks that the one loaded is this build's:
/// a host must never run decisions it did not agree to.
async fn load_library(conn: &mut MultiplexedConnection) -> Result<(), FleetError> {
    let loaded: redis::RedisResult<String> = redis::cmd("FUNCTION")
        .arg("LOAD")
        .arg("REPLACE")
        .arg(LIBRARY)
        .query_async(conn)
        .await;
    let e = match loaded {
        Ok(_) => return Ok(()),
        Err(e) if e.code() == Some("NOPERM") => e,
        Err(e) => return Err(FleetError::from_redis(e)),
    };
    let listed: redis::Value = redis::cmd("FUNCTION")
        .arg("LIST")
        .arg("LIBRARYNAME")
        .arg("warden")
        .arg("WITHCODE")
        .query_async(conn)
        .await
        .map_err(FleetError::from_redis)?;
    if library_code(&listed).as_deref() == Some(LIBRARY) {
        return Ok(());
    }
    Err(FleetError::Library(format!(
        "this host may not load functions ({e}) and the library loaded in Redis is missing or another version's; load this build's with an admin's credential: redis-cli FUNCTION LOAD REPLACE \"$(wardend --fleet-library)\""
    )))
}

/// The `library_code` of the first library in a `FUNCTION LIST` reply.
fn library_code(v: &redis::Value) -> Option<String> {
    let redis::Value::Array(libs) = v else {
        return None;
    };
    let fields: Vec<(String, &redis::Value)> = match libs.first()? {
        redis::Value::Array(flat) => flat
            .chunks(2)
            .filter_map(|p| {
                Some((
                    redis::from_redis_value_ref::<String>(p.first()?).ok()?,
                    p.get(1)?,
                ))
            })
            .collect(),
        redis::Value::Map(m) => m
            .iter()
            .filter_map(|(k, v)| Some((redis::from_redis_value_ref::<String>(k).ok()?, v)))
            .collect(),
        _ => return None,
    };
    fields
        .into_iter()
        .find(|(k, _)| k == "library_code")
        .and_then(|(_, v)| redis::from_redis_value_ref::<String>(v).ok())
}

/// rustls needs a process-wide crypto provider; ring's, once.
fn install_crypto() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // Err means one is installed already, which serves as well.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// A client for `url`, or for `url` with its host and port replaced by the
/// primary the Sentinels named; with the password, the user and TLS.
fn client_for(
    fleet: &Fleet,
    password: Option<&str>,
    at: Option<(&str, u16)>,
) -> Result<redis::Client, FleetError> {
    let url = match at {
        None => fleet.url.clone(),
        Some((host, port)) => {
            let (scheme, rest) = fleet.url.split_once("://").unwrap_or(("redis", ""));
            let db = rest.split_once('/').map_or("", |(_, db)| db);
            let host = if host.contains(':') {
                format!("[{host}]")
            } else {
                host.to_string()
            };
            format!("{scheme}://{host}:{port}/{db}")
        }
    };
    let mut info = url
        .as_str()
        .into_connection_info()
        .map_err(|e| FleetError::Config(format!("fleet.url: {e}")))?;
    if let Some(pw) = password {
        let rs = info.redis_settings().clone().set_password(pw);
        info = info.set_redis_settings(rs);
    }
    if let Some(user) = &fleet.username {
        let rs = info.redis_settings().clone().set_username(user);
        info = info.set_redis_settings(rs);
    }
    if url.starts_with("rediss://") {
        install_crypto();
        let root_cert = match &fleet.tls_ca {
            Some(p) => Some(std::fs::read(p).map_err(|e| {
                FleetError::Config(format!("cannot read fleet.tls_ca {}: {e}", p.display()))
            })?),
            None => None,
        };
        redis::Client::build_with_tls(
            info,
            redis::TlsCertificates {
                client_tls: None,
                root_cert,
            },
        )
    } else {
        redis::Client::open(info)
    }
    .map_err(|e| FleetError::Config(format!("fleet.url: {e}")))
}

/// The password: `password_file`, else the systemd credential, else none.
fn password(fleet: &Fleet) -> Result<Option<String>, FleetError> {
    let text = super::secret::read(
        fleet.password_file.as_deref(),
        CREDENTIAL,
        "the Redis password",
    )?;
    Ok(text.map(|t| t.trim_end_matches(['\n', '\r']).to_string()))
}
