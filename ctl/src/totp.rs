//! `wardenctl totp ...`: enrollment with a QR code drawn in the terminal.

use crate::cli::TotpCommand;
use crate::client::{connect, CtlError};
use crate::human::stamp;
use qrcode::render::unicode::Dense1x2;
use qrcode::QrCode;

pub async fn run(command: TotpCommand, json: bool) -> Result<(), CtlError> {
    let proxy = connect().await?;
    match command {
        TotpCommand::Enroll { user } => {
            let e = proxy.totp_enroll(user.as_deref().unwrap_or("")).await?;
            if json {
                return crate::commands::print_json(&e);
            }
            println!("Scan this with an authenticator app (for {}):\n", e.user);
            println!("{}", qr(&e.uri)?);
            println!("Or enter this URI by hand:\n  {}\n", e.uri);
            println!("Recovery codes, each good once (keep them somewhere safe):");
            for c in &e.recovery_codes {
                println!("  {c}");
            }
            println!("\nThe code is not asked for until you confirm it with a first code:");
            println!("  wardenctl totp confirm {} CODE", e.user);
            Ok(())
        }
        TotpCommand::Confirm { args } => {
            let (user, code) = match args.as_slice() {
                [code] => (String::new(), code.clone()),
                [user, code] => (user.clone(), code.clone()),
                _ => {
                    return Err(CtlError::Failed(
                        "usage: wardenctl totp confirm [USER] CODE".into(),
                    ))
                }
            };
            proxy.totp_confirm(&user, &code).await?;
            if json {
                return crate::commands::print_json(&serde_json::json!({ "confirmed": true }));
            }
            println!("confirmed: the code is now asked for at login");
            Ok(())
        }
        TotpCommand::Status { user } => {
            let s = proxy.totp_status(user.as_deref().unwrap_or("")).await?;
            if json {
                return crate::commands::print_json(&s);
            }
            match (s.enrolled, s.confirmed) {
                (false, _) => println!("{} is not enrolled", s.user),
                (true, false) => println!(
                    "{} is enrolled since {} but not confirmed: no code is asked yet",
                    s.user,
                    stamp(s.created)
                ),
                (true, true) => println!(
                    "{} is enrolled since {}; {} recovery codes left",
                    s.user,
                    stamp(s.created),
                    s.recovery_codes_left
                ),
            }
            Ok(())
        }
        TotpCommand::Remove { user } => {
            let removed = proxy.totp_remove(&user).await?;
            if json {
                return crate::commands::print_json(&serde_json::json!({ "removed": removed }));
            }
            println!(
                "{}",
                if removed {
                    format!("removed {user}'s enrollment")
                } else {
                    format!("{user} was not enrolled")
                }
            );
            Ok(())
        }
        TotpCommand::RecoveryCodes { user, code } => {
            let codes = proxy
                .totp_recovery_codes(user.as_deref().unwrap_or(""), code.as_deref().unwrap_or(""))
                .await?;
            if json {
                return crate::commands::print_json(&codes);
            }
            println!("New recovery codes, each good once (the old ones no longer work):");
            for c in &codes {
                println!("  {c}");
            }
            Ok(())
        }
    }
}

/// The URI as a QR code in Unicode half blocks, two modules per character
/// cell, dark on a light quiet zone so phone cameras read it on dark terminals.
fn qr(uri: &str) -> Result<String, CtlError> {
    let code = QrCode::new(uri.as_bytes())
        .map_err(|e| CtlError::Failed(format!("cannot draw the QR code: {e}")))?;
    Ok(code
        .render::<Dense1x2>()
        .dark_color(Dense1x2::Light)
        .light_color(Dense1x2::Dark)
        .build())
}
