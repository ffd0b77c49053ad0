//! The async runtime openraft runs on: tokio, with the one source of randomness openraft uses (its
//! election-timeout draws) made seedable.
//!
//! openraft asks the runtime for a random number generator whenever it picks an election timeout.
//! With tokio's thread-local generator a simulated cluster could never replay a seed, so Meridian's
//! runtime draws from a per-thread SplitMix64 stream instead: seeded from the operating system on
//! first use in a real server, and set explicitly with [`seed_thread_rng`] by the simulation (which
//! runs every simulated member on one thread).

use std::cell::Cell;
use std::future::Future;
use std::time::Duration;

use meridian_types::SplitMix64;
use openraft::rt::{AsyncRuntime, OptionalSend};
use openraft_rt_tokio::TokioRuntime;
use rand::SeedableRng;
use rand::rngs::SmallRng;

thread_local! {
    /// The next seed handed out on this thread; `None` until first use or [`seed_thread_rng`].
    static NEXT_SEED: Cell<Option<SplitMix64>> = const { Cell::new(None) };
}

/// Seed this thread's generator: every later draw on this thread follows from `seed`.
pub fn seed_thread_rng(seed: u64) {
    NEXT_SEED.with(|s| s.set(Some(SplitMix64::new(seed))));
}

/// The seed of the next generator handed out on this thread.
fn next_seed() -> u64 {
    NEXT_SEED.with(|s| {
        let mut stream = s.get().unwrap_or_else(|| SplitMix64::new(rand::random()));
        let seed = stream.next_u64();
        s.set(Some(stream));
        seed
    })
}

/// tokio with seedable randomness; see the module comment.
#[derive(Debug)]
pub struct MeridianRuntime {
    inner: TokioRuntime,
}

impl AsyncRuntime for MeridianRuntime {
    type JoinError = <TokioRuntime as AsyncRuntime>::JoinError;
    type JoinHandle<T: OptionalSend + 'static> = <TokioRuntime as AsyncRuntime>::JoinHandle<T>;
    type Sleep = <TokioRuntime as AsyncRuntime>::Sleep;
    type Instant = <TokioRuntime as AsyncRuntime>::Instant;
    type TimeoutError = <TokioRuntime as AsyncRuntime>::TimeoutError;
    type Timeout<R, T: Future<Output = R> + OptionalSend> = <TokioRuntime as AsyncRuntime>::Timeout<R, T>;
    type ThreadLocalRng = SmallRng;
    type Mpsc = <TokioRuntime as AsyncRuntime>::Mpsc;
    type Watch = <TokioRuntime as AsyncRuntime>::Watch;
    type Oneshot = <TokioRuntime as AsyncRuntime>::Oneshot;
    type Mutex<T: OptionalSend + 'static> = <TokioRuntime as AsyncRuntime>::Mutex<T>;

    fn spawn<T>(future: T) -> Self::JoinHandle<T::Output>
    where
        T: Future + OptionalSend + 'static,
        T::Output: OptionalSend + 'static,
    {
        TokioRuntime::spawn(future)
    }

    fn sleep(duration: Duration) -> Self::Sleep {
        TokioRuntime::sleep(duration)
    }

    fn sleep_until(deadline: Self::Instant) -> Self::Sleep {
        TokioRuntime::sleep_until(deadline)
    }

    fn timeout<R, F: Future<Output = R> + OptionalSend>(duration: Duration, future: F) -> Self::Timeout<R, F> {
        TokioRuntime::timeout(duration, future)
    }

    fn timeout_at<R, F: Future<Output = R> + OptionalSend>(deadline: Self::Instant, future: F) -> Self::Timeout<R, F> {
        TokioRuntime::timeout_at(deadline, future)
    }

    fn is_panic(join_error: &Self::JoinError) -> bool {
        TokioRuntime::is_panic(join_error)
    }

    fn thread_rng() -> Self::ThreadLocalRng {
        SmallRng::seed_from_u64(next_seed())
    }

    fn new(threads: usize) -> Self {
        MeridianRuntime { inner: TokioRuntime::new(threads) }
    }

    fn block_on<F, T>(&mut self, future: F) -> T
    where
        F: Future<Output = T>,
    {
        self.inner.block_on(future)
    }
}

#[cfg(test)]
mod tests {
    use rand::RngExt;

    use super::*;

    fn draws() -> Vec<u64> {
        (0..4).map(|_| MeridianRuntime::thread_rng().random_range(150..300)).collect()
    }

    #[test]
    fn a_seed_replays_the_same_draws_and_another_seed_differs() {
        seed_thread_rng(7);
        let first = draws();
        seed_thread_rng(7);
        assert_eq!(draws(), first);
        seed_thread_rng(8);
        assert_ne!(draws(), first);
    }
}
