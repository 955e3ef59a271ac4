//! Connection caps. Root peers (sshd, sudo, su, login) have their own large
//! pool; every other uid gets a few, so a local user holding idle connections
//! slows only themself. A login keeps its connection open while the password is
//! typed, so a pool three quarters full tells its idle connections to close:
//! their modules open new ones when they need them, and prompts left open by
//! an attacker never hold the places a login needs.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

pub const ROOT_MAX: usize = 512;
pub const PER_USER_MAX: usize = 8;
pub const USERS_MAX: usize = 128;

#[derive(Default)]
pub struct Limits {
    counts: Mutex<Counts>,
    crowded_root: tokio::sync::Notify,
    crowded_users: tokio::sync::Notify,
}

#[derive(Default)]
struct Counts {
    root: usize,
    users: usize,
    per_uid: HashMap<u32, usize>,
}

/// Holds a place until dropped.
pub struct Slot {
    limits: Arc<Limits>,
    uid: u32,
}

impl Limits {
    pub fn acquire(self: &Arc<Self>, uid: u32) -> Option<Slot> {
        let mut c = self.counts.lock().ok()?;
        if uid == 0 {
            if c.root >= ROOT_MAX {
                return None;
            }
            c.root += 1;
            if c.root >= ROOT_MAX * 3 / 4 {
                self.crowded_root.notify_waiters();
            }
        } else {
            let mine = c.per_uid.get(&uid).copied().unwrap_or(0);
            if mine >= PER_USER_MAX || c.users >= USERS_MAX {
                return None;
            }
            c.users += 1;
            c.per_uid.insert(uid, mine + 1);
            if c.users >= USERS_MAX * 3 / 4 || mine + 1 >= PER_USER_MAX * 3 / 4 {
                self.crowded_users.notify_waiters();
            }
        }
        Some(Slot {
            limits: self.clone(),
            uid,
        })
    }
}

impl Slot {
    /// Resolves when this connection's pool is crowded: an idle connection
    /// waiting on it then closes.
    pub fn crowded(&self) -> tokio::sync::futures::Notified<'_> {
        if self.uid == 0 {
            self.limits.crowded_root.notified()
        } else {
            self.limits.crowded_users.notified()
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let Ok(mut c) = self.limits.counts.lock() else {
            return;
        };
        if self.uid == 0 {
            c.root = c.root.saturating_sub(1);
        } else {
            c.users = c.users.saturating_sub(1);
            if let Some(n) = c.per_uid.get_mut(&self.uid) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    c.per_uid.remove(&self.uid);
                }
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_user_cannot_take_roots_places() {
        let l = Arc::new(Limits::default());
        let held: Vec<Slot> = (0..PER_USER_MAX)
            .map(|_| l.acquire(1000).unwrap())
            .collect();
        assert!(l.acquire(1000).is_none());
        assert!(l.acquire(1001).is_some());
        assert!(l.acquire(0).is_some());
        drop(held);
        assert!(l.acquire(1000).is_some());
    }
}
