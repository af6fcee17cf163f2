//! A flood of generated malformed messages through the real router process: zero crashes, each
//! one rejected with a reason.

use crate::figure;
use crate::support::*;
use async_nats::HeaderMap;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};
use switchboard_contracts::{CallRejected, CallRoute, Envelope};
use switchboard_testkit::NatsServer;

/// Malformed messages: `SWITCHBOARD_CHAOS_BAD_INPUT` (default 10,000; `make test-chaos`
/// 100,000).
fn how_many() -> usize {
    scale("SWITCHBOARD_CHAOS_BAD_INPUT", 10_000)
}

/// One generated message: where it goes, its body, the category it belongs to and, where the
/// contract fixes it, the rejection code it must get.
struct Bad {
    subject: String,
    body: Vec<u8>,
    category: &'static str,
    code: Option<&'static str>,
}

fn valid_data(i: usize) -> Value {
    json!({
        "call_id": format!("CA{i:08}"),
        "tenant_id": T,
        "to": DIALED,
        "from": CALLER,
        "received_at": "2026-11-22T09:00:00Z",
    })
}

fn envelope(i: usize, data: Value) -> Value {
    json!({
        "specversion": "1.0",
        "id": format!("{T}:CA{i:08}:inbound"),
        "source": "/chaos/bad-input",
        "type": "switchboard.call.inbound.v1",
        "time": "2026-11-22T09:00:00Z",
        "subject": format!("CA{i:08}"),
        "datacontenttype": "application/json",
        "data": data,
    })
}

fn bytes(v: &Value) -> Vec<u8> {
    serde_json::to_vec(v).unwrap()
}

fn pick<'a, T>(rng: &mut Rng, items: &'a [T]) -> &'a T {
    &items[rng.below(items.len())]
}

/// A value of the wrong JSON type for a string field (never `null`: null reads as "").
fn wrong_type(rng: &mut Rng) -> Value {
    match rng.below(5) {
        0 => json!(16502530000_u64),
        1 => json!(true),
        2 => json!([DIALED]),
        3 => json!({"number": DIALED}),
        _ => json!(-1.5),
    }
}

/// The `i`-th malformed message: deterministic for a seed, never a valid call.
fn generate(rng: &mut Rng, i: usize) -> Bad {
    let subject = format!("call.inbound.{T}");
    let good = envelope(i, valid_data(i));
    let (subject, body, category, code): (String, Vec<u8>, &'static str, Option<&'static str>) =
        match rng.below(11) {
            0 => {
                // Random bytes; the first is never JSON (`{`, whitespace...): 0x80..=0xFF.
                let len = rng.below(512);
                let mut body = rng.bytes(len);
                if let Some(first) = body.first_mut() {
                    *first |= 0x80;
                }
                (subject, body, "random bytes", Some("malformed"))
            }
            1 => {
                // A strict prefix of a valid event: never a complete JSON object.
                let full = bytes(&good);
                let cut = rng.below(full.len());
                (
                    subject,
                    full[..cut].to_vec(),
                    "truncated JSON",
                    Some("malformed"),
                )
            }
            2 => {
                let mut v = good;
                let field = *pick(rng, &["call_id", "to", "from", "received_at", "contact_id"]);
                v["data"][field] = wrong_type(rng);
                (subject, bytes(&v), "wrong type", Some("malformed"))
            }
            3 => {
                let mut v = good;
                v["data"] = match rng.below(3) {
                    0 => json!("a string"),
                    1 => json!([1, 2, 3]),
                    _ => json!(42),
                };
                (subject, bytes(&v), "data not an object", Some("malformed"))
            }
            4 => {
                let mut v = good;
                let long = "x".repeat(65);
                let tenant =
                    pick(rng, &["not.a.tenant", "", " ", "a b", "ünï", "a/b", &long]).to_string();
                v["data"]["tenant_id"] = json!(tenant);
                (subject, bytes(&v), "bad tenant id in data", None)
            }
            5 => {
                // A subject token that is no valid tenant: filed under `_invalid`.
                let long = "t".repeat(65);
                let token = pick(rng, &["ünï", "a$b", "_invalid", "a:b", &long]).to_string();
                (
                    format!("call.inbound.{token}"),
                    bytes(&good),
                    "bad tenant in subject",
                    Some("subject_mismatch"),
                )
            }
            6 => {
                let mut v = good;
                let (field, len) = match rng.below(3) {
                    0 => ("to", rng.range(2_001, 20_000)),
                    1 => ("from", rng.range(2_001, 20_000)),
                    _ => ("call_id", rng.range(129, 4_000)),
                };
                v["data"][field] = json!("9".repeat(len));
                (subject, bytes(&v), "oversized field", Some("too_long"))
            }
            7 => {
                let mut v = good;
                let t = *pick(
                    rng,
                    &[
                        "switchboard.call.route.v1",
                        "switchboard.call.inbound.v2",
                        "switchboard.settings.user.v1",
                        "com.example.other",
                    ],
                );
                v["type"] = json!(t);
                (
                    subject,
                    bytes(&v),
                    "wrong event type",
                    Some("unexpected_type"),
                )
            }
            8 => {
                // Stored on another tenant's subject than its data names.
                let other = *pick(rng, &["other", "acme", "chaos2"]);
                (
                    format!("call.inbound.{other}"),
                    bytes(&good),
                    "subject mismatch",
                    Some("subject_mismatch"),
                )
            }
            9 => {
                let mut v = good;
                match rng.below(6) {
                    0 => {
                        let attr = *pick(
                            rng,
                            &[
                                "specversion",
                                "id",
                                "source",
                                "type",
                                "time",
                                "subject",
                                "datacontenttype",
                                "data",
                            ],
                        );
                        v.as_object_mut().unwrap().remove(attr);
                    }
                    1 => v["data"] = Value::Null,
                    2 => v["data"]["call_id"] = json!("   "),
                    3 => v["data"]["to"] = json!(""),
                    4 => {
                        v["data"].as_object_mut().unwrap().remove("received_at");
                    }
                    _ => {
                        let attr = *pick(rng, &["id", "source", "subject"]);
                        v[attr] = json!("  ");
                    }
                }
                (subject, bytes(&v), "missing or blank field", None)
            }
            _ => {
                let mut v = good;
                let code = match rng.below(5) {
                    0 => {
                        v["specversion"] = json!(*pick(rng, &["0.3", "2.0", "1"]));
                        "spec_version"
                    }
                    1 => {
                        v["datacontenttype"] = json!("text/plain");
                        "data_content_type"
                    }
                    2 => {
                        v["time"] = json!(*pick(
                            rng,
                            &["yesterday", "2026-13-45T09:00:00Z", "2026-11-22 09:00"]
                        ));
                        "malformed"
                    }
                    3 => {
                        v["data"]["call_id"] =
                            json!(*pick(rng, &["CA 1", "CA\n1", "CA\t1", "CA\u{7}1"]));
                        "malformed"
                    }
                    _ => {
                        v["data"]["received_at"] = json!("not a time");
                        "malformed"
                    }
                };
                (subject, bytes(&v), "bad attribute value", Some(code))
            }
        };
    Bad {
        subject,
        body,
        category,
        code,
    }
}

/// Given a real router process, when N generated malformed messages (random bytes, truncated
/// JSON, wrong types, bad tenant ids in data and subject, oversized fields, wrong event types,
/// subject mismatches, missing and bad attributes; seeded) arrive on `call.inbound`, then the
/// process never crashes and stays ready, CALLS holds exactly N `call.rejected` events — one
/// per malformed message, each with a code and a non-empty reason — and not one decision but
/// that of the good call sent last.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_malformed_messages_is_rejected_one_by_one_without_a_crash() {
    let n = how_many();
    let (mut rng, seed) = Rng::from_env(0xBAD_0008);
    let dir = tempfile::tempdir().unwrap();
    let nats = NatsServer::start().unwrap();
    let js = connect(&nats.url()).await;
    provision(&js, 1).await;
    let mut router = Service::router("router", &nats.url(), dir.path(), &[]);
    router.wait_ready(WAIT).await;
    let rss_before = router.rss_kib();
    let started = Instant::now();

    // seq → (category, expected code)
    let mut sent: BTreeMap<u64, (&'static str, Option<&'static str>)> = BTreeMap::new();
    let mut i = 0;
    while i < n {
        let mut pending = Vec::new();
        for _ in 0..500.min(n - i) {
            let bad = generate(&mut rng, i);
            let mut headers = HeaderMap::new();
            headers.insert("Nats-Msg-Id", format!("bad-{seed}-{i}").as_str());
            let ack = js
                .publish_with_headers(bad.subject, headers, bad.body.into())
                .await
                .unwrap();
            pending.push((ack, bad.category, bad.code));
            i += 1;
        }
        for (ack, category, code) in pending {
            let ack = ack.await.unwrap();
            assert!(!ack.duplicate);
            sent.insert(ack.sequence, (category, code));
        }
    }
    let published_in = started.elapsed();
    // Then a good call: the router must still decide.
    Publishing::start(js.clone(), "after-bad-input", 1, Duration::ZERO)
        .finish()
        .await;

    let deadline = Duration::from_secs(60) + Duration::from_millis(n as u64 * 5);
    wait_count(&js, "call.rejected.>", n, deadline).await;
    wait_count(&js, "call.route.>", 1, WAIT).await;
    let consumer = wait_settled(&js, "router", WAIT).await;
    let handled_in = started.elapsed();
    // "Rejected twice" below cannot fail: a second rejection of the same message has the same
    // id and JetStream drops it. What would cause one can be seen: a message delivered again
    // (the router did not settle it). Every delivery advances the consumer's sequence.
    let deliveries = consumer.delivered.consumer_sequence;
    assert_eq!(
        deliveries,
        n as u64 + 1,
        "the router's consumer delivered {deliveries} times for {} messages: {} redelivered (re-handled)",
        n + 1,
        deliveries.saturating_sub(n as u64 + 1)
    );
    assert!(
        router.is_running(),
        "the router died:\n{}",
        router.log_tail(40)
    );
    assert_eq!(http_status(router.http, "/readyz").await, Some(200));
    let rss_after = router.rss_kib();

    let rejections = read(&js, "call.rejected.>").await;
    assert_eq!(rejections.len(), n, "one rejection per malformed message");
    let mut seen = BTreeSet::new();
    let mut codes: BTreeMap<String, usize> = BTreeMap::new();
    let mut wrong_code = Vec::new();
    for m in &rejections {
        let r = Envelope::<CallRejected>::decode(&m.payload, &m.subject)
            .unwrap_or_else(|e| panic!("CALLS/{}: not a valid rejection: {e}", m.seq))
            .data
            .0;
        assert!(
            !r.reason.trim().is_empty(),
            "CALLS/{}: empty reason: {r:?}",
            m.seq
        );
        assert!(!r.code.is_empty(), "CALLS/{}: no code", m.seq);
        let Some((category, code)) = sent.get(&r.stream_seq) else {
            panic!(
                "a rejection of CALLS/{}, which is not a malformed message",
                r.stream_seq
            );
        };
        assert!(
            seen.insert(r.stream_seq),
            "CALLS/{} rejected twice",
            r.stream_seq
        );
        if let Some(code) = code
            && r.code != *code
        {
            wrong_code.push((
                r.stream_seq,
                *category,
                *code,
                r.code.clone(),
                r.reason.clone(),
            ));
        }
        *codes.entry(r.code).or_insert(0) += 1;
    }
    assert!(
        wrong_code.is_empty(),
        "(seq, category, expected, got, reason): {}",
        sample(&wrong_code)
    );
    let routes = read(&js, "call.route.>").await;
    assert_eq!(routes.len(), 1, "only the good call is decided");
    let route = Envelope::<CallRoute>::decode(&routes[0].payload, &routes[0].subject).unwrap();
    assert_eq!(route.data.call_id, "after-bad-input-0");

    let mut categories: BTreeMap<&str, usize> = BTreeMap::new();
    for (category, _) in sent.values() {
        *categories.entry(category).or_insert(0) += 1;
    }
    figure!(
        "bad input: seed {seed}, {n} malformed messages published in {published_in:?}, all handled in \
         {handled_in:?} ({deliveries} deliveries for {} messages: none redelivered); rejected {}, with a reason {}, crashes 0; \
         router RSS {rss_before} KiB → {rss_after} KiB",
        n + 1,
        rejections.len(),
        seen.len()
    );
    figure!("bad input: categories {categories:?}");
    figure!("bad input: codes {codes:?}");
}
