//! Locks that must survive a failover. Redis acknowledges a write once its
//! primary has it; a replica may not yet. After each lock, `WAIT` asks for
//! `replicas_to_wait` replicas within `wait_timeout`. A lock none had is
//! kept here, durably, and asserted again (idempotently) whenever this host
//! reconnects and on every heartbeat, until a replica acknowledges it: a
//! failover that promotes a replica without it loses it for seconds, not
//! for good.

use super::journal::Entry;
use super::wire::{AssertArg, LockOut};
use super::{FleetBackend, FleetError};
use crate::time::Time;

impl FleetBackend {
    /// How many replicas have every write of this connection so far.
    async fn wait_replicas(&self) -> Result<u32, FleetError> {
        let mut cmd = redis::cmd("WAIT");
        cmd.arg(self.fleet.replicas_to_wait)
            .arg(u64::try_from(self.fleet.wait_timeout.as_millis()).unwrap_or(1000));
        let n: i64 = self.link.query(cmd).await?;
        Ok(u32::try_from(n.max(0)).unwrap_or(0))
    }

    /// After a write that locked: waits for the replicas, and keeps a copy
    /// of what they did not acknowledge.
    pub(super) async fn safeguard(&self, locks: &[LockOut]) {
        if locks.is_empty() || self.fleet.replicas_to_wait == 0 {
            return;
        }
        let acked = self.wait_replicas().await.unwrap_or(0);
        if acked >= self.fleet.replicas_to_wait {
            return;
        }
        for l in locks {
            if let Err(e) = self.unreplicated.append(&Entry::Assert(l.clone())) {
                self.alarms.log().error(&format!(
                    "fleet-unreplicated-lost key={} error={}",
                    crate::logline::quote(&l.k),
                    crate::logline::quote(&e.to_string())
                ));
            }
        }
        self.alarms.say(
            "fleet-unreplicated",
            Time::now(),
            &format!(
                "fleet-unreplicated locks={} replicas={acked} wanted={} action=\"kept here and asserted again until a replica has them; check the replicas' link (INFO replication)\"",
                locks.len(),
                self.fleet.replicas_to_wait
            ),
        );
    }

    /// Asserts every kept lock again; forgets them once a replica has all.
    pub(super) async fn reassert(&self) -> Result<(), FleetError> {
        let entries = self
            .unreplicated
            .entries()
            .map_err(|e| FleetError::Config(format!("cannot read the unreplicated locks: {e}")))?;
        if entries.is_empty() {
            return Ok(());
        }
        let mut asserted = 0;
        for e in &entries {
            let Entry::Assert(lock) = e else { continue };
            let arg = AssertArg {
                p: self.prefix(),
                host: self.host(),
                stream_length: self.fleet.stream_length,
                lock,
            };
            let out: AssertOut = self.link.call("warden_assert", &arg).await?;
            if out.asserted {
                asserted += 1;
            }
        }
        if asserted > 0 {
            self.alarms.log().warn(&format!(
                "fleet-lock-reasserted locks={asserted} action=\"a failover had lost them; they hold again\""
            ));
        }
        if self.wait_replicas().await? >= self.fleet.replicas_to_wait {
            let _ = self.unreplicated.clear(entries.len());
        }
        Ok(())
    }
}

#[derive(serde::Deserialize)]
struct AssertOut {
    #[serde(default)]
    asserted: bool,
}
