//! [`delay_line`]: the emulated network for one direction of an ordered stream. Each message is judged the
//! moment it is sent and then held for its one-way delay, but never delivered before the message sent ahead of
//! it, as on a TCP connection: many messages are in flight at once and none overtakes another. A lost or
//! blocked message breaks the stream, as a reset connection would; nothing after it is delivered.

use std::time::Duration;

use futures::stream::{BoxStream, StreamExt};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_stream::wrappers::UnboundedReceiverStream;

use super::gate::Undelivered;

/// Carries `input` through the emulated link whose verdicts `judge` gives. The output yields each message at
/// its delivery time, or one `Err` in place of the first undelivered message and then ends. The input is read
/// as fast as it produces (by a task that stops once the output is dropped), so a slow link never slows the
/// sender, only the receiver.
pub fn delay_line<T, J>(mut input: BoxStream<'static, T>, judge: J) -> BoxStream<'static, Result<T, Undelivered>>
where
    T: Send + 'static,
    J: Fn() -> Result<Duration, Undelivered> + Send + 'static,
{
    let (tx, rx) = mpsc::unbounded_channel::<(Instant, Result<T, Undelivered>)>();
    tokio::spawn(async move {
        let mut last_due = Instant::now();
        loop {
            let next = tokio::select! {
                next = input.next() => next,
                () = tx.closed() => return,
            };
            let Some(message) = next else { return };
            let now = Instant::now();
            let verdict = judge();
            let broken = verdict.is_err();
            let item = verdict.map(|delay| {
                last_due = last_due.max(now + delay);
                message
            });
            let due = if broken { now.max(last_due) } else { last_due };
            if tx.send((due, item)).is_err() || broken {
                return;
            }
        }
    });
    UnboundedReceiverStream::new(rx)
        .then(|(due, item)| async move {
            // A timer, even one already due, fires on the timer's next millisecond tick: never arm one needlessly.
            if due > Instant::now() {
                tokio::time::sleep_until(due).await;
            }
            item
        })
        .boxed()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use futures::stream;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn messages_are_in_flight_together_and_keep_their_order() {
        // 10 messages sent at once over a 30 ms link arrive together after 30 ms, not one per 30 ms.
        let start = Instant::now();
        let out: Vec<_> = delay_line(stream::iter(0..10).boxed(), || Ok(Duration::from_millis(30))).collect().await;
        assert_eq!(out.into_iter().map(Result::unwrap).collect::<Vec<_>>(), (0..10).collect::<Vec<_>>());
        assert_eq!(start.elapsed(), Duration::from_millis(30));
    }

    #[tokio::test(start_paused = true)]
    async fn a_short_delay_never_overtakes_a_longer_one_sent_earlier() {
        let delays = [50u64, 5, 20];
        let n = Arc::new(AtomicUsize::new(0));
        let judge = move || Ok(Duration::from_millis(delays[n.fetch_add(1, Ordering::SeqCst)]));
        let start = Instant::now();
        let mut out = delay_line(stream::iter([1, 2, 3]).boxed(), judge);
        let mut arrivals = Vec::new();
        while let Some(item) = out.next().await {
            arrivals.push((item.unwrap(), start.elapsed().as_millis()));
        }
        assert_eq!(arrivals, vec![(1, 50), (2, 50), (3, 50)], "2 and 3 wait behind 1");
    }

    #[tokio::test(start_paused = true)]
    async fn a_lost_message_breaks_the_stream_and_nothing_after_it_arrives() {
        let n = Arc::new(AtomicUsize::new(0));
        let judge = move || match n.fetch_add(1, Ordering::SeqCst) {
            2 => Err(Undelivered::Dropped("third".into())),
            _ => Ok(Duration::from_millis(1)),
        };
        let out: Vec<_> = delay_line(stream::iter(0..10).boxed(), judge).collect().await;
        assert_eq!(out.len(), 3, "two delivered, then the break: {out:?}");
        assert_eq!((out[0].clone().unwrap(), out[1].clone().unwrap()), (0, 1));
        assert_eq!(out[2], Err(Undelivered::Dropped("third".into())));
    }

    #[tokio::test(start_paused = true)]
    async fn dropping_the_output_stops_reading_an_idle_input() {
        let (tx, rx) = mpsc::unbounded_channel::<u32>();
        let out = delay_line(UnboundedReceiverStream::new(rx).boxed(), || Ok(Duration::ZERO));
        drop(out);
        // The reader task notices the closed output and drops the input, closing the channel. With the clock
        // paused, the timeout fires at once if nothing else can happen, so a reader that never notices fails the
        // test instead of hanging it.
        let closed = tokio::time::timeout(Duration::from_secs(60), tx.closed()).await;
        assert!(closed.is_ok(), "the input was never dropped");
        assert!(tx.is_closed());
    }
}
