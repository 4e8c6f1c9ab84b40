//! The session lifecycle engine: starts sessions at their scheduled start,
//! ends them at their scheduled end or when DeleteAsync asks, and runs the
//! configured start and end actions in order, with retries.
//!
//! Everything it owes is in the database (a session's `work`), never only in
//! memory: timers are derived from scheduled times and `work_due`, and on
//! start-up every session with work (e.g. one left Cancelling by a crash) is
//! picked up again. It is woken the moment a request commits work, so ending
//! ASAP has no polling interval. At most `workers` pipelines of start work
//! and `workers` of end work run at once, in pools of their own: a grant
//! that hangs never holds up a revocation.

pub mod actions;
pub mod state;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use nps_api::ActionLogType;
use slog::{error, info, Logger};
use tokio::sync::{Notify, Semaphore};
use uuid::Uuid;

use crate::config::ActionsConfig;
use crate::store::{Actor, NoEndActions, Store, StoreError};
use state::{Event, Phase};

/// Sessions promoted per database round trip when many are due at once.
const PROMOTE_BATCH: u32 = 500;
/// The engine looks at the database at least this often even when idle.
const IDLE_WAKE: Duration = Duration::from_secs(30);

pub struct Engine {
    store: Arc<dyn Store>,
    config: Arc<ActionsConfig>,
    /// Built once from `config`, handed to the store on every tick.
    no_end_actions: NoEndActions,
    notify: Notify,
    /// Sessions whose pipeline is dispatched, with the phase of the work
    /// they were dispatched for (the pool they take a permit from).
    in_flight: Mutex<HashMap<Uuid, Phase>>,
    /// Sessions whose pipeline runs now, each with the signal that an end
    /// was requested meanwhile: a start action still running is stopped
    /// then, so the end actions run at once rather than after it.
    ending: Mutex<HashMap<Uuid, Arc<Notify>>>,
    start_permits: Arc<Semaphore>,
    end_permits: Arc<Semaphore>,
    http: reqwest::Client,
    log: Logger,
    /// Actions running right now (for the log).
    running: AtomicUsize,
    /// Set by [`Engine::stop`]: no new pipeline or action starts.
    stopping: AtomicBool,
}

impl Engine {
    pub fn new(store: Arc<dyn Store>, config: ActionsConfig, log: Logger) -> Arc<Engine> {
        let workers = config.workers;
        let config = Arc::new(config);
        let lists = Arc::clone(&config);
        Arc::new(Engine {
            store,
            config,
            no_end_actions: Arc::new(move |name| lists.lists_for(name).end.is_empty()),
            notify: Notify::new(),
            in_flight: Mutex::new(HashMap::new()),
            ending: Mutex::new(HashMap::new()),
            start_permits: Arc::new(Semaphore::new(workers)),
            end_permits: Arc::new(Semaphore::new(workers)),
            // A webhook answering a redirect has not taken the session:
            // following it would turn the POST into a GET elsewhere.
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .user_agent(concat!("nps-server/", env!("CARGO_PKG_VERSION")))
                .build()
                .expect("the webhook HTTP client builds"),
            log,
            running: AtomicUsize::new(0),
            stopping: AtomicBool::new(false),
        })
    }

    /// Whether sessions of this activity have start actions.
    pub fn has_start_actions(&self, activity_name: Option<&str>) -> bool {
        !self.config.lists_for(activity_name).start.is_empty()
    }

    /// Tells the engine that work was committed: it looks now.
    pub fn wake(&self) {
        self.notify.notify_one();
    }

    /// Tells the engine that `id`'s end was requested and committed: a start
    /// action of it still running is stopped (ASAP: the end actions, keyed
    /// and repeatable, then revoke whatever it granted), and it looks now.
    pub fn end_requested(&self, id: Uuid) {
        if let Some(ending) = self.ending.lock().expect("ending signals").get(&id) {
            ending.notify_one();
        }
        self.wake();
    }

    /// Stops the engine for a server that was told to stop: no new action
    /// starts; the running ones get `grace` to finish (and have their
    /// outcome recorded), then their process groups are killed. A killed
    /// action is not a failed one: its session's work stays owed, as after
    /// a crash, and it runs again (same `NPS_ACTION_KEY`) at the next start.
    pub async fn stop(&self, grace: Duration) {
        self.begin_stop();
        let idle = || self.in_flight.lock().expect("in-flight set").is_empty();
        let until = |limit: Duration| async move {
            let deadline = tokio::time::Instant::now() + limit;
            while !idle() && tokio::time::Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        };
        until(grace).await;
        if !idle() {
            let killed = actions::kill_running();
            info!(self.log, "stopping: running actions killed; they run again at the next start";
                "killed" => killed, "grace_secs" => grace.as_secs());
            // Their pipelines see the kill and return without recording it.
            until(Duration::from_secs(2)).await;
        }
    }

    /// From now on no pipeline or action starts (see [`Engine::stop`]).
    pub fn begin_stop(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        self.wake();
    }

    fn stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    /// Runs the engine until the process ends.
    pub fn start(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let engine = Arc::clone(self);
        tokio::spawn(async move { engine.run().await })
    }

    async fn run(self: Arc<Self>) {
        info!(self.log, "lifecycle engine started"; "workers" => self.config.workers);
        loop {
            let wait = match self.tick().await {
                Ok(wait) => wait,
                Err(e) => {
                    error!(self.log, "lifecycle engine cannot reach storage; retrying in 1 s"; "error" => %e);
                    Duration::from_secs(1)
                }
            };
            if wait.is_zero() {
                tokio::task::yield_now().await;
                continue;
            }
            let _ = tokio::time::timeout(wait, self.notify.notified()).await;
        }
    }

    /// One look at the database: promote what is due, dispatch runnable
    /// work, and answer how long to sleep.
    async fn tick(self: &Arc<Self>) -> Result<Duration, StoreError> {
        if self.stopping() {
            return Ok(IDLE_WAKE);
        }
        // Ends DeleteAsync journalled become the sessions' work (one slice;
        // the next tick takes the next).
        // A failure here must not stop scheduled starts and ends below.
        let more_ends = match self
            .store
            .apply_end_requests(Arc::clone(&self.no_end_actions))
            .await
        {
            Ok(outcome) => {
                for (session, reason) in &outcome.failed {
                    error!(self.log, "a journalled end cannot be applied; it stays journalled";
                        "session" => %session, "error" => reason);
                }
                outcome.more
            }
            Err(e) => {
                error!(self.log, "cannot apply journalled ends now; retrying on the next pass";
                    "error" => %e);
                false
            }
        };
        let now = Utc::now();
        let promoted = self
            .store
            .promote_due(now, PROMOTE_BATCH, &|name| self.has_start_actions(name))
            .await?;
        if promoted.started + promoted.ending > 0 {
            info!(self.log, "scheduled transitions"; "started" => promoted.started, "ending" => promoted.ending);
        }

        // Runnable work beyond what is dispatched now is picked up when a
        // running pipeline finishes (it wakes the engine). Ends and starts
        // are counted apart, ends first: a flood of grants waiting for
        // workers never keeps a revocation from being dispatched.
        let want = self.config.workers * 4;
        let busy = |phase: Phase| {
            self.in_flight
                .lock()
                .expect("in-flight set")
                .values()
                .filter(|p| **p == phase)
                .count()
        };
        let (busy_ends, busy_starts) = (busy(Phase::End), busy(Phase::Start));
        if busy_ends < want || busy_starts < want {
            let limit = busy_ends.max(busy_starts) + want;
            let due = self.store.runnable(now, limit as u32).await?;
            let (mut ends, mut starts) = (busy_ends, busy_starts);
            for (id, phase) in due {
                let count = match phase {
                    Phase::End => &mut ends,
                    Phase::Start => &mut starts,
                };
                if *count >= want {
                    continue;
                }
                let mut in_flight = self.in_flight.lock().expect("in-flight set");
                if in_flight.contains_key(&id) {
                    continue;
                }
                in_flight.insert(id, phase);
                drop(in_flight);
                *count += 1;
                let engine = Arc::clone(self);
                tokio::spawn(async move {
                    engine.run_session(id, phase).await;
                    engine.in_flight.lock().expect("in-flight set").remove(&id);
                    engine.wake();
                });
            }
        }
        if promoted.more || more_ends {
            return Ok(Duration::ZERO);
        }
        // Sleep until the next scheduled start, end or retry even while the
        // workers are saturated: promoting a due session needs no worker.
        let now = Utc::now();
        Ok(match self.store.next_due(now).await? {
            Some(t) if t <= now => Duration::ZERO,
            Some(t) => (t - now).to_std().unwrap_or_default().min(IDLE_WAKE),
            None => IDLE_WAKE,
        })
    }

    /// Runs a session's pending work as far as it can go now.
    async fn run_session(self: &Arc<Self>, id: Uuid, phase: Phase) {
        // Before the permit, and so before the session is read: an end
        // requested from now on is seen. One requested while this waits
        // for a start worker takes an end worker instead, rather than
        // waiting behind grants.
        let ending = Arc::new(Notify::new());
        self.ending
            .lock()
            .expect("ending signals")
            .insert(id, Arc::clone(&ending));
        let permit = match phase {
            Phase::End => Arc::clone(&self.end_permits).acquire_owned().await,
            Phase::Start => tokio::select! {
                permit = Arc::clone(&self.start_permits).acquire_owned() => permit,
                () = ending.notified() => Arc::clone(&self.end_permits).acquire_owned().await,
            },
        };
        let Ok(_permit) = permit else {
            self.ending.lock().expect("ending signals").remove(&id);
            return;
        };
        let advanced = self.advance(id, &ending).await;
        self.ending.lock().expect("ending signals").remove(&id);
        if let Err(e) = advanced {
            error!(self.log, "session pipeline interrupted; it resumes on the next pass";
                "session" => %id, "error" => %e);
        }
    }

    /// Runs `id`'s work until it is done, waits for a retry, or the server
    /// stops. `ending` fires when an end is requested meanwhile.
    async fn advance(&self, id: Uuid, ending: &Notify) -> Result<(), StoreError> {
        let system = Actor::system();
        loop {
            let Some(stored) = self.store.session(id).await? else {
                return Ok(());
            };
            let Some(work) = stored.work.clone() else {
                return Ok(());
            };
            if work.due > Utc::now() {
                return Ok(());
            }
            let session = &stored.session;
            let lists = self.config.lists_for(session.activity_name.as_deref());
            let list = match work.phase {
                Phase::Start => &lists.start,
                Phase::End => &lists.end,
            };
            let phase = work.phase.as_str();
            let index = work.next_action;
            let Some(action) = list.get(index as usize) else {
                let (event, message) = state::pipeline_finished(work.phase, list.len());
                self.store.apply(id, event, &system, Some(message)).await?;
                continue;
            };
            if self.stopping() {
                return Ok(());
            }
            let label = format!(
                "{phase} action {} of {} ({})",
                index + 1,
                list.len(),
                action.kind()
            );
            self.store
                .log(
                    id,
                    ActionLogType::Debug,
                    format!(
                        "{label} running, attempt {} of {}",
                        work.attempts + 1,
                        self.config.max_attempts
                    ),
                )
                .await?;
            // The log line above may have waited for the writer.
            if self.stopping() {
                return Ok(());
            }
            let invocation = actions::Invocation {
                session,
                phase: work.phase,
                index,
            };
            let now_running = self.running.fetch_add(1, Ordering::SeqCst) + 1;
            slog::debug!(self.log, "action started"; "session" => %id, "action" => &label, "running" => now_running);
            let run = actions::run(action, &invocation, &self.http);
            let result = match work.phase {
                // Dropping the action kills its program's process group (or
                // abandons its webhook request).
                Phase::Start => tokio::select! {
                    result = run => Some(result),
                    () = ending.notified() => None,
                },
                Phase::End => Some(run.await),
            };
            self.running.fetch_sub(1, Ordering::SeqCst);
            let Some(result) = result else {
                // Not an attempt: the end is now the session's work.
                self.store
                    .log(
                        id,
                        ActionLogType::Info,
                        format!("{label} stopped: the session is ending"),
                    )
                    .await?;
                continue;
            };
            if result.is_err() && actions::killed_at_stop() {
                // Killed by `stop`: not an attempt; it runs again at the next
                // start. Said in the session's log, where its owner looks.
                self.store
                    .log(
                        id,
                        ActionLogType::Warn,
                        format!(
                            "{label} stopped: the server was stopping; it runs again, as \
                             the same attempt, when the server starts"
                        ),
                    )
                    .await?;
                return Ok(());
            }
            match result {
                Ok(output) => {
                    self.record(
                        id,
                        Event::ActionSucceeded {
                            phase: work.phase,
                            index,
                        },
                        ActionLogType::Info,
                        format!("{label} succeeded: {output}"),
                    )
                    .await?;
                }
                Err(reason) => {
                    let attempts = work.attempts + 1;
                    if attempts >= self.config.max_attempts {
                        let event = match work.phase {
                            Phase::Start => Event::StartFailed,
                            Phase::End => Event::EndFailed,
                        };
                        self.record(
                            id,
                            event,
                            ActionLogType::Error,
                            format!("{label} failed {attempts} time(s), giving up: {reason}"),
                        )
                        .await?;
                        continue;
                    }
                    let delay = self.config.backoff(attempts);
                    let retry_at = Utc::now()
                        + chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::seconds(1));
                    self.record(
                        id,
                        Event::ActionWillRetry {
                            phase: work.phase,
                            index,
                            attempts,
                            retry_at,
                        },
                        ActionLogType::Warn,
                        format!(
                            "{label} failed (attempt {attempts} of {}), retrying in {} ms: {reason}",
                            self.config.max_attempts,
                            delay.as_millis()
                        ),
                    )
                    .await?;
                    // The permit is released; the engine comes back at retry_at.
                    return Ok(());
                }
            }
        }
    }

    /// Records an action's outcome. When the session moved on meanwhile (an
    /// end requested as a start action finished), the outcome is no longer
    /// its progress, but what the action did still goes into its log.
    async fn record(
        &self,
        id: Uuid,
        event: Event,
        level: ActionLogType,
        message: String,
    ) -> Result<(), StoreError> {
        let applied = self
            .store
            .apply(id, event, &Actor::system(), Some(message.clone()))
            .await?;
        if !applied.changed {
            self.store
                .log(
                    id,
                    level,
                    format!(
                        "{message} (the session had moved on: {})",
                        applied.session.session.status
                    ),
                )
                .await?;
        }
        Ok(())
    }
}
