//! The freshness gate on its own, with reads the test answers (or fails) itself and tokio's
//! paused clock: the paths a healthy nats-server never takes — reads that fail, reads that hang
//! — and the rule that a read releases only the calls received before it was sent.

use std::sync::{Arc, Mutex};
use std::time::Duration;
use switchboard_projections::ProjectionError;
use switchboard_router::freshness::{Bound, Gate, READ_TIMEOUT, ReadLastSeq, Released};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

type Answer = oneshot::Sender<Result<u64, ProjectionError>>;

/// A reader whose every read waits for the test to answer it through the returned channel.
fn answered_by_test() -> (ReadLastSeq, mpsc::UnboundedReceiver<Answer>) {
    let (reads, pending) = mpsc::unbounded_channel::<Answer>();
    let reader: ReadLastSeq = Arc::new(move || {
        let (answer, answered) = oneshot::channel();
        reads.send(answer).unwrap();
        Box::pin(async move {
            answered.await.unwrap_or_else(|_| {
                Err(ProjectionError::Nats {
                    action: "read".into(),
                    reason: "answer dropped".into(),
                })
            })
        })
    });
    (reader, pending)
}

/// A reader that fails every read at once, counting them.
fn failing(reads: Arc<Mutex<u32>>) -> ReadLastSeq {
    Arc::new(move || {
        *reads.lock().unwrap() += 1;
        Box::pin(async {
            Err(ProjectionError::Nats {
                action: "read SETTINGS".into(),
                reason: "no responders".into(),
            })
        })
    })
}

fn summary(released: &[Released<&'static str>]) -> Vec<(&'static str, Bound)> {
    released.iter().map(|r| (r.message, r.bound)).collect()
}

#[tokio::test(start_paused = true)]
async fn a_read_releases_only_the_calls_received_before_it_was_sent() {
    releases_only_the_calls_held_before_the_read(Duration::from_millis(1)).await;
}

/// Receipt times cannot tell a call held just before a read was started from one held just
/// after on a clock that does not move between them (a coarse clock source; here, the paused
/// test clock): the read covers only the calls held before it was started.
#[tokio::test(start_paused = true)]
async fn a_read_covers_the_calls_held_before_it_even_at_the_same_instant() {
    releases_only_the_calls_held_before_the_read(Duration::ZERO).await;
}

/// Holds a call, which sends a read; `between` later holds another; then answers both reads.
async fn releases_only_the_calls_held_before_the_read(between: Duration) {
    let (reader, mut reads) = answered_by_test();
    let mut gate = Gate::with_reader(reader, Duration::from_secs(5));
    gate.hold("first");
    let first_read = reads.try_recv().expect("holding a call sends a read");
    tokio::time::advance(between).await;
    gate.hold("second");
    assert!(
        reads.try_recv().is_err(),
        "one read in flight at a time, not one per call"
    );

    first_read.send(Ok(7)).unwrap();
    let released = gate.released().await;
    assert_eq!(summary(&released), [("first", Bound::Applied(7))]);
    assert_eq!(
        gate.len(),
        1,
        "the call received after the read was sent waits for the next read"
    );

    // The gate sent the next read for the call still held; the settings moved on meanwhile.
    let second_read = tokio::time::timeout(Duration::from_secs(1), reads.recv())
        .await
        .expect("a second read is sent for the call still held")
        .unwrap();
    second_read.send(Ok(9)).unwrap();
    let released = gate.released().await;
    assert_eq!(summary(&released), [("second", Bound::Applied(9))]);
    assert!(gate.is_empty());
}

#[tokio::test(start_paused = true)]
async fn failing_reads_are_retried_and_release_calls_as_unknown_only_at_the_timeout() {
    let timeout = Duration::from_millis(550);
    let reads = Arc::new(Mutex::new(0));
    let mut gate = Gate::with_reader(failing(reads.clone()), timeout);
    let start = Instant::now();
    gate.hold("call");

    let released = gate.released().await;
    let waited = start.elapsed();
    assert_eq!(summary(&released), [("call", Bound::Unknown)]);
    assert!(
        waited >= timeout,
        "released after {waited:?}, before the {timeout:?} freshness timeout"
    );
    assert!(
        waited < timeout + Duration::from_millis(200),
        "released {waited:?} after receipt: the retries should find it due within a retry pause"
    );
    // One read at once, then one per 100 ms retry pause until the timeout.
    let reads = *reads.lock().unwrap();
    assert!(
        reads >= 6,
        "only {reads} reads in {waited:?}: failed reads are not retried"
    );
    assert!(
        reads <= 8,
        "{reads} reads in {waited:?}: failed reads are retried without a pause"
    );
}

#[tokio::test(start_paused = true)]
async fn a_read_that_never_answers_counts_as_failed_and_the_next_one_can_succeed() {
    let (reader, mut reads) = answered_by_test();
    let timeout = Duration::from_secs(5);
    let mut gate = Gate::with_reader(reader, timeout);
    let start = Instant::now();
    gate.hold("call");
    // Never answered: kept so the read stays pending rather than failing at once.
    let _hung = reads.try_recv().expect("holding a call sends a read");

    // Drive the gate until it sends another read: the first must have timed out.
    let retried = tokio::select! {
        released = gate.released() => panic!("released {:?} while no read succeeded", summary(&released)),
        retried = reads.recv() => retried.unwrap(),
    };
    assert!(
        start.elapsed() >= READ_TIMEOUT,
        "a read was retried after {:?}, before the first timed out",
        start.elapsed()
    );
    assert_eq!(
        gate.len(),
        1,
        "a failed read before the timeout releases nothing"
    );

    retried.send(Ok(42)).unwrap();
    let released = gate.released().await;
    assert_eq!(
        summary(&released),
        [("call", Bound::Applied(42))],
        "a read that succeeds within the freshness timeout gives the call its bound"
    );
    assert!(start.elapsed() < timeout);
}
