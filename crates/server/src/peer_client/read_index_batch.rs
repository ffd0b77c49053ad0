//! Coalesces the ReadIndex calls a follower makes to one leader.
//!
//! A linearizable read served by a follower needs a read index the leader handed out *after* the read arrived.
//! Reads are gathered in rounds: a round takes every read waiting at that moment and then makes one call, so
//! the call leaves after each of its reads arrived and its index serves them all. A read that arrives while a
//! call is in flight waits for the next round, because the call in flight may be answered from a commit index
//! older than its arrival. Under load this is one call per round trip instead of one per read.

use std::future::Future;
use std::sync::Arc;

use meridian_types::EtcdError;
use parking_lot::Mutex;
use tokio::sync::oneshot;

use super::call_error::CallError;

/// What a read learns: the leader's read index, or how the call failed.
type Outcome = Result<u64, CallError>;

/// The rounds of ReadIndex calls to one leader.
#[derive(Default)]
pub struct ReadIndexBatcher {
    state: Mutex<Rounds>,
}

#[derive(Default)]
struct Rounds {
    /// A task is making calls; it takes `waiting` before each one.
    running: bool,
    waiting: Vec<oneshot::Sender<Outcome>>,
}

impl ReadIndexBatcher {
    /// A batcher with no read waiting.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// The leader's read index for a read arriving now. `call` makes one ReadIndex call; when no round is
    /// running, a task is spawned that keeps calling it (the first waiting read's `call`: every read of one
    /// batcher targets the same leader) until no read is left waiting.
    pub async fn read_index<F, Fut>(self: &Arc<Self>, call: F) -> Outcome
    where
        F: FnMut() -> Fut + Send + 'static,
        Fut: Future<Output = Outcome> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let start = {
            let mut state = self.state.lock();
            state.waiting.push(tx);
            !std::mem::replace(&mut state.running, true)
        };
        if start {
            tokio::spawn(self.clone().run(call));
        }
        rx.await.unwrap_or(Err(CallError::Etcd(EtcdError::Timeout)))
    }

    async fn run<F, Fut>(self: Arc<Self>, mut call: F)
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Outcome>,
    {
        loop {
            let round = {
                let mut state = self.state.lock();
                if state.waiting.is_empty() {
                    state.running = false;
                    return;
                }
                std::mem::take(&mut state.waiting)
            };
            let outcome = call().await;
            for read in round {
                let _ = read.send(outcome.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};

    use futures::future::join_all;
    use tokio::sync::Semaphore;

    use super::*;

    /// A leader whose every answer waits for a permit; answers count up from 10.
    #[derive(Clone)]
    struct Leader {
        calls: Arc<AtomicU64>,
        permits: Arc<Semaphore>,
    }

    impl Leader {
        fn new() -> Self {
            Leader { calls: Arc::new(AtomicU64::new(0)), permits: Arc::new(Semaphore::new(0)) }
        }

        fn call(&self) -> impl FnMut() -> std::pin::Pin<Box<dyn Future<Output = Outcome> + Send>> + Send + 'static {
            let leader = self.clone();
            move || {
                let leader = leader.clone();
                Box::pin(async move {
                    let n = leader.calls.fetch_add(1, Ordering::SeqCst);
                    leader.permits.acquire().await.map_err(|_| CallError::Etcd(EtcdError::Stopped))?.forget();
                    Ok(10 + n)
                })
            }
        }
    }

    #[tokio::test]
    async fn reads_waiting_together_share_one_call() {
        let (batcher, leader) = (ReadIndexBatcher::new(), Leader::new());
        leader.permits.add_permits(1);
        let reads = join_all((0..50).map(|_| batcher.read_index(leader.call()))).await;
        assert!(reads.iter().all(|r| *r == Ok(10)), "{reads:?}");
        assert_eq!(leader.calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_read_arriving_during_a_call_waits_for_the_next_one() {
        let (batcher, leader) = (ReadIndexBatcher::new(), Leader::new());
        let first = tokio::spawn({
            let (b, l) = (batcher.clone(), leader.clone());
            async move { b.read_index(l.call()).await }
        });
        while leader.calls.load(Ordering::SeqCst) == 0 {
            tokio::task::yield_now().await;
        }
        // The first call is in flight: a read arriving now must not take its answer.
        let late = tokio::spawn({
            let (b, l) = (batcher.clone(), leader.clone());
            async move { b.read_index(l.call()).await }
        });
        while batcher.state.lock().waiting.is_empty() {
            tokio::task::yield_now().await;
        }
        leader.permits.add_permits(2);
        assert_eq!(first.await.unwrap(), Ok(10));
        assert_eq!(late.await.unwrap(), Ok(11), "the late read is served by a call made after it arrived");
        assert_eq!(leader.calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_failed_call_fails_its_round_and_the_next_read_calls_again() {
        let (batcher, leader) = (ReadIndexBatcher::new(), Leader::new());
        leader.permits.close();
        let reads = join_all((0..3).map(|_| batcher.read_index(leader.call()))).await;
        assert_eq!(reads, vec![Err(CallError::Etcd(EtcdError::Stopped)); 3]);
        let fresh = Leader::new();
        fresh.permits.add_permits(1);
        assert_eq!(batcher.read_index(fresh.call()).await, Ok(10), "a new round starts after a failed one");
    }
}
