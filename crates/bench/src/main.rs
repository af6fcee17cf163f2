//! `switchboard-bench` (run by `make bench`): measures what the issues set targets for and
//! writes docs/benchmarks.md and docs/benchmarks.json. A benchmark, never a test: figures
//! depend on the machine, so they are reported, not asserted.
#![allow(clippy::print_stdout)] // a report tool: printing is its job
#![allow(clippy::expect_used)] // fixtures built from constants; a failure is a bug in the bench

/// The services' allocator, so in-process services are measured as they run.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod core;
mod e2e;
mod fixtures;
mod gateway;
mod host;
mod latency;
mod lookup;
mod memory;
mod openloop;
mod projection;
mod replay;
mod report;
mod startup;

use clap::Parser;
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(name = "switchboard-bench", about = "Switchboard benchmarks")]
struct Args {
    /// Calls pushed through the router (and the bare relay).
    #[arg(long, default_value_t = 100_000)]
    calls: u64,
    /// Contacts in the benchmark tenant for the end-to-end run.
    #[arg(long, default_value_t = 10_000)]
    contacts: u64,
    /// Settings events applied to SQLite in the projection benchmark.
    #[arg(long, default_value_t = 200_000)]
    settings_events: u64,
    /// Contacts in the in-memory index for the memory benchmark.
    #[arg(long, default_value_t = 1_000_000)]
    index_contacts: u64,
    /// Offered webhook rate for the latency benchmark (calls/s, open loop).
    #[arg(long, default_value_t = 1_000)]
    webhook_rate: u64,
    /// Seconds the webhook rate is offered.
    #[arg(long, default_value_t = 20)]
    webhook_seconds: u64,
    /// Offered rates for the publish → call.route latency benchmark (calls/s, open loop).
    #[arg(long, value_delimiter = ',', default_values_t = [1_000u64, 5_000, 10_000])]
    latency_rates: Vec<u64>,
    /// Seconds each latency round offers its rate (each rate has 2 × --latency-pairs rounds).
    #[arg(long, default_value_t = 10)]
    latency_seconds: u64,
    /// Latency rounds at each rate: this many bare-relay rounds, each followed by a router
    /// round (the ratio is the median of the pairs').
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..))]
    latency_pairs: u64,
    /// Contacts in the tenant's index for the routing-core benchmark.
    #[arg(long, value_delimiter = ',', default_values_t = [10_000u64, 100_000, 1_000_000])]
    core_contacts: Vec<u64>,
    /// Contacts in the projection for the router start-up benchmark (add 10000000 for the
    /// issue's second figure: about 10 GB of SETTINGS and several minutes).
    #[arg(long, value_delimiter = ',', default_values_t = [1_000_000u64])]
    startup_contacts: Vec<u64>,
    /// Recorded calls replayed by `switchboard replay` in the replay benchmark.
    #[arg(long, default_value_t = 1_000_000)]
    replay_calls: u64,
    /// Settings events interleaved with them.
    #[arg(long, default_value_t = 100_000)]
    replay_settings: u64,
    /// Markdown report.
    #[arg(long, default_value = "docs/benchmarks.md")]
    out: PathBuf,
    /// JSON copy of the figures.
    #[arg(long, default_value = "docs/benchmarks.json")]
    json: PathBuf,
    /// Run only these sections and print their figures, without rewriting the report
    /// (for profiling one part; `make bench` runs them all).
    #[arg(long, value_enum, value_delimiter = ',')]
    only: Vec<Section>,
}

/// A part of the benchmark run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Section {
    Memory,
    Core,
    Projection,
    E2e,
    Webhook,
    Latency,
    Replay,
    /// On the replay benchmark's stream (so it runs that too).
    Lookup,
    /// Router start-up with a large projection.
    Startup,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    // The router and the gateway run in this process: under the subscriber their binaries
    // install (logs at RUST_LOG, traces only where OTEL_* asks), so they pay what they pay in
    // production. Without any subscriber, `tracing`'s `log` fallback (enabled by sea-orm and
    // sqlx) evaluates every disabled span's fields, work a deployed router never does.
    let _telemetry = switchboard_telemetry::init("switchboard-bench")?;
    let mut report = report::Report::new();
    let run = |section: Section| args.only.is_empty() || args.only.contains(&section);

    // Memory first, in a fresh process state, so allocator reuse does not flatter it.
    if run(Section::Memory) {
        println!("== in-memory index: {} contacts", args.index_contacts);
        report.memory = Some(memory::run(args.index_contacts));
    }

    if run(Section::Core) {
        println!(
            "== routing core: decide over {:?} contacts",
            args.core_contacts
        );
        report.core = Some(core::run(&args.core_contacts));
    }

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    if run(Section::Projection) {
        println!(
            "== projection apply: {} settings events on SQLite",
            args.settings_events
        );
        report.projection = Some(runtime.block_on(projection::run(args.settings_events))?);
    }
    if run(Section::E2e) {
        println!("== end to end: {} calls through JetStream", args.calls);
        report.e2e = Some(runtime.block_on(e2e::run(args.calls, args.contacts))?);
    }
    if run(Section::Webhook) {
        println!(
            "== webhook → call.route: {}/s for {} s, open loop",
            args.webhook_rate, args.webhook_seconds
        );
        report.gateway = Some(runtime.block_on(gateway::run(
            args.webhook_rate,
            args.webhook_seconds,
            args.contacts,
        ))?);
    }
    if run(Section::Latency) {
        println!(
            "== publish → call.route: {:?}/s, open loop, {} pairs of rounds (bare relay, then \
             router) of {} s at each rate",
            args.latency_rates, args.latency_pairs, args.latency_seconds
        );
        let pairs = usize::try_from(args.latency_pairs)?;
        report.latency = Some(runtime.block_on(latency::run(
            &args.latency_rates,
            args.latency_seconds,
            pairs,
            args.contacts,
        ))?);
    }
    // The webhook's p99 against the bare relay's at its rate, when both sections ran.
    if let (Some(gateway), Some(latency)) = (&mut report.gateway, &report.latency) {
        gateway.compare_with(latency);
    }

    if run(Section::Startup) {
        println!(
            "== router start-up: {:?} contacts in the projection",
            args.startup_contacts
        );
        report.startup = Some(runtime.block_on(startup::run(&args.startup_contacts))?);
    }

    if run(Section::Replay) || run(Section::Lookup) {
        println!(
            "== replay: {} recorded calls, {} settings events; then looking calls up by id",
            args.replay_calls, args.replay_settings
        );
        let (replay, lookup) = runtime.block_on(replay::run(
            args.replay_calls,
            args.replay_settings,
            run(Section::Lookup),
        ))?;
        report.replay = Some(replay);
        report.lookup = lookup;
    }

    if args.only.is_empty() {
        report.write(&args.out, &args.json)?;
    }
    println!("{}", report.summary());
    Ok(())
}
