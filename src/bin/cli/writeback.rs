//! CLI helpers of the writeback commands: reading a password without echoing it, and the
//! permission report table.

use dirsync::engine::writeback::ConnectorPermissions;
use std::io::{BufRead, IsTerminal, Read};

/// Where the new password comes from: an environment variable (`--password-env`), else
/// standard input: a prompt without echo on a terminal, or the whole input (one trailing line
/// break removed) from a pipe or file. The password is never printed.
pub fn read_password(env: Option<&str>) -> Result<String, String> {
    let pw = match env {
        Some(var) => std::env::var(var)
            .map_err(|_| format!("environment variable '{var}' is not set (or not UTF-8)"))?,
        None if std::io::stdin().is_terminal() => read_hidden("New password: ")
            .map_err(|e| format!("cannot read the password from the terminal: {e}"))?,
        None => {
            let mut s = String::new();
            std::io::stdin()
                .read_to_string(&mut s)
                .map_err(|e| format!("cannot read the password from standard input: {e}"))?;
            let trimmed = s
                .strip_suffix("\r\n")
                .or_else(|| s.strip_suffix('\n'))
                .unwrap_or(&s);
            trimmed.to_string()
        }
    };
    if pw.is_empty() {
        return Err("the new password is empty".into());
    }
    Ok(pw)
}

/// Reads one line from the terminal with echo turned off (restored afterwards).
#[cfg(unix)]
fn read_hidden(prompt: &str) -> std::io::Result<String> {
    let fd = libc::STDIN_FILENO;
    // SAFETY: termios is plain data; tcgetattr fills it for a valid descriptor.
    let mut term: libc::termios = unsafe { std::mem::zeroed() };
    // SAFETY: fd is standard input, term points to a valid termios.
    if unsafe { libc::tcgetattr(fd, &mut term) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let saved = term;
    term.c_lflag &= !libc::ECHO;
    term.c_lflag |= libc::ECHONL;
    // SAFETY: as above; the settings come from tcgetattr.
    if unsafe { libc::tcsetattr(fd, libc::TCSANOW, &term) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // The prompt comes once echo is off: nothing typed after it is shown.
    eprint!("{prompt}");
    let mut line = String::new();
    let read = std::io::stdin().lock().read_line(&mut line);
    // SAFETY: restores the saved settings on the same descriptor.
    unsafe { libc::tcsetattr(fd, libc::TCSANOW, &saved) };
    read?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

/// Reads one line (terminals without termios: the input is echoed).
#[cfg(not(unix))]
fn read_hidden(prompt: &str) -> std::io::Result<String> {
    eprint!("{prompt}");
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

/// Prints the permission reports as a table.
pub fn print_permissions(reports: &[ConnectorPermissions]) {
    for r in reports {
        println!(
            "connector '{}' (DC {}){}",
            r.connector,
            r.report.dc,
            r.writeback_ou
                .as_deref()
                .map(|o| format!(", writeback OU {o}"))
                .unwrap_or_else(|| ", no writeback OU checked".into())
        );
        let width = r
            .report
            .checks
            .iter()
            .map(|c| c.right.chars().count())
            .max()
            .unwrap_or(5)
            .max(5);
        println!("  {:<width$}  {:<7}  DETAIL", "RIGHT", "STATUS");
        for c in &r.report.checks {
            println!(
                "  {:<width$}  {:<7}  {}",
                c.right,
                if c.present { "present" } else { "MISSING" },
                c.detail
            );
        }
    }
}

/// Counts the missing rights.
pub fn missing_rights(reports: &[ConnectorPermissions]) -> usize {
    reports
        .iter()
        .flat_map(|r| r.report.checks.iter())
        .filter(|c| !c.present)
        .count()
}
