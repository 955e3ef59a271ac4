//! Admin calls on the root socket: the D-Bus admin methods by name, with
//! their arguments and answers in JSON, for wardenctl when the bus is down.
//! The root socket is root's alone, so every call here is an admin's.

use crate::service::{ServiceError, Warden};
use crate::time::Time;
use crate::views;
use serde_json::Value;

fn json<T: serde::Serialize>(v: &T) -> Result<String, ServiceError> {
    serde_json::to_string(v).map_err(|e| ServiceError::Task(e.to_string()))
}

pub async fn call(
    warden: &Warden,
    uid: u32,
    method: &str,
    args: &str,
    now: Time,
) -> Result<String, ServiceError> {
    let args: Vec<Value> = serde_json::from_str(args)
        .map_err(|e| ServiceError::Invalid(format!("the arguments are not a JSON array: {e}")))?;
    let s = |i: usize| args.get(i).and_then(Value::as_str).unwrap_or("");
    let n = |i: usize| args.get(i).and_then(Value::as_i64).unwrap_or(0);
    let b = |i: usize| args.get(i).and_then(Value::as_bool).unwrap_or(false);
    match method {
        "Status" => json(&views::status(warden, now)?),
        "ListLocks" => json(&views::locks(warden, now).await?),
        "GetUserStatus" => json(&views::user_status(warden, s(0), now).await?),
        "GetRhostStatus" => json(&views::rhost_status(warden, s(0), now).await?),
        "Explain" => json(&views::explain(warden, s(0), s(1), s(2), s(3), now).await?),
        "ListEvents" => {
            let kinds = args
                .get(3)
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default();
            let limit = u32::try_from(n(6)).unwrap_or(0);
            let filter = views::history_filter(
                s(0).to_string(),
                s(1).to_string(),
                s(2).to_string(),
                kinds,
                n(4),
                n(5),
                limit,
            );
            json(&views::events(warden, filter).await?)
        }
        "Lock" => {
            let seconds = u64::try_from(n(2)).unwrap_or(0);
            json(&views::lock(warden, s(0), s(1), seconds, b(3), s(4), uid, now).await?)
        }
        "Unlock" => json(&views::unlock(warden, s(0), s(1), uid, now).await?),
        "FleetStatus" => match warden.fleet() {
            Some(report) => json(&report),
            None => Err(ServiceError::Invalid(
                "this host decides alone: warden.toml has no [fleet] table".into(),
            )),
        },
        other => Err(ServiceError::Invalid(format!(
            "\"{other}\" is not an admin method the root socket serves"
        ))),
    }
}
