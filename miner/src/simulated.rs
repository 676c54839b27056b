//! Simulated proof of work: on a network whose headers need not meet their target, a miner
//! with a virtual hash rate finds blocks as a Poisson process. The wait for the next block is
//! exponential with mean (work of the target) / (virtual hash rate), drawn from a seeded
//! generator; a template that goes stale (the tip moved) is simply dropped and the wait drawn
//! afresh, which the exponential's lack of memory makes exact. Shares between miners are then
//! exactly their rates' shares, and no CPU is spent hashing.

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};

/// How often a waiting miner looks whether its template went stale.
const STALE_CHECK: Duration = Duration::from_millis(2);

/// A virtual miner's clock.
#[derive(Debug)]
pub struct Simulation {
    /// Virtual hashes per second (`None`: blocks only on demand, through `generate`).
    rate: Option<f64>,
    rng: Mutex<rand::rngs::StdRng>,
}

/// How a simulated search ended.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Wait {
    /// The block is found, after this long.
    Found(Duration),
    /// The template went stale after this long.
    Stale(Duration),
    /// No virtual hash rate: nothing is ever found in the background.
    NoRate,
}

impl Simulation {
    /// A simulation at `rate` virtual hashes per second, drawing from `seed`.
    pub fn new(rate: Option<u64>, seed: u64) -> Self {
        Self {
            rate: rate.map(|rate| rate as f64),
            rng: Mutex::new(rand::rngs::StdRng::seed_from_u64(seed)),
        }
    }

    /// Virtual hashes per second.
    pub fn rate(&self) -> Option<f64> {
        self.rate
    }

    /// The time until the next block for a target worth `work` hashes: exponential with mean
    /// `work / rate`.
    pub fn draw(&self, work: f64) -> Option<Duration> {
        let rate = self.rate.filter(|rate| *rate > 0.0)?;
        // 1 - u lies in (0, 1]: its logarithm is finite.
        let u: f64 = self
            .rng
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .random();
        let seconds = -(1.0 - u).ln() * work / rate;
        Some(Duration::from_secs_f64(seconds.min(1e9)))
    }

    /// Waits for the next block on a target worth `work` hashes, or until `is_stale`.
    pub fn wait(&self, work: f64, is_stale: &(dyn Fn() -> bool + Sync)) -> Wait {
        let Some(wait) = self.draw(work) else {
            return Wait::NoRate;
        };
        let started = Instant::now();
        let due = started + wait;
        loop {
            if is_stale() {
                return Wait::Stale(started.elapsed());
            }
            let now = Instant::now();
            if now >= due {
                return Wait::Found(started.elapsed());
            }
            std::thread::sleep((due - now).min(STALE_CHECK));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_are_exponential_with_the_mean_of_work_over_rate() {
        let simulation = Simulation::new(Some(1_000), 7);
        let draws: Vec<f64> = (0..20_000)
            .map(|_| simulation.draw(2_000.0).unwrap().as_secs_f64())
            .collect();
        let mean = draws.iter().sum::<f64>() / draws.len() as f64;
        // Mean 2 s; the standard error of 20,000 draws is 2/√20000 ≈ 0.014 s.
        assert!((mean - 2.0).abs() < 0.06, "{mean}");
        // Exponential: P(wait > mean) = e^-1.
        let above = draws.iter().filter(|d| **d > 2.0).count() as f64 / draws.len() as f64;
        assert!((above - (-1.0f64).exp()).abs() < 0.02, "{above}");
        // The same seed draws the same waits.
        let again = Simulation::new(Some(1_000), 7);
        assert_eq!(
            again.draw(2_000.0),
            Simulation::new(Some(1_000), 7).draw(2_000.0)
        );
        assert_eq!(Simulation::new(None, 7).draw(2_000.0), None);
    }

    #[test]
    fn a_stale_template_ends_the_wait_at_once() {
        let simulation = Simulation::new(Some(1), 1);
        // A mean of 10^6 s: only staleness ends it.
        assert!(matches!(simulation.wait(1e6, &|| true), Wait::Stale(_)));
        assert_eq!(Simulation::new(None, 1).wait(1.0, &|| false), Wait::NoRate);
    }
}
