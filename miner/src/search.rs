//! The parallel nonce search: the nonce space split in chunks that the threads of a rayon pool
//! take in turn, a stop check between chunks (so stale work is dropped within milliseconds),
//! an optional hash-rate cap, and hash-rate statistics.

use crate::simulated::Simulation;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use quarry_chain::BlockHeader;

use crate::kernel::{HeaderWork, Kernel, NONCE_SPACE};

/// Most mining threads a miner runs.
pub const MAX_THREADS: usize = 1_024;
/// Nonces a thread takes at once when uncapped: a few milliseconds of work.
const CHUNK: u64 = 1 << 16;
/// Time a chunk should take at most when the rate is capped.
const CAPPED_CHUNK_TIME: Duration = Duration::from_millis(10);
/// Span over which the current hash rate is measured.
const RATE_WINDOW: Duration = Duration::from_secs(5);

/// How a search ended.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum SearchOutcome {
    /// This nonce makes the header meet its target.
    Found(u32),
    /// No nonce in the space searched meets the target.
    Exhausted,
    /// The stop check said the work became stale.
    Stale,
}

/// Hash-rate figures.
#[derive(Clone, Copy, PartialEq, Debug, Default)]
pub struct HashRate {
    /// Hashes per second over the last few seconds.
    pub current: f64,
    /// Hashes per second since the miner started.
    pub average: f64,
    /// Hashes computed since the miner started.
    pub total: u64,
}

/// Counts hashes and measures rates.
#[derive(Debug)]
struct Stats {
    started: Instant,
    total: AtomicU64,
    recent: Mutex<VecDeque<(Instant, u64)>>,
}

impl Stats {
    fn new() -> Self {
        Self {
            started: Instant::now(),
            total: AtomicU64::new(0),
            recent: Mutex::new(VecDeque::new()),
        }
    }

    fn add(&self, hashes: u64) {
        self.total.fetch_add(hashes, Ordering::Relaxed);
        let now = Instant::now();
        let mut recent = self.recent.lock().unwrap_or_else(PoisonError::into_inner);
        recent.push_back((now, hashes));
        while recent
            .front()
            .is_some_and(|(at, _)| now.duration_since(*at) > RATE_WINDOW)
        {
            recent.pop_front();
        }
    }

    fn rate(&self) -> HashRate {
        let now = Instant::now();
        let total = self.total.load(Ordering::Relaxed);
        let recent = self.recent.lock().unwrap_or_else(PoisonError::into_inner);
        let window_hashes: u64 = recent
            .iter()
            .filter(|(at, _)| now.duration_since(*at) <= RATE_WINDOW)
            .map(|(_, hashes)| hashes)
            .sum();
        let window = now
            .duration_since(self.started)
            .min(RATE_WINDOW)
            .as_secs_f64()
            .max(1e-3);
        HashRate {
            current: window_hashes as f64 / window,
            average: total as f64 / now.duration_since(self.started).as_secs_f64().max(1e-3),
            total,
        }
    }
}

/// Paces hashing to at most a given rate: hashes are granted on a schedule that starts when
/// the cap is set; a thread ahead of schedule sleeps. Idle time does not build up credit.
#[derive(Debug)]
struct Pacer {
    rate: u64,
    schedule: Mutex<(Instant, u64)>,
}

impl Pacer {
    fn new(rate: u64) -> Self {
        Self {
            rate: rate.max(1),
            schedule: Mutex::new((Instant::now(), 0)),
        }
    }

    /// When `granted` hashes are due at `rate` per second from `start`.
    fn due(start: Instant, granted: u64, rate: u64) -> Instant {
        start + Duration::from_secs_f64(granted as f64 / rate as f64)
    }

    /// Takes `hashes` from the schedule; returns how long to wait before computing them.
    fn reserve(&self, hashes: u64, now: Instant) -> Duration {
        let mut schedule = self.schedule.lock().unwrap_or_else(PoisonError::into_inner);
        let (start, granted) = *schedule;
        // Behind schedule by more than a chunk's time: restart it rather than allow a burst.
        if Self::due(start, granted, self.rate) + CAPPED_CHUNK_TIME < now {
            *schedule = (now, 0);
        }
        schedule.1 += hashes;
        Self::due(schedule.0, schedule.1, self.rate).saturating_duration_since(now)
    }
}

/// Settings of a [`Miner`].
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct MinerConfig {
    /// Threads searching nonces; 0 means one per CPU.
    pub threads: usize,
    /// The kernel; `None` picks the fastest this CPU runs.
    pub kernel: Option<Kernel>,
    /// Hashes per second at most, for all threads together; `None` is uncapped. With
    /// `simulation`, the virtual hash rate.
    pub max_hash_rate: Option<u64>,
    /// Simulated proof of work, with this seed: no hashing, blocks found as a Poisson process
    /// at `max_hash_rate` (see [`crate::simulated`]). Only for networks whose headers need not
    /// meet their target.
    pub simulation: Option<u64>,
}

/// Why a miner could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MinerError {
    /// More threads than [`MAX_THREADS`] (each is a real OS thread; 100,000 hang start-up).
    #[error("{0} mining threads asked for; at most {MAX_THREADS} (0 means one per CPU)")]
    TooManyThreads(usize),
    /// The thread pool could not be built.
    #[error("cannot start the mining threads: {0}")]
    Threads(#[from] rayon::ThreadPoolBuildError),
    /// The requested kernel needs CPU features this machine lacks.
    #[error("the {kernel} kernel is not supported by this CPU (available: {available})")]
    UnsupportedKernel {
        /// The requested kernel.
        kernel: &'static str,
        /// The kernels this CPU runs.
        available: String,
    },
}

/// A multi-threaded nonce searcher.
#[derive(Debug)]
pub struct Miner {
    kernel: Kernel,
    pool: rayon::ThreadPool,
    pacer: Mutex<Option<std::sync::Arc<Pacer>>>,
    stats: Stats,
    simulation: Option<Simulation>,
}

impl Miner {
    /// A miner with `config`.
    pub fn new(config: MinerConfig) -> Result<Self, MinerError> {
        if config.threads > MAX_THREADS {
            return Err(MinerError::TooManyThreads(config.threads));
        }
        let available = Kernel::available();
        let kernel = config.kernel.unwrap_or(available[0]);
        if !available.contains(&kernel) {
            return Err(MinerError::UnsupportedKernel {
                kernel: kernel.name(),
                available: available
                    .iter()
                    .map(|kernel| kernel.name())
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(config.threads)
            .thread_name(|index| format!("miner-{index}"))
            .build()?;
        let miner = Self {
            kernel,
            pool,
            pacer: Mutex::new(None),
            stats: Stats::new(),
            simulation: config
                .simulation
                .map(|seed| Simulation::new(config.max_hash_rate, seed)),
        };
        if miner.simulation.is_none() {
            miner.set_max_hash_rate(config.max_hash_rate);
        }
        Ok(miner)
    }

    /// The kernel in use.
    pub fn kernel(&self) -> Kernel {
        self.kernel
    }

    /// Threads searching.
    pub fn threads(&self) -> usize {
        self.pool.current_num_threads()
    }

    /// Caps the hash rate of all threads together (`None` removes the cap).
    pub fn set_max_hash_rate(&self, rate: Option<u64>) {
        let pacer = rate.map(|rate| std::sync::Arc::new(Pacer::new(rate)));
        *self.pacer.lock().unwrap_or_else(PoisonError::into_inner) = pacer;
    }

    /// The simulation, when this miner finds blocks by simulated proof of work.
    pub fn simulation(&self) -> Option<&Simulation> {
        self.simulation.as_ref()
    }

    /// Counts `hashes` done (virtual ones, for a simulated miner).
    pub(crate) fn count(&self, hashes: u64) {
        self.stats.add(hashes);
    }

    /// Current and average hash rate.
    pub fn hash_rate(&self) -> HashRate {
        self.stats.rate()
    }

    /// Searches `nonces` (within `0..2^32`) of `header` on all threads. `is_stale` is asked
    /// between chunks of a few milliseconds; when it answers `true` the search stops.
    pub fn search(
        &self,
        header: &BlockHeader,
        nonces: std::ops::Range<u64>,
        is_stale: &(dyn Fn() -> bool + Sync),
    ) -> SearchOutcome {
        let Some(work) = HeaderWork::new(header) else {
            return SearchOutcome::Exhausted;
        };
        let end = nonces.end.min(NONCE_SPACE);
        let next = AtomicU64::new(nonces.start);
        let found = AtomicU64::new(u64::MAX);
        let stale = std::sync::atomic::AtomicBool::new(false);
        let pacer = self
            .pacer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let chunk = pacer.as_ref().map_or(CHUNK, |pacer| {
            (pacer.rate as f64 * CAPPED_CHUNK_TIME.as_secs_f64()).clamp(1.0, CHUNK as f64) as u64
        });
        self.pool.broadcast(|_| loop {
            if found.load(Ordering::Relaxed) != u64::MAX || stale.load(Ordering::Relaxed) {
                return;
            }
            if is_stale() {
                stale.store(true, Ordering::Relaxed);
                return;
            }
            let start = next.fetch_add(chunk, Ordering::Relaxed);
            if start >= end {
                return;
            }
            let range = start..(start + chunk).min(end);
            if let Some(pacer) = &pacer {
                std::thread::sleep(pacer.reserve(range.end - range.start, Instant::now()));
            }
            let hit = self.kernel.first_hit(&work, range.clone());
            self.stats.add(range.end - range.start);
            if let Some(nonce) = hit {
                found.fetch_min(u64::from(nonce), Ordering::Relaxed);
            }
        });
        match found.load(Ordering::Relaxed) {
            u64::MAX if stale.load(Ordering::Relaxed) => SearchOutcome::Stale,
            u64::MAX => SearchOutcome::Exhausted,
            nonce => SearchOutcome::Found(nonce as u32),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pacer_spaces_grants_at_the_capped_rate_without_idle_credit() {
        let pacer = Pacer::new(1_000);
        let start = pacer.schedule.lock().unwrap().0;
        // 500 hashes at 1,000/s are due half a second after the start.
        let wait = pacer.reserve(500, start);
        assert_eq!(wait, Duration::from_millis(500));
        // The next 500 are due one second after the start.
        let wait = pacer.reserve(500, start + Duration::from_millis(500));
        assert_eq!(wait, Duration::from_millis(500));
        // After ten idle seconds the schedule restarts: no burst of saved-up hashes.
        let later = start + Duration::from_secs(11);
        assert_eq!(pacer.reserve(100, later), Duration::from_millis(100));
    }

    #[test]
    fn statistics_count_every_hash() {
        let stats = Stats::new();
        stats.add(1_000);
        stats.add(500);
        let rate = stats.rate();
        assert_eq!(rate.total, 1_500);
        assert!(rate.current > 0.0 && rate.average > 0.0);
    }
}
