//! Admin control on the system D-Bus. Optional: the socket never waits on it.
//! wardend connects when the bus is there, and again whenever it comes back.

pub use warden_api as api;
mod auth;
mod iface;

use crate::engine::{EventKind, Until};
use crate::logline::quote;
use crate::service::Warden;
use iface::Control;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;
use zbus::object_server::SignalEmitter;

const RETRY: Duration = Duration::from_secs(5);

pub async fn run(warden: Arc<Warden>) {
    let mut said_unavailable = false;
    loop {
        let built = zbus::connection::Builder::system()
            .name(api::NAME)
            .serve_at(
                api::PATH,
                Control {
                    warden: warden.clone(),
                },
            );
        match built.build().await {
            Ok(conn) => {
                said_unavailable = false;
                warden
                    .log()
                    .info(&format!("bus-connected name={}", api::NAME));
                forward(&warden, &conn).await;
                warden.log().warn("bus-lost; reconnecting");
            }
            Err(e) => {
                if !said_unavailable {
                    warden.log().warn(&format!(
                        "bus-unavailable error={}; the socket keeps serving, retrying every {}s",
                        quote(&e.to_string()),
                        RETRY.as_secs()
                    ));
                    said_unavailable = true;
                }
            }
        }
        tokio::time::sleep(RETRY).await;
    }
}

/// Turns lock events into signals until the connection fails.
async fn forward(warden: &Warden, conn: &zbus::Connection) {
    let mut events = warden.subscribe();
    let Ok(emitter) = SignalEmitter::new(conn, api::PATH) else {
        return;
    };
    let Ok(dbus) = zbus::fdo::DBusProxy::new(conn).await else {
        return;
    };
    let mut ping = tokio::time::interval(RETRY);
    loop {
        tokio::select! {
            ev = events.recv() => {
                let e = match ev {
                    Ok(e) => e,
                    Err(RecvError::Lagged(n)) => {
                        warden.log().warn(&format!("bus-signals-dropped count={n}"));
                        continue;
                    }
                    Err(RecvError::Closed) => return,
                };
                let key = e.key.as_ref().map(ToString::to_string).unwrap_or_default();
                let rule = e.rule.clone().unwrap_or_default();
                let sent = match e.kind {
                    EventKind::Locked => {
                        let until = match e.until {
                            Some(Until::At(t)) => i64::try_from(t.0 / 1000).unwrap_or(0),
                            _ => 0,
                        };
                        Control::locked(&emitter, &key, &rule, until).await
                    }
                    EventKind::Unlocked => {
                        Control::unlocked(&emitter, &key, &rule, e.by.as_deref().unwrap_or("")).await
                    }
                    _ => Ok(()),
                };
                if sent.is_err() {
                    return;
                }
            }
            _ = ping.tick() => {
                if dbus.get_id().await.is_err() {
                    return;
                }
            }
        }
    }
}
