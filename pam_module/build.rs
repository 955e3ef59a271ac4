//! Links the unwinder into the module instead of depending on libgcc_s.so.1.
//!
//! libpam maps the module afresh for every login and unmaps it at pam_end.
//! None of sshd, sudo, su or login loads libgcc_s, so a module that needs it
//! makes every login map and unmap it too: measured here, 186 µs of the
//! 264 µs a dlopen and dlclose of the module cost, most of what a login paid
//! over pam_faillock. Rust's std asks the linker for `-lgcc_s`; a linker
//! script of that name, found first, hands it gcc's static unwinder
//! (libgcc_eh.a, built position-independent for exactly this use, as
//! `gcc -shared -static-libgcc` does). Panics never leave the module (every
//! entry point catches them), so its own unwinder is all it needs.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let Ok(out) = std::env::var("OUT_DIR") else {
        return;
    };
    let target = std::env::var("TARGET").unwrap_or_default();
    if !target.contains("linux-gnu") {
        return;
    }
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let found = Command::new(&cc)
        .arg("-print-file-name=libgcc_eh.a")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .map(PathBuf::from)
        .filter(|p| p.is_absolute() && p.exists());
    // Without the static unwinder the module still builds, needing libgcc_s.
    let Some(eh) = found else {
        println!("cargo:warning=libgcc_eh.a not found: pam_warden.so will need libgcc_s.so.1");
        return;
    };
    let dir = PathBuf::from(out).join("static-unwind");
    if std::fs::create_dir_all(&dir).is_err() {
        return;
    }
    let script = format!("INPUT({})\n", eh.display());
    if std::fs::write(dir.join("libgcc_s.so"), script).is_err() {
        return;
    }
    println!("cargo:rustc-link-search=native={}", dir.display());
}
