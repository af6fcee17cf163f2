//! Replay rate (target: ≥ 100,000 recorded calls re-decided per second): a real nats-server
//! holding recorded calls (inbound event and decision each) interleaved with settings events
//! (creations and later updates of users and contacts), then `switchboard_audit::replay`
//! over all of it, timed from the first read to the last comparison. Each decision was
//! recorded by the routing core at its settings sequence, so the replay must find no
//! difference (checked, not just timed).

use crate::fixtures;
use std::sync::Mutex;
use std::time::Instant;
use switchboard_audit::{Progress, Selection};
use switchboard_bus::{Publisher, StreamOptions, TraceContext, ensure_streams};
use switchboard_contracts::{
    ContactSettings, EntityId, Envelope, EventData, SettingsChange, UserSettings,
};
use switchboard_projections::{Projection, Record};
use switchboard_routing::decide;
use time::OffsetDateTime;

#[derive(Debug, Clone, serde::Serialize)]
pub struct ReplayResult {
    pub calls: u64,
    pub settings_events: u64,
    pub replay_seconds: f64,
    pub calls_per_second: f64,
    pub differences: usize,
}

/// Users in the tenant; the other creation events are contacts.
const USERS: u64 = 600;
/// Publishes in flight.
const WINDOW: usize = 4096;

/// `settings` events: 60 % creations (company, number, users, contacts), then updates (user
/// phones removed and restored, contacts reassigned), each with the next version of its entity.
fn settings_events(settings: u64) -> Vec<SettingsChange> {
    let creations = settings * 6 / 10;
    let contacts = creations.saturating_sub(USERS + 2).max(1);
    let mut events: Vec<SettingsChange> = fixtures::tenant_settings(USERS, contacts).collect();
    let tenant = fixtures::tenant();
    let id = |p: &str, i: u64| EntityId::parse("id", format!("{p}{i}")).expect("valid id");
    let mut j = 0u64;
    while (events.len() as u64) < settings {
        let update = if j.is_multiple_of(4) {
            let (u, round) = ((j / 4) % USERS, (j / 4) / USERS);
            SettingsChange::User(UserSettings {
                tenant_id: tenant.clone(),
                version: 2 + round,
                user_id: id("u", u),
                phone: (!round.is_multiple_of(2)).then(|| format!("+1206{:07}", 2_000_000 + u)),
                active: true,
                available: true,
                working_hours: None,
                ring_only_in_working_hours: false,
            })
        } else {
            let (c, round) = (j % contacts, j / contacts);
            SettingsChange::Contact(ContactSettings {
                tenant_id: tenant.clone(),
                version: 2 + round,
                contact_id: id("c", c),
                phones: vec![fixtures::phone(c)],
                assigned_user_id: Some(id("u", (j * 7) % USERS)),
                deleted: false,
            })
        };
        events.push(update);
        j += 1;
    }
    events
}

fn encoded<T: EventData>(
    data: T,
    now: OffsetDateTime,
) -> anyhow::Result<(String, String, bytes::Bytes)> {
    let envelope = Envelope::new(data, "/switchboard/bench", now);
    let body = envelope.to_json()?;
    Ok((envelope.data.nats_subject(), envelope.id, body.into()))
}

/// Publishes with up to [`WINDOW`] acknowledgements outstanding.
async fn publish_all(
    publisher: &Publisher,
    messages: impl Iterator<Item = anyhow::Result<(String, String, bytes::Bytes)>>,
) -> anyhow::Result<()> {
    let trace = TraceContext::default();
    let mut pending = std::collections::VecDeque::with_capacity(WINDOW);
    for message in messages {
        let (subject, id, body) = message?;
        pending.push_back(publisher.send_raw(subject, &id, body, &trace).await?);
        if pending.len() >= WINDOW
            && let Some(oldest) = pending.pop_front()
        {
            oldest.ack().await?;
        }
    }
    while let Some(oldest) = pending.pop_front() {
        oldest.ack().await?;
    }
    Ok(())
}

/// The replay benchmark; then, when `lookup`, the lookup benchmark on the same stream.
pub async fn run(
    calls: u64,
    settings: u64,
    lookup: bool,
) -> anyhow::Result<(ReplayResult, Option<crate::lookup::LookupResult>)> {
    let server = switchboard_testkit::NatsServer::start()?;
    let js = async_nats::jetstream::new(server.client().await?);
    ensure_streams(&js, &StreamOptions::default()).await?;
    let publisher = Publisher::new(js.clone());
    let now = OffsetDateTime::now_utc();

    // Settings are the only SETTINGS messages, so the k-th is at sequence k.
    let events = settings_events(settings);
    let settings = events.len() as u64;
    let contacts = (settings * 6 / 10).saturating_sub(USERS + 2).max(1);
    publish_all(
        &publisher,
        events.iter().cloned().map(|change| match change {
            SettingsChange::Company(c) => encoded(c, now),
            SettingsChange::Number(n) => encoded(n, now),
            SettingsChange::User(u) => encoded(u, now),
            SettingsChange::Contact(c) => encoded(c, now),
        }),
    )
    .await?;

    // Calls interleaved with the settings: a settings event every calls/settings calls, each
    // call decided (as the router would) at the settings applied so far.
    let started = Instant::now();
    let mut projection = Projection::new();
    let mut applied = 0usize;
    let every = (calls / settings.max(1)).max(1);
    let tenant = fixtures::tenant();
    let recorded = (0..calls).flat_map(|i| {
        while applied < events.len() && (applied as u64) < i / every {
            projection.apply(&Record {
                seq: applied as u64 + 1,
                change: Some(events[applied].clone()),
            });
            applied += 1;
        }
        let call = fixtures::call(i, contacts);
        let state = projection.tenant(&tenant);
        let decision = match state {
            Some(state) => decide(&call, state),
            None => decide(
                &call,
                &switchboard_routing::TenantState::new(tenant.clone()),
            ),
        };
        let route = decision.into_route(&call, projection.applied_seq(), now);
        [encoded(call, now), encoded(route, now)]
    });
    publish_all(&publisher, recorded).await?;
    println!(
        "  recorded {calls} calls and {settings} settings events in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    // The floor: reading CALLS without decoding anything.
    let started = Instant::now();
    let mut bytes = 0usize;
    switchboard_audit::read::scan(
        &js,
        switchboard_bus::CALLS,
        &[],
        switchboard_audit::read::Start::First,
        &switchboard_audit::NoProgress,
        "raw read",
        |m| {
            bytes += m.payload.len();
            Ok(switchboard_audit::read::Flow::Continue)
        },
    )
    .await?;
    let raw_seconds = started.elapsed().as_secs_f64();
    println!(
        "  reading CALLS alone ({} MB): {raw_seconds:.1} s",
        bytes / 1_000_000
    );

    let started = Instant::now();
    let stages = Stages::default();
    let report = switchboard_audit::replay(&js, &Selection::default(), &stages).await?;
    stages.print();
    let seconds = started.elapsed().as_secs_f64();
    anyhow::ensure!(
        report.calls_replayed == calls,
        "replayed {} of {calls} calls",
        report.calls_replayed
    );
    anyhow::ensure!(
        report.is_clean(),
        "{} differences, {} not replayable",
        report.differences.len(),
        report.unreplayable.len()
    );
    let rate = calls as f64 / seconds;
    println!(
        "  replayed {calls} calls over {} settings events in {seconds:.1} s: {rate:.0} calls/s",
        report.settings_events
    );
    let replayed = ReplayResult {
        calls,
        settings_events: settings,
        replay_seconds: seconds,
        calls_per_second: rate,
        differences: report.differences.len(),
    };
    let looked_up = if lookup {
        Some(crate::lookup::run(&server.url(), &js, calls).await?)
    } else {
        None
    };
    Ok((replayed, looked_up))
}

/// When each stage of the replay began, to print where the time goes.
#[derive(Default)]
struct Stages(Mutex<Vec<(String, Instant)>>);

impl Progress for Stages {
    fn stage(&self, name: &str, _total: Option<u64>) {
        if let Ok(mut stages) = self.0.lock() {
            stages.push((name.to_string(), Instant::now()));
        }
    }
    fn advance(&self, _n: u64) {}
}

impl Stages {
    fn print(&self) {
        let Ok(stages) = self.0.lock() else { return };
        let end = Instant::now();
        for (i, (name, at)) in stages.iter().enumerate() {
            let next = stages.get(i + 1).map_or(end, |s| s.1);
            println!("    {name}: {:.1} s", (next - *at).as_secs_f64());
        }
    }
}
