//! Where wardend's lines go: syslog (facility authpriv, ident `wardend`), or
//! stderr for foreground runs. Lines are the stable `kind key=value` form.

use std::io::Write as _;
use std::sync::Mutex;
use syslog::{Facility, Formatter3164, Logger, LoggerBackend};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    Err,
    Warning,
    Notice,
    Info,
}

enum Sink {
    Syslog(Box<Logger<LoggerBackend, Formatter3164>>),
    Stderr,
}

pub struct Log {
    sink: Mutex<Sink>,
}

impl Log {
    pub fn stderr() -> Log {
        Log {
            sink: Mutex::new(Sink::Stderr),
        }
    }

    /// Syslog, or stderr with a warning when no syslog socket answers (a
    /// container without a log daemon): losing the audit trail silently is worse.
    pub fn syslog() -> Log {
        match connect() {
            Ok(logger) => Log {
                sink: Mutex::new(Sink::Syslog(Box::new(logger))),
            },
            Err(e) => {
                let log = Log::stderr();
                log.write(
                    Level::Warning,
                    &format!("syslog unavailable ({e}); logging to stderr"),
                );
                log
            }
        }
    }

    pub fn write(&self, level: Level, line: &str) {
        let Ok(mut sink) = self.sink.lock() else {
            return;
        };
        match &mut *sink {
            Sink::Stderr => {
                let tag = match level {
                    Level::Err => "error: ",
                    Level::Warning => "warning: ",
                    Level::Notice | Level::Info => "",
                };
                let _ = writeln!(std::io::stderr().lock(), "wardend: {tag}{line}");
            }
            Sink::Syslog(logger) => {
                if send(logger, level, line).is_err() {
                    // syslogd restarted: reconnect once, then give up on this line.
                    if let Ok(fresh) = connect() {
                        **logger = fresh;
                        let _ = send(logger, level, line);
                    }
                }
            }
        }
    }

    pub fn info(&self, line: &str) {
        self.write(Level::Info, line);
    }

    pub fn warn(&self, line: &str) {
        self.write(Level::Warning, line);
    }

    pub fn error(&self, line: &str) {
        self.write(Level::Err, line);
    }
}

fn connect() -> Result<Logger<LoggerBackend, Formatter3164>, syslog::Error> {
    syslog::unix(Formatter3164 {
        facility: Facility::LOG_AUTHPRIV,
        hostname: None,
        process: "wardend".into(),
        pid: std::process::id(),
    })
}

fn send(
    logger: &mut Logger<LoggerBackend, Formatter3164>,
    level: Level,
    line: &str,
) -> Result<(), syslog::Error> {
    match level {
        Level::Err => logger.err(line),
        Level::Warning => logger.warning(line),
        Level::Notice => logger.notice(line),
        Level::Info => logger.info(line),
    }
}
