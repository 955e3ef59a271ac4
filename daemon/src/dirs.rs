//! Directories for the socket and the state, checked before wardend trusts
//! them: owned by root and writable by no one else, all the way up. wardend
//! creates a missing directory, tightens its own state directory, and never
//! changes the mode of a directory it did not create.

use nix::sys::stat::{lstat, stat, Mode, SFlag};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Component, Path, PathBuf};
use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum DirError {
    #[error("{key} {path}: {problem}. {fix}")]
    Unsafe {
        key: &'static str,
        path: String,
        problem: String,
        fix: String,
    },
    #[error("{key} {path}: {error}")]
    Io {
        key: &'static str,
        path: String,
        error: String,
    },
}

/// Group or others may write.
const SHARED_WRITE: u32 = 0o022;
const STICKY: u32 = 0o1000;

fn unsafe_dir(key: &'static str, path: &Path, problem: String, fix: String) -> DirError {
    DirError::Unsafe {
        key,
        path: path.display().to_string(),
        problem,
        fix,
    }
}

fn io(key: &'static str, path: &Path, e: impl std::fmt::Display) -> DirError {
    DirError::Io {
        key,
        path: path.display().to_string(),
        error: e.to_string(),
    }
}

/// Checks `path` and every directory above it, as written and as resolved:
/// each must be owned by root, and none may be writable by group or others,
/// except a sticky ancestor such as /tmp (whose entries others cannot rename).
/// A symlink on the way must be root's too.
pub fn check_chain(key: &'static str, path: &Path) -> Result<(), DirError> {
    let real = std::fs::canonicalize(path).map_err(|e| io(key, path, e))?;
    for (chain, follow) in [(prefixes(path), false), (prefixes(&real), true)] {
        let last = chain.len().saturating_sub(1);
        for (i, p) in chain.iter().enumerate() {
            let st = if follow { stat(p) } else { lstat(p) }.map_err(|e| io(key, p, e))?;
            let kind = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT;
            if st.st_uid != 0 {
                return Err(unsafe_dir(
                    key,
                    path,
                    format!("{} is owned by uid {}, not root", p.display(), st.st_uid),
                    format!(
                        "Use a directory that only root controls, or: chown root:root {}",
                        p.display()
                    ),
                ));
            }
            if kind == SFlag::S_IFLNK {
                continue;
            }
            let mode = st.st_mode & 0o7777;
            let shared = mode & SHARED_WRITE != 0;
            let sticky_ancestor = i < last && mode & STICKY != 0;
            if shared && !sticky_ancestor {
                return Err(unsafe_dir(
                    key,
                    path,
                    format!("{} is writable by group or others (mode {mode:04o})", p.display()),
                    format!(
                        "Anyone who can write there could replace what wardend keeps in it; use a root-only directory such as /run/warden or /var/lib/warden, or: chmod go-w {}",
                        p.display()
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// `/`, `/a`, `/a/b`, ... `path`, lexically.
fn prefixes(path: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut cur = PathBuf::new();
    for c in path.components() {
        match c {
            Component::RootDir => cur.push("/"),
            Component::Normal(n) => cur.push(n),
            Component::ParentDir => {
                cur.pop();
            }
            Component::CurDir | Component::Prefix(_) => {}
        }
        out.push(cur.clone());
    }
    out
}

/// The socket's directory: created (0755) when missing, so that unprivileged
/// PAM callers can reach the socket; checked, and never chmodded, when it exists.
pub fn socket_dir(key: &'static str, socket: &Path) -> Result<PathBuf, DirError> {
    let dir = socket
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .ok_or_else(|| {
            unsafe_dir(
                key,
                socket,
                "has no directory".into(),
                "Give an absolute path".into(),
            )
        })?;
    create_missing(key, dir, 0o755)?;
    check_chain(key, dir)?;
    Ok(dir.to_path_buf())
}

/// The state directory: created 0700 when missing; when it exists it must be
/// root's and writable by no one else, and any read access for others is
/// taken away (the state is root's alone).
pub fn state_dir(key: &'static str, dir: &Path) -> Result<(), DirError> {
    create_missing(key, dir, 0o700)?;
    check_chain(key, dir)?;
    let st = stat(dir).map_err(|e| io(key, dir, e))?;
    if st.st_mode & 0o077 != 0 {
        nix::sys::stat::fchmodat(
            nix::fcntl::AT_FDCWD,
            dir,
            Mode::from_bits_truncate(0o700),
            nix::sys::stat::FchmodatFlags::NoFollowSymlink,
        )
        .map_err(|e| io(key, dir, e))?;
    }
    Ok(())
}

/// The store file, if it exists: a regular file of root's with one link (a
/// hard link from elsewhere would let its other name be read or swapped).
pub fn store_file(key: &'static str, file: &Path) -> Result<(), DirError> {
    let st = match lstat(file) {
        Ok(st) => st,
        Err(nix::errno::Errno::ENOENT) => return Ok(()),
        Err(e) => return Err(io(key, file, e)),
    };
    let kind = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT;
    let problem = if kind != SFlag::S_IFREG {
        Some("is not a regular file (a symlink or something else)".to_string())
    } else if st.st_uid != 0 {
        Some(format!("is owned by uid {}, not root", st.st_uid))
    } else if st.st_nlink != 1 {
        Some(format!("has {} hard links", st.st_nlink))
    } else {
        None
    };
    match problem {
        Some(p) => Err(unsafe_dir(
            key,
            file,
            p,
            "Someone other than wardend may have made it; move it aside, check it, and start again"
                .into(),
        )),
        None => Ok(()),
    }
}

/// Creates each missing directory down to `dir` with exactly `mode` (the
/// daemon's umask is 077); a directory that already exists is left as it is.
fn create_missing(key: &'static str, dir: &Path, mode: u32) -> Result<(), DirError> {
    for p in prefixes(dir) {
        match std::fs::symlink_metadata(&p) {
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(key, &p, e)),
        }
        std::fs::DirBuilder::new()
            .mode(mode)
            .create(&p)
            .map_err(|e| io(key, &p, e))?;
        nix::sys::stat::fchmodat(
            nix::fcntl::AT_FDCWD,
            &p,
            Mode::from_bits_truncate(mode),
            nix::sys::stat::FchmodatFlags::NoFollowSymlink,
        )
        .map_err(|e| io(key, &p, e))?;
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_walk_down_from_the_root() {
        assert_eq!(
            prefixes(Path::new("/run/warden/x.sock")),
            ["/", "/run", "/run/warden", "/run/warden/x.sock"].map(PathBuf::from)
        );
    }

    #[test]
    fn a_world_writable_directory_is_refused_and_left_alone() {
        if !nix::unistd::geteuid().is_root() {
            println!("SKIP: needs root (ownership checks)");
            return;
        }
        let top = tempfile::tempdir().unwrap();
        let open = top.path().join("open");
        std::fs::create_dir(&open).unwrap();
        std::fs::set_permissions(&open, std::os::unix::fs::PermissionsExt::from_mode(0o777))
            .unwrap();
        let e = socket_dir("socket", &open.join("w.sock")).unwrap_err();
        assert!(e.to_string().contains("writable by group or others"), "{e}");
        let mode = std::fs::metadata(&open).unwrap().permissions();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
            0o777
        );
        // A sticky /tmp above a root-owned directory is fine.
        let fine = top.path().join("fine");
        assert!(socket_dir("socket", &fine.join("w.sock")).is_ok());
    }
}
