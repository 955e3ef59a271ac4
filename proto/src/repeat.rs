//! The tag of a wrong password, so that wardend can count a repeat of one of
//! a user's last wrong passwords once, as a stale password in a phone or a
//! mail client repeats it. The module computes it at authfail with a key that
//! wardend draws at every start, keeps only in memory and hands to root
//! peers in preauth's verdict: wardend never sees the password, and a tag is
//! worthless once the key is gone (a restart). Truncated to 64 bits: enough
//! that no two of one user's recent wrong passwords collide by chance.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

pub const KEY_LEN: usize = 32;
pub const TAG_LEN: usize = 8;

pub type RepeatKey = [u8; KEY_LEN];
pub type Tag = [u8; TAG_LEN];

/// HMAC-SHA-256 of `password` under `key`, truncated.
pub fn tag(key: &RepeatKey, password: &[u8]) -> Tag {
    let mut out = [0u8; TAG_LEN];
    // HMAC takes a key of any length, so this never fails.
    if let Ok(mut mac) = <Hmac<Sha256> as KeyInit>::new_from_slice(key) {
        mac.update(password);
        let full = mac.finalize().into_bytes();
        for (o, b) in out.iter_mut().zip(full.iter()) {
            *o = *b;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_match_rfc_4231_and_depend_on_the_key() {
        // RFC 4231, test case 2 ("Jefe"), truncated: the key zero-padded to 32
        // bytes is the same HMAC key.
        let mut key = [0u8; KEY_LEN];
        key[..4].copy_from_slice(b"Jefe");
        assert_eq!(
            tag(&key, b"what do ya want for nothing?"),
            [0x5b, 0xdc, 0xc1, 0x46, 0xbf, 0x60, 0x75, 0x4e]
        );
        let other = [7u8; KEY_LEN];
        assert_ne!(tag(&other, b"hunter2"), tag(&key, b"hunter2"));
        assert_eq!(tag(&other, b"hunter2"), tag(&other, b"hunter2"));
        assert_ne!(tag(&other, b"hunter2"), tag(&other, b"hunter3"));
    }
}
