//! The man page and shell completions, generated from the clap definition so
//! they never drift from the real options; the sections clap knows nothing
//! of (exit status, files, examples) are written here.

use crate::cli::Cli;
use crate::client::CtlError;
use clap::CommandFactory;
use clap_complete::Shell;
use std::path::Path;

const EXIT_STATUS: &str = r#".SH "EXIT STATUS"
.TP
.B 0
Done.
.TP
.B 1
An error; the message says what to do next.
.TP
.B 2
Usage: the command line cannot be carried out as given (and unlock \-\-all without \-\-yes off a terminal).
.TP
.B 3
Not authorized: an admin command needs root or the admin group.
.TP
.B 4
wardend cannot be reached: it is not on the system bus, or there is no bus.
"#;

const FILES: &str = r#".SH FILES
.TP
.I /etc/warden/warden.toml
wardend's configuration; see \fBwarden.toml\fR(5).
.TP
.I /usr/share/dbus-1/system.d/org.warden.Warden1.conf
Who may call what on the bus.
.TP
.I /var/lib/warden
The store.
"#;

const EXAMPLES: &str = r#".SH EXAMPLES
Why was alice refused from 203.0.113.7?
.PP
.nf
    wardenctl explain alice \-\-rhost 203.0.113.7
.fi
.PP
What happened to her in the last hour, and let her in:
.PP
.nf
    wardenctl history \-\-user alice \-\-since 1h
    wardenctl unlock alice
.fi
.PP
Lift one key exactly as \fBlocks\fR prints it:
.PP
.nf
    wardenctl unlock \-\-key 'user user="j\[:u]rgen" from=unfamiliar'
.fi
.PP
Block a scanner's network for a day:
.PP
.nf
    wardenctl lock \-\-rhost 198.51.100.0/24 \-\-for 1d \-\-reason scanner
.fi
"#;

const SEE_ALSO: &str = r#".SH "SEE ALSO"
.BR wardend (8),
.BR pam_warden (8),
.BR warden.toml (5)
"#;

pub fn generate(dir: &Path) -> Result<(), CtlError> {
    let fail = |e: std::io::Error| CtlError::Failed(format!("{}: {e}", dir.display()));
    std::fs::create_dir_all(dir).map_err(fail)?;
    let cmd = Cli::command();
    let man = clap_mangen::Man::new(cmd.clone()).section("8");
    let mut page = Vec::new();
    man.render_title(&mut page).map_err(fail)?;
    man.render_name_section(&mut page).map_err(fail)?;
    man.render_synopsis_section(&mut page).map_err(fail)?;
    man.render_description_section(&mut page).map_err(fail)?;
    man.render_options_section(&mut page).map_err(fail)?;
    man.render_subcommands_section(&mut page).map_err(fail)?;
    for section in [EXIT_STATUS, FILES, EXAMPLES, SEE_ALSO] {
        page.extend_from_slice(section.as_bytes());
    }
    man.render_version_section(&mut page).map_err(fail)?;
    std::fs::write(dir.join("wardenctl.8"), page).map_err(fail)?;
    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
        let mut cmd = cmd.clone();
        clap_complete::generate_to(shell, &mut cmd, "wardenctl", dir).map_err(fail)?;
    }
    Ok(())
}
