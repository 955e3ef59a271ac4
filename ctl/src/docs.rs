//! The man page and shell completions, generated from the clap definition so
//! they never drift from the real options.

use crate::cli::Cli;
use crate::client::CtlError;
use clap::CommandFactory;
use clap_complete::Shell;
use std::path::Path;

pub fn generate(dir: &Path) -> Result<(), CtlError> {
    let fail = |e: std::io::Error| CtlError::Failed(format!("{}: {e}", dir.display()));
    std::fs::create_dir_all(dir).map_err(fail)?;
    let cmd = Cli::command();
    let mut page = Vec::new();
    clap_mangen::Man::new(cmd.clone())
        .render(&mut page)
        .map_err(fail)?;
    std::fs::write(dir.join("wardenctl.1"), page).map_err(fail)?;
    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
        let mut cmd = cmd.clone();
        clap_complete::generate_to(shell, &mut cmd, "wardenctl", dir).map_err(fail)?;
    }
    Ok(())
}
