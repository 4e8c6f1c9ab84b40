//! Faults, against the real `nps-server` binary: SIGKILL at random moments
//! in a burst of creates, ends and extends; a database whose disk is full;
//! an end action that hangs past its timeout.
//!
//! Every loop here is bounded in count and in time, and every request goes to
//! a server on 127.0.0.1 that the test started itself.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nps_testkit::{
    assert_problem, authed_client, eventually, log_messages, sessions_url, ServerOptions,
    TestServer,
};
use serde_json::{json, Value};
use uuid::Uuid;

const TERMINAL: [&str; 5] = [
    "Complete",
    "Failed",
    "Cancelled",
    "ApprovalDenied",
    "ApprovalFailed",
];

/// A small deterministic generator (xorshift64*): the seed is printed, and
/// `NPS_FAULT_SEED=<seed>` replays a run.
struct Rng(u64);

impl Rng {
    fn from_env_or_clock(test: &str) -> Rng {
        let seed = std::env::var("NPS_FAULT_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
            })
            | 1;
        eprintln!("{test}: NPS_FAULT_SEED={seed}");
        Rng(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

async fn get_session(http: &reqwest::Client, url: &str, id: Uuid) -> (u16, Value) {
    let resp = http
        .get(format!("{}/{id}", sessions_url(url)))
        .send()
        .await
        .expect("GetByIdAsync answers");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

// ---- SIGKILL during a mixed burst -------------------------------------------

/// What the clients were told before the server died.
#[derive(Default)]
struct Told {
    /// Sessions whose CreateAsync answered 201.
    created: BTreeSet<Uuid>,
    /// Sessions whose DeleteAsync answered 202.
    ended: BTreeSet<Uuid>,
    /// ExtendAsync answers of 200, per session.
    extended: BTreeMap<Uuid, i64>,
    requests: usize,
}

/// One client of the burst: creates, ends and extends at random until the
/// server stops answering, the deadline passes or it has sent `max` requests.
async fn burst_client(
    http: reqwest::Client,
    url: String,
    told: Arc<Mutex<Told>>,
    known: Vec<Uuid>,
    mut rng: Rng,
    deadline: Instant,
    max: usize,
) {
    let mut mine: Vec<Uuid> = known;
    for _ in 0..max {
        if Instant::now() >= deadline {
            return;
        }
        let roll = rng.below(100);
        let result = if roll < 45 || mine.is_empty() {
            // A quarter of the sessions start later (Pending), the rest now.
            let body = if rng.below(4) == 0 {
                json!({"activityName": "burst", "startDateTimeUtc": chrono::Utc::now() + chrono::Duration::minutes(30)})
            } else {
                json!({"activityName": "burst", "note": format!("n{}", rng.next())})
            };
            match http.post(sessions_url(&url)).json(&body).send().await {
                Ok(resp) if resp.status().as_u16() == 201 => match resp.json::<Value>().await {
                    Ok(v) => {
                        let id: Uuid = v["id"].as_str().unwrap().parse().unwrap();
                        mine.push(id);
                        told.lock().unwrap().created.insert(id);
                        Ok(())
                    }
                    // The answer was cut by the kill: its outcome is unknown.
                    Err(e) => Err(e),
                },
                Ok(resp) => panic!("CreateAsync answered {}", resp.status()),
                Err(e) => Err(e),
            }
        } else if roll < 75 {
            let id = mine[rng.below(mine.len() as u64) as usize];
            match http
                .delete(format!("{}/{id}", sessions_url(&url)))
                .send()
                .await
            {
                Ok(resp) if resp.status().as_u16() == 202 => {
                    told.lock().unwrap().ended.insert(id);
                    Ok(())
                }
                Ok(resp) => panic!("DeleteAsync answered {}", resp.status()),
                Err(e) => Err(e),
            }
        } else {
            let id = mine[rng.below(mine.len() as u64) as usize];
            let minutes = 1 + rng.below(30) as i64;
            match http
                .post(format!("{}/{id}/Extend", sessions_url(&url)))
                .json(&minutes)
                .send()
                .await
            {
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    // 400: the extension limit; 409: already ended.
                    assert!(
                        [200, 400, 409].contains(&status),
                        "ExtendAsync answered {status}"
                    );
                    if status == 200 {
                        *told.lock().unwrap().extended.entry(id).or_default() += 1;
                    }
                    Ok(())
                }
                Err(e) => Err(e),
            }
        };
        told.lock().unwrap().requests += 1;
        if result.is_err() {
            // The server is gone (killed): this client stops.
            return;
        }
    }
}

/// Every promise the server made before a SIGKILL holds after the restart.
async fn check_promises(server: &TestServer, http: &reqwest::Client, told: &Told) {
    let url = &server.url;
    for id in &told.created {
        let (status, session) = get_session(http, url, *id).await;
        assert_eq!(
            status, 200,
            "session {id} got 201 before the kill, then {status}: {session}"
        );
        let extended = told.extended.get(id).copied().unwrap_or(0);
        let count = session["sessionExtensionCount"].as_i64().unwrap();
        assert!(
            count >= extended,
            "session {id}: {extended} extensions answered 200, but it reads {count}"
        );
    }
    for id in &told.ended {
        eventually(
            Duration::from_secs(30),
            &format!("session {id}, ended with 202, to reach a terminal status"),
            || async {
                let (_, s) = get_session(http, url, *id).await;
                TERMINAL
                    .contains(&s["status"].as_str().unwrap_or(""))
                    .then_some(())
            },
        )
        .await;
    }
    // Nothing stays Cancelling, including sessions whose 202 was lost to the
    // kill: the engine finishes every end it owes after the restart.
    eventually(
        Duration::from_secs(30),
        "no session to be left Cancelling",
        || async { (cancelling(http, url).await? == 0).then_some(()) },
    )
    .await;
}

/// How many sessions read Cancelling, over every page of the listing.
async fn cancelling(http: &reqwest::Client, url: &str) -> Option<usize> {
    let mut count = 0;
    for page in 0.. {
        let list: Value = http
            .get(format!(
                "{}?status=active&take=1000&skip={}",
                sessions_url(url),
                page * 1000
            ))
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        let list = list.as_array()?;
        count += list.iter().filter(|s| s["status"] == "Cancelling").count();
        if list.len() < 1000 {
            break;
        }
    }
    Some(count)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_random_moments_in_a_burst_keeps_every_answered_promise() {
    const ROUNDS: usize = 6;
    const CLIENTS: usize = 4;
    const MAX_REQUESTS_PER_CLIENT: usize = 300;
    let mut rng = Rng::from_env_or_clock("sigkill burst");
    // A slow end action keeps sessions Cancelling for a while, so that kills
    // land in the middle of ends too.
    let mut server = TestServer::start_with(ServerOptions {
        config_toml: Some(
            "[[actions.end]]\nkind = \"command\"\nprogram = \"/bin/sleep\"\nargs = [\"0.2\"]\ntimeout_secs = 10\n"
                .into(),
        ),
        ..Default::default()
    });
    let token = server.admin_token();
    let http = authed_client(&token);
    let started = Instant::now();
    let mut all = Told::default();

    for round in 1..=ROUNDS {
        let told = Arc::new(Mutex::new(Told::default()));
        let kill_after = Duration::from_millis(150 + rng.below(850));
        let deadline = Instant::now() + kill_after + Duration::from_secs(2);
        let known: Vec<Uuid> = all.created.iter().copied().collect();
        let clients: Vec<_> = (0..CLIENTS)
            .map(|_| {
                tokio::spawn(burst_client(
                    reqwest::Client::builder()
                        .default_headers(
                            [(
                                reqwest::header::AUTHORIZATION,
                                format!("Bearer {token}").parse().unwrap(),
                            )]
                            .into_iter()
                            .collect(),
                        )
                        .timeout(Duration::from_secs(5))
                        .build()
                        .unwrap(),
                    server.url.clone(),
                    Arc::clone(&told),
                    known.clone(),
                    Rng(rng.next() | 1),
                    deadline,
                    MAX_REQUESTS_PER_CLIENT,
                ))
            })
            .collect();
        tokio::time::sleep(kill_after).await;
        server.kill();
        for client in clients {
            client.await.expect("a burst client panicked");
        }
        // Ends accepted but not yet applied to their sessions when the kill
        // came: the restart must apply them.
        let journalled: i64 = rusqlite::Connection::open(server.database())
            .unwrap()
            .query_row("SELECT COUNT(*) FROM end_requests", [], |r| r.get(0))
            .unwrap();
        server.restart();

        let told = Arc::try_unwrap(told).ok().unwrap().into_inner().unwrap();
        eprintln!(
            "round {round}: killed after {} ms, {} requests, {} created, {} ended ({journalled} \
             still in the journal), {} extended",
            kill_after.as_millis(),
            told.requests,
            told.created.len(),
            told.ended.len(),
            told.extended.values().sum::<i64>()
        );
        all.created.extend(&told.created);
        all.ended.extend(&told.ended);
        for (id, n) in told.extended {
            *all.extended.entry(id).or_default() += n;
        }
        all.requests += told.requests;
        // Earlier rounds' promises too: a later crash must not undo them.
        check_promises(&server, &http, &all).await;
    }
    assert!(
        all.created.len() >= ROUNDS && !all.ended.is_empty(),
        "the bursts did too little to test anything: {} created, {} ended",
        all.created.len(),
        all.ended.len()
    );
    eprintln!(
        "{ROUNDS} rounds, {} requests, {} sessions created, {} ended, in {:.1} s",
        all.requests,
        all.created.len(),
        all.ended.len(),
        started.elapsed().as_secs_f64()
    );
}

// ---- the disk fills up ------------------------------------------------------

/// A small tmpfs mounted for the test, unmounted when dropped.
struct SmallDisk {
    dir: PathBuf,
}

impl SmallDisk {
    /// Mounts a tmpfs of `mib` MiB at `dir`; `None` when this process may not
    /// mount (not root).
    fn mount(dir: &Path, mib: u32) -> Option<SmallDisk> {
        std::fs::create_dir_all(dir).unwrap();
        let out = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={mib}m,mode=0700"),
                "tmpfs",
            ])
            .arg(dir)
            .output();
        let refused = match &out {
            Ok(out) if out.status.success() => None,
            Ok(out) => Some(String::from_utf8_lossy(&out.stderr).into_owned()),
            Err(e) => Some(format!("cannot run mount: {e}")),
        };
        if let Some(why) = refused {
            // SAFETY: geteuid has no preconditions.
            let root = unsafe { libc::geteuid() } == 0;
            assert!(!root, "running as root, yet cannot mount a tmpfs: {why}");
            return None;
        }
        Some(SmallDisk {
            dir: dir.to_path_buf(),
        })
    }

    /// Writes a filler file until the disk refuses more; answers its path.
    fn fill(&self) -> PathBuf {
        use std::io::Write;
        let path = self.dir.join("filler");
        let mut f = std::fs::File::create(&path).unwrap();
        let mut chunk = vec![0xA5u8; 1 << 20];
        while !chunk.is_empty() {
            match f.write_all(&chunk) {
                Ok(()) => {}
                Err(_) => {
                    let half = chunk.len() / 2;
                    chunk.truncate(half);
                }
            }
        }
        let _ = f.sync_all();
        path
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
    }
}

async fn create(http: &reqwest::Client, url: &str, note: &str) -> reqwest::Response {
    http.post(sessions_url(url))
        .json(&json!({"note": note}))
        .send()
        .await
        .expect("CreateAsync answers")
}

#[tokio::test]
async fn a_full_disk_answers_503_problems_corrupts_nothing_and_service_resumes() {
    let mut server = TestServer::start();
    let token = server.admin_token();
    let http = authed_client(&token);
    let mut kept: Vec<Uuid> = Vec::new();
    for i in 0..3 {
        let resp = create(&http, &server.url, &format!("before {i}")).await;
        assert_eq!(resp.status(), 201);
        kept.push(
            resp.json::<Value>().await.unwrap()["id"]
                .as_str()
                .unwrap()
                .parse()
                .unwrap(),
        );
    }

    // Move the database onto a 16 MiB disk of its own: the server's log stays
    // on the test directory's disk, so only the database runs out of room.
    server.kill();
    let disk_dir = server.dir().join("disk");
    let Some(disk) = SmallDisk::mount(&disk_dir, 16) else {
        eprintln!("skipped: this user may not mount a tmpfs (the test needs root, as CI has)");
        return;
    };
    for suffix in ["", "-wal", "-shm"] {
        let from = PathBuf::from(format!("{}{suffix}", server.database().display()));
        if from.exists() {
            let to = disk_dir.join(from.file_name().unwrap());
            std::fs::copy(&from, &to).unwrap();
            std::fs::remove_file(&from).unwrap();
        }
    }
    // SQLite follows the link: its -wal and -shm files live beside the target.
    std::os::unix::fs::symlink(disk_dir.join("nps.db"), server.database()).unwrap();
    server.restart();
    let url = server.url.clone();
    assert_eq!(create(&http, &url, "on the small disk").await.status(), 201);
    assert!(
        disk_dir.join("nps.db-wal").exists(),
        "the WAL is not on the small disk"
    );

    // Full: every write is refused with a ProblemDetails, never a success
    // that was not stored, never a dropped connection.
    let filler = disk.fill();
    let mut refused = 0;
    let mut stored_while_full: Vec<Uuid> = Vec::new();
    let mut end_accepted = false;
    let mut extends_accepted = 0;
    for i in 0..40 {
        let resp = create(&http, &url, &format!("while full {i}")).await;
        if resp.status() == 201 {
            // SQLite may still have room in pages it owns; such a write is real.
            let id = resp.json::<Value>().await.unwrap()["id"]
                .as_str()
                .unwrap()
                .parse()
                .unwrap();
            stored_while_full.push(id);
            continue;
        }
        let body = assert_problem(resp, &[500, 503], "").await;
        assert!(
            body["instance"]
                .as_str()
                .is_some_and(|i| i.starts_with("urn:nps:request:")),
            "{body}"
        );
        refused += 1;
        // Ending and extending are writes too, smaller than a create: an end
        // appends one row to the journal, an extend rewrites one row. Either
        // may still fit in space the WAL already owns (the frames a refused
        // write left behind it): then it is accepted for real, and checked
        // below and after a restart.
        let end = http
            .delete(format!("{}/{}", sessions_url(&url), kept[0]))
            .send()
            .await
            .unwrap();
        if end.status() == 202 {
            end_accepted = true;
        } else {
            assert_problem(end, &[500, 503], "").await;
        }
        let extend = http
            .post(format!("{}/{}/Extend", sessions_url(&url), kept[1]))
            .json(&5)
            .send()
            .await
            .unwrap();
        if extend.status() == 200 {
            extends_accepted += 1;
        } else {
            assert_problem(extend, &[500, 503], "").await;
        }
        if refused >= 5 {
            break;
        }
    }
    assert!(
        refused >= 5,
        "a full disk refused only {refused} of the writes"
    );
    eprintln!(
        "disk full: {} create(s) still fit in pages SQLite owned, then {refused} refused with 5xx ProblemDetails; \
         the end was {}; {extends_accepted} extend(s) fit",
        stored_while_full.len(),
        if end_accepted { "accepted (journalled)" } else { "refused" }
    );
    // Reads still work, and show nothing of the refused writes, and an end
    // that was accepted.
    let (status, session) = get_session(&http, &url, kept[0]).await;
    let shown: &[&str] = if end_accepted {
        &["Cancelling", "Cancelled"]
    } else {
        &["Active"]
    };
    assert_eq!(status, 200);
    assert!(
        shown.contains(&session["status"].as_str().unwrap_or_default()),
        "{session}"
    );
    // Exactly the extends answered 200 are stored, none of the refused ones.
    let (_, session) = get_session(&http, &url, kept[1]).await;
    assert_eq!(
        session["sessionExtensionCount"], extends_accepted,
        "{session}"
    );
    let log = server
        .log_when(|log| log.contains("storage unavailable"))
        .await;
    assert!(
        log.contains("storage unavailable"),
        "the log does not say why: {log}"
    );

    // Room again: service resumes without a restart.
    std::fs::remove_file(filler).unwrap();
    let resumed = eventually(
        Duration::from_secs(15),
        "a create to succeed after the disk has room",
        || {
            let http = http.clone();
            let url = url.clone();
            async move {
                let resp = create(&http, &url, "after").await;
                (resp.status() == 201).then_some(resp)
            }
        },
    )
    .await;
    let after: Uuid = resumed.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let end = http
        .delete(format!("{}/{}", sessions_url(&url), kept[0]))
        .send()
        .await
        .unwrap();
    assert_eq!(end.status(), 202);

    // Nothing is corrupted: SQLite's own check, and every stored session
    // reads back after one more restart.
    server.kill();
    let conn = rusqlite::Connection::open(server.database()).unwrap();
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    drop(conn);
    server.restart();
    let url = server.url.clone();
    for id in kept.iter().chain(&stored_while_full).chain([&after]) {
        let (status, _) = get_session(&http, &url, *id).await;
        assert_eq!(status, 200, "session {id} did not survive");
    }
    let (_, session) = get_session(&http, &url, kept[1]).await;
    assert_eq!(
        session["sessionExtensionCount"], extends_accepted,
        "the extends answered 200 while the disk was full did not all survive a restart: {session}"
    );
    eventually(
        Duration::from_secs(15),
        "the session ended after the disk had room to be Cancelled",
        || async {
            let (_, s) = get_session(&http, &url, kept[0]).await;
            (s["status"] == "Cancelled").then_some(())
        },
    )
    .await;
    server.kill();
    drop(disk);
}

// ---- an end action that hangs ----------------------------------------------

#[tokio::test]
async fn an_end_action_hanging_past_its_timeout_is_killed_retried_and_blocks_no_one() {
    let server_dir_pids = std::env::temp_dir().join(format!("nps-hang-{}", Uuid::new_v4()));
    std::fs::create_dir_all(&server_dir_pids).unwrap();
    let pids = server_dir_pids.join("pids");
    // Sessions of activity "hang" have an end action that never finishes on
    // its own; every other session's end action returns at once.
    let config = format!(
        "[actions]\nmax_attempts = 2\nbackoff_initial_ms = 100\n\n\
         [[actions.end]]\nkind = \"command\"\nprogram = \"/bin/true\"\n\n\
         [[actions.activity.hang.end]]\nkind = \"command\"\nprogram = \"/bin/sh\"\n\
         args = [\"-c\", \"echo $$ >> {}; exec sleep 60\"]\ntimeout_secs = 5\n",
        pids.display()
    );
    let server = TestServer::start_with(ServerOptions {
        config_toml: Some(config),
        ..Default::default()
    });
    let http = authed_client(&server.admin_token());
    let url = server.url.clone();
    let new = |activity: &'static str| {
        let http = http.clone();
        let url = url.clone();
        async move {
            let s: Value = http
                .post(sessions_url(&url))
                .json(&json!({"activityName": activity}))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            s["id"].as_str().unwrap().parse::<Uuid>().unwrap()
        }
    };
    let hung = new("hang").await;
    let mut others = Vec::new();
    for _ in 0..5 {
        others.push(new("normal").await);
    }

    let t0 = Instant::now();
    let resp = http
        .delete(format!("{}/{hung}", sessions_url(&url)))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    for id in &others {
        let resp = http
            .delete(format!("{}/{id}", sessions_url(&url)))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 202);
    }
    // The others end while the hung action is still running.
    for id in &others {
        eventually(
            Duration::from_secs(10),
            &format!("session {id} to end"),
            || async {
                let (_, s) = get_session(&http, &url, *id).await;
                (s["status"] == "Cancelled").then_some(())
            },
        )
        .await;
    }
    // ... before the hung action's first timeout.
    let (_, h) = get_session(&http, &url, hung).await;
    assert_eq!(h["status"], "Cancelling", "{h}");
    assert!(
        !log_messages(&http, &url, &hung.to_string())
            .await
            .iter()
            .any(|l| l.contains("timed out")),
        "the other sessions ended only after the hung action's timeout ({:?})",
        t0.elapsed()
    );

    // The hung session: killed at 5 s, tried again, killed again, Failed.
    eventually(
        Duration::from_secs(30),
        "the hung session to be Failed",
        || async {
            let (_, s) = get_session(&http, &url, hung).await;
            (s["status"] == "Failed").then_some(())
        },
    )
    .await;
    let elapsed = t0.elapsed();
    assert!(
        elapsed >= Duration::from_secs(10),
        "two 5 s timeouts took {elapsed:?}"
    );
    let lines = log_messages(&http, &url, &hung.to_string()).await;
    let timeouts = lines
        .iter()
        .filter(|l| l.contains("timed out after 5 s and was killed"))
        .count();
    assert_eq!(timeouts, 2, "{lines:#?}");
    assert!(lines.iter().any(|l| l.contains("retrying")), "{lines:#?}");
    assert!(lines.iter().any(|l| l.contains("giving up")), "{lines:#?}");

    // Both hung processes are gone, not left running.
    let started: Vec<String> = std::fs::read_to_string(&pids)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(started.len(), 2, "{started:?}");
    for pid in started {
        let alive = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| !s.contains(") Z "))
            .unwrap_or(false);
        assert!(!alive, "the timed-out action {pid} is still running");
    }
    let _ = std::fs::remove_dir_all(server_dir_pids);
}
