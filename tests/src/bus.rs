//! A private dbus-daemon configured like the system bus, with warden's shipped
//! policy file included, and wardenctl run against it.

use crate::paths;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::process::{Child, Command, Stdio};

pub struct Bus {
    pub dir: tempfile::TempDir,
    pub address: String,
    child: Child,
}

/// The system bus's default policy (as Debian's system.conf has it): method
/// calls are denied unless a service's own policy file allows them.
const CONFIG: &str = r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=@DIR@/system_bus_socket</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <deny own="*"/>
    <deny send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Introspectable"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Properties"/>
    <deny send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus" send_member="UpdateActivationEnvironment"/>
  </policy>
  <includedir>@DIR@/system.d</includedir>
</busconfig>
"#;

impl Bus {
    /// With the repository's policy file.
    pub fn start() -> Bus {
        Bus::start_with_policy(&paths::repo_file("packaging/dbus/org.warden.Warden1.conf"))
    }

    /// With a given policy file, such as the one a package installed.
    pub fn start_with_policy(policy: &std::path::Path) -> Bus {
        let dir = tempfile::Builder::new()
            .prefix("warden-bus")
            .tempdir()
            .unwrap_or_else(|e| panic!("{e}"));
        let _ = std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755));
        let d = dir.path().display().to_string();
        std::fs::create_dir(dir.path().join("system.d")).unwrap_or_else(|e| panic!("{e}"));
        std::fs::copy(policy, dir.path().join("system.d/org.warden.Warden1.conf"))
            .unwrap_or_else(|e| panic!("copy the policy file: {e}"));
        let config = dir.path().join("bus.conf");
        std::fs::write(&config, CONFIG.replace("@DIR@", &d)).unwrap_or_else(|e| panic!("{e}"));
        let mut child = Command::new("dbus-daemon")
            .arg(format!("--config-file={}", config.display()))
            .args(["--nofork", "--print-address"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("start dbus-daemon: {e}"));
        let mut line = String::new();
        if let Some(out) = child.stdout.take() {
            let _ = BufReader::new(out).read_line(&mut line);
        }
        let address = line.trim().to_string();
        assert!(
            address.starts_with("unix:"),
            "dbus-daemon printed {address:?}"
        );
        Bus {
            dir,
            address,
            child,
        }
    }

    pub fn env(&self) -> [(&str, &str); 1] {
        [("DBUS_SYSTEM_BUS_ADDRESS", self.address.as_str())]
    }
}

impl Drop for Bus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What one wardenctl run gave.
#[derive(Debug)]
pub struct Ctl {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs wardenctl with the bus address, as root or, with `as_uid`, as that
/// user (with their groups from the account database).
pub fn wardenctl(address: &str, as_uid: Option<u32>, args: &[&str]) -> Ctl {
    let mut cmd = match as_uid {
        Some(uid) => {
            let mut c = Command::new("setpriv");
            c.args([
                "--reuid",
                &uid.to_string(),
                "--regid",
                &gid_of(uid).to_string(),
                "--init-groups",
                "--",
            ]);
            c.arg(paths::wardenctl());
            c
        }
        None => Command::new(paths::wardenctl()),
    };
    cmd.args(args);
    // The fallback to the root socket only where a test asks for it: never
    // the host's own wardend.
    if !args.contains(&"--root-socket") && args.first() != Some(&"generate-docs") {
        cmd.args(["--root-socket", "/nonexistent/warden-root.sock"]);
    }
    let out = cmd
        .env("DBUS_SYSTEM_BUS_ADDRESS", address)
        .output()
        .unwrap_or_else(|e| panic!("wardenctl: {e}"));
    Ctl {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn gid_of(uid: u32) -> u32 {
    nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
        .ok()
        .flatten()
        .map_or(65534, |u| u.gid.as_raw())
}

/// Waits until wardend answers on the bus.
pub fn wait_for_daemon(address: &str) -> bool {
    for _ in 0..200 {
        if wardenctl(address, None, &["status"]).code == 0 {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    false
}
