//! The config parser and its error locator, which slices the text by spans.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Err(e) = warden_daemon::config::Config::parse(text, Path::new("fuzz.toml")) {
            let _ = e.to_string();
        }
    }
});
