//! The stream reader's own pieces: the `$JS.ACK.…` parser against async-nats' and real
//! deliveries, subject tokens and filters against straightforward references, and
//! `PartsReader` / `scan_parts` (several readers, parts, read-ahead, filters here or on the
//! server) against `scan` on a real stream, also while producers publish.

use async_nats::jetstream::{self, consumer};
use bytes::Bytes;
use futures::StreamExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use switchboard_audit::AuditError;
use switchboard_audit::read::{
    Decoded, EachMessage, Flow, NoProgress, PART_SPAN, PartDecoder, Parts, PartsReader, Start,
    Stored, delivery, scan, scan_parts, subject_matches, token,
};
use switchboard_audit::replay::{Why, digest};
use switchboard_contracts::events::{FinalAction, FinalActionKind, Rule, Target};
use switchboard_contracts::reasons::Reason;
use switchboard_contracts::{E164, EntityId};
use switchboard_testkit::NatsServer;
use time::OffsetDateTime;

const STREAM: &str = "READS";
/// Subjects published in turn; `r.d.t4` is rare (one message in 16), so that filters
/// selecting everything else are applied here when `filter_here` is set.
const SUBJECTS: [&str; 5] = ["r.a.t1", "r.b.t1", "r.a.t2", "r.c.t3", "r.d.t4"];

fn subject_of(i: u64) -> &'static str {
    if i % 16 == 15 {
        SUBJECTS[4]
    } else {
        SUBJECTS[(i % 4) as usize]
    }
}

/// What a test compares of a stored message.
type Seen = (u64, OffsetDateTime, String, Bytes);

fn seen(m: &Stored) -> Seen {
    (m.seq, m.time, m.subject.to_string(), m.payload.clone())
}

async fn server_with_stream() -> (NatsServer, jetstream::Context) {
    let server = NatsServer::start().unwrap();
    let js = jetstream::new(server.client().await.unwrap());
    js.create_stream(jetstream::stream::Config {
        name: STREAM.into(),
        subjects: vec!["r.>".into()],
        ..Default::default()
    })
    .await
    .unwrap();
    (server, js)
}

/// Publishes messages `from..to` (their index in the body), acknowledgements awaited in
/// batches; returns the sequence of the last.
async fn publish(js: &jetstream::Context, from: u64, to: u64) -> u64 {
    let mut last = 0;
    let mut acks = Vec::new();
    for i in from..to {
        acks.push(
            js.publish(subject_of(i), format!("message {i}").into())
                .await
                .unwrap(),
        );
        if acks.len() == 256 || i + 1 == to {
            for ack in acks.drain(..) {
                last = ack.await.unwrap().sequence;
            }
        }
    }
    last
}

async fn last_sequence(js: &jetstream::Context) -> u64 {
    js.get_stream(STREAM)
        .await
        .unwrap()
        .cached_info()
        .state
        .last_sequence
}

/// What `scan` delivers, up to (not including) the message at `stop_at`.
async fn scanned(
    js: &jetstream::Context,
    filters: &[String],
    start: Start,
    stop_at: Option<u64>,
) -> Vec<Seen> {
    let mut all = Vec::new();
    scan(js, STREAM, filters, start, &NoProgress, "scan", |m| {
        if Some(m.seq) == stop_at {
            return Ok(Flow::Stop);
        }
        all.push(seen(&m));
        Ok(Flow::Continue)
    })
    .await
    .unwrap();
    all
}

/// What a `PartsReader` delivers, decoding `Stop` at `stop_at`.
async fn read_parts(
    js: &jetstream::Context,
    filters: &[String],
    start: Start,
    parts: Parts,
    stop_at: Option<u64>,
) -> Vec<Seen> {
    let mut reader = PartsReader::open(js, STREAM, filters, start, parts, || {
        EachMessage(move |m: Stored| {
            Ok(if Some(m.seq) == stop_at {
                Decoded::Stop
            } else if m.seq % 7 == 3 {
                Decoded::Skip
            } else {
                Decoded::Item(seen(&m))
            })
        })
    })
    .await
    .unwrap();
    let mut all = Vec::new();
    while let Some(item) = reader.next().await.unwrap() {
        all.push(item);
    }
    all
}

fn without_skipped(all: Vec<Seen>) -> Vec<Seen> {
    all.into_iter().filter(|s| s.0 % 7 != 3).collect()
}

fn filter_sets() -> Vec<Vec<String>> {
    let set = |fs: &[&str]| fs.iter().map(|f| (*f).to_string()).collect::<Vec<_>>();
    vec![
        set(&[]),
        set(&["r.a.>"]),
        set(&["r.*.t1", "r.c.t3"]),
        // Everything but the rare subject: read whole and filtered here when allowed.
        set(&["r.a.*", "r.b.>", "r.c.t3"]),
        set(&["r.none.>"]),
    ]
}

/// Every combination of readers, read-ahead, filtering here or on the server, filters and
/// start gives what `scan` gives, in the same order, parts being small enough to be many.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parts_reader_reads_what_scan_reads() {
    let (_server, js) = server_with_stream().await;
    let last = publish(&js, 0, 3000).await;
    assert_eq!(last, 3000);
    let at_777 = switchboard_audit::read::time_of(&js, STREAM, 777)
        .await
        .unwrap()
        .unwrap();
    let starts = [
        Start::First,
        Start::Seq(777),
        Start::Time(at_777),
        Start::Seq(last + 1),
    ];
    for filters in filter_sets() {
        for start in starts {
            let expected = scanned(&js, &filters, start, None).await;
            for readers in 1..=4 {
                for ahead in [None, Some(1)] {
                    for filter_here in [true, false] {
                        let parts = Parts {
                            readers,
                            ahead,
                            filter_here,
                            span: 500,
                        };
                        let got = read_parts(&js, &filters, start, parts, None).await;
                        assert!(
                            got == without_skipped(expected.clone()),
                            "{parts:?} {filters:?} {start:?}: {} items, expected {}",
                            got.len(),
                            without_skipped(expected.clone()).len()
                        );
                    }
                }
            }
        }
    }
    // The default span (one part per reader here) and `Parts::parallel` itself.
    let expected = scanned(&js, &[], Start::First, None).await;
    for parts in [
        Parts {
            readers: 4,
            ahead: Some(2),
            filter_here: false,
            span: PART_SPAN,
        },
        Parts::parallel(),
    ] {
        let got = read_parts(&js, &[], Start::First, parts, None).await;
        assert!(got == without_skipped(expected.clone()), "{parts:?}");
    }
}

/// Gaps in the stream (messages deleted, the first ones purged) do not change what is read,
/// not even a part whose whole range is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parts_reader_reads_across_deleted_ranges() {
    let (_server, js) = server_with_stream().await;
    publish(&js, 0, 3000).await;
    let stream = js.get_stream(STREAM).await.unwrap();
    stream.purge().sequence(120).await.unwrap();
    for seq in (1000..1700).chain(2990..=3000) {
        assert!(stream.delete_message(seq).await.unwrap());
    }
    for filters in [vec![], vec!["r.b.>".to_string()]] {
        for start in [Start::First, Start::Seq(50), Start::Seq(1100)] {
            let expected = scanned(&js, &filters, start, None).await;
            assert!(!expected.is_empty());
            for readers in [1, 2, 4] {
                for filter_here in [true, false] {
                    let parts = Parts {
                        readers,
                        ahead: Some(1),
                        filter_here,
                        span: 250,
                    };
                    let got = read_parts(&js, &filters, start, parts, None).await;
                    assert!(
                        got == without_skipped(expected.clone()),
                        "{parts:?} {filters:?} {start:?}"
                    );
                }
            }
        }
    }
}

/// A `Decoded::Stop` ends the read at the same message as `Flow::Stop` ends `scan`, in
/// whichever part it falls; nothing after it is delivered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_stops_where_scan_stops() {
    let (_server, js) = server_with_stream().await;
    publish(&js, 0, 3000).await;
    for filters in [vec![], vec!["r.a.>".to_string()]] {
        for stop_at in [1, 2, 499, 500, 501, 1234, 2500, 3000] {
            let expected = scanned(&js, &filters, Start::First, Some(stop_at)).await;
            for readers in [1, 2, 4] {
                for ahead in [None, Some(1)] {
                    let parts = Parts {
                        readers,
                        ahead,
                        filter_here: true,
                        span: 500,
                    };
                    let got = read_parts(&js, &filters, Start::First, parts, Some(stop_at)).await;
                    assert!(
                        got == without_skipped(expected.clone()),
                        "stop at {stop_at} {parts:?} {filters:?}"
                    );
                }
            }
        }
    }
}

/// An item of [`Counting`]: a message, or the end of a part with how many messages it
/// decoded and the last of them.
#[derive(Debug, PartialEq)]
enum Counted {
    Message(u64),
    End(usize, Option<u64>),
}

struct Counting {
    count: usize,
    last: Option<u64>,
}

impl PartDecoder<Counted> for Counting {
    fn decode(&mut self, message: Stored) -> Result<Decoded<Counted>, AuditError> {
        self.count += 1;
        self.last = Some(message.seq);
        Ok(Decoded::Item(Counted::Message(message.seq)))
    }
    fn end(self) -> Option<Counted> {
        Some(Counted::End(self.count, self.last))
    }
}

/// Each part's `end` item comes right after that part's items, and the parts together are the
/// whole read in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parts_end_follows_its_items() {
    let (_server, js) = server_with_stream().await;
    publish(&js, 0, 3000).await;
    for filters in [vec![], vec!["r.b.>".to_string()]] {
        let expected: Vec<u64> = scanned(&js, &filters, Start::Seq(10), None)
            .await
            .into_iter()
            .map(|s| s.0)
            .collect();
        for (readers, filter_here) in [(1, true), (3, true), (3, false), (4, false)] {
            let parts = Parts {
                readers,
                ahead: Some(1),
                filter_here,
                span: 400,
            };
            let mut reader =
                PartsReader::open(&js, STREAM, &filters, Start::Seq(10), parts, || Counting {
                    count: 0,
                    last: None,
                })
                .await
                .unwrap();
            let (mut messages, mut since_end, mut ends) = (Vec::new(), Vec::new(), 0);
            while let Some(item) = reader.next().await.unwrap() {
                match item {
                    Counted::Message(seq) => {
                        messages.push(seq);
                        since_end.push(seq);
                    }
                    Counted::End(count, last) => {
                        assert_eq!(count, since_end.len(), "{parts:?} end #{ends}");
                        assert_eq!(last, since_end.last().copied(), "{parts:?} end #{ends}");
                        since_end.clear();
                        ends += 1;
                    }
                }
            }
            assert!(since_end.is_empty(), "{parts:?}: items after the last end");
            assert_eq!(messages, expected, "{parts:?}");
            if readers > 1 {
                assert!(ends >= 5, "{parts:?}: only {ends} parts");
            } else {
                assert_eq!(ends, 1);
            }
        }
    }
}

async fn consumers(js: &jetstream::Context) -> Vec<String> {
    let stream = js.get_stream(STREAM).await.unwrap();
    stream
        .consumer_names()
        .map(Result::unwrap)
        .collect::<Vec<_>>()
        .await
}

/// A read to its end deletes every consumer it made (those of its parts, and the one the
/// choice of `filter_here` did not take) by the time it ends; a stopped or dropped read
/// leaves at most one per reader, to expire.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_to_its_end_leaves_no_consumer() {
    let (_server, js) = server_with_stream().await;
    publish(&js, 0, 3000).await;
    for filters in [
        vec![],
        vec!["r.a.*".to_string(), "r.b.>".into(), "r.c.t3".into()],
    ] {
        for readers in [1, 4] {
            for ahead in [None, Some(1)] {
                let parts = Parts {
                    readers,
                    ahead,
                    filter_here: true,
                    span: 500,
                };
                let got = read_parts(&js, &filters, Start::First, parts, None).await;
                assert!(!got.is_empty());
                assert_eq!(consumers(&js).await, Vec::<String>::new(), "{parts:?}");
            }
        }
    }
    let parts = Parts {
        readers: 3,
        ahead: Some(1),
        filter_here: false,
        span: 500,
    };
    read_parts(&js, &[], Start::First, parts, Some(700)).await;
    let left = consumers(&js).await.len();
    assert!(left <= 3, "{left} consumers left by a stopped read");
}

/// `scan_parts` applies, in stream order, what `scan` would have.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scan_parts_applies_in_stream_order() {
    let (_server, js) = server_with_stream().await;
    publish(&js, 0, 2000).await;
    let filters = vec!["r.a.>".to_string(), "r.c.>".to_string()];
    let expected = scanned(&js, &filters, Start::First, Some(1500)).await;
    let parts = Parts {
        readers: 3,
        ahead: None,
        filter_here: false,
        span: 300,
    };
    let mut got = Vec::new();
    scan_parts(
        &js,
        STREAM,
        &filters,
        Start::First,
        parts,
        &NoProgress,
        "scan",
        |m| {
            Ok(if m.seq == 1500 {
                Decoded::Stop
            } else {
                Decoded::Item(seen(&m))
            })
        },
        |item| {
            got.push(item);
            Ok(())
        },
    )
    .await
    .unwrap();
    assert!(
        got == expected,
        "{} items, expected {}",
        got.len(),
        expected.len()
    );
}

/// Messages published while a read runs: everything up to the stream's last sequence when
/// the read began is delivered, in order, and what comes after it is a gapless run of what
/// followed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_while_producers_publish_delivers_all_it_began_with() {
    let (_server, js) = server_with_stream().await;
    publish(&js, 0, 3000).await;
    for (readers, filters) in [
        (1, vec![]),
        (4, vec![]),
        (3, vec!["r.a.>".to_string()]),
        (
            3,
            vec!["r.a.*".to_string(), "r.b.>".into(), "r.c.t3".into()],
        ),
    ] {
        let stop = Arc::new(AtomicBool::new(false));
        let first_new = last_sequence(&js).await + 1;
        let producer = {
            let (js, stop) = (js.clone(), Arc::clone(&stop));
            tokio::spawn(async move {
                let mut i = 1_000_000;
                while !stop.load(Ordering::Relaxed) && i < 1_010_000 {
                    publish(&js, i, i + 16).await;
                    i += 16;
                }
            })
        };
        // The producer is publishing before the read begins.
        let deadline = Instant::now() + Duration::from_secs(10);
        while last_sequence(&js).await < first_new {
            assert!(Instant::now() < deadline, "the producer does not publish");
            tokio::task::yield_now().await;
        }
        let parts = Parts {
            readers,
            ahead: Some(64),
            filter_here: true,
            span: 500,
        };
        let mut reader = PartsReader::open(&js, STREAM, &filters, Start::First, parts, || {
            EachMessage(|m: Stored| Ok(Decoded::Item(seen(&m))))
        })
        .await
        .unwrap();
        let began = reader.last_sequence();
        assert!(began >= first_new);
        let mut got = Vec::new();
        while let Some(item) = reader.next().await.unwrap() {
            got.push(item);
        }
        stop.store(true, Ordering::Relaxed);
        producer.await.unwrap();
        let all = scanned(&js, &filters, Start::First, None).await;
        let upto = all.iter().take_while(|s| s.0 <= began).count();
        assert!(
            got.len() >= upto,
            "{readers} readers {filters:?}: {} < {upto}",
            got.len()
        );
        assert!(
            got[..] == all[..got.len()],
            "{readers} readers {filters:?}: not the stream's messages in order"
        );
    }
}

/// `delivery` reads what async-nats' `Message::info` reads from the reply subjects of real
/// deliveries.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivery_of_real_deliveries_is_their_info() {
    let (_server, js) = server_with_stream().await;
    publish(&js, 0, 600).await;
    let stream = js.get_stream(STREAM).await.unwrap();
    for (policy, ack_policy, count) in [
        (consumer::DeliverPolicy::All, consumer::AckPolicy::None, 600),
        (
            consumer::DeliverPolicy::ByStartSequence { start_sequence: 99 },
            consumer::AckPolicy::Explicit,
            502,
        ),
    ] {
        let consumer = stream
            .create_consumer(consumer::pull::Config {
                deliver_policy: policy,
                ack_policy,
                ..Default::default()
            })
            .await
            .unwrap();
        let mut messages = consumer
            .batch()
            .max_messages(count)
            .expires(Duration::from_secs(10))
            .messages()
            .await
            .unwrap();
        let mut n = 0;
        while let Some(message) = messages.next().await {
            let message = message.unwrap();
            let info = message.info().unwrap();
            let reply = message.reply.as_deref().unwrap();
            assert_eq!(
                delivery(reply),
                Some((info.stream_sequence, info.published, info.pending)),
                "{reply}"
            );
            n += 1;
        }
        assert_eq!(n, count);
    }
}

/// `delivery` gives exactly what `Message::info` gives (the stream sequence, storage time and
/// pending count), and `None` where `info` fails, for both ADR-15 layouts and every other
/// shape, with numbers at and past the limits of their types.
#[tokio::test]
async fn delivery_is_message_info() {
    let server = NatsServer::start().unwrap();
    let js = jetstream::new(server.client().await.unwrap());
    let info = |reply: &str| {
        let message = jetstream::Message {
            message: async_nats::Message {
                subject: "r.a".into(),
                reply: Some(reply.into()),
                payload: Bytes::new(),
                headers: None,
                status: None,
                description: None,
                length: 0,
            },
            context: js.clone(),
        };
        message
            .info()
            .ok()
            .map(|i| (i.stream_sequence, i.published, i.pending))
    };
    let delivered = [
        "1",
        "-1",
        "+5",
        "9223372036854775807",
        "9223372036854775808",
        "x",
    ];
    let seqs = [
        "0",
        "42",
        "007",
        "18446744073709551615",
        "18446744073709551616",
        "9999999999999999999",
        "+5",
        "-5",
        "",
    ];
    let consumer_seqs = ["1", "18446744073709551616", "-1"];
    let times = [
        "0",
        "1700000000123456789",
        "1764998700000000001",
        "999999999",
        "9999999999999999999",
        "253402300799999999999",
        "253402300800000000000",
        "00001700000000123456789",
        "-1500000000",
        "+1700000000123456789",
        "1.5",
        "",
    ];
    let pendings = [
        "0",
        "12",
        "18446744073709551615",
        "18446744073709551616",
        "-1",
    ];
    let mut checked = 0;
    let mut some = 0;
    for d in delivered {
        for s in seqs {
            for c in consumer_seqs {
                for t in times {
                    for p in pendings {
                        let fields = format!("{d}.{s}.{c}.{t}.{p}");
                        for reply in [
                            format!("$JS.ACK.STREAM.consumer.{fields}"),
                            format!("$JS.ACK._.ACCHASH.STREAM.consumer.{fields}"),
                            format!("$JS.ACK.hub.ACCHASH.STREAM.consumer.{fields}.token"),
                            format!("$JS.ACK.hub.ACCHASH.STREAM.consumer.{fields}.token.more.x"),
                        ] {
                            let got = delivery(&reply);
                            assert_eq!(got, info(&reply), "{reply}");
                            checked += 1;
                            some += usize::from(got.is_some());
                        }
                    }
                }
            }
        }
    }
    assert!(some > 100 && some < checked, "{some} of {checked}");
    // Other shapes.
    for reply in [
        "",
        "$JS.ACK.",
        "$JS.ACK",
        "$JS.ACK.STREAM.consumer.1.2.3.1700000000123456789",
        "$JS.ACK.A.STREAM.consumer.1.2.3.1700000000123456789.0",
        "$JS.ACK.STREAM.consumer.1.2.3.1700000000123456789.0.",
        "$JS.NAK.STREAM.consumer.1.2.3.1700000000123456789.0",
        "_INBOX.abc.def",
        "$js.ack.STREAM.consumer.1.2.3.1700000000123456789.0",
    ] {
        assert_eq!(delivery(reply), None, "{reply}");
        assert_eq!(info(reply), None, "{reply}");
    }
    // The values themselves, nanoseconds included.
    let (seq, time, pending) =
        delivery("$JS.ACK.S.c.1.18446744073709551615.9.1764998700123456789.7").unwrap();
    assert_eq!(seq, u64::MAX);
    assert_eq!(pending, 7);
    assert_eq!(time.unix_timestamp(), 1_764_998_700);
    assert_eq!(time.nanosecond(), 123_456_789);
    assert_eq!(time.offset(), time::UtcOffset::UTC);
}

/// `token` is `split('.').nth(n)`.
#[test]
fn token_is_the_nth_of_split() {
    let parts = ["", "a", "bc", "é"];
    let mut subjects = vec![String::new()];
    for len in 1..=4 {
        let mut at = vec![0usize; len];
        loop {
            subjects.push(at.iter().map(|&i| parts[i]).collect::<Vec<_>>().join("."));
            let Some(k) = (0..len).rev().find(|&k| at[k] + 1 < parts.len()) else {
                break;
            };
            at[k] += 1;
            at[k + 1..].iter_mut().for_each(|i| *i = 0);
        }
    }
    for subject in &subjects {
        for n in 0..6 {
            assert_eq!(
                token(subject, n),
                subject.split('.').nth(n),
                "{subject:?} {n}"
            );
        }
    }
}

/// NATS matching, straightforwardly: `*` is any one token, `>` (the last token only) one or
/// more.
fn matches_reference(filter: &[&str], subject: &[&str]) -> bool {
    match (filter.split_first(), subject.split_first()) {
        (None, None) => true,
        (Some((&">", [])), Some(_)) => true,
        (Some((&"*", f)), Some((_, s))) => matches_reference(f, s),
        (Some((t, f)), Some((u, s))) => t == u && matches_reference(f, s),
        _ => false,
    }
}

/// All sequences of 1 to `max` tokens of `alphabet`.
fn sequences<'a>(alphabet: &[&'a str], max: usize) -> Vec<Vec<&'a str>> {
    let mut all: Vec<Vec<&str>> = vec![vec![]];
    let mut last: Vec<Vec<&str>> = vec![vec![]];
    for _ in 0..max {
        last = last
            .iter()
            .flat_map(|s| {
                alphabet.iter().map(move |t| {
                    let mut s = s.clone();
                    s.push(*t);
                    s
                })
            })
            .collect();
        all.extend(last.iter().cloned());
    }
    all.remove(0);
    all
}

#[test]
fn subject_matches_is_nats_matching() {
    let subjects = sequences(&["a", "b", "ab"], 4);
    let mut filters = sequences(&["a", "b", "*"], 3);
    filters.extend(
        sequences(&["a", "*"], 3)
            .into_iter()
            .chain([vec![]])
            .map(|mut f| {
                f.push(">");
                f
            }),
    );
    let mut matched = 0;
    for filter in &filters {
        for subject in &subjects {
            let expected = matches_reference(filter, subject);
            assert_eq!(
                subject_matches(&filter.join("."), &subject.join(".")),
                expected,
                "{filter:?} {subject:?}"
            );
            matched += usize::from(expected);
        }
    }
    assert!(matched > 100);
    for (filter, subject, expected) in [
        ("call.route.>", "call.route.t1", true),
        ("call.route.>", "call.route.t1.x", true),
        ("call.route.>", "call.route", false),
        ("call.route.>", "call.routes.t1", false),
        ("call.*.t1", "call.inbound.t1", true),
        ("call.*.t1", "call.inbound.t2", false),
        ("call.*.t1", "call.t1", false),
        ("settings.t1.>", "settings.t10.company", false),
        (">", "a", true),
        ("*", "a.b", false),
        ("a", "a.b", false),
        ("a.b", "a", false),
    ] {
        assert_eq!(
            subject_matches(filter, subject),
            expected,
            "{filter} {subject}"
        );
    }
}

fn target(number: &str, user: Option<&str>, rule: Rule, ring: Option<u32>) -> Target {
    Target::single(
        E164::parse_strict(number).unwrap(),
        user.map(|u| EntityId::parse("id", u).unwrap()),
        rule,
        ring,
    )
}

/// A decision as `digest` takes it.
#[derive(Clone)]
struct Decided {
    rule: Rule,
    target: Option<Target>,
    fallbacks: Vec<Target>,
    final_action: FinalAction,
    reasons: Vec<Reason>,
    lines: Option<Vec<String>>,
}

impl Decided {
    fn digest(&self, ring_timeouts: bool) -> u64 {
        let why = match &self.lines {
            Some(lines) => Why::Lines(lines),
            None => Why::Reasons(&self.reasons),
        };
        digest(
            self.rule,
            self.target.as_ref(),
            &self.fallbacks,
            &self.final_action,
            why,
            ring_timeouts,
        )
    }
}

#[test]
fn digest_is_equal_for_equal_decisions_and_differs_on_any_change() {
    let (r0, r1) = (Rule::ALL[0], Rule::ALL[1]);
    let n = |s: &str| E164::parse_strict(s).unwrap();
    let base = Decided {
        rule: r0,
        target: Some(target("+16502530000", Some("u-1"), r0, Some(20))),
        fallbacks: vec![
            target("+16502530001", None, r1, Some(25)),
            target("+16502530002", Some("u-2"), r1, None),
        ],
        final_action: FinalAction {
            kind: FinalActionKind::Voicemail,
            message: "Leave a message".into(),
        },
        reasons: vec![
            Reason::NumberProvisioned {
                number: n("+16502530000"),
            },
            Reason::NumberReleased {
                number: n("+16502530001"),
            },
        ],
        lines: None,
    };
    // Equal decisions, built apart, digest alike (in every run: the hasher has no key).
    let same = base.clone();
    assert_eq!(base.digest(true), same.digest(true));
    assert_eq!(base.digest(false), same.digest(false));

    let mut changed: Vec<(&str, Decided)> = Vec::new();
    let mut change = |what: &'static str, f: &dyn Fn(&mut Decided)| {
        let mut d = base.clone();
        f(&mut d);
        changed.push((what, d));
    };
    change("rule", &|d| d.rule = r1);
    change("no target", &|d| d.target = None);
    change("target number", &|d| {
        d.target.as_mut().unwrap().number = n("+16502530009");
    });
    change("target user", &|d| {
        d.target.as_mut().unwrap().user_id = Some(EntityId::parse("id", "u-3").unwrap());
    });
    change("target without user", &|d| {
        d.target.as_mut().unwrap().user_id = None
    });
    change("target rule", &|d| d.target.as_mut().unwrap().rule = r1);
    change("target screened", &|d| {
        d.target.as_mut().unwrap().screen = true
    });
    change("fallback number", &|d| {
        d.fallbacks[1].number = n("+16502530009")
    });
    change("fallbacks order", &|d| d.fallbacks.swap(0, 1));
    change("a fallback less", &|d| {
        d.fallbacks.pop();
    });
    change("no fallbacks", &|d| d.fallbacks.clear());
    change("target as a fallback", &|d| {
        let t = d.target.take().unwrap();
        d.fallbacks.insert(0, t);
    });
    change("final action kind", &|d| {
        d.final_action.kind = FinalActionKind::Reject;
    });
    change("final action message", &|d| {
        d.final_action.message = format!("{}!", d.final_action.message).into();
    });
    change("reasons order", &|d| d.reasons.swap(0, 1));
    change("a reason less", &|d| {
        d.reasons.pop();
    });
    change("reason number", &|d| {
        d.reasons[0] = Reason::NumberProvisioned {
            number: n("+16502530003"),
        };
    });
    change("lines instead of reasons", &|d| d.lines = Some(vec![]));
    let digests: Vec<u64> = changed.iter().map(|(_, d)| d.digest(true)).collect();
    for ((what, _), digest) in changed.iter().zip(&digests) {
        assert_ne!(
            *digest,
            base.digest(true),
            "{what} does not change the digest"
        );
    }
    // Nor do two changes give the same digest.
    for (i, a) in digests.iter().enumerate() {
        for (j, b) in digests.iter().enumerate().skip(i + 1) {
            assert_ne!(a, b, "{} and {} digest alike", changed[i].0, changed[j].0);
        }
    }
    // Ring timeouts count only when asked.
    let mut ring = base.clone();
    ring.fallbacks[0].ring_timeout_secs = Some(30);
    assert_ne!(ring.digest(true), base.digest(true));
    assert_eq!(ring.digest(false), base.digest(false));
    // English lines: their text and order.
    let mut lines = base.clone();
    lines.lines = Some(vec!["Open.".into(), "Rang the line.".into()]);
    let mut other = lines.clone();
    other.lines = Some(vec!["Rang the line.".into(), "Open.".into()]);
    assert_ne!(lines.digest(true), other.digest(true));
    other.lines = Some(vec!["Open.Rang the line.".into()]);
    assert_ne!(lines.digest(true), other.digest(true));
    other.lines = Some(vec!["Open.".into(), "Rang the line.".into()]);
    assert_eq!(lines.digest(true), other.digest(true));
}

/// The caller of a call in [`Inbounds`], which tells apart two inbound events of one call.
fn from_of(call: Option<switchboard_contracts::CallInbound>) -> Option<String> {
    call.map(|c| format!("{}/{}/{}", c.tenant_id.as_str(), c.call_id, c.from))
}

/// Calls forced into one hash are each found by their tenant and id, a second inbound event
/// of a waiting call is dropped (the first stays), and a wrong hash finds nothing.
#[test]
fn inbounds_keep_the_first_of_a_call_and_find_each_of_one_hash() {
    use crate::support::inbound;
    use switchboard_audit::replay::Inbounds;
    let t1 = crate::support::tenant("t1");
    let t2 = crate::support::tenant("t2");
    let mut inbounds = Inbounds::default();
    inbounds.insert(7, inbound("t1", "c1", "+16502530000", "first"));
    inbounds.insert(7, inbound("t1", "c1", "+16502530000", "second"));
    inbounds.insert(7, inbound("t1", "c2", "+16502530000", "first"));
    inbounds.insert(7, inbound("t2", "c1", "+16502530000", "first"));
    inbounds.insert(7, inbound("t1", "c2", "+16502530000", "second"));
    inbounds.insert(8, inbound("t1", "c3", "+16502530000", "first"));
    assert_eq!(from_of(inbounds.take(7, &t1, "c3")), None, "wrong hash");
    assert_eq!(from_of(inbounds.take(7, &t2, "c2")), None, "no such call");
    assert_eq!(
        from_of(inbounds.take(7, &t2, "c1")).as_deref(),
        Some("t2/c1/first")
    );
    assert_eq!(
        from_of(inbounds.take(7, &t1, "c1")).as_deref(),
        Some("t1/c1/first")
    );
    assert_eq!(
        from_of(inbounds.take(7, &t1, "c1")),
        None,
        "the second was dropped"
    );
    assert_eq!(
        from_of(inbounds.take(7, &t1, "c2")).as_deref(),
        Some("t1/c2/first")
    );
    assert_eq!(from_of(inbounds.take(7, &t1, "c2")), None);
    assert_eq!(
        from_of(inbounds.take(8, &t1, "c3")).as_deref(),
        Some("t1/c3/first")
    );
    assert_eq!(from_of(inbounds.take(8, &t1, "c3")), None);
    // Emptied buckets take new calls again.
    inbounds.insert(7, inbound("t1", "c1", "+16502530000", "third"));
    assert_eq!(
        from_of(inbounds.take(7, &t1, "c1")).as_deref(),
        Some("t1/c1/third")
    );

    // A bucket of one: the same call again is dropped, another call of the hash found.
    let mut one = Inbounds::default();
    one.insert(1, inbound("t1", "c1", "+16502530000", "first"));
    one.insert(1, inbound("t1", "c1", "+16502530000", "second"));
    assert_eq!(from_of(one.take(1, &t1, "c9")), None);
    one.insert(1, inbound("t1", "c9", "+16502530000", "first"));
    assert_eq!(
        from_of(one.take(1, &t1, "c1")).as_deref(),
        Some("t1/c1/first")
    );
    assert_eq!(from_of(one.take(1, &t1, "c1")), None);
    assert_eq!(
        from_of(one.take(1, &t1, "c9")).as_deref(),
        Some("t1/c9/first")
    );

    // What a later part left joins what earlier parts left: the earlier call of each stays.
    let mut earlier = Inbounds::default();
    earlier.insert(7, inbound("t1", "c1", "+16502530000", "earlier"));
    let mut later = Inbounds::default();
    later.insert(7, inbound("t1", "c1", "+16502530000", "later"));
    later.insert(7, inbound("t1", "c2", "+16502530000", "later"));
    later.insert(9, inbound("t2", "c5", "+16502530000", "later"));
    earlier.extend(later);
    assert_eq!(
        from_of(earlier.take(7, &t1, "c1")).as_deref(),
        Some("t1/c1/earlier")
    );
    assert_eq!(from_of(earlier.take(7, &t1, "c1")), None);
    assert_eq!(
        from_of(earlier.take(7, &t1, "c2")).as_deref(),
        Some("t1/c2/later")
    );
    assert_eq!(
        from_of(earlier.take(9, &t2, "c5")).as_deref(),
        Some("t2/c5/later")
    );
    assert_eq!(from_of(earlier.take(9, &t2, "c5")), None);
}

/// Publishes `data` past the publisher's deduplication (as an event of a call stored again
/// after the deduplication window would be); returns its CALLS sequence.
async fn publish_again<T: switchboard_contracts::EventData>(
    streams: &crate::support::Streams,
    data: T,
) -> u64 {
    let subject = data.nats_subject();
    let envelope =
        switchboard_contracts::Envelope::new(data, "/switchboard/test", OffsetDateTime::now_utc());
    let body = serde_json::to_vec(&envelope).unwrap();
    streams
        .js
        .publish(subject, body.into())
        .await
        .unwrap()
        .await
        .unwrap()
        .sequence
}

/// CALLS is read in several parts at once (at least two: one per reader), each matching its
/// decisions with its own calls; put together, the decisions get the calls one reader of the
/// whole would have given them: the first inbound event of a call (not a later duplicate in a
/// later part), a call whose decision is in a later part, and a call decided twice with a
/// second inbound event in between.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recorded_calls_across_parts_are_matched_as_by_one_reader() {
    use crate::support::{CALLERS, N1, Recorder, inbound};
    use switchboard_audit::read::{DEFAULT_LOOKBACK, Selection};
    use switchboard_audit::replay::recorded_calls;

    let recorder = Recorder::start().await;
    let streams = &recorder.streams;
    let dup_first = inbound("t1", "c-dup", N1, CALLERS[0]);
    let split = inbound("t1", "c-split", N1, CALLERS[1]);
    let twice_first = inbound("t1", "c-twice", N1, CALLERS[3]);
    // The first part: the calls, one of them decided at once.
    streams.publish(dup_first.clone()).await;
    streams.publish(split.clone()).await;
    recorder.call(twice_first.clone()).await;
    // Enough between for the rest to be in the last part whatever the number of readers.
    for i in 0..60 {
        recorder
            .call(inbound("t1", &format!("c-{i}"), N1, CALLERS[4]))
            .await;
    }
    // The last part: a duplicate of a waiting call then its decision, the decision of a call
    // read in the first part, and a decided call again.
    publish_again(streams, inbound("t1", "c-dup", N1, CALLERS[2])).await;
    let dup_seq = streams.publish(recorder.route_for(&dup_first)).await;
    let split_seq = streams.publish(recorder.route_for(&split)).await;
    let twice_again = inbound("t1", "c-twice", N1, CALLERS[2]);
    publish_again(streams, twice_again.clone()).await;
    let twice_seq = publish_again(streams, recorder.route_for(&twice_again)).await;

    let recorded = recorded_calls(
        &streams.js,
        &Selection::default(),
        DEFAULT_LOOKBACK,
        &NoProgress,
    )
    .await
    .unwrap();
    assert!(
        recorded.unreplayable.is_empty(),
        "{:?}",
        recorded.unreplayable
    );
    assert_eq!(recorded.calls.len(), 64);
    let seqs: Vec<u64> = recorded.calls.iter().map(|c| c.route_seq).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "not in CALLS order");
    let by_seq = |seq: u64| {
        let c = recorded.calls.iter().find(|c| c.route_seq == seq).unwrap();
        (c.call.call_id.clone(), c.call.from.clone())
    };
    assert_eq!(by_seq(dup_seq), ("c-dup".into(), CALLERS[0].into()));
    assert_eq!(by_seq(split_seq), ("c-split".into(), CALLERS[1].into()));
    assert_eq!(by_seq(twice_seq), ("c-twice".into(), CALLERS[2].into()));
    let twice: Vec<&str> = recorded
        .calls
        .iter()
        .filter(|c| c.call.call_id == "c-twice")
        .map(|c| c.call.from.as_str())
        .collect();
    assert_eq!(twice, [CALLERS[3], CALLERS[2]]);
}
