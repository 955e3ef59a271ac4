//! The built module loaded as libpam loads it, by a C program compiled here:
//! it must not drag libgcc_s into sshd, sudo, su or login (mapping and
//! unmapping it cost most of a login's overhead), and its own static
//! unwinder must still catch what unwinds inside it.

use std::process::Command;
use warden_e2e::paths;

#[test]
fn the_module_needs_no_libgcc_s_and_still_catches_unwinding() {
    let dir = tempfile::tempdir().unwrap();
    let exe = dir.path().join("load-module");
    let out = Command::new("cc")
        .arg("-O2")
        .arg("-o")
        .arg(&exe)
        .arg(paths::repo_file("tests/fixtures/load-module.c"))
        .arg("-ldl")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "cc: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let needed = Command::new("readelf")
        .arg("-d")
        .arg(paths::module())
        .output()
        .unwrap();
    let needed = String::from_utf8_lossy(&needed.stdout).into_owned();
    assert!(needed.contains("libpam.so"), "{needed}");
    assert!(
        !needed.contains("libgcc_s"),
        "the module needs libgcc_s again:\n{needed}"
    );
    let run = Command::new(&exe)
        .arg(paths::module())
        .arg("500")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&run.stdout).into_owned();
    assert!(
        run.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(
        text.contains("libgcc_s=0"),
        "loading the module mapped libgcc_s: {text}"
    );
    assert!(
        text.contains("selftest=1"),
        "the module's unwinder did not catch: {text}"
    );
    println!("{}", text.trim());
}
