//! The fleet's secrets (the Redis password, the TOTP key): from a file named
//! in `[fleet]`, else from the systemd credential of that name, else none.
//! Either way the file must be root's and readable by root alone.

use super::FleetError;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

/// The secret's text, or `None` when neither the file nor the credential is
/// there. `what` names it in errors ("the Redis password").
pub fn read(
    file: Option<&Path>,
    credential: &str,
    what: &str,
) -> Result<Option<Zeroizing<String>>, FleetError> {
    let path: PathBuf = match file {
        Some(p) => p.to_path_buf(),
        None => match std::env::var_os("CREDENTIALS_DIRECTORY") {
            Some(dir) => {
                let p = Path::new(&dir).join(credential);
                if !p.exists() {
                    return Ok(None);
                }
                p
            }
            None => return Ok(None),
        },
    };
    let unreadable = |e: std::io::Error| {
        FleetError::Config(format!("cannot read {what} from {}: {e}", path.display()))
    };
    let meta = std::fs::metadata(&path).map_err(unreadable)?;
    if meta.mode() & 0o077 != 0 || meta.uid() != 0 {
        return Err(FleetError::Config(format!(
            "{} must be root's and readable by root alone (chown root; chmod 600)",
            path.display()
        )));
    }
    Ok(Some(Zeroizing::new(
        std::fs::read_to_string(&path).map_err(unreadable)?,
    )))
}
