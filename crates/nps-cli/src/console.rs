//! Writing to standard output and standard error without panicking.
//!
//! `print!` and `eprint!` panic when the write fails, so `nps session list |
//! head -1` used to end with "failed printing to stdout: Broken pipe" and
//! exit 101. Here a write is a `Result`:
//!
//! - Standard output closed (a pipe whose reader is gone) ends the command
//!   quietly, as it ends any Unix tool: [`Kind::ClosedOutput`], which `main`
//!   turns into death by SIGPIPE ([`end_by_sigpipe`]).
//! - Any other failure to write the output (a full disk) is an error
//!   naming it.
//! - Standard error is for people: what cannot be written there is dropped,
//!   and never changes the exit code a script reads.
//!
//! Text from the server (an action's log line, a description, a problem's
//! detail) is written [`shown`]: its control characters escaped, so that
//! what an action printed cannot move the cursor, retitle the terminal or
//! hide a line from the operator reading it.

use std::borrow::Cow;
use std::io::{ErrorKind, Write};
use std::process::ExitCode;

use crate::failure::{Failure, Kind};

/// `text` with every control character but line feed and tab written as
/// an escape (`\u{1b}`); JSON output has none to escape.
pub fn shown(text: &str) -> Cow<'_, str> {
    let escaped = |c: char| c.is_control() && c != '\n' && c != '\t';
    if !text.chars().any(escaped) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if escaped(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Writes `text` to standard output, whole, [`shown`].
pub fn print(text: &str) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    match out
        .write_all(shown(text).as_bytes())
        .and_then(|()| out.flush())
    {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == ErrorKind::BrokenPipe => Err(Failure::new(
            Kind::ClosedOutput,
            "standard output was closed",
        )),
        Err(e) => Err(Failure::new(
            Kind::Other,
            format!("cannot write to standard output: {e}"),
        )),
    }
}

/// Writes `line`, [`shown`], and a newline to standard error, if it can.
pub fn note(line: &str) {
    write_stderr(&format!("{}\n", shown(line)));
}

/// Writes `text` to standard error as it is (a prompt, a control
/// sequence), if it can.
pub fn write_stderr(text: &str) {
    let mut err = std::io::stderr().lock();
    let _ = err.write_all(text.as_bytes()).and_then(|()| err.flush());
}

/// Ends the process as a Unix tool ends when its reader goes away: killed
/// by SIGPIPE, quietly (a shell reports 141). Rust ignores SIGPIPE for the
/// whole run, so that a write to a closed socket is an error and not death:
/// the default action is restored here only, once the output is known to be
/// gone. Elsewhere than Unix the exit code is 141.
pub fn end_by_sigpipe() -> ExitCode {
    #[cfg(unix)]
    // SAFETY: signal and raise have no preconditions; restoring the default
    // action of SIGPIPE and raising it ends this process.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        libc::raise(libc::SIGPIPE);
    }
    ExitCode::from(Kind::ClosedOutput as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_shown_escaped_but_lines_and_tabs_kept() {
        assert!(matches!(shown("plain\ttext\n"), Cow::Borrowed(_)));
        assert_eq!(
            shown("\u{1b}[31mRED\u{1b}]0;pwned\u{7}\r\u{9b}"),
            "\\u{1b}[31mRED\\u{1b}]0;pwned\\u{7}\\r\\u{9b}"
        );
    }
}
