//! docs/benchmarks.md and its JSON copy, with the machine and the commit.

use crate::core::CoreResult;
use crate::e2e::E2eResult;
use crate::gateway::GatewayResult;
use crate::latency::LatencyResult;
use crate::lookup::LookupResult;
use crate::memory::MemoryResult;
use crate::projection::ProjectionResult;
use crate::replay::ReplayResult;
use crate::startup::StartupResult;
use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

#[derive(Debug, Default, serde::Serialize)]
pub struct Report {
    pub machine: String,
    pub commit: String,
    pub date: String,
    pub memory: Option<MemoryResult>,
    pub projection: Option<ProjectionResult>,
    pub e2e: Option<E2eResult>,
    pub gateway: Option<GatewayResult>,
    pub latency: Option<LatencyResult>,
    pub core: Option<CoreResult>,
    pub replay: Option<ReplayResult>,
    pub lookup: Option<LookupResult>,
    pub startup: Option<StartupResult>,
}

fn command_output(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let memory = command_output("sh", &["-c", "free -g | awk '/Mem:/ {print $2}'"]);
    let load = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "?".into());
    format!(
        "{cores} cores ({cpu}), {memory} GiB RAM, {}; 1-minute load average at start: {load} \
         (above 0 means other work shared the cores)",
        command_output("uname", &["-sr"])
    )
}

impl Report {
    pub fn new() -> Report {
        Report {
            machine: machine(),
            commit: command_output("git", &["rev-parse", "--short", "HEAD"]),
            date: command_output("date", &["-u", "+%Y-%m-%d %H:%M UTC"]),
            ..Report::default()
        }
    }

    pub fn summary(&self) -> String {
        let mut t = String::new();
        let _ = writeln!(t, "| figure | measured | target |");
        let _ = writeln!(t, "| --- | ---: | ---: |");
        if let Some(e) = &self.e2e {
            let range = |pick: fn(&crate::e2e::Round) -> f64| {
                let values = e.each_round.iter().map(pick);
                let lo = values.clone().fold(f64::INFINITY, f64::min);
                let hi = values.fold(0.0, f64::max);
                format!("{lo:.0}–{hi:.0}")
            };
            let _ = writeln!(
                t,
                "| router, sustained decisions/s ({} calls, {} contacts; median of {} rounds, range {}) | {:.0} | ≥ 20,000 |",
                e.calls,
                e.contacts,
                e.rounds,
                range(|r| r.router_decisions_per_second),
                e.router_decisions_per_second
            );
            let _ = writeln!(
                t,
                "| bare relay, messages/s (same backlog and pipelining, alternating with the router; range {}) | {:.0} | — |",
                range(|r| r.relay_messages_per_second),
                e.relay_messages_per_second
            );
            let ratios: Vec<String> = e
                .each_round
                .iter()
                .map(|r| {
                    format!(
                        "{:.2}",
                        r.router_decisions_per_second / r.relay_messages_per_second
                    )
                })
                .collect();
            let _ = writeln!(
                t,
                "| router ÷ bare relay (median of the rounds' ratios, each router phase against the relay phase just before it: {}; ratio of the medians {:.2}) | {:.2} | ≥ 0.90 |",
                ratios.join(", "),
                e.ratio_of_medians,
                e.router_to_relay_ratio
            );
            let paired = |top: fn(&crate::e2e::Round) -> f64,
                          bottom: fn(&crate::e2e::Round) -> f64| {
                e.each_round
                    .iter()
                    .map(|r| format!("{:.2}", top(r) / bottom(r)))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            let _ = writeln!(
                t,
                "| bare relay padded to the decision's size, messages/s (each call republished with JSON whitespace up to {:.0} bytes, the mean `call.route` on the wire, instead of the call's {:.0}; first in each round; range {}) | {:.0} | — |",
                e.wire.decision,
                e.wire.call,
                range(|r| r.padded_relay_messages_per_second),
                e.padded_relay_messages_per_second
            );
            let _ = writeln!(
                t,
                "| padded relay ÷ bare relay: what the decision's size alone costs (median of the rounds' ratios: {}) | {:.2} | — |",
                paired(
                    |r| r.padded_relay_messages_per_second,
                    |r| r.relay_messages_per_second
                ),
                e.padded_to_bare_relay_ratio
            );
            let _ = writeln!(
                t,
                "| router ÷ padded relay: the router's own work at equal message size (median of the rounds' ratios: {}) | {:.2} | — |",
                paired(
                    |r| r.router_decisions_per_second,
                    |r| r.padded_relay_messages_per_second
                ),
                e.router_to_padded_relay_ratio
            );
            let _ = writeln!(
                t,
                "| router ÷ padded relay that router ÷ bare relay ≥ 0.90 asks for in this run (0.90 ÷ the padded relay's {:.2} of the bare relay): what is left for decoding, deciding and encoding at the decision's size | {:.2} | — |",
                e.padded_to_bare_relay_ratio,
                0.90 / e.padded_to_bare_relay_ratio.max(f64::MIN_POSITIVE)
            );
            let _ = writeln!(
                t,
                "| CPU µs per message, client / nats-server: router vs relay vs padded relay (medians) | {:.1} / {:.1} vs {:.1} / {:.1} vs {:.1} / {:.1} | — |",
                e.router_cpu_us_per_message.client,
                e.router_cpu_us_per_message.nats_server,
                e.relay_cpu_us_per_message.client,
                e.relay_cpu_us_per_message.nats_server,
                e.padded_relay_cpu_us_per_message.client,
                e.padded_relay_cpu_us_per_message.nats_server
            );
            let steal: Vec<String> = e
                .each_round
                .iter()
                .map(|r| {
                    format!(
                        "{:.0} / {:.0}",
                        r.router_cpu_us_per_message.host_steal_percent,
                        r.relay_cpu_us_per_message.host_steal_percent
                    )
                })
                .collect();
            let _ = writeln!(
                t,
                "| hypervisor steal, % of the machine's CPU time: router / relay phase, each round | {} | — |",
                steal.join(", ")
            );
        }
        if let Some(l) = &self.latency {
            for r in &l.rates {
                let counts = |x: &crate::latency::RoundsSummary| {
                    format!(
                        "{} of {} calls decided, {} lost, {} late beyond 60 s",
                        x.decisions, x.calls, x.lost, x.late
                    )
                };
                let figures = |x: &crate::latency::RoundsSummary| {
                    format!(
                        "{:.2} / {:.2} / {:.2} / {:.2}",
                        x.p50_ms, x.p99_ms, x.p999_ms, x.max_ms
                    )
                };
                let _ = writeln!(
                    t,
                    "| publish → call.route at {}/s offered, open loop: router p50 / p99 / p99.9 / max, ms (medians of {} rounds of {} s, each on a fresh nats-server right after a bare-relay round; {}) | {} | — |",
                    r.offered_per_second,
                    r.router.rounds,
                    l.seconds,
                    counts(&r.router),
                    figures(&r.router)
                );
                let _ = writeln!(
                    t,
                    "| publish → bare relay → subscriber at {}/s offered, open loop: p50 / p99 / p99.9 / max, ms (medians of the {} relay rounds; {}) | {} | — |",
                    r.offered_per_second,
                    r.relay.rounds,
                    counts(&r.relay),
                    figures(&r.relay)
                );
                let each = |f: &dyn Fn(&crate::latency::LatencyPair) -> String| {
                    r.each_pair.iter().map(f).collect::<Vec<_>>().join(", ")
                };
                let _ = writeln!(
                    t,
                    "| publish → call.route p99 ÷ bare relay p99 at {}/s (median of the pairs' ratios, each router round against the relay round just before it: {}; ratio of the medians {:.2}; hypervisor steal, % of the machine's CPU time, relay / router round, each pair: {}) | {:.2}× | ≤ {}× |",
                    r.offered_per_second,
                    each(&|p| format!("{:.2}", p.p99_ratio)),
                    r.p99_ratio_of_medians,
                    each(&|p| format!(
                        "{:.0} / {:.0}",
                        p.relay.host_steal_percent, p.router.host_steal_percent
                    )),
                    r.p99_ratio,
                    r.target_p99_ratio
                );
            }
        }
        if let Some(g) = &self.gateway {
            let _ = writeln!(
                t,
                "| webhook → call.route p50 / p99 / p99.9 / max at {}/s offered for {} s, open loop (ms; hypervisor steal {:.0} %; {} of {} webhooks decided, {} lost, {} late beyond 60 s) | {:.2} / {:.2} / {:.2} / {:.2} | — |",
                g.offered_per_second,
                g.seconds,
                g.host_steal_percent,
                g.decisions,
                g.calls,
                g.lost,
                g.late,
                g.p50_ms,
                g.p99_ms,
                g.p999_ms,
                g.max_ms
            );
            match (g.relay_p99_ms, g.p99_to_relay_p99) {
                (Some(relay), Some(ratio)) => {
                    let _ = writeln!(
                        t,
                        "| webhook → call.route p99 ÷ bare relay's publish → decision p99 at {}/s ({:.2} ms ÷ {:.2} ms, the median of the latency benchmark's relay rounds at that rate; not paired: one webhook run at another time) | {:.2}× | ≤ {}× |",
                        g.offered_per_second, g.p99_ms, relay, ratio, g.target_p99_to_relay_p99
                    );
                }
                _ => {
                    let _ = writeln!(
                        t,
                        "| webhook → call.route p99 ÷ bare relay's publish → decision p99 at {}/s (no relay round at that rate: the latency benchmark did not run or did not offer it) | — | ≤ {}× |",
                        g.offered_per_second, g.target_p99_to_relay_p99
                    );
                }
            }
            let _ = writeln!(
                t,
                "| maximum sustained webhooks/s (signed Twilio webhooks, 32 connections) | {:.0} | — |",
                g.max_sustained_webhooks_per_second
            );
        }
        if let Some(p) = &self.projection {
            let _ = writeln!(
                t,
                "| projection apply on SQLite, settings events/s (batches of {}) | {:.0} | ≥ 50,000 |",
                p.batch, p.apply_events_per_second
            );
            let _ = writeln!(
                t,
                "| projection hydration from SQLite, rows/s | {:.0} | — |",
                p.load_rows_per_second
            );
        }
        if let Some(s) = &self.startup {
            for run in &s.runs {
                let _ = writeln!(
                    t,
                    "| router start-up, seconds to ready with {} contacts in the projection: from its SQLite store (hydrate, catch up) / from an empty store (read all {} settings events) | {:.1} / {:.1} | ≤ 10 (from the store, 1,000,000 contacts) |",
                    run.contacts, run.settings_events, run.warm_seconds, run.cold_seconds
                );
            }
        }
        if let Some(r) = &self.replay {
            let _ = writeln!(
                t,
                "| replay, recorded calls re-decided/s ({} calls, {} settings events, read from JetStream) | {:.0} | ≥ 100,000 |",
                r.calls, r.settings_events, r.calls_per_second
            );
        }
        if let Some(l) = &self.lookup {
            let _ = writeln!(
                t,
                "| a call in one lookup, ms p50 / p99 / max: `explain` ({} random calls of {}) | {:.1} / {:.1} / {:.1} | < 50 |",
                l.lookups, l.calls, l.explain_p50_ms, l.explain_p99_ms, l.explain_max_ms
            );
            let _ = writeln!(
                t,
                "| a call in one lookup, ms p50 / p99 / max: `GET /v1/tenants/{{tenant}}/calls/{{call_id}}` | {:.1} / {:.1} / {:.1} | < 50 |",
                l.get_p50_ms, l.get_p99_ms, l.get_max_ms
            );
            let _ = writeln!(
                t,
                "| call index, CALLS messages indexed/s by a gateway starting on {} stored messages | {:.0} | — |",
                l.indexed_messages, l.index_messages_per_second
            );
        }
        if let Some(c) = &self.core {
            let _ = writeln!(
                t,
                "| `call.route` on the wire, bytes: v2 (reasons) / v1 (the same decisions as prose) | {:.0} / {:.0} ({:.2}×) | smaller |",
                c.wire.v2_bytes,
                c.wire.v1_bytes,
                c.wire.v2_bytes / c.wire.v1_bytes.max(1.0)
            );
            for r in &c.runs {
                let _ = writeln!(
                    t,
                    "| routing core, decisions/s on one core, known / unknown caller ({} contacts; policy v2 on) | {:.0} / {:.0} | ≥ 2,000,000 known |",
                    r.contacts, r.known_decisions_per_second, r.unknown_decisions_per_second
                );
            }
            let smallest = c.runs.iter().min_by_key(|r| r.contacts);
            let largest = c.runs.iter().max_by_key(|r| r.contacts);
            if let (Some(small), Some(large)) = (smallest, largest)
                && large.contacts > small.contacts
            {
                let _ = writeln!(
                    t,
                    "| routing core, known caller: rate at {} contacts ÷ rate at {} (flat) | {:.2} | ≥ 0.90 |",
                    large.contacts,
                    small.contacts,
                    large.known_decisions_per_second / small.known_decisions_per_second.max(1.0)
                );
            }
        }
        if let Some(m) = &self.memory {
            let _ = writeln!(
                t,
                "| in-memory index, resident MB for {} contacts | {:.0} | < 300 |",
                m.contacts,
                m.rss_bytes as f64 / 1e6
            );
            let _ = writeln!(
                t,
                "| in-memory index, bytes per contact | {:.0} | ≤ 100 |",
                m.bytes_per_contact
            );
            let _ = writeln!(
                t,
                "| routing core, decisions/s on one core ({} contacts) | {:.0} | — |",
                m.contacts, m.decisions_per_second_one_core
            );
        }
        t
    }

    pub fn write(&self, markdown: &Path, json: &Path) -> anyhow::Result<()> {
        let mut md = String::new();
        let _ = writeln!(md, "# Benchmarks\n");
        let _ = writeln!(
            md,
            "Regenerated by `make bench` (`cargo run --release -p switchboard-bench`); the \
             JSON copy is [benchmarks.json](benchmarks.json). Figures are measured, not \
             asserted: they depend on the machine.\n"
        );
        let _ = writeln!(md, "- machine: {}", self.machine);
        let _ = writeln!(md, "- commit: `{}`", self.commit);
        let _ = writeln!(md, "- date: {}\n", self.date);
        let _ = writeln!(md, "## Summary\n\n{}", self.summary());
        let _ = writeln!(md, "{}", WHERE_THE_TIME_GOES);
        let _ = writeln!(md, "{}", METHOD);
        std::fs::write(markdown, md)?;
        std::fs::write(json, serde_json::to_string_pretty(self)? + "\n")?;
        Ok(())
    }
}

/// Profiles behind the figures, written by hand (a profile is not rerun by `make bench`).
const WHERE_THE_TIME_GOES: &str = include_str!("where_the_time_goes.md");

const METHOD: &str = "## Method

- **Router vs bare relay.** Each drain runs on a fresh `nats-server` (the pinned version,
  JetStream file storage, started by the testkit on loopback) on the same machine as the
  client, holding the same tenant settings and the same backlog of `call.inbound` events, so
  both start from identical server state. Call i of the backlog comes from a known contact
  when i mod 10 is 2–9 (80 %), from a valid number in no contact when it is 1 (10 %), and
  from a withheld caller (`anonymous`) when it is 0 (10 %): the three paths of the routing
  rules, in every run of ten calls. The tenant has the whole routing policy on: business
  hours, working hours on every user (who rings only in them), returning callers for 30 days
  (every call whose lead has no eligible owner looks its caller up in the answered history)
  and a 10,000-entry block list (every call with a caller number is checked against it; no
  caller of the mix is blocked). The bare relay drains it with a durable pull consumer: pull
  a batch, publish each message to `call.relay.bench` with a `Nats-Msg-Id` and await the ack,
  then ack the input, up to 1,024 in flight (the router's default `--max-in-flight`, which it
  is given too) — no decoding, no routing, no projection. The relay does all of this in
  **one task**: every in-flight message's publish, publish ack and input ack is a future in
  one `FuturesUnordered`, polled by the relay's pull loop, which here runs inside the bench's
  own task (`Runtime::block_on`, on the main thread; the latency benchmark's relay rounds
  spawn it as one task). The real router (`switchboard_router::run`, release build, SQLite projection) drains
  it with its durable consumer: decode and validate, freshness check, decide, publish
  `call.route` with ack, ack. Its consume loop (one task: pulls, and holds the calls in the
  freshness gate until the read of SETTINGS' last sequence answers) handles each call the gate
  releases as a future in its own `FuturesUnordered`, like the relay: **one task** for all
  calls in flight, while the connection to NATS runs on the runtime's other worker thread.
  Until `67fcf65` the router spawned a tokio task per call instead; the single task measured
  lower CPU per message (the publishes of a burst reach the connection together), so both now
  use it.
  Rates are taken from the consumer's own state (first delivery to last acknowledgement),
  polled every 10 ms; CPU per message from /proc for the bench process and nats-server. Relay
  and router alternate for 5 rounds and the figures are the medians; the ratio is the median
  of each round's router rate over the relay rate measured just before it. The speed of this
  virtual machine's cores drifts from one minute to the next (the relay alone has ranged over
  ±20 % between consecutive runs), so a single relay phase followed by a single router phase
  would compare two different machines.
- **Relay padded to the decision's size.** Each round starts with a third drain of the same
  backlog: the bare relay republishing every call padded with trailing JSON whitespace to the
  mean size of the router's `call.route` on the wire (the routing core's decisions for 2,000
  calls of the backlog's mix, encoded as the router encodes them). Padded relay ÷ bare relay
  is what the decision's size alone costs nats-server and the client, which no change to the
  router's code can win back; router ÷ padded relay is the router's own work at equal size.
  Both are medians of each round's ratios.
- **Hypervisor steal.** This is a shared virtual machine: the share of its CPU time the
  hypervisor gave to other guests (`steal` in /proc/stat, machine-wide) is recorded over each
  relay and router phase and over each latency round (from its first measured send to its
  last decision). A phase with high steal ran on less machine than its neighbours, and a
  latency round with steal has stalls no code on this machine caused.
- **Webhook → decision latency.** Gateway (async answer mode) and router in-process, one
  `nats-server`, all on this machine. Signed Twilio voice webhooks are offered at a fixed
  rate on 32 keep-alive connections, each leaving at its scheduled time whatever the answers
  do: a generator thread with blocking sockets writes request i at start + i / rate on
  connection i mod 32 (signed before the clock starts, paced by `std::thread::sleep`; a
  reader thread per connection checks every answer is 200). Webhook i's `From` is the caller
  of the throughput backlog's call i — 80 % known contacts, 10 % valid numbers in no contact,
  10 % `anonymous` (which the gateway passes on as it is and answers 200 like any call, and
  the router decides as a withheld caller: no lead, the forwarding number) — so the figure
  covers the three rule paths in the backlog's proportions. Latency runs from the scheduled
  time to the `call.route` event reaching a core NATS subscriber (which reads only the call
  id), recorded in an HDR histogram, so stalls are not hidden. After a warm-up of 2,000
  webhooks (the same caller mix, sent closed-loop on the 32 connections, every one checked
  decided), drained. Its p99 is divided by the bare relay's publish → decision p99 at the
  same rate — the median of the publish → decision benchmark's relay rounds at 1,000/s
  (below) — for issue 18's target (≤ 2×); that comparison is not paired (the webhook run is
  one 20 s run on its own `nats-server`, minutes away from the relay rounds), and the ratio
  is shown only when both benchmarks ran. The maximum sustained rate is 20,000 webhooks (the
  same mix) sent closed-loop by 32 threads, one connection each.
- **Publish → decision latency.** The real router against the bare relay of the throughput
  benchmark, in interleaved rounds. At each offered rate (1,000, 5,000 and 10,000/s) there are
  3 pairs of rounds (`--latency-pairs`), each pair a relay round and then a router round, all
  of one rate before the next rate; every round offers its rate for 10 s
  (`--latency-seconds`). Every round starts from the same state: a fresh `nats-server`
  holding the bench tenant's settings (the same as the webhook benchmark's, loaded for the
  relay too, so both meet the same streams, stored messages and de-duplication window), a
  fresh collector, and the consumer just started — the real router in-process (on the
  bench's tokio runtime, SQLite projection in a fresh directory, its default 1,024 calls in
  flight), or the relay spawned as one task on that runtime, pulling with the router's
  pattern and up to the same 1,024 in flight, republishing each `call.inbound` body
  unchanged to `call.route.<tenant>` (publish with ack, then ack the input: no freshness
  read, no decoding, no routing). Once its durable consumer exists (the router creates it
  when its projection has caught up), a warm-up of 2,000 calls at 1,000/s, checked decided
  and drained, then the measured calls; then the round's server, consumer and collector are
  stopped. A generator on its own OS thread, with its own current-thread tokio runtime and
  its own NATS connection (so it shares neither the consumer's runtime nor its connection),
  publishes `call.inbound` events to JetStream at fixed scheduled times (call i at
  start + i / rate, kept by a ticker thread with `std::thread::sleep`, since tokio's timer
  rounds sleeps up to the next millisecond; acknowledgements awaited off the send path),
  each built at send time, with the throughput backlog's callers (80 % known contacts, 10 %
  unknown numbers, 10 % withheld; numbered from 0 in each round's warm-up and on into its
  measured calls). Latency runs from the *scheduled* time — not the actual send, so a
  generator or server stall counts — to the call's `call.route` (or the relay's copy of the
  call) reaching a core NATS subscriber that reads only the call id, in an HDR histogram; the
  steal is taken over the measured calls. On this 2-core machine the generator, nats-server,
  the consumer and the collector share the cores. Per rate the table gives the router's and
  the relay's p50 / p99 / p99.9 / max as the medians over their rounds of each round's
  figure (the mean of the two middle ones for an even count), the calls decided, lost and
  late summed over the rounds, and the ratio for issue 18's target (router p99 ≤ 1.5× the
  relay's at 1,000/s, ≤ 2× at 5,000 and 10,000/s): the median of the pairs' ratios, each
  router round's p99 over the p99 of the relay round just before it, so a noisy minute
  weighs on both sides of a ratio; each pair's ratio and steal and the unpaired ratio of
  the medians are beside it, every round's figures in the JSON (`latency.rates[].each_pair`).
  The relay's figures are the floor this machine, nats-server and the client library set
  for any consumer of the stream.
- **Lost and late decisions.** In both open-loop benchmarks every offered call must be
  decided, by the router and by the relay alike: after the last send the collector waits up
  to 60 s for the decisions still missing, counts any it never saw as lost, and the run
  fails if one is lost or if the decisions recorded are not exactly the calls offered (every
  warm-up — the webhook benchmark's, each latency round's — is checked the same way).
  The histogram's range is 60 s: a decision later than that is recorded at 60 s (so it still
  weighs in every percentile) and counted late. Both counts are in the table and the JSON
  (`lost`, `late`).
- **Routing core.** `switchboard_routing::decide` on one thread over a `TenantState` built
  with the routing crate's own `apply` from the bench tenant's settings (users = contacts /
  100), at 10k, 100k and 1M contacts. Known caller: 4,096 contacts' phones spread over the
  whole index; unknown caller: 4,096 valid numbers in no contact. Each case is warmed up with
  one pass, then timed in 7 batches of about 0.2 s; the median batch gives ns per decision and
  decisions/s. The criterion benchmark `cargo bench -p switchboard-routing` (not run by
  `make bench`) measures the same cases with its statistics, for developers.
- **Projection apply.** `Store::apply_batch` on a SQLite file (WAL, `synchronous=NORMAL`),
  batches of 1,000 events (users and contacts), each batch one transaction with
  version-guarded multi-row upserts and the position. Hydration is `Store::load`.
- **Router start-up.** One `nats-server` holds the bench tenant's settings (the contacts, one
  user per 100 contacts, the company and its number) in SETTINGS. A router on an empty SQLite
  store starts and reads all of them (from an empty store), then stops; a second router on the
  same store starts (from its store: hydrate the in-memory index from SQLite, read SETTINGS'
  last sequence, apply what is past the store). Each is timed from the call that starts it to
  the moment its `router` consumer on CALLS exists, which it creates only once its projection
  has caught up — what its `/readyz` reports (the consumer is deleted between the two starts).
- **Replay.** `switchboard_audit::replay` (what `switchboard replay` runs) against one
  `nats-server` holding recorded calls (a `call.inbound` and its `call.route` each) and
  settings events (60 % creations, then user and contact updates) interleaved: every call
  was decided by the routing core at the settings applied before it, with that
  `settings_seq`. Timed from the first read of CALLS to the last comparison: reading and
  decoding both streams, rebuilding the settings in one pass, deciding every call again and
  comparing; the run fails unless there is no difference.
- **A call in one lookup.** On the replay benchmark's `nats-server` once replay has run (so
  CALLS holds its recorded calls, two messages each, and SETTINGS its settings events), a
  gateway is started (in-process) and its call indexer indexes CALLS from the first message,
  as on a stream that predates the index; the rate is the stored messages over the time from
  the gateway's start to the indexer's acknowledged floor reaching the last of them. Then
  300 calls drawn at random (a fixed generator) are looked up one after another with
  `switchboard_audit::explain` (what `switchboard explain --json` runs: index entries and
  events by direct get, the settings in force read from SETTINGS up to the decision, the
  decision made again), each checked (one inbound, one decision, replay agrees, nothing
  scanned past the index); then 300 others with `GET /v1/tenants/{tenant}/calls/{call_id}` on
  one keep-alive connection, timed from the request to the whole answer.
- **Index memory.** Growth of the process's resident set while applying one tenant's users
  and contacts (one phone each) to the in-memory projection; the decision rate is
  `switchboard_routing::decide` in a loop on one thread over that index.
";
