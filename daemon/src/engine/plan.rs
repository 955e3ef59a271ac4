//! Plans for a backend that decides elsewhere (the fleet's Redis): which keys
//! an attempt meets, worked out here once, with no state of this engine's.
//!
//! A planning engine holds no keys, so nothing is folded into overflow keys
//! and no prefix is aggregated: those bound one host's memory, and the fleet
//! bounds Redis's with TTLs instead.

use super::*;

/// What an attempt meets, for a backend to decide on.
#[derive(Clone, Debug)]
pub struct Plan {
    /// Refused before any key is looked at: `[deny]`, or a name it cannot check.
    pub refused: Option<Reason>,
    pub allowlisted: bool,
    pub source: String,
    /// An admin's possible locks: the user and the address.
    pub admin: Vec<KeyId>,
    /// The attempt's own keys from an unfamiliar source, with their rules.
    pub keys: Vec<(Rule, KeyId)>,
    /// The same from a familiar source, when any rule splits by familiarity
    /// and this origin can be familiar at all.
    pub familiar_keys: Option<Vec<(Rule, KeyId)>>,
    /// Locks that also refuse it: the wrong-code rule's.
    pub others: Vec<KeyId>,
}

impl Engine {
    pub fn plan(&self, attempt: &Attempt, origin: Origin) -> Plan {
        let rhost = attempt.rhost.as_deref().filter(|r| !r.is_empty());
        let ip = rhost.and_then(parse_ip);
        let source = self.source(attempt);
        let mut refused = None;
        if ip.is_some_and(|ip| contains(&self.policy.deny_rhosts, ip)) {
            refused = Some(Reason::plain(ReasonKind::Denied));
        } else if rhost.is_some() && ip.is_none() && !self.policy.deny_rhosts.is_empty() {
            refused = Some(Reason::plain(ReasonKind::Unverifiable));
        }
        let with_rules = |keys: Vec<(usize, KeyId)>| -> Vec<(Rule, KeyId)> {
            keys.into_iter()
                .map(|(i, k)| (self.policy.rules[i].clone(), k))
                .collect()
        };
        let keys = with_rules(self.keys_for(attempt, origin, &source, false, false));
        let can_be_familiar = self.policy.familiar_enabled && origin == Origin::Root;
        let splits = self.policy.rules.iter().any(splits_by_familiarity);
        let familiar_keys = (can_be_familiar && splits)
            .then(|| with_rules(self.keys_for(attempt, origin, &source, true, false)));
        Plan {
            refused,
            allowlisted: self.allowlisted(attempt, ip),
            admin: self.admin_keys(attempt),
            others: [self.code_key(attempt)]
                .into_iter()
                .chain(self.code_only_keys(attempt, origin, &source, false))
                .collect(),
            source,
            keys,
            familiar_keys,
        }
    }

    /// Where a wrong code counts (see `code_keys`), as seen from a familiar
    /// source or not.
    pub fn plan_code_keys(
        &self,
        attempt: &Attempt,
        origin: Origin,
        familiar: bool,
    ) -> Vec<(Rule, KeyId)> {
        let source = self.source(attempt);
        self.keys_for(attempt, origin, &source, familiar, true)
            .into_iter()
            .filter(|(i, _)| self.policy.rules[*i].tracks(Field::User))
            .map(|(i, k)| (self.policy.rules[i].clone(), k))
            .chain([(self.policy.code_rule.clone(), self.code_key(attempt))])
            .collect()
    }

    /// A rule by name: the configured ones and wardend's own.
    pub fn rule(&self, name: &str) -> Option<&Rule> {
        self.rule_named(name)
    }

    /// How an admin's `--rhost` value is keyed.
    pub fn admin_rhost_key(&self, value: &str) -> String {
        self.admin_rhost(value)
    }
}
