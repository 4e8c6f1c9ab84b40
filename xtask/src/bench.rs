//! `cargo xtask bench`: how fast the server is on this machine, against the
//! ceiling of dropshot measured in the same run.
//!
//! One run builds `nps-server` in release, starts it on a fresh database in
//! `target/bench/`, signs in as its bootstrapped Admin with a TOTP code, and
//! then, for each size of the session table (seeded by SQL while the server
//! is stopped, see `store.rs`), with wrk (`xtask/bench/*.lua`) over loopback:
//!
//! 1. baseline: `GET /ping`, the unauthenticated, unpublished no-op;
//! 2. GetByIdAsync over random existing sessions;
//! 3. DeleteAsync over distinct Active sessions: the same burst at every size
//!    (the Active sessions of the smallest table), several times, each on a
//!    restarted server over fresh Active sessions (the median is shown),
//!    then, where the table has enough, a run as long as the others; after
//!    each, the server is SIGKILLed and every session answered 202 is looked
//!    up in the file;
//! 4. the baseline again, on the restarted server.
//!
//! Each row's ratios are to the mean of the two baselines of its size: the
//! machine is shared and its speed drifts. After the first size it measures
//! the end latency (DELETE until GetByIdAsync shows the terminal state) one
//! session at a time, with no actions and with one no-op command action. It
//! prints one table and the targets of issue 7, met or missed by how much,
//! and writes both to `target/bench/<run>/results.md`.

mod client;
mod pagecache;
mod report;
mod server;
mod store;
mod wal;
mod wrk;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use report::{thousands, Baseline, Row, Verdict};
use server::{Launch, Memory, Server};

const USAGE: &str = "\
usage: cargo xtask bench [options]

Builds nps-server in release and benchmarks it on this machine (see BENCHMARKS.md).

options:
  --quick              short runs, sizes 1,000 and 100,000 (under two minutes once built)
  --sizes A,B,...      session-table sizes (default 1000,100000,1000000)
  --duration SECS      length of each wrk run (default 20; quick 3)
  --connections N      wrk connections (default 32)
  --threads N          wrk threads (default 1)
  --end-samples N      sessions ended one at a time per end-latency case (default 1000; quick 100)
  --bursts N           DeleteAsync bursts per size, the median shown (default 5; quick 3)
  --pairs N            short GetByIdAsync runs alternating with GET /ping per size, whose
                       median share judges the GetByIdAsync targets (default 5; quick 2; 0: off)
  --server PATH        benchmark this nps-server binary instead of building one from the
                       checkout (to compare builds: copy each binary aside, then run them
                       in turns); the checkout still seeds the database, so the binary
                       must share its schema and log wording
  --keep               keep the database and the id files under target/bench/ afterwards
";

struct Options {
    quick: bool,
    sizes: Vec<u64>,
    duration: Duration,
    connections: u32,
    threads: u32,
    end_samples: usize,
    /// Most ids a sustained DeleteAsync run may end (it stops early when
    /// they run out).
    delete_pool: u64,
    /// Sessions a DeleteAsync burst ends: the Active sessions of the
    /// smallest table (the template is never ended).
    burst: u64,
    /// DeleteAsync bursts per size; the table shows the median.
    bursts: usize,
    /// GetByIdAsync runs alternating with GET /ping per size, and how long
    /// each of those runs lasts.
    pairs: usize,
    pair_duration: Duration,
    /// Sessions the mixed run ends, one request in `MIXED_EVERY`; sizes with
    /// fewer Active sessions skip it.
    mixed_pool: u64,
    /// Most ids GetByIdAsync picks among (a uniform sample of the table).
    get_sample: u64,
    keep: bool,
    /// A prebuilt server to benchmark; `None`: build the checkout's.
    server: Option<PathBuf>,
}

fn parse(args: &[String]) -> Result<Options, String> {
    let quick = args.iter().any(|a| a == "--quick");
    let mut o = Options {
        quick,
        sizes: if quick {
            vec![1_000, 100_000]
        } else {
            vec![1_000, 100_000, 1_000_000]
        },
        duration: Duration::from_secs(if quick { 3 } else { 20 }),
        connections: 32,
        threads: 1,
        end_samples: if quick { 100 } else { 1000 },
        delete_pool: if quick { 30_000 } else { 200_000 },
        burst: 0,
        bursts: if quick { 3 } else { 5 },
        pairs: if quick { 2 } else { 5 },
        pair_duration: Duration::from_secs(if quick { 1 } else { 3 }),
        mixed_pool: if quick { 3_000 } else { 20_000 },
        get_sample: 100_000,
        keep: false,
        server: None,
    };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = || {
            it.next()
                .cloned()
                .ok_or_else(|| format!("{arg} needs a value\n\n{USAGE}"))
        };
        let number = |v: String| {
            v.replace('_', "")
                .parse::<u64>()
                .map_err(|_| format!("{arg}: {v:?} is not a number"))
        };
        match arg.as_str() {
            "--quick" => {}
            "--keep" => o.keep = true,
            "--server" => {
                let path = PathBuf::from(value()?);
                let path = path
                    .canonicalize()
                    .map_err(|e| format!("--server {}: {e}", path.display()))?;
                if !path.is_file() {
                    return Err(format!("--server {}: not a file", path.display()));
                }
                o.server = Some(path);
            }
            "--sizes" => {
                o.sizes = value()?
                    .split(',')
                    .map(|s| number(s.to_string()))
                    .collect::<Result<_, _>>()?;
                o.sizes.sort_unstable();
                if o.sizes.is_empty() || o.sizes[0] < 100 {
                    return Err("--sizes: each size must be at least 100".into());
                }
            }
            "--duration" => o.duration = Duration::from_secs(number(value()?)?.max(1)),
            "--connections" => o.connections = number(value()?)? as u32,
            "--threads" => o.threads = number(value()?)?.max(1) as u32,
            "--end-samples" => o.end_samples = number(value()?)?.max(1) as usize,
            "--bursts" => o.bursts = number(value()?)?.max(1) as usize,
            "--pairs" => o.pairs = number(value()?)? as usize,
            other => return Err(format!("unknown option {other}\n\n{USAGE}")),
        }
    }
    o.burst = o.sizes[0].min(1000) - 1;
    if o.connections < o.threads {
        return Err("--connections must be at least --threads".into());
    }
    Ok(o)
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask sits in the workspace")
        .to_path_buf()
}

/// The machine, as BENCHMARKS.md records it.
fn machine() -> String {
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    let cpuinfo = read("/proc/cpuinfo");
    let cpu = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|v| v.trim_start_matches([' ', '\t', ':']).trim().to_string())
        .unwrap_or_else(|| "unknown CPU".into());
    let mem_kib: u64 = read("/proc/meminfo")
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0);
    let nproc = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let kernel = read("/proc/sys/kernel/osrelease");
    format!(
        "{nproc} CPUs ({cpu}), {:.1} GiB memory, Linux {}",
        mem_kib as f64 / 1024.0 / 1024.0,
        kernel.trim()
    )
}

fn git_revision() -> String {
    let git = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .current_dir(workspace_root())
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default()
    };
    let rev = git(&["rev-parse", "--short", "HEAD"]);
    let dirty = !git(&["status", "--porcelain", "--untracked-files=no"]).is_empty();
    format!("{rev}{}", if dirty { " + uncommitted changes" } else { "" })
}

/// When a file was last modified (coreutils' `date -r`), to tell apart
/// builds copied aside.
fn modified(path: &Path) -> String {
    Command::new("date")
        .args(["-u", "+modified %Y-%m-%d %H:%M:%S UTC", "-r"])
        .arg(path)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "modification time unknown".into())
}

fn build_server() -> Result<PathBuf, String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    println!("building nps-server (release)");
    let status = Command::new(cargo)
        .current_dir(workspace_root())
        .args(["build", "--release", "--package", "nps-server"])
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !status.success() {
        return Err("cargo build --release -p nps-server failed".into());
    }
    Ok(target_dir().join("release/nps-server"))
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
}

fn percentile(samples: &mut [Duration], p: f64) -> f64 {
    samples.sort_unstable();
    let rank = ((p / 100.0) * samples.len() as f64).ceil() as usize;
    samples[rank.clamp(1, samples.len()) - 1].as_secs_f64() * 1e6
}

/// One request in this many is a DeleteAsync in the mixed run.
const MIXED_EVERY: u64 = 10;

/// CPU seconds over a run's requests, in µs per request.
fn per_request(cpu_seconds: f64, requests: u64) -> Option<f64> {
    (requests > 0).then(|| cpu_seconds * 1e6 / requests as f64)
}

/// Answers over the time a script measured them in (wrk divides by its
/// whole -d, which a run that stops early does not last).
fn per_second(answers: u64, elapsed_s: f64) -> f64 {
    if elapsed_s > 0.0 {
        answers as f64 / elapsed_s
    } else {
        0.0
    }
}

fn write_lines(path: &Path, ids: &[String]) -> Result<(), String> {
    let mut text = ids.join("\n");
    text.push('\n');
    std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

fn read_lines(path: &Path) -> Result<Vec<String>, String> {
    Ok(std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect())
}

/// Everything one run needs.
struct Bench {
    opts: Options,
    dir: PathBuf,
    db: PathBuf,
    binary: PathBuf,
    runtime: tokio::runtime::Runtime,
    token: String,
    /// The session every seeded one copies; never ended.
    template: String,
    rows: Vec<Row>,
    notes: Vec<String>,
    /// Per size: GetById and Delete rows' indexes, the size's memory.
    sizes: Vec<SizeResult>,
    end_no_actions: Option<Row>,
    durable: bool,
}

struct SizeResult {
    size: u64,
    get: Row,
    /// The same number of DeleteAsync at every size, from an idle engine.
    burst: Row,
    /// DeleteAsync for the whole duration, where enough sessions are Active.
    sustained: Option<Row>,
    base: Baseline,
    memory: Memory,
    /// GetByIdAsync's req/s over the mean of the GET /ping runs just before
    /// and after it, run after run on one server (see `Bench::alternate`).
    alternating: Vec<f64>,
}

impl SizeResult {
    /// GetByIdAsync's share of the baseline as the targets judge it: the
    /// median of the alternating runs, which a drift of the machine's speed
    /// between the long runs cannot move; the long run's share without them.
    fn get_share(&self) -> Option<f64> {
        if self.alternating.is_empty() {
            return self.get.rps_ratio();
        }
        let mut r = self.alternating.clone();
        r.sort_by(f64::total_cmp);
        let n = r.len();
        Some(if n % 2 == 1 {
            r[n / 2]
        } else {
            (r[n / 2 - 1] + r[n / 2]) / 2.0
        })
    }
}

/// What the file showed, after SIGKILL, of the sessions DeleteAsync
/// answered 202 at one size, over all its runs.
#[derive(Default)]
struct Durability {
    runs: usize,
    acked: u64,
    ended: u64,
    journalled: u64,
    lost: Vec<String>,
    /// Sessions answered 202 twice in one run (each id is sent once).
    twice: u64,
}

impl Durability {
    /// Looks up in the file (the server killed) every session of `acked`.
    fn check(&mut self, db: &Path, acked: &[String]) -> Result<(), String> {
        let mut unique = acked.to_vec();
        unique.sort_unstable();
        unique.dedup();
        let ended = store::check_ended(db, &unique)?;
        self.runs += 1;
        self.acked += acked.len() as u64;
        self.ended += ended.ended;
        self.journalled += ended.journalled;
        self.lost.extend(ended.lost);
        self.twice += (acked.len() - unique.len()) as u64;
        Ok(())
    }

    fn note(&self, sessions: u64) -> String {
        format!(
            "DeleteAsync at {}: {} sessions answered 202 in {} run{}; after SIGKILL following \
             each run the file shows {} of them ending or ended ({} of those by their entry in the \
             journal of end requests, applied when the server started again){}{}.",
            thousands(sessions),
            thousands(self.acked),
            self.runs,
            if self.runs == 1 { "" } else { "s" },
            thousands(self.ended),
            thousands(self.journalled),
            if self.lost.is_empty() {
                String::new()
            } else {
                format!(
                    " and {} still Active, missing or in another status (e.g. {})",
                    self.lost.len(),
                    self.lost[0]
                )
            },
            if self.twice == 0 {
                String::new()
            } else {
                format!(", and {} were answered twice", self.twice)
            },
        )
    }
}

impl Bench {
    fn start(&self, config: Option<&Path>) -> Result<Server, String> {
        let server = Server::start(&Launch {
            binary: &self.binary,
            database: &self.db,
            config,
            log: &self.dir.join("server.log"),
        })?;
        // Ends left over from a DeleteAsync run (the server was killed with
        // sessions Cancelling) are finished before anything is measured.
        let started = Instant::now();
        let left = store::pending_work(&self.db)?;
        self.wait_idle()?;
        if left > 0 {
            let secs = started.elapsed().as_secs_f64();
            println!(
                "  the restarted engine finished {left} pending ends in {secs:.1} s ({:.0}/s)",
                left as f64 / secs
            );
        }
        Ok(server)
    }

    fn wrk(
        &self,
        server: &Server,
        script: &str,
        path: &str,
        duration: Duration,
        args: Vec<String>,
    ) -> Result<wrk::Outcome, String> {
        wrk::run(&wrk::Run {
            script,
            url: format!("{}{path}", server.url),
            duration,
            threads: self.opts.threads,
            connections: self.opts.connections,
            bearer: Some(&self.token),
            script_args: args,
            stop_when_threads_done: matches!(script, "delete.lua" | "mixed.lua"),
        })
    }

    /// Waits until the running server's engine owes no work.
    fn wait_idle(&self) -> Result<(), String> {
        let started = Instant::now();
        while store::pending_work(&self.db)? > 0 {
            if started.elapsed() > Duration::from_secs(900) {
                return Err("the engine did not finish the pending ends within 15 minutes".into());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(())
    }

    /// GET /ping after a second of warm-up.
    fn baseline_run(&mut self, server: &Server, name: &str, sessions: u64) -> Result<Row, String> {
        let warmup = Duration::from_secs(1);
        self.wrk(server, "ping.lua", "/ping", warmup, vec![])?;
        let cpu = server.cpu_seconds()?;
        let ping = self.wrk(server, "ping.lua", "/ping", self.opts.duration, vec![])?;
        let cpu = server.cpu_seconds()? - cpu;
        self.check_clean("GET /ping", &ping)?;
        let row = Row {
            scenario: name.into(),
            sessions,
            requests: ping.requests,
            rps: Some(ping.rps),
            p50_us: ping.p50_us,
            p99_us: ping.p99_us,
            baseline: None,
            memory: Some(server.memory()?),
            cpu_us: per_request(cpu, ping.requests),
        };
        Ok(row)
    }

    /// One DeleteAsync run over `ids`; answers its row and the ids answered 202.
    fn delete_run(
        &mut self,
        server: &Server,
        name: &str,
        ids: &[String],
        sessions: u64,
    ) -> Result<(Row, Vec<String>), String> {
        let tag = format!("{name}-{sessions}");
        let pool_file = self.dir.join(format!("delete-ids-{tag}.txt"));
        let acked_file = self.dir.join(format!("deleted-202-{tag}.txt"));
        write_lines(&pool_file, ids)?;
        let cpu = server.cpu_seconds()?;
        let del = self.wrk(
            server,
            "delete.lua",
            "/",
            self.opts.duration,
            vec![
                pool_file.display().to_string(),
                self.opts.threads.to_string(),
                acked_file.display().to_string(),
            ],
        )?;
        // Includes the engine applying ends during the run (not after it).
        let cpu = server.cpu_seconds()? - cpu;
        let answered = del.field("answered") as u64;
        let elapsed_s = del.field("elapsed_us") / 1e6;
        let other = del.field("other_status") as u64;
        if other > 0 {
            self.durable = false;
            self.notes.push(format!(
                "DeleteAsync ({name}) at {}: {other} answers were not 202.",
                thousands(sessions)
            ));
        }
        let row = Row {
            scenario: format!("DeleteAsync, {name}"),
            sessions,
            requests: answered,
            rps: Some(per_second(answered, elapsed_s)),
            p50_us: del.p50_us,
            p99_us: del.p99_us,
            baseline: None,
            memory: Some(server.memory()?),
            cpu_us: per_request(cpu, answered),
        };
        Ok((row, read_lines(&acked_file)?))
    }

    /// Baseline, GetByIdAsync and DeleteAsync at one size of the table.
    fn measure_size(&mut self, size: u64) -> Result<(), String> {
        let sessions = store::count_sessions(&self.db)?;
        let get_ids = store::random_ids(&self.db, self.opts.get_sample)?;
        let burst = store::active_ids(&self.db, self.opts.burst, &self.template)?;
        if (burst.len() as u64) < u64::from(self.opts.connections) {
            return Err(format!(
                "only {} Active sessions are left to end at {size}",
                burst.len()
            ));
        }
        let get_file = self.dir.join(format!("get-ids-{size}.txt"));
        write_lines(&get_file, &get_ids)?;

        let server = self.start(None)?;
        let d = self.opts.duration;
        let warmup = Duration::from_secs(1);
        println!("  baseline: GET /ping for {} s", d.as_secs());
        let before =
            self.baseline_run(&server, "Baseline: GET /ping (no auth, no-op)", sessions)?;
        self.rows.push(before.clone());

        println!("  GetByIdAsync for {} s", d.as_secs());
        let get_args = vec![get_file.display().to_string()];
        // The file as a server answering for a while finds it: in the OS
        // page cache (see pagecache.rs for why this machine needs the read).
        let found = pagecache::resident(&self.db)?;
        pagecache::warm(&self.db)?;
        self.wrk(&server, "get_by_id.lua", "/", warmup, get_args.clone())?;
        let held_before = pagecache::resident(&self.db)?;
        let cpu = server.cpu_seconds()?;
        let get = self.wrk(&server, "get_by_id.lua", "/", d, get_args)?;
        let cpu = server.cpu_seconds()? - cpu;
        let held_after = pagecache::resident(&self.db)?;
        self.check_clean("GetByIdAsync", &get)?;
        self.notes.push(format!(
            "GetByIdAsync at {}: the OS page cache held {:.0}% of the database file before it was \
             read once, {:.0}% when the run began and {:.0}% when it ended.",
            thousands(sessions),
            found * 100.0,
            held_before * 100.0,
            held_after * 100.0
        ));
        let mut get_row = Row {
            scenario: "GetByIdAsync (MFA token, random ids)".into(),
            sessions,
            requests: get.requests,
            rps: Some(get.rps),
            p50_us: get.p50_us,
            p99_us: get.p99_us,
            baseline: None,
            memory: Some(server.memory()?),
            cpu_us: per_request(cpu, get.requests),
        };

        let alternating = self.alternate(&server, &get_file)?;
        if !alternating.is_empty() {
            self.notes.push(format!(
                "GetByIdAsync at {}, alternating with GET /ping on the same server ({} runs of \
                 {} s each, /ping before and after each): {} of the mean /ping around it; the \
                 targets take the median.",
                thousands(sessions),
                alternating.len(),
                self.opts.pair_duration.as_secs(),
                alternating
                    .iter()
                    .map(|r| format!("{:.0}%", r * 100.0))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        let get_memory = server.memory()?;
        server.kill();

        // The same burst at every size (all the Active sessions of the
        // smallest table), each on a freshly started server with an idle
        // engine: the rows to compare sizes. A burst lasts tens of ms, too
        // short for one to mean much on this machine, so there are several,
        // each over fresh Active sessions (the ended ones are replaced while
        // the server is stopped, the size stays the same), and the table
        // shows the median. After each, the server is SIGKILLed and every
        // session answered 202 is looked up in the file.
        let burst_name = format!("burst of {}", thousands(burst.len() as u64));
        println!(
            "  DeleteAsync, {} bursts of {}, each on a restarted server",
            self.opts.bursts,
            thousands(burst.len() as u64)
        );
        let mut durability = Durability::default();
        let mut bursts = Vec::new();
        let mut found = Vec::new();
        let mut ids = burst;
        for k in 0..self.opts.bursts {
            if k > 0 {
                store::replace(&self.db, &ids, &self.template, sessions)?;
                ids = store::active_ids(&self.db, self.opts.burst, &self.template)?;
            }
            let server = self.start(None)?;
            // As before GetByIdAsync: each DeleteAsync reads its session,
            // and a server that has been answering finds the file cached.
            found.push(pagecache::resident(&self.db)?);
            pagecache::warm(&self.db)?;
            let (row, acked) = self.delete_run(&server, &burst_name, &ids, sessions)?;
            // No shutdown: what the file holds now is what a crash would leave.
            server.kill();
            durability.check(&self.db, &acked)?;
            bursts.push(row);
        }
        bursts.sort_by(|a, b| a.rps.partial_cmp(&b.rps).expect("rates are numbers"));
        self.notes.push(format!(
            "DeleteAsync bursts at {}: {} req/s; the table shows the median. Before each, once \
             its server had started (the file then read once), the OS page cache held {} of \
             the database file.",
            thousands(sessions),
            bursts
                .iter()
                .map(|r| thousands(r.rps.unwrap_or(0.0).round() as u64))
                .collect::<Vec<_>>()
                .join(", "),
            found
                .iter()
                .map(|f| format!("{:.0}%", f * 100.0))
                .collect::<Vec<_>>()
                .join(", ")
        ));
        let mut burst_row = bursts[bursts.len() / 2].clone();

        let mixed_row = self.mixed(sessions, &mut durability)?;

        // A run as long as the others, with the engine ending sessions
        // alongside, where the table has enough Active sessions for it.
        let mut sustained_row = None;
        let server = self.start(None)?;
        let pool = store::active_ids(&self.db, self.opts.delete_pool, &self.template)?;
        if pool.len() as u64 >= 10 * self.opts.burst {
            println!(
                "  DeleteAsync, sustained: {} s over up to {} Active sessions",
                d.as_secs(),
                thousands(pool.len() as u64)
            );
            pagecache::warm(&self.db)?;
            let (row, acked) = self.delete_run(&server, "sustained", &pool, sessions)?;
            let memory = server.memory()?;
            server.kill();
            durability.check(&self.db, &acked)?;
            sustained_row = Some((row, memory));
        } else {
            server.kill();
        }
        // The larger of the servers' that answered GetByIdAsync and the
        // sustained DeleteAsync.
        let memory = match &sustained_row {
            Some((_, m)) if m.peak_kib > get_memory.peak_kib => *m,
            _ => get_memory,
        };
        let sustained_row = sustained_row.map(|(row, _)| row);
        self.durable &= durability.lost.is_empty() && durability.twice == 0;
        self.notes.push(durability.note(sessions));

        // The baseline again, on the restarted server once the engine is
        // idle: the machine is shared, and the ratios are to the mean of the
        // two, so a drift of its speed during the size weighs on both sides.
        let server = self.start(None)?;
        println!("  baseline again: GET /ping for {} s", d.as_secs());
        let after = self.baseline_run(&server, "Baseline again, after (restarted)", sessions)?;
        server.kill();
        let base = Baseline {
            rps: Some((before.rps.unwrap_or(0.0) + after.rps.unwrap_or(0.0)) / 2.0),
            p50_us: (before.p50_us + after.p50_us) / 2.0,
            p99_us: (before.p99_us + after.p99_us) / 2.0,
        };
        let drift = after.rps.unwrap_or(0.0) / before.rps.unwrap_or(1.0) - 1.0;
        if drift.abs() > 0.10 {
            self.notes.push(format!(
                "At {}: the baseline moved {:+.0}% between before and after the runs; this \
                 size's figures carry noise of that order.",
                thousands(sessions),
                drift * 100.0
            ));
        }
        get_row.baseline = Some(base);
        burst_row.baseline = Some(base);
        self.rows.push(get_row.clone());
        self.rows.push(burst_row.clone());
        let sustained_row = sustained_row.map(|mut r: Row| {
            r.baseline = Some(base);
            self.rows.push(r.clone());
            r
        });
        if let Some(mut r) = mixed_row {
            r.baseline = Some(base);
            self.rows.push(r);
        }
        self.rows.push(after.clone());
        self.sizes.push(SizeResult {
            size,
            get: get_row,
            burst: burst_row,
            sustained: sustained_row,
            base,
            memory,
            alternating,
        });
        Ok(())
    }

    /// GetByIdAsync with DeleteAsync alongside (one request in
    /// `MIXED_EVERY`), on a server started with an idle engine, until
    /// `mixed_pool` sessions are ended or the duration is over: what reads
    /// cost while ends are written, and how large the WAL grows when readers
    /// and the writer are both busy (sampled every 10 ms). Skipped where the
    /// table has fewer Active sessions than the pool.
    fn mixed(&mut self, sessions: u64, durability: &mut Durability) -> Result<Option<Row>, String> {
        let server = self.start(None)?;
        let pool = store::active_ids(&self.db, self.opts.mixed_pool, &self.template)?;
        if (pool.len() as u64) < self.opts.mixed_pool {
            server.kill();
            return Ok(None);
        }
        println!(
            "  GetByIdAsync with one DeleteAsync in {MIXED_EVERY}: up to {} s, ending {} sessions",
            self.opts.duration.as_secs(),
            thousands(pool.len() as u64)
        );
        // Drawn again: the bursts replaced the sessions they ended with new ones.
        let get_file = self.dir.join(format!("mixed-get-ids-{sessions}.txt"));
        write_lines(
            &get_file,
            &store::random_ids(&self.db, self.opts.get_sample)?,
        )?;
        let pool_file = self.dir.join(format!("mixed-end-ids-{sessions}.txt"));
        let acked_file = self.dir.join(format!("mixed-202-{sessions}.txt"));
        write_lines(&pool_file, &pool)?;
        pagecache::warm(&self.db)?;
        let wal = wal::Sampler::start(&self.db);
        let cpu = server.cpu_seconds()?;
        let run = self.wrk(
            &server,
            "mixed.lua",
            "/",
            self.opts.duration,
            vec![
                get_file.display().to_string(),
                pool_file.display().to_string(),
                self.opts.threads.to_string(),
                acked_file.display().to_string(),
                MIXED_EVERY.to_string(),
            ],
        )?;
        let cpu = server.cpu_seconds()? - cpu;
        let wal_peak = wal.stop();
        let memory = server.memory()?;
        // No shutdown: what the file holds now is what a crash would leave.
        server.kill();
        let acked = read_lines(&acked_file)?;
        durability.check(&self.db, &acked)?;

        let answered = run.field("answered") as u64;
        let read = run.field("read") as u64;
        let other = run.field("other_status") as u64;
        let elapsed_s = run.field("elapsed_us") / 1e6;
        if other > 0 || run.socket_errors > 0 {
            self.durable = false;
            self.notes.push(format!(
                "Mixed run at {}: {other} answers were neither 200 nor 202, {} socket errors.",
                thousands(sessions),
                run.socket_errors
            ));
        }
        let rate = |n: u64| per_second(n, elapsed_s);
        self.notes.push(format!(
            "Mixed at {}: {} GetByIdAsync answered 200 ({:.0}/s) and {} DeleteAsync 202 \
             ({:.0}/s) in {:.1} s; latency is over both. The WAL peaked at {} (sampled every \
             10 ms; the checkpointer aims to start it over past 16 MB).",
            thousands(sessions),
            thousands(read),
            rate(read),
            thousands(acked.len() as u64),
            rate(acked.len() as u64),
            elapsed_s,
            report::mb(wal_peak / 1024),
        ));
        Ok(Some(Row {
            scenario: format!("Mixed: GetByIdAsync, 1 in {MIXED_EVERY} DeleteAsync"),
            sessions,
            requests: answered,
            rps: Some(rate(answered)),
            p50_us: run.p50_us,
            p99_us: run.p99_us,
            baseline: None,
            memory: Some(memory),
            cpu_us: per_request(cpu, answered),
        }))
    }

    /// GET /ping and GetByIdAsync in turns on one server (P G P G … P),
    /// each GetByIdAsync run divided by the mean of the /ping runs on either
    /// side of it. The long runs are minutes apart and this machine's speed
    /// moves by tens of percent in that time; a few seconds apart, both
    /// sides of a ratio see nearly the same machine.
    fn alternate(&mut self, server: &Server, get_file: &Path) -> Result<Vec<f64>, String> {
        if self.opts.pairs == 0 {
            return Ok(Vec::new());
        }
        let d = self.opts.pair_duration;
        println!(
            "  GetByIdAsync and GET /ping in turns: {} runs of {} s each",
            self.opts.pairs,
            d.as_secs()
        );
        let ping = |bench: &Bench| -> Result<f64, String> {
            let o = bench.wrk(server, "ping.lua", "/ping", d, vec![])?;
            bench.check_clean("GET /ping", &o)?;
            Ok(o.rps)
        };
        let mut before = ping(self)?;
        let mut ratios = Vec::with_capacity(self.opts.pairs);
        for _ in 0..self.opts.pairs {
            let get = self.wrk(
                server,
                "get_by_id.lua",
                "/",
                d,
                vec![get_file.display().to_string()],
            )?;
            self.check_clean("GetByIdAsync", &get)?;
            let after = ping(self)?;
            if before + after <= 0.0 {
                return Err("GET /ping answered nothing in an alternating run".into());
            }
            ratios.push(get.rps / ((before + after) / 2.0));
            before = after;
        }
        Ok(ratios)
    }

    /// End latency with and without one no-op command action.
    fn measure_end_latency(&mut self) -> Result<(), String> {
        let n = self.opts.end_samples;
        let true_program = ["/usr/bin/true", "/bin/true"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .ok_or("no `true` program in /usr/bin or /bin")?;
        let config = self.dir.join("one-noop-action.toml");
        std::fs::write(
            &config,
            format!(
                "# One end action that does nothing: the cost of running an action.\n\
                 [[actions.end]]\nkind = \"command\"\nprogram = \"{true_program}\"\n"
            ),
        )
        .map_err(|e| format!("cannot write {}: {e}", config.display()))?;

        let mut base = None;
        for (label, config) in [
            ("no actions", None),
            ("one no-op command action", Some(config.as_path())),
        ] {
            let server = self.start(config)?;
            let url = server.url.clone();
            let http = client::authed(&self.token)?;
            if base.is_none() {
                println!("  GET /ping one at a time, {n} times");
                let mut pings = self.runtime.block_on(client::ping_latencies(&url, n))?;
                let b = Baseline {
                    rps: None,
                    p50_us: percentile(&mut pings, 50.0),
                    p99_us: percentile(&mut pings, 99.0),
                };
                self.rows.push(Row {
                    scenario: "Baseline: GET /ping, one at a time".into(),
                    sessions: store::count_sessions(&self.db)?,
                    requests: n as u64,
                    rps: None,
                    p50_us: b.p50_us,
                    p99_us: b.p99_us,
                    baseline: None,
                    memory: None,
                    cpu_us: None,
                });
                base = Some(b);
            }
            println!("  end latency, {label}: {n} sessions one at a time");
            let ids = self.runtime.block_on(async {
                let mut ids = Vec::with_capacity(n);
                for _ in 0..n {
                    ids.push(client::create_session(&http, &url).await?);
                }
                Ok::<_, String>(ids)
            })?;
            let sessions = store::count_sessions(&self.db)?;
            let samples = self
                .runtime
                .block_on(client::end_latencies(&http, &url, &ids))?;
            let memory = server.memory()?;
            server.kill();
            let mut ended: Vec<Duration> = samples.iter().map(|s| s.ended).collect();
            let mut accepted: Vec<Duration> = samples.iter().map(|s| s.accepted).collect();
            let row = Row {
                scenario: format!("End latency, {label}"),
                sessions,
                requests: n as u64,
                rps: None,
                p50_us: percentile(&mut ended, 50.0),
                p99_us: percentile(&mut ended, 99.0),
                baseline: base,
                memory: Some(memory),
                cpu_us: None,
            };
            self.notes.push(format!(
                "End latency, {label}: the 202 itself took {} (p50), {} (p99); the rest is the \
                 pipeline until GetByIdAsync shows Cancelled.",
                report::latency(percentile(&mut accepted, 50.0)),
                report::latency(percentile(&mut accepted, 99.0)),
            ));
            if config.is_none() {
                self.end_no_actions = Some(row.clone());
            }
            self.rows.push(row);
        }
        Ok(())
    }

    fn check_clean(&self, what: &str, o: &wrk::Outcome) -> Result<(), String> {
        if o.status_errors > 0 || o.socket_errors > 0 || o.requests == 0 {
            return Err(format!(
                "{what}: {} requests, {} error answers, {} socket errors: the run is not valid \
                 (see {})",
                o.requests,
                o.status_errors,
                o.socket_errors,
                self.dir.join("server.log").display()
            ));
        }
        Ok(())
    }

    fn verdicts(&self) -> Vec<Verdict> {
        let mut v = Vec::new();
        let pct = |r: Option<f64>| format!("{:.0}%", r.unwrap_or(0.0) * 100.0);

        // Throughput against the baseline, at every size.
        let worst_get = self
            .sizes
            .iter()
            .map(|s| (s.size, s.get_share().unwrap_or(0.0)))
            .min_by(|a, b| a.1.total_cmp(&b.1));
        if let Some((size, r)) = worst_get {
            let figures = self
                .sizes
                .iter()
                .map(|s| {
                    if s.alternating.is_empty() {
                        format!("{} at {}", pct(s.get.rps_ratio()), thousands(s.size))
                    } else {
                        format!(
                            "{} at {} ({} in the long run)",
                            pct(s.get_share()),
                            thousands(s.size),
                            pct(s.get.rps_ratio())
                        )
                    }
                })
                .collect::<Vec<_>>()
                .join(", ");
            v.push(Verdict {
                target: "GetByIdAsync >= 60% of baseline req/s".into(),
                met: r >= 0.60,
                detail: if r >= 0.60 {
                    figures
                } else {
                    format!(
                        "{figures}; at {}: {}",
                        thousands(size),
                        report::shortfall(r, 0.60)
                    )
                },
            });
        }
        let deletes: Vec<(u64, &Row)> = self
            .sizes
            .iter()
            .flat_map(|s| {
                std::iter::once(&s.burst)
                    .chain(&s.sustained)
                    .map(|r| (s.size, r))
            })
            .collect();
        let worst_delete = deletes
            .iter()
            .map(|(size, r)| (*size, r.rps_ratio().unwrap_or(0.0), *r))
            .min_by(|a, b| a.1.total_cmp(&b.1));
        if let Some((size, r, row)) = worst_delete {
            let figures = self
                .sizes
                .iter()
                .map(|s| {
                    format!(
                        "{} at {}{}",
                        pct(s.burst.rps_ratio()),
                        thousands(s.size),
                        s.sustained
                            .as_ref()
                            .map(|x| format!(" ({} sustained)", pct(x.rps_ratio())))
                            .unwrap_or_default()
                    )
                })
                .collect::<Vec<_>>()
                .join(", ");
            v.push(Verdict {
                target: "DeleteAsync >= 30% of baseline req/s, every 202 durable".into(),
                met: r >= 0.30 && self.durable,
                detail: format!(
                    "{figures}; {}{}",
                    if self.durable {
                        "every 202 found on disk after SIGKILL"
                    } else {
                        "NOT every answer was a 202 found on disk after SIGKILL (see the notes)"
                    },
                    if r < 0.30 {
                        format!(
                            "; {} at {}: {}",
                            row.scenario,
                            thousands(size),
                            report::shortfall(r, 0.30)
                        )
                    } else {
                        String::new()
                    }
                ),
            });
        }
        if let Some(row) = &self.end_no_actions {
            let limit = 20_000.0;
            v.push(Verdict {
                target: "End latency p99 < 20 ms with no actions".into(),
                met: row.p99_us < limit,
                detail: if row.p99_us < limit {
                    format!("p99 {}", report::latency(row.p99_us))
                } else {
                    format!(
                        "p99 {}, {} over",
                        report::latency(row.p99_us),
                        report::latency(row.p99_us - limit)
                    )
                },
            });
        }

        // Scale: the smallest table against the largest. The machine is
        // shared, so its speed moves between sizes; each row is judged as a
        // share of the baseline (GetByIdAsync: the median of its alternating
        // runs; DeleteAsync: the /ping runs before and after its size), and
        // the raw change is shown beside it.
        if let (Some(small), Some(large)) = (self.sizes.first(), self.sizes.last()) {
            if small.size < large.size {
                let base_change = large.base.rps.unwrap_or(0.0) / small.base.rps.unwrap_or(1.0);
                for (name, a, b, share_a, share_b) in [
                    (
                        "GetByIdAsync",
                        &small.get,
                        &large.get,
                        small.get_share(),
                        large.get_share(),
                    ),
                    (
                        "DeleteAsync (same burst)",
                        &small.burst,
                        &large.burst,
                        small.burst.rps_ratio(),
                        large.burst.rps_ratio(),
                    ),
                ] {
                    let raw = b.rps.unwrap_or(0.0) / a.rps.unwrap_or(1.0) - 1.0;
                    let change = share_b.unwrap_or(0.0) / share_a.unwrap_or(1.0) - 1.0;
                    v.push(Verdict {
                        target: format!(
                            "{name} req/s within 20% from {} to {} sessions",
                            thousands(small.size),
                            thousands(large.size)
                        ),
                        met: change.abs() <= 0.20,
                        detail: format!(
                            "{} -> {} of baseline ({:+.0}%){}; long runs: raw {:.0} -> {:.0} req/s \
                             ({:+.0}%) while their baseline moved {:+.0}%",
                            pct(share_a),
                            pct(share_b),
                            change * 100.0,
                            if change.abs() > 0.20 {
                                format!(", {:.0} points beyond", (change.abs() - 0.20) * 100.0)
                            } else {
                                String::new()
                            },
                            a.rps.unwrap_or(0.0),
                            b.rps.unwrap_or(0.0),
                            raw * 100.0,
                            (base_change - 1.0) * 100.0,
                        ),
                    });
                }
            }
            let limit_kib = 150_000_000 / 1024;
            v.push(Verdict {
                target: format!("Server RSS < 150 MB at {} sessions", thousands(large.size)),
                met: large.memory.rss_kib < limit_kib && large.memory.peak_kib < limit_kib,
                detail: format!(
                    "{} after the runs, {} at the peak{}",
                    report::mb(large.memory.rss_kib),
                    report::mb(large.memory.peak_kib),
                    if large.memory.peak_kib >= limit_kib {
                        format!(", {} over", report::mb(large.memory.peak_kib - limit_kib))
                    } else {
                        String::new()
                    }
                ),
            });
        }
        v
    }
}

pub fn run(args: &[String]) -> Result<(), String> {
    if args.iter().any(|a| a == "--help" || a == "-h") {
        print!("{USAGE}");
        return Ok(());
    }
    let opts = parse(args)?;
    let started = Instant::now();
    let binary = match &opts.server {
        Some(path) => path.clone(),
        None => build_server()?,
    };
    let wrk_version = wrk::ensure_installed()?;
    let stamp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let dir = target_dir().join("bench").join(format!("run-{stamp}"));
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let machine = machine();
    let revision = match &opts.server {
        Some(path) => format!(
            "prebuilt server {} ({}), seeded by the checkout at {}",
            path.display(),
            modified(path),
            git_revision()
        ),
        None => git_revision(),
    };
    let command = format!("cargo xtask bench {}", args.join(" "));
    println!("machine: {machine}\nload generator: {wrk_version}\nrevision: {revision}");
    println!("data: {}", dir.display());

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start a runtime: {e}"))?;
    let mut bench = Bench {
        db: dir.join("nps.db"),
        dir: dir.clone(),
        binary,
        runtime,
        token: String::new(),
        template: String::new(),
        rows: Vec::new(),
        notes: Vec::new(),
        sizes: Vec::new(),
        end_no_actions: None,
        durable: true,
        opts,
    };

    // First start: bootstrap the Admin, sign in, and create the template
    // session every seeded one copies.
    let server = bench.start(None)?;
    bench.token = bench.runtime.block_on(client::sign_in(&server.url))?;
    let http = client::authed(&bench.token)?;
    bench.template = bench
        .runtime
        .block_on(client::create_session(&http, &server.url))?;
    server.kill();

    let sizes = bench.opts.sizes.clone();
    for (i, size) in sizes.iter().copied().enumerate() {
        let seeded = store::seed(&bench.db, &bench.template, size)?;
        println!(
            "{} sessions stored (seeded {} in {:.1} s)",
            thousands(seeded.total),
            thousands(seeded.added),
            seeded.seconds
        );
        bench.measure_size(size)?;
        if i == 0 {
            bench.measure_end_latency()?;
        }
    }

    let table = report::table(&bench.rows);
    let verdicts = bench.verdicts();
    let elapsed = started.elapsed().as_secs_f64();
    let mut out = String::new();
    out.push_str(&format!(
        "Machine: {machine}\nLoad: {wrk_version}, {} thread(s), {} connections, {} s per run{}, loopback\n\
         Revision: {revision}\nCommand: `{command}` ({elapsed:.0} s in all)\n\n",
        bench.opts.threads,
        bench.opts.connections,
        bench.opts.duration.as_secs(),
        if bench.opts.quick { " (quick)" } else { "" },
        command = command.trim_end(),
    ));
    out.push_str(&table);
    out.push('\n');
    for note in &bench.notes {
        out.push_str(&format!("- {note}\n"));
    }
    out.push_str("\nTargets:\n");
    for v in &verdicts {
        out.push_str(&v.line());
        out.push('\n');
    }
    println!("\n{out}");
    let results = dir.join("results.md");
    std::fs::write(&results, &out)
        .map_err(|e| format!("cannot write {}: {e}", results.display()))?;
    println!("written to {}", results.display());
    if !bench.opts.keep {
        // Up to a gigabyte of database and megabytes of ids: keep only the
        // results, the server's log and the action configuration.
        let entries = std::fs::read_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with("nps.db") || name.ends_with(".txt") {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
    Ok(())
}
