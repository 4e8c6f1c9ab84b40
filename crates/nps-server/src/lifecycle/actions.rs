//! Runs one configured action for one session: a program (never through a
//! shell) or a webhook. Both carry an idempotency key, because a crash can
//! make an action run again (at-least-once).

use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nps_api::ActivitySession;
use tokio::io::{AsyncRead, AsyncReadExt};

use super::state::Phase;
use crate::config::{Action, Arg, ArgPart, Placeholder};

/// Most bytes of a program's stdout (and of its stderr) kept for the log.
pub const OUTPUT_LIMIT: usize = 2048;
/// How long a program's output is still read after it exited: a background
/// process it left behind may hold stdout open, and must not hold up the
/// session.
const OUTPUT_GRACE: Duration = Duration::from_millis(500);

/// Which action of which session is running.
pub struct Invocation<'a> {
    pub session: &'a ActivitySession,
    pub phase: Phase,
    pub index: u32,
}

impl Invocation<'_> {
    /// Session id + phase + action index: the same on every retry and after a
    /// restart, so an action can tell a repeat from new work.
    pub fn key(&self) -> String {
        format!("{}:{}:{}", self.session.id, self.phase.as_str(), self.index)
    }

    fn login(&self) -> String {
        execable(self.session.created_by_user_name.as_deref())
    }

    fn value(&self, placeholder: Placeholder) -> String {
        let s = self.session;
        match placeholder {
            Placeholder::SessionId => s.id.to_string(),
            Placeholder::Login => self.login(),
            Placeholder::ActivityName => execable(s.activity_name.as_deref()),
            Placeholder::ResourceName => execable(s.managed_resource_name.as_deref()),
            Placeholder::Phase => self.phase.as_str().to_string(),
            Placeholder::ActionKey => self.key(),
        }
    }

    /// The argument with its placeholders filled, in one pass: a value that
    /// itself looks like `{login}` stays as it is.
    fn fill(&self, arg: &Arg) -> String {
        arg.0
            .iter()
            .map(|part| match part {
                ArgPart::Text(text) => text.clone(),
                ArgPart::Value(placeholder) => self.value(*placeholder),
            })
            .collect()
    }
}

/// A session's text as a program's argument or environment value: a NUL
/// (which CreateAsync refuses, but a file of an earlier version may hold)
/// would keep the program from starting at every try, and the session from
/// ever ending, so it becomes U+FFFD.
fn execable(text: Option<&str>) -> String {
    text.unwrap_or_default().replace('\0', "\u{FFFD}")
}

/// Runs the action; `Ok` carries what is worth logging, `Err` why it failed.
pub async fn run(
    action: &Action,
    inv: &Invocation<'_>,
    http: &reqwest::Client,
) -> Result<String, String> {
    match action {
        Action::Command {
            program,
            args,
            timeout,
        } => run_command(program, args, *timeout, inv).await,
        Action::Webhook { url, timeout } => run_webhook(url, *timeout, inv, http).await,
    }
}

/// The process groups of the programs running now, each with how many
/// running actions lead it (a group id can be reused once its group is
/// gone), so that a server told to stop can end them (see
/// [`kill_running`]). One engine per process.
static RUNNING_GROUPS: Mutex<std::collections::BTreeMap<i32, usize>> =
    Mutex::new(std::collections::BTreeMap::new());

/// Set once [`kill_running`] has killed programs: their failures are kills.
static KILLED_AT_STOP: AtomicBool = AtomicBool::new(false);

/// A running program's process group in [`RUNNING_GROUPS`], until the
/// program has exited (or was killed for its timeout): once it is reaped,
/// its id may be reused. Dropped before that (the action was abandoned: a
/// start action stopped because its session is ending), it kills the group.
struct Registered {
    group: Option<i32>,
    reaped: bool,
}

impl Registered {
    fn new(pid: Option<u32>) -> Registered {
        let group = pid.and_then(|p| i32::try_from(p).ok());
        if let Some(g) = group {
            *RUNNING_GROUPS
                .lock()
                .expect("running groups")
                .entry(g)
                .or_default() += 1;
        }
        Registered {
            group,
            reaped: false,
        }
    }

    /// The program was waited for: its group id may be reused from now on.
    fn reaped(mut self) {
        self.reaped = true;
    }
}

impl Drop for Registered {
    fn drop(&mut self) {
        if let Some(g) = self.group {
            if !self.reaped {
                // Its leader is not reaped yet, so the id is still its group.
                kill_group(g);
            }
            let mut groups = RUNNING_GROUPS.lock().expect("running groups");
            if let Some(n) = groups.get_mut(&g) {
                *n -= 1;
                if *n == 0 {
                    groups.remove(&g);
                }
            }
        }
    }
}

/// Kills the process groups of the programs running now (what each started
/// too: they run in groups of their own) and answers how many there were.
/// Their sessions' work stays owed, so they run again at the next start.
pub fn kill_running() -> usize {
    KILLED_AT_STOP.store(true, Ordering::SeqCst);
    let groups = RUNNING_GROUPS.lock().expect("running groups");
    groups.keys().for_each(|&g| kill_group(g));
    groups.len()
}

/// SIGKILL to a program's process group: the program and what it started.
fn kill_group(group: i32) {
    // SAFETY: kill(2) with a negative pid signals that process group; it
    // has no memory-safety preconditions.
    unsafe {
        libc::kill(-group, libc::SIGKILL);
    }
}

/// Whether [`kill_running`] has run: a program that failed since may have
/// been killed by it, which is not a failure of the action.
pub fn killed_at_stop() -> bool {
    KILLED_AT_STOP.load(Ordering::SeqCst)
}

/// The first `OUTPUT_LIMIT` bytes of a stream, and whether there was more.
type Captured = Arc<Mutex<(Vec<u8>, bool)>>;

/// Reads a stream while the program runs, keeping its first `OUTPUT_LIMIT`
/// bytes (and reading on, so the program never blocks on a full pipe).
struct Capture {
    captured: Captured,
    reader: tokio::task::JoinHandle<()>,
}

impl Capture {
    fn start<R: AsyncRead + Unpin + Send + 'static>(mut stream: R) -> Capture {
        let captured: Captured = Arc::default();
        let into = Arc::clone(&captured);
        let reader = tokio::spawn(async move {
            let mut buf = [0u8; 4096];
            loop {
                match stream.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => {
                        let mut kept = into.lock().expect("captured output");
                        let room = OUTPUT_LIMIT.saturating_sub(kept.0.len());
                        kept.0.extend_from_slice(&buf[..n.min(room)]);
                        kept.1 |= n > room;
                    }
                }
            }
        });
        Capture { captured, reader }
    }

    /// What was captured, once the program exited: the reader gets
    /// `OUTPUT_GRACE` to reach the end of the stream, then is stopped (which
    /// closes the pipe).
    async fn finish(mut self) -> (Vec<u8>, bool) {
        if tokio::time::timeout(OUTPUT_GRACE, &mut self.reader)
            .await
            .is_err()
        {
            self.reader.abort();
        }
        std::mem::take(&mut *self.captured.lock().expect("captured output"))
    }
}

/// A program's stdout and stderr, for the log.
struct Output {
    stdout: Capture,
    stderr: Capture,
}

impl Output {
    fn capture(child: &mut tokio::process::Child) -> Output {
        Output {
            stdout: Capture::start(child.stdout.take().expect("piped")),
            stderr: Capture::start(child.stderr.take().expect("piped")),
        }
    }

    async fn describe(self) -> String {
        let (stdout, stderr) = tokio::join!(self.stdout.finish(), self.stderr.finish());
        describe_output(stdout, stderr)
    }
}

fn describe_output(stdout: (Vec<u8>, bool), stderr: (Vec<u8>, bool)) -> String {
    let part = |name: &str, (bytes, truncated): (Vec<u8>, bool)| {
        let text = String::from_utf8_lossy(&bytes);
        let text = text.trim();
        if text.is_empty() {
            String::new()
        } else {
            format!(
                "; {name}: {text}{}",
                if truncated { " [truncated]" } else { "" }
            )
        }
    };
    format!("{}{}", part("stdout", stdout), part("stderr", stderr))
}

async fn run_command(
    program: &std::path::Path,
    args: &[Arg],
    timeout: Duration,
    inv: &Invocation<'_>,
) -> Result<String, String> {
    let s = inv.session;
    let mut cmd = tokio::process::Command::new(program);
    // The program sees the server's environment without its NPS_ variables
    // (NPS_BOOTSTRAP_PASSWORD and NPS_BOOTSTRAP_TOTP_SECRET are the first
    // Admin's credentials), then the session's.
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("NPS_") {
            cmd.env_remove(name);
        }
    }
    cmd.args(args.iter().map(|a| inv.fill(a)))
        .env("NPS_SESSION_ID", s.id.to_string())
        .env("NPS_ACTIVITY_NAME", execable(s.activity_name.as_deref()))
        .env(
            "NPS_RESOURCE_NAME",
            execable(s.managed_resource_name.as_deref()),
        )
        .env("NPS_LOGIN", inv.login())
        .env("NPS_ACTION", inv.phase.as_str())
        .env("NPS_ACTION_KEY", inv.key())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own process group, so a timeout kills what it started too.
        .process_group(0)
        .kill_on_drop(true);
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", program.display()))?;
    let registered = Registered::new(child.id());
    let output = Output::capture(&mut child);
    let status = match tokio::time::timeout(timeout, child.wait()).await {
        Ok(status) => {
            registered.reaped();
            status.map_err(|e| format!("waiting for {}: {e}", program.display()))?
        }
        Err(_) => {
            if let Some(group) = registered.group {
                kill_group(group);
            }
            let _ = child.kill().await;
            registered.reaped();
            let output = output.describe().await;
            return Err(format!(
                "{} timed out after {} s and was killed{output}",
                program.display(),
                timeout.as_secs()
            ));
        }
    };
    let output = output.describe().await;
    if status.success() {
        Ok(format!("exit 0{output}"))
    } else {
        Err(format!(
            "{} failed with {status}{output}",
            program.display()
        ))
    }
}

/// A webhook's URL as the session's log shows it: its scheme, host and port
/// only. Receivers take credentials in the user name, password and query,
/// and often in the path too (`hooks.slack.com/services/T…/B…/<secret>`),
/// and whoever owns the session reads its log.
fn shown(url: &reqwest::Url) -> String {
    let origin = url.origin().ascii_serialization();
    match url.path() {
        "" | "/" if url.query().is_none() => format!("{origin}/"),
        _ => format!("{origin}/…"),
    }
}

/// Why a request failed, with its causes ("connection refused"), without
/// the URL: reqwest's own message is only "error sending request for url
/// (...)", the whole URL in it.
fn cause(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut text = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        let more = s.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = s.source();
    }
    text
}

async fn run_webhook(
    url: &reqwest::Url,
    timeout: Duration,
    inv: &Invocation<'_>,
    http: &reqwest::Client,
) -> Result<String, String> {
    let response = http
        .post(url.clone())
        .timeout(timeout)
        .header("Idempotency-Key", inv.key())
        .header("X-NPS-Action", inv.phase.as_str())
        .json(inv.session)
        .send()
        .await;
    let url = shown(url);
    let response = response.map_err(|e| {
        if e.is_timeout() {
            format!("{url} did not answer within {} s", timeout.as_secs())
        } else {
            format!("{url}: {}", cause(e))
        }
    })?;
    let status = response.status();
    if status.is_success() {
        Ok(format!("{url} answered {status}"))
    } else {
        let (body, truncated) = capped_body(response).await;
        let body = String::from_utf8_lossy(&body);
        Err(format!(
            "{url} answered {status}: {}{}",
            body.trim(),
            if truncated { " [truncated]" } else { "" }
        ))
    }
}

/// The first [`OUTPUT_LIMIT`] bytes of an answer's body, read no further
/// (a receiver answering an error with a huge body must not fill the
/// server's memory), and whether there was more.
async fn capped_body(mut response: reqwest::Response) -> (Vec<u8>, bool) {
    let mut body = Vec::new();
    while let Ok(Some(chunk)) = response.chunk().await {
        let room = OUTPUT_LIMIT - body.len();
        if chunk.len() > room {
            body.extend_from_slice(&chunk[..room]);
            return (body, true);
        }
        body.extend_from_slice(&chunk);
    }
    (body, false)
}

#[cfg(test)]
mod tests {
    use super::execable;

    #[test]
    fn a_nul_in_a_sessions_text_never_reaches_a_program() {
        assert_eq!(execable(Some("web01\0")), "web01\u{FFFD}");
        assert_eq!(execable(Some("srv-01")), "srv-01");
        assert_eq!(execable(None), "");
    }
}
