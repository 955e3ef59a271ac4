//! Filesystems of a test's own for the state directory: a small tmpfs to fill,
//! or ext4 in a loop file to freeze. Each is unmounted, and thawed, when
//! dropped, even when the test fails: a process blocked on a frozen
//! filesystem cannot be killed, so a forgotten freeze would hang the run.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Whether a command ran and succeeded.
pub fn run_ok(cmd: &str, args: &[&str]) -> bool {
    Command::new(cmd)
        .args(args)
        .output()
        .is_ok_and(|o| o.status.success())
}

/// A mount point, lazily unmounted when dropped.
pub struct Mounted(PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// A tmpfs of `size` (as mount takes it, "8m") on `dir`, mode 0700.
pub fn tmpfs(dir: &Path, size: &str) -> Option<Mounted> {
    let opts = format!("size={size},mode=0700");
    run_ok(
        "mount",
        &["-t", "tmpfs", "-o", &opts, "tmpfs", dir.to_str()?],
    )
    .then(|| Mounted(dir.to_path_buf()))
}

/// ext4 of `size` ("32M") in the loop file `image`, mounted on `dir` with
/// mode 0700; `None` where this machine cannot mount a loop device.
pub fn loop_ext4(image: &Path, dir: &Path, size: &str) -> Option<Mounted> {
    let (image, dir_s) = (image.to_str()?, dir.to_str()?);
    if !run_ok("truncate", &["-s", size, image]) || !run_ok("mkfs.ext4", &["-q", "-F", image]) {
        return None;
    }
    if !run_ok("mount", &["-o", "loop", image, dir_s]) {
        return None;
    }
    let mounted = Mounted(dir.to_path_buf());
    run_ok("chmod", &["0700", dir_s]).then_some(mounted)
}

/// A filesystem frozen with FIFREEZE (every write and fsync on it waits, as on
/// a dying disk), thawed when dropped.
pub struct Frozen(PathBuf);

impl Frozen {
    pub fn freeze(dir: &Path) -> Option<Frozen> {
        run_ok("fsfreeze", &["-f", dir.to_str()?]).then(|| Frozen(dir.to_path_buf()))
    }
}

impl Drop for Frozen {
    fn drop(&mut self) {
        let _ = Command::new("fsfreeze").arg("-u").arg(&self.0).status();
    }
}
