//! RFC 6238 codes (SHA1, 6 digits, 30 s steps, ±1 step) with replay refused,
//! and one-time recovery codes stored only as salted hashes.

use super::TotpRecord;
use crate::time::Time;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use totp_rs::{Algorithm, Builder, Totp};
use zeroize::Zeroizing;

const DIGITS: u8 = 6;
const STEP: u64 = 30;
const SKEW: u16 = 1;
const RECOVERY_CODES: usize = 10;
/// 12 characters of a 32-letter alphabet: 60 bits each.
const RECOVERY_LEN: usize = 12;
/// No 0/o or 1/l: easy to read back from paper. 32 letters, so `byte % 32`
/// picks each with the same chance.
const ALPHABET: &[u8; 32] = b"abcdefghijkmnpqrstuvwxyz23456789";

fn totp(secret: &[u8], issuer: &str, account: &str) -> Result<Totp, String> {
    Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(DIGITS)
        .with_skew(SKEW)
        .with_step_duration(STEP)
        .with_secret(secret.to_vec())
        .with_issuer(Some(issuer))
        .with_account_name(account)
        .build()
        .map_err(|e| e.to_string())
}

/// A new, unconfirmed enrollment and what to show its owner once.
pub struct Enrollment {
    pub record: TotpRecord,
    pub uri: Zeroizing<String>,
    pub recovery: Vec<Zeroizing<String>>,
}

/// `random` must hold at least 20 + 16 + 10×12 bytes from a CSPRNG.
pub fn new_enrollment(
    user: &str,
    issuer: &str,
    random: &[u8],
    now: Time,
) -> Result<Enrollment, String> {
    if random.len() < 20 + 16 + RECOVERY_CODES * RECOVERY_LEN {
        return Err("not enough randomness".into());
    }
    let (secret, rest) = random.split_at(20);
    let (salt, rest) = rest.split_at(16);
    let mut record = TotpRecord {
        secret: secret.to_vec(),
        confirmed: false,
        created: now,
        last_step: 0,
        salt: salt.to_vec(),
        recovery: Vec::new(),
        remembered: Vec::new(),
    };
    let recovery = recovery_codes(&mut record, rest)?;
    let uri = otpauth_uri(&record, user, issuer)?;
    Ok(Enrollment {
        record,
        uri,
        recovery,
    })
}

pub fn otpauth_uri(
    record: &TotpRecord,
    user: &str,
    issuer: &str,
) -> Result<Zeroizing<String>, String> {
    let t = totp(&record.secret, issuer, user)?;
    t.to_url().map(Zeroizing::new).map_err(|e| e.to_string())
}

/// Replaces the record's recovery codes with fresh ones, returned in the clear
/// this once, written `abcd-efgh-jkmn`.
pub fn recovery_codes(
    record: &mut TotpRecord,
    random: &[u8],
) -> Result<Vec<Zeroizing<String>>, String> {
    if random.len() < RECOVERY_CODES * RECOVERY_LEN {
        return Err("not enough randomness".into());
    }
    let mut shown = Vec::with_capacity(RECOVERY_CODES);
    record.recovery.clear();
    for chunk in random.chunks(RECOVERY_LEN).take(RECOVERY_CODES) {
        let raw: Zeroizing<String> = Zeroizing::new(
            chunk
                .iter()
                .map(|b| ALPHABET[usize::from(b % 32)] as char)
                .collect(),
        );
        record.recovery.push(hash(&record.salt, &raw)?);
        shown.push(Zeroizing::new(format!(
            "{}-{}-{}",
            &raw[0..4],
            &raw[4..8],
            &raw[8..12]
        )));
    }
    Ok(shown)
}

fn hash(salt: &[u8], code: &str) -> Result<Vec<u8>, String> {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(salt).map_err(|e| e.to_string())?;
    mac.update(code.as_bytes());
    Ok(mac.finalize().into_bytes().to_vec())
}

#[derive(Debug, PartialEq, Eq)]
pub enum CodeCheck {
    /// A TOTP code for this step; the caller stores it as `last_step`.
    Good(u64),
    /// A recovery code: the caller removes the hash at this index.
    Recovery(usize),
    /// The code's step was already used.
    Replayed,
    Wrong,
}

/// What using a typed code did to a record.
#[derive(Debug, PartialEq, Eq)]
pub enum Spent {
    /// A TOTP code: its step is now the record's `last_step`.
    Code(u64),
    /// A recovery code, now removed: how many are left.
    Recovery(usize),
    Replayed,
    Wrong,
}

/// Checks what the user typed and, when it is good, uses it up on the
/// record, so that it cannot be used again once the record is stored.
pub fn spend(record: &mut TotpRecord, typed: &str, now: Time) -> Spent {
    match check(record, typed, now) {
        CodeCheck::Good(step) => {
            record.last_step = step;
            Spent::Code(step)
        }
        CodeCheck::Recovery(i) => {
            record.recovery.remove(i);
            Spent::Recovery(record.recovery.len())
        }
        CodeCheck::Replayed => Spent::Replayed,
        CodeCheck::Wrong => Spent::Wrong,
    }
}

/// Checks what the user typed: six digits against the secret, or a recovery code.
pub fn check(record: &TotpRecord, typed: &str, now: Time) -> CodeCheck {
    let typed: Zeroizing<String> = Zeroizing::new(
        typed
            .chars()
            .filter(|c| !c.is_whitespace() && *c != '-')
            .collect(),
    );
    if typed.len() == usize::from(DIGITS) && typed.chars().all(|c| c.is_ascii_digit()) {
        let Ok(t) = totp(&record.secret, "warden", "x") else {
            return CodeCheck::Wrong;
        };
        return match t.check(&typed, now.0 / 1000) {
            Some(step) if step > record.last_step => CodeCheck::Good(step),
            Some(_) => CodeCheck::Replayed,
            None => CodeCheck::Wrong,
        };
    }
    if typed.len() == RECOVERY_LEN {
        let lower: Zeroizing<String> = Zeroizing::new(typed.to_ascii_lowercase());
        let Ok(h) = hash(&record.salt, &lower) else {
            return CodeCheck::Wrong;
        };
        // Compare with every stored hash, so the time says nothing about which matched.
        let mut found = None;
        for (i, stored) in record.recovery.iter().enumerate() {
            if bool::from(stored.as_slice().ct_eq(h.as_slice())) {
                found = Some(i);
            }
        }
        if let Some(i) = found {
            return CodeCheck::Recovery(i);
        }
    }
    CodeCheck::Wrong
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn enrolled() -> (Enrollment, Totp) {
        let mut x: u64 = 0x2545_F491_4F6C_DD1D;
        let random: Vec<u8> = (0..200)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect();
        let e = new_enrollment("alice", "warden", &random, Time(0)).unwrap();
        let t = totp(&e.record.secret, "warden", "alice").unwrap();
        (e, t)
    }

    #[test]
    fn codes_within_one_step_pass_and_replays_fail() {
        let (mut e, t) = enrolled();
        let now = 1_795_000_015u64;
        let code = |secs: u64| t.generate(secs).to_string();
        assert_eq!(
            check(&e.record, &code(now), Time(now * 1000)),
            CodeCheck::Good(now / 30)
        );
        assert!(matches!(
            check(&e.record, &code(now - 30), Time(now * 1000)),
            CodeCheck::Good(_)
        ));
        assert!(matches!(
            check(&e.record, &code(now + 30), Time(now * 1000)),
            CodeCheck::Good(_)
        ));
        assert_eq!(
            check(&e.record, &code(now + 60), Time(now * 1000)),
            CodeCheck::Wrong
        );
        assert_eq!(
            check(&e.record, &code(now - 60), Time(now * 1000)),
            CodeCheck::Wrong
        );
        e.record.last_step = now / 30;
        assert_eq!(
            check(&e.record, &code(now), Time(now * 1000)),
            CodeCheck::Replayed
        );
        assert_eq!(
            check(&e.record, &code(now - 30), Time(now * 1000)),
            CodeCheck::Replayed
        );
    }

    #[test]
    fn recovery_codes_are_hashed_and_match_loosely_written() {
        let (e, _) = enrolled();
        assert_eq!(e.recovery.len(), 10);
        let first = e.recovery[0].to_string();
        assert_eq!(first.len(), 14);
        assert!(!e
            .record
            .recovery
            .iter()
            .any(|h| h.as_slice() == first.as_bytes()));
        assert_eq!(check(&e.record, &first, Time(0)), CodeCheck::Recovery(0));
        assert_eq!(
            check(&e.record, &first.to_uppercase().replace('-', " "), Time(0)),
            CodeCheck::Recovery(0)
        );
        assert_eq!(
            check(&e.record, "abcd-efgh-jkmn", Time(0)),
            CodeCheck::Wrong
        );
    }

    #[test]
    fn the_uri_names_issuer_and_account() {
        let (e, _) = enrolled();
        assert!(
            e.uri.starts_with("otpauth://totp/warden:alice?"),
            "{}",
            e.uri.as_str()
        );
        assert!(
            e.uri.contains("secret=") && e.uri.contains("issuer=warden"),
            "{}",
            e.uri.as_str()
        );
        assert!(format!("{:?}", e.record).contains("recovery_left: 10"));
        assert!(!format!("{:?}", e.record).contains("secret"));
    }
}
