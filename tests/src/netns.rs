//! A network namespace made by a test, for what touches the host's network
//! stack (nftables): its own loopback with the addresses the test needs, and
//! TCP probes from inside it. Removed when dropped.

use crate::run;
use std::net::{IpAddr, SocketAddr, TcpListener};
use std::os::fd::AsRawFd;
use std::process::Command;
use std::time::Duration;

pub struct Netns {
    pub name: String,
}

impl Netns {
    /// A fresh namespace with loopback up and `addrs` on it.
    pub fn new(name: &str, addrs: &[IpAddr]) -> Netns {
        let ns = Netns {
            name: name.to_string(),
        };
        let _ = Command::new("ip").args(["netns", "delete", name]).output();
        let (ok, out) = run(Command::new("ip").args(["netns", "add", name]));
        assert!(ok, "ip netns add {name}: {out}");
        ns.ip(&["link", "set", "lo", "up"]);
        for a in addrs {
            let host = if a.is_ipv4() { "/32" } else { "/128" };
            let mut args = vec!["addr", "add"];
            let spelled = format!("{a}{host}");
            args.extend([spelled.as_str(), "dev", "lo"]);
            if a.is_ipv6() {
                args.push("nodad");
            }
            ns.ip(&args);
        }
        ns
    }

    pub fn ip(&self, args: &[&str]) {
        let (ok, out) = run(Command::new("ip").arg("-n").arg(&self.name).args(args));
        assert!(ok, "ip -n {} {args:?}: {out}", self.name);
    }

    /// Runs nft inside the namespace: whether it succeeded, and its output.
    pub fn nft(&self, args: &[&str]) -> (bool, String) {
        run(Command::new("ip")
            .args(["netns", "exec", &self.name, "nft"])
            .args(args))
    }

    /// The words that run a command inside the namespace.
    pub fn exec_prefix(&self) -> [&str; 4] {
        ["ip", "netns", "exec", &self.name]
    }

    /// Runs `f` on a thread that has entered the namespace: the sockets it
    /// makes live there.
    fn inside<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        let path = format!("/run/netns/{}", self.name);
        std::thread::spawn(move || {
            let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
            nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET)
                .unwrap_or_else(|e| panic!("setns {path}: {e}"));
            f()
        })
        .join()
        .unwrap_or_else(|_| panic!("a thread inside the namespace panicked"))
    }

    /// A TCP listener on `addr` inside the namespace (the kernel completes
    /// handshakes into its backlog, so nothing needs to accept).
    pub fn listen(&self, addr: IpAddr) -> (TcpListener, SocketAddr) {
        let l = self.inside(move || {
            TcpListener::bind(SocketAddr::new(addr, 0))
                .unwrap_or_else(|e| panic!("bind {addr}: {e}"))
        });
        let at = l.local_addr().unwrap_or_else(|e| panic!("{e}"));
        (l, at)
    }

    /// Whether a TCP connection from `from` reaches `to` within a second.
    pub fn connects(&self, from: IpAddr, to: SocketAddr) -> bool {
        self.inside(move || tcp_from(from, to))
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "delete", &self.name])
            .output();
    }
}

fn tcp_from(from: IpAddr, to: SocketAddr) -> bool {
    use nix::sys::socket::{
        bind, connect, getsockopt, socket, sockopt, AddressFamily, SockFlag, SockType,
        SockaddrStorage,
    };
    let family = if from.is_ipv4() {
        AddressFamily::Inet
    } else {
        AddressFamily::Inet6
    };
    let fd = socket(
        family,
        SockType::Stream,
        SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
        None,
    )
    .unwrap_or_else(|e| panic!("socket: {e}"));
    let local = SockaddrStorage::from(SocketAddr::new(from, 0));
    bind(fd.as_raw_fd(), &local).unwrap_or_else(|e| panic!("bind {from}: {e}"));
    match connect(fd.as_raw_fd(), &SockaddrStorage::from(to)) {
        Ok(()) => return true,
        Err(nix::errno::Errno::EINPROGRESS) => {}
        Err(_) => return false,
    }
    let mut fds = [nix::poll::PollFd::new(
        std::os::fd::AsFd::as_fd(&fd),
        nix::poll::PollFlags::POLLOUT,
    )];
    let wait = nix::poll::PollTimeout::try_from(Duration::from_secs(1))
        .unwrap_or(nix::poll::PollTimeout::MAX);
    match nix::poll::poll(&mut fds, wait) {
        Ok(n) if n > 0 => getsockopt(&fd, sockopt::SocketError).is_ok_and(|e| e == 0),
        _ => false,
    }
}
