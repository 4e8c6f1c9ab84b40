//! The size of the database's write-ahead log while a run goes on: a thread
//! reads `<database>-wal`'s length every 10 ms and keeps the largest.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

pub struct Sampler {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<u64>,
}

impl Sampler {
    pub fn start(database: &Path) -> Sampler {
        let mut name = database.as_os_str().to_owned();
        name.push("-wal");
        let wal = std::path::PathBuf::from(name);
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut peak = 0;
            loop {
                // A WAL that does not exist (yet) is empty.
                let len = std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
                peak = peak.max(len);
                if flag.load(Ordering::Relaxed) {
                    return peak;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        });
        Sampler { stop, thread }
    }

    /// Stops sampling; answers the largest size seen, in bytes.
    pub fn stop(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap_or(0)
    }
}
