//! A live status line on standard error: on a terminal, a spinner and the
//! current state, redrawn in place, with finished events printed above it;
//! elsewhere (a pipe, a log file) one plain line per change, so that scripts
//! and CI logs read the same story without control characters.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

const FRAMES: [char; 10] = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
/// Longer states are cut so the line never wraps on a normal terminal (a
/// wrapped line cannot be redrawn in place).
const MAX_WIDTH: usize = 76;
/// Erase the current line and go back to its start.
const CLEAR: &str = "\r\x1b[2K";

pub struct StatusLine {
    state: Arc<Mutex<String>>,
    live: Option<(Arc<AtomicBool>, JoinHandle<()>)>,
}

impl StatusLine {
    /// Starts a status line; a spinner only if standard error is a terminal.
    pub fn start() -> StatusLine {
        let state = Arc::new(Mutex::new(String::new()));
        let live = std::io::stderr().is_terminal().then(|| {
            let stop = Arc::new(AtomicBool::new(false));
            let thread = {
                let (state, stop) = (state.clone(), stop.clone());
                std::thread::spawn(move || spin(&state, &stop))
            };
            (stop, thread)
        });
        StatusLine { state, live }
    }

    /// Shows a new state.
    pub fn set(&self, message: &str) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        *state = cut(message);
        if self.live.is_none() {
            crate::console::note(&state);
        }
    }

    /// Prints a finished event above the status line.
    pub fn event(&self, line: &str) {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let mut err = std::io::stderr().lock();
        if self.live.is_some() {
            let _ = write!(err, "{CLEAR}");
        }
        let _ = writeln!(err, "{}", crate::console::shown(line));
        drop(state);
    }

    /// Removes the status line.
    pub fn finish(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        if let Some((stop, thread)) = self.live.take() {
            stop.store(true, Ordering::Relaxed);
            let _ = thread.join();
            crate::console::write_stderr(CLEAR);
        }
    }
}

impl Drop for StatusLine {
    fn drop(&mut self) {
        self.stop();
    }
}

fn spin(state: &Mutex<String>, stop: &AtomicBool) {
    for frame in FRAMES.iter().cycle() {
        if stop.load(Ordering::Relaxed) {
            return;
        }
        {
            let state = state.lock().unwrap_or_else(|e| e.into_inner());
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "{CLEAR}{frame} {state}");
            let _ = err.flush();
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn cut(message: &str) -> String {
    let flat = crate::console::shown(&message.replace(['\n', '\r', '\t'], " ")).into_owned();
    match flat.char_indices().nth(MAX_WIDTH) {
        Some((end, _)) => format!("{}…", &flat[..end]),
        None => flat,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_states_are_cut_to_one_line() {
        let long = format!("Cancelling: {}\nmore", "x".repeat(100));
        let shown = cut(&long);
        assert_eq!(shown.chars().count(), MAX_WIDTH + 1);
        assert!(!shown.contains('\n'));
        assert_eq!(cut("Cancelled"), "Cancelled");
    }
}
