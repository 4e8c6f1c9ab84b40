//! The optional TOML configuration (`--config FILE`), checked at start-up: a
//! bad file stops the server with `FILE:LINE: problem`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

/// Everything configurable, with its defaults.
#[derive(Clone, Debug)]
pub struct Config {
    pub auth: AuthConfig,
    pub sessions: SessionConfig,
    pub actions: ActionsConfig,
    /// Largest request body accepted (bytes); larger bodies get 413.
    pub request_body_max_bytes: usize,
}

/// Checks a number of the file while deserializing, so that the error
/// carries the value's position: a value that would break the service
/// (tokens expired as they are issued, sessions that cannot be created, a
/// cookie lifetime that overflows) stops the server at start-up instead.
macro_rules! within {
    ($fn:ident, $name:literal, $min:expr, $max:expr, $why:literal) => {
        #[allow(unused_comparisons)] // a minimum of 0, a maximum of u32::MAX
        fn $fn<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
            let n = u32::deserialize(d)?;
            if n < $min {
                return Err(serde::de::Error::custom(format!(
                    "{} must be at least {}",
                    $name, $min
                )));
            }
            if n > $max {
                let why: &str = $why;
                let why = if why.is_empty() {
                    String::new()
                } else {
                    format!(" ({why})")
                };
                return Err(serde::de::Error::custom(format!(
                    "{} must be at most {}{why}",
                    $name, $max
                )));
            }
            Ok(n)
        }
    };
}

within!(
    pre_mfa_minutes,
    "auth.pre_mfa_token_minutes",
    1,
    60,
    "an hour"
);
within!(mfa_minutes, "auth.mfa_token_minutes", 1, 43_200, "30 days");
within!(wrong_codes, "auth.max_wrong_codes", 1, u32::MAX, "");
within!(failures, "auth.max_failures_per_minute", 1, u32::MAX, "");
within!(
    length_minutes,
    "sessions.max_length_minutes",
    1,
    525_600,
    "a year"
);
within!(extensions, "sessions.max_extensions", 0, 10_000, "");
within!(
    extension_minutes,
    "sessions.max_extension_minutes",
    1,
    525_600,
    "a year"
);

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// Lifetime of the token `/signinBody` answers.
    #[serde(deserialize_with = "pre_mfa_minutes")]
    pub pre_mfa_token_minutes: u32,
    /// Lifetime of the MFA token `/signin2fa` answers.
    #[serde(deserialize_with = "mfa_minutes")]
    pub mfa_token_minutes: u32,
    /// Wrong codes that revoke a pre-MFA token.
    #[serde(deserialize_with = "wrong_codes")]
    pub max_wrong_codes: u32,
    /// Failed sign-ins (password or code) per login within a minute before
    /// further attempts get 429 for a minute.
    #[serde(deserialize_with = "failures")]
    pub max_failures_per_minute: u32,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            pre_mfa_token_minutes: 5,
            mfa_token_minutes: 8 * 60,
            max_wrong_codes: 5,
            max_failures_per_minute: 10,
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SessionConfig {
    /// Length of a session created without an end (minutes); also the longest
    /// session a request may ask for.
    #[serde(deserialize_with = "length_minutes")]
    pub max_length_minutes: u32,
    /// Whether new sessions allow ExtendAsync.
    pub allow_extension: bool,
    /// How many times one session may be extended.
    #[serde(deserialize_with = "extensions")]
    pub max_extensions: u32,
    /// The most minutes one extension may add.
    #[serde(deserialize_with = "extension_minutes")]
    pub max_extension_minutes: u32,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            max_length_minutes: 8 * 60,
            allow_extension: true,
            max_extensions: 3,
            max_extension_minutes: 4 * 60,
        }
    }
}

/// A value of the session that a command argument can carry, written
/// `{name}` in the configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Placeholder {
    SessionId,
    Login,
    ActivityName,
    ResourceName,
    Phase,
    ActionKey,
}

impl Placeholder {
    pub const ALL: [Placeholder; 6] = [
        Placeholder::SessionId,
        Placeholder::Login,
        Placeholder::ActivityName,
        Placeholder::ResourceName,
        Placeholder::Phase,
        Placeholder::ActionKey,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Placeholder::SessionId => "session_id",
            Placeholder::Login => "login",
            Placeholder::ActivityName => "activity_name",
            Placeholder::ResourceName => "resource_name",
            Placeholder::Phase => "phase",
            Placeholder::ActionKey => "action_key",
        }
    }
}

/// One piece of a command argument.
#[derive(Clone, Debug, PartialEq)]
pub enum ArgPart {
    Text(String),
    Value(Placeholder),
}

/// A command argument as configured: text and placeholders, filled for each
/// session in one pass (a value is never read again for placeholders).
#[derive(Clone, Debug, PartialEq)]
pub struct Arg(pub Vec<ArgPart>);

impl Arg {
    /// Reads `{name}` placeholders: `{` then lowercase letters and `_` then
    /// `}`. Anything else is text, and so is `${...}` (shell syntax), so
    /// scripts keep their variables. An unknown name is an error: a typo
    /// must not reach a program as literal text. So is a known name in
    /// another case (`{Login}`); other words with capitals stay text.
    pub fn parse(text: &str) -> Result<Arg, String> {
        // No program can be given one: every run would fail to start.
        if text.contains('\0') {
            return Err("an argument cannot hold a NUL character".into());
        }
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut rest = text;
        while let Some(open) = rest.find('{') {
            let (before, after) = (&rest[..open], &rest[open + 1..]);
            literal.push_str(before);
            let word_len = after
                .find(|c: char| !(c.is_ascii_alphabetic() || c == '_'))
                .unwrap_or(after.len());
            let word = &after[..word_len];
            let in_braces =
                word_len > 0 && after[word_len..].starts_with('}') && !before.ends_with('$');
            let capitals = word.bytes().any(|b| b.is_ascii_uppercase());
            if in_braces && capitals {
                let lower = word.to_ascii_lowercase();
                if Placeholder::ALL.iter().any(|p| p.name() == lower) {
                    return Err(format!(
                        "{{{word}}} is not a placeholder: names are lowercase, write {{{lower}}}"
                    ));
                }
            }
            if !in_braces || capitals {
                literal.push('{');
                rest = after;
                continue;
            }
            let name = word;
            let placeholder = Placeholder::ALL
                .into_iter()
                .find(|p| p.name() == name)
                .ok_or_else(|| {
                    let known: Vec<String> = Placeholder::ALL
                        .iter()
                        .map(|p| format!("{{{}}}", p.name()))
                        .collect();
                    format!("unknown placeholder {{{name}}}: use {}", known.join(", "))
                })?;
            if !literal.is_empty() {
                parts.push(ArgPart::Text(std::mem::take(&mut literal)));
            }
            parts.push(ArgPart::Value(placeholder));
            rest = &after[word_len + 1..];
        }
        literal.push_str(rest);
        if !literal.is_empty() {
            parts.push(ArgPart::Text(literal));
        }
        Ok(Arg(parts))
    }
}

/// One action of a start or end list.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// Runs a program (no shell); placeholders in args are filled from the session.
    Command {
        program: PathBuf,
        args: Vec<Arg>,
        timeout: Duration,
    },
    /// POSTs the session as JSON; any 2xx is success.
    Webhook {
        url: reqwest::Url,
        timeout: Duration,
    },
}

impl Action {
    pub fn kind(&self) -> &'static str {
        match self {
            Action::Command { .. } => "command",
            Action::Webhook { .. } => "webhook",
        }
    }
}

/// Start and end action lists.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ActionLists {
    pub start: Vec<Action>,
    pub end: Vec<Action>,
}

#[derive(Clone, Debug)]
pub struct ActionsConfig {
    /// Tries per action before the session is Failed.
    pub max_attempts: u32,
    /// Pipelines (and so action processes) running at once.
    pub workers: usize,
    /// First retry delay; doubles each attempt up to `backoff_max`.
    pub backoff_initial: Duration,
    pub backoff_max: Duration,
    /// Lists for every activity without its own.
    pub default: ActionLists,
    /// Lists by activity name.
    pub by_activity: BTreeMap<String, ActionLists>,
}

impl Default for ActionsConfig {
    fn default() -> Self {
        ActionsConfig {
            max_attempts: 5,
            workers: 8,
            backoff_initial: Duration::from_millis(500),
            backoff_max: Duration::from_secs(60),
            default: ActionLists::default(),
            by_activity: BTreeMap::new(),
        }
    }
}

impl ActionsConfig {
    /// The lists that apply to a session of this activity.
    pub fn lists_for(&self, activity_name: Option<&str>) -> &ActionLists {
        activity_name
            .and_then(|n| self.by_activity.get(n))
            .unwrap_or(&self.default)
    }

    /// The delay before attempt `attempts + 1`.
    pub fn backoff(&self, attempts: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempts.saturating_sub(1));
        self.backoff_initial
            .saturating_mul(factor)
            .min(self.backoff_max)
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            auth: AuthConfig::default(),
            sessions: SessionConfig::default(),
            actions: ActionsConfig::default(),
            request_body_max_bytes: 64 * 1024,
        }
    }
}

// ---- the file as written ----------------------------------------------------

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct RawConfig {
    auth: AuthConfig,
    sessions: SessionConfig,
    actions: RawActions,
    request_body_max_bytes: Option<Spanned<u64>>,
}

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct RawActions {
    max_attempts: Option<Spanned<u32>>,
    workers: Option<Spanned<u32>>,
    backoff_initial_ms: Option<Spanned<u64>>,
    backoff_max_ms: Option<Spanned<u64>>,
    start: Vec<Spanned<RawAction>>,
    end: Vec<Spanned<RawAction>>,
    activity: BTreeMap<String, RawLists>,
}

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct RawLists {
    start: Vec<Spanned<RawAction>>,
    end: Vec<Spanned<RawAction>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAction {
    kind: Spanned<String>,
    program: Option<Spanned<String>>,
    #[serde(default)]
    args: Vec<Spanned<String>>,
    url: Option<Spanned<String>>,
    timeout_secs: Option<Spanned<u64>>,
}

/// A problem in the file, at a byte offset.
struct Problem {
    at: usize,
    message: String,
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.len() - before.rfind('\n').map(|i| i + 1).unwrap_or(0) + 1;
    (line, col)
}

impl Config {
    /// Reads and checks the file. The error names the file, the line and the problem.
    pub fn load(path: &Path) -> Result<Config, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("{}: cannot read the configuration: {e}", path.display()))?;
        Config::parse(&text).map_err(|(offset, message)| match offset {
            Some(offset) => {
                let (line, col) = line_col(&text, offset);
                format!("{}:{line}:{col}: {message}", path.display())
            }
            None => format!("{}: {message}", path.display()),
        })
    }

    /// Parses configuration text; the error carries a byte offset when known.
    pub fn parse(text: &str) -> Result<Config, (Option<usize>, String)> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| {
            let message = e.message().trim().to_string();
            (e.span().map(|s| s.start), message)
        })?;
        let problem = |p: Problem| (Some(p.at), p.message);
        let mut actions = ActionsConfig::default();
        if let Some(n) = raw.actions.max_attempts {
            if *n.get_ref() == 0 {
                return Err(problem(Problem {
                    at: n.span().start,
                    message: "actions.max_attempts must be at least 1".into(),
                }));
            }
            actions.max_attempts = n.into_inner();
        }
        if let Some(n) = raw.actions.workers {
            if *n.get_ref() == 0 || *n.get_ref() > 1024 {
                return Err(problem(Problem {
                    at: n.span().start,
                    message: "actions.workers must be between 1 and 1024".into(),
                }));
            }
            actions.workers = n.into_inner() as usize;
        }
        const HOUR_MS: u64 = 3_600_000;
        if let Some(ms) = raw.actions.backoff_initial_ms {
            if *ms.get_ref() == 0 || *ms.get_ref() > HOUR_MS {
                return Err(problem(Problem {
                    at: ms.span().start,
                    message: "actions.backoff_initial_ms must be between 1 and 3600000 (an hour)"
                        .into(),
                }));
            }
            actions.backoff_initial = Duration::from_millis(ms.into_inner());
            // Alone, a first delay above the default maximum raises it.
            actions.backoff_max = actions.backoff_max.max(actions.backoff_initial);
        }
        if let Some(ms) = raw.actions.backoff_max_ms {
            let least = actions.backoff_initial.as_millis() as u64;
            if *ms.get_ref() < least || *ms.get_ref() > HOUR_MS {
                return Err(problem(Problem {
                    at: ms.span().start,
                    message: format!(
                        "actions.backoff_max_ms must be between backoff_initial_ms ({least}) \
                         and 3600000 (an hour)"
                    ),
                }));
            }
            actions.backoff_max = Duration::from_millis(ms.into_inner());
        }
        actions.default = ActionLists {
            start: convert_all(raw.actions.start).map_err(problem)?,
            end: convert_all(raw.actions.end).map_err(problem)?,
        };
        for (name, lists) in raw.actions.activity {
            actions.by_activity.insert(
                name,
                ActionLists {
                    start: convert_all(lists.start).map_err(problem)?,
                    end: convert_all(lists.end).map_err(problem)?,
                },
            );
        }
        let mut config = Config {
            auth: raw.auth,
            sessions: raw.sessions,
            actions,
            ..Config::default()
        };
        if let Some(n) = raw.request_body_max_bytes {
            if *n.get_ref() < 1024 || *n.get_ref() > 64 << 20 {
                return Err(problem(Problem {
                    at: n.span().start,
                    message: "request_body_max_bytes must be between 1024 and 67108864 (64 MiB)"
                        .into(),
                }));
            }
            config.request_body_max_bytes = n.into_inner() as usize;
        }
        Ok(config)
    }
}

fn convert_all(raw: Vec<Spanned<RawAction>>) -> Result<Vec<Action>, Problem> {
    raw.into_iter().map(convert).collect()
}

fn convert(raw: Spanned<RawAction>) -> Result<Action, Problem> {
    let at = raw.span().start;
    let raw = raw.into_inner();
    let timeout = match &raw.timeout_secs {
        Some(t) if *t.get_ref() == 0 || *t.get_ref() > 3600 => {
            return Err(Problem {
                at: t.span().start,
                message: "timeout_secs must be between 1 and 3600".into(),
            })
        }
        Some(t) => Duration::from_secs(*t.get_ref()),
        None => Duration::from_secs(30),
    };
    match raw.kind.get_ref().as_str() {
        "command" => {
            if let Some(url) = &raw.url {
                return Err(Problem {
                    at: url.span().start,
                    message: "a command action has no url (did you mean kind = \"webhook\"?)"
                        .into(),
                });
            }
            let program = raw.program.ok_or_else(|| Problem {
                at,
                message: "a command action needs `program`, the path of the program to run".into(),
            })?;
            let path = resolve_program(program.get_ref()).ok_or_else(|| Problem {
                at: program.span().start,
                message: format!(
                    "program {:?} is not an executable file (give an absolute path, or a name found in PATH)",
                    program.get_ref()
                ),
            })?;
            let args = raw
                .args
                .iter()
                .map(|arg| {
                    Arg::parse(arg.get_ref()).map_err(|message| Problem {
                        at: arg.span().start,
                        message,
                    })
                })
                .collect::<Result<_, _>>()?;
            Ok(Action::Command {
                program: path,
                args,
                timeout,
            })
        }
        "webhook" => {
            if let Some(program) = &raw.program {
                return Err(Problem {
                    at: program.span().start,
                    message: "a webhook action has no program (did you mean kind = \"command\"?)"
                        .into(),
                });
            }
            if let Some(arg) = raw.args.first() {
                return Err(Problem {
                    at: arg.span().start,
                    message: "a webhook action has no args: it POSTs the session as JSON \
                              (did you mean kind = \"command\"?)"
                        .into(),
                });
            }
            let url = raw.url.ok_or_else(|| Problem {
                at,
                message: "a webhook action needs `url`".into(),
            })?;
            // Placeholders are filled in a command's arguments only: in a
            // URL one would be sent as literal text.
            if let Some(open) = url.get_ref().find('{') {
                if url.get_ref()[open..].contains('}') {
                    return Err(Problem {
                        at: url.span().start,
                        message: "a webhook's url takes no placeholders ({...}): the \
                                  session, with its id, is in the JSON body"
                            .into(),
                    });
                }
            }
            let parsed = reqwest::Url::parse(url.get_ref())
                .ok()
                .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
                .ok_or_else(|| Problem {
                    at: url.span().start,
                    message: format!("{:?} is not an http or https URL", url.get_ref()),
                })?;
            Ok(Action::Webhook {
                url: parsed,
                timeout,
            })
        }
        other => Err(Problem {
            at: raw.kind.span().start,
            message: format!("unknown action kind {other:?}: use \"command\" or \"webhook\""),
        }),
    }
}

/// The program's path when it is an executable file (by path, or by name in PATH).
fn resolve_program(program: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let executable = |p: &Path| {
        std::fs::metadata(p)
            .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            .unwrap_or(false)
    };
    if program.contains('/') {
        let p = PathBuf::from(program);
        return executable(&p).then_some(p);
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(program))
            .find(|p| executable(p))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        let (offset, message) = Config::parse(text).unwrap_err();
        let (line, _) = line_col(text, offset.unwrap_or(0));
        format!("{line}: {message}")
    }

    #[test]
    fn empty_file_gives_defaults() {
        let c = Config::parse("").unwrap();
        assert_eq!(c.actions.workers, 8);
        assert_eq!(c.actions.max_attempts, 5);
        assert!(c.actions.default.end.is_empty());
    }

    #[test]
    fn actions_parse_in_order_with_per_activity_lists() {
        let c = Config::parse(
            r#"
[actions]
max_attempts = 3
workers = 2

[[actions.end]]
kind = "command"
program = "/bin/sh"
args = ["-c", "true", "{login}"]
timeout_secs = 5

[[actions.end]]
kind = "webhook"
url = "http://127.0.0.1:9/hook"

[[actions.activity."Domain Admin".start]]
kind = "command"
program = "true"
"#,
        )
        .unwrap();
        assert_eq!(c.actions.max_attempts, 3);
        assert_eq!(c.actions.default.end.len(), 2);
        assert_eq!(c.actions.default.end[1].kind(), "webhook");
        assert_eq!(c.actions.lists_for(Some("Domain Admin")).start.len(), 1);
        assert_eq!(c.actions.lists_for(Some("other")).end.len(), 2);
    }

    #[test]
    fn problems_name_their_line() {
        assert_eq!(
            err("[actions]\n\n[[actions.end]]\nkind = \"email\"\n"),
            "4: unknown action kind \"email\": use \"command\" or \"webhook\""
        );
        assert!(
            err("[[actions.end]]\nkind = \"command\"\nprogram = \"/no/such/file\"\n")
                .starts_with("3: program \"/no/such/file\" is not an executable file")
        );
        assert!(
            err("[[actions.end]]\nkind = \"webhook\"\nurl = \"ftp://x\"\n")
                .starts_with("3: \"ftp://x\" is not an http or https URL")
        );
        assert!(err("[actions]\nworkerz = 3\n").starts_with("2: unknown field `workerz`"));
    }

    #[test]
    fn values_that_would_break_the_service_are_refused_where_they_are() {
        for (text, says) in [
            (
                "[auth]\nmfa_token_minutes = 0\n",
                "2: auth.mfa_token_minutes must be at least 1",
            ),
            (
                "[auth]\npre_mfa_token_minutes = 71582789\n",
                "2: auth.pre_mfa_token_minutes must be at most 60",
            ),
            (
                "[auth]\nmax_wrong_codes = 0\n",
                "2: auth.max_wrong_codes must be at least 1",
            ),
            (
                "[auth]\nmax_failures_per_minute = 0\n",
                "2: auth.max_failures_per_minute must be at least 1",
            ),
            (
                "[sessions]\nmax_length_minutes = 4294967295\n",
                "2: sessions.max_length_minutes must be at most 525600",
            ),
            (
                "[sessions]\nmax_extensions = 10001\n",
                "2: sessions.max_extensions must be at most 10000",
            ),
            (
                "[sessions]\nmax_extension_minutes = 0\n",
                "2: sessions.max_extension_minutes must be at least 1",
            ),
            (
                "[sessions]\nmax_extension_minutes = 3000000000\n",
                "2: sessions.max_extension_minutes must be at most",
            ),
            (
                "[actions]\nbackoff_initial_ms = 0\n",
                "2: actions.backoff_initial_ms must be between 1",
            ),
            (
                "[actions]\nbackoff_initial_ms = 100000\nbackoff_max_ms = 10\n",
                "3: actions.backoff_max_ms must be between backoff_initial_ms (100000)",
            ),
            (
                "request_body_max_bytes = 99999999999999\n",
                "1: request_body_max_bytes must be between 1024",
            ),
        ] {
            let e = err(text);
            assert!(e.starts_with(says), "{text:?}: {e}");
        }
        // The bounds themselves are accepted, as are the conformance run's.
        let c = Config::parse(
            "[auth]\nmfa_token_minutes = 43200\nmax_wrong_codes = 1000000\n\
             [sessions]\nmax_extensions = 0\nmax_length_minutes = 525600\n",
        )
        .unwrap();
        assert_eq!(c.auth.mfa_token_minutes, 43_200);
        assert_eq!(c.sessions.max_extensions, 0);
        // A first delay above the default maximum, alone, raises it.
        let c = Config::parse("[actions]\nbackoff_initial_ms = 120000\n").unwrap();
        assert_eq!(c.actions.backoff(1), Duration::from_secs(120));
    }

    #[test]
    fn args_read_placeholders_and_leave_everything_else_as_text() {
        use ArgPart::*;
        assert_eq!(
            Arg::parse("user={login};host={resource_name}").unwrap(),
            Arg(vec![
                Text("user=".into()),
                Value(Placeholder::Login),
                Text(";host=".into()),
                Value(Placeholder::ResourceName),
            ])
        );
        for text in [
            "${login} {} {\"a\": 1} { x; } {a,b} {Name} {login",
            "find . -exec rm {} +",
        ] {
            assert_eq!(Arg::parse(text).unwrap(), Arg(vec![Text(text.into())]));
        }
        assert_eq!(Arg::parse("").unwrap(), Arg(vec![]));
        assert!(Arg::parse("{sesion_id}")
            .unwrap_err()
            .starts_with("unknown placeholder {sesion_id}: use {session_id}, {login}"));
        assert_eq!(
            Arg::parse("user={Login}").unwrap_err(),
            "{Login} is not a placeholder: names are lowercase, write {login}"
        );
    }

    #[test]
    fn a_zero_session_length_names_its_line() {
        assert_eq!(
            err("[sessions]\nallow_extension = true\nmax_length_minutes = 0\n"),
            "3: sessions.max_length_minutes must be at least 1"
        );
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let a = ActionsConfig {
            backoff_initial: Duration::from_millis(100),
            backoff_max: Duration::from_millis(350),
            ..ActionsConfig::default()
        };
        assert_eq!(a.backoff(1), Duration::from_millis(100));
        assert_eq!(a.backoff(2), Duration::from_millis(200));
        assert_eq!(a.backoff(3), Duration::from_millis(350));
    }
}
