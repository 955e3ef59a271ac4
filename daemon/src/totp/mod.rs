//! The TOTP second factor: records, codes and the policy that says who must give
//! one. Pure: the time and the randomness are handed in.

mod codes;
mod policy;
mod record;

pub use codes::{
    check, new_enrollment, otpauth_uri, recovery_codes, spend, CodeCheck, Enrollment, Spent,
};
pub use policy::{decide, decide_why, Need, Situation};
pub use record::TotpRecord;
