//! A tenant's settings and calls on real streams: published through the bus, decided either by
//! the real router or, where a test needs control, by the routing core at the current SETTINGS
//! sequence (what the router does).

use async_nats::jetstream;
use std::time::Duration;
use switchboard_audit::read::{Flow, NoProgress, Start, scan};
use switchboard_bus::{CALLS, Publisher, StreamOptions, TraceContext, ensure_streams};
use switchboard_contracts::{
    CallDial, CallInbound, CallRoute, CallStatus, CompanySettings, ContactSettings, DialCallStatus,
    DialEventKind, E164, EntityId, Envelope, EventData, NumberSettings, SettingsChange, TenantId,
    UserSettings,
};
use switchboard_projections::{Projection, Record};
use switchboard_routing::{TenantState, decide};
use switchboard_testkit::NatsServer;
use time::OffsetDateTime;

pub const N1: &str = "+16502530000";
pub const N2: &str = "+16502530001";
pub const N3: &str = "+16502530002";
pub const FORWARD: &str = "+13127654321";
pub const FORWARD_2: &str = "+13127654000";
pub const COMPANY: &str = "+16172531234";
pub const ALICE: &str = "+12062000001";
pub const BOB: &str = "+12062000002";
/// Callers: leads c-1 (alice's), c-2 (bob's), c-3 (unassigned), an unknown caller, withheld.
pub const CALLERS: [&str; 5] = [
    "+14152000001",
    "+14152000002",
    "(415) 200-0003",
    "+14152000099",
    "anonymous",
];

pub fn tenant(t: &str) -> TenantId {
    TenantId::new(t).unwrap()
}

pub fn id(i: &str) -> EntityId {
    EntityId::parse("id", i).unwrap()
}

pub fn number(n: &str) -> E164 {
    E164::parse_strict(n).unwrap()
}

pub fn company(t: &str, version: u64, phone: Option<&str>) -> SettingsChange {
    SettingsChange::Company(CompanySettings {
        tenant_id: tenant(t),
        version,
        company_phone: phone.map(Into::into),
        default_region: None,
        final_action: None,
        time_zone: None,
        business_hours: None,
        after_hours: None,
        ring_timeout_secs: None,
        returning_caller_days: 0,
        blocked_callers: Vec::new(),
        blocked_action: None,
        anonymous_callers: None,
        screening: None,
    })
}

pub fn num(
    t: &str,
    version: u64,
    n: &str,
    forwarding: Option<&str>,
    released: bool,
) -> SettingsChange {
    SettingsChange::Number(NumberSettings {
        tenant_id: tenant(t),
        version,
        number: number(n),
        forwarding_number: forwarding.map(Into::into),
        released,
        user_id: None,
        prefer: Default::default(),
        ring_timeout_secs: None,
        ring_group: None,
    })
}

pub fn user(t: &str, version: u64, u: &str, phone: Option<&str>, active: bool) -> SettingsChange {
    SettingsChange::User(UserSettings {
        tenant_id: tenant(t),
        version,
        user_id: id(u),
        phone: phone.map(Into::into),
        active,
        available: true,
        working_hours: None,
        ring_only_in_working_hours: false,
    })
}

pub fn contact(
    t: &str,
    version: u64,
    c: &str,
    phone: &str,
    assigned: Option<&str>,
) -> SettingsChange {
    SettingsChange::Contact(ContactSettings {
        tenant_id: tenant(t),
        version,
        contact_id: id(c),
        phones: vec![phone.into()],
        assigned_user_id: assigned.map(id),
        deleted: false,
    })
}

/// The first settings of tenant `t`: two numbers (N1 forwarding, N2 not), a company phone,
/// alice with a phone, bob without, three leads.
pub fn day_start(t: &str) -> Vec<SettingsChange> {
    vec![
        company(t, 1, Some(COMPANY)),
        num(t, 1, N1, Some(FORWARD), false),
        num(t, 1, N2, None, false),
        user(t, 1, "u-alice", Some(ALICE), true),
        user(t, 1, "u-bob", None, true),
        contact(t, 1, "c-1", CALLERS[0], Some("u-alice")),
        contact(t, 1, "c-2", CALLERS[1], Some("u-bob")),
        contact(t, 1, "c-3", CALLERS[2], None),
    ]
}

/// The morning's changes: alice loses her phone, N1 forwards elsewhere.
pub fn day_noon(t: &str) -> Vec<SettingsChange> {
    vec![
        user(t, 2, "u-alice", None, true),
        num(t, 2, N1, Some(FORWARD_2), false),
    ]
}

/// The afternoon's: bob gets a phone, N2 is released, the company phone goes.
pub fn day_evening(t: &str) -> Vec<SettingsChange> {
    vec![
        user(t, 2, "u-bob", Some(BOB), true),
        num(t, 2, N2, None, true),
        company(t, 2, None),
    ]
}

/// One call from each caller to N1 and to N2.
pub fn calls(t: &str, batch: &str) -> Vec<CallInbound> {
    let mut calls = Vec::new();
    for to in [N1, N2] {
        for (i, from) in CALLERS.iter().enumerate() {
            calls.push(inbound(
                t,
                &format!("CA-{batch}-{}-{i}", &to[to.len() - 1..]),
                to,
                from,
            ));
        }
    }
    calls
}

pub fn inbound(t: &str, call_id: &str, to: &str, from: &str) -> CallInbound {
    CallInbound {
        call_id: call_id.into(),
        tenant_id: tenant(t),
        to: to.into(),
        from: from.into(),
        received_at: OffsetDateTime::now_utc(),
        contact_id: None,
    }
}

/// `route` as a v1 router recorded it (see [`Streams::publish_v1`]).
pub fn v1(route: CallRoute) -> CallRoute {
    route.to_v1()
}

/// A server with both streams, a JetStream context and a publisher.
pub struct Streams {
    pub server: NatsServer,
    pub js: jetstream::Context,
    pub publisher: Publisher,
}

impl Streams {
    pub async fn start() -> Streams {
        let server = NatsServer::start().unwrap();
        let js = jetstream::new(server.client().await.unwrap());
        ensure_streams(&js, &StreamOptions::default())
            .await
            .unwrap();
        let publisher = Publisher::new(js.clone());
        Streams {
            server,
            js,
            publisher,
        }
    }

    /// Publishes `data` and returns its stream sequence.
    pub async fn publish<T: EventData>(&self, data: T) -> u64 {
        let envelope = Envelope::new(data, "/switchboard/test", OffsetDateTime::now_utc());
        let published = self
            .publisher
            .publish(&envelope, &TraceContext::default())
            .await
            .unwrap();
        assert!(!published.duplicate, "{} stored twice", envelope.id);
        published.sequence
    }

    /// Publishes `route` as a router before v2 did: type `switchboard.call.route.v1`, the
    /// reasons as English prose in `explanation`, and a closed company's final action recorded
    /// as `no_route`.
    pub async fn publish_v1(&self, route: CallRoute) -> u64 {
        let mut envelope = Envelope::new(v1(route), "/switchboard/test", OffsetDateTime::now_utc());
        envelope.event_type = "switchboard.call.route.v1".into();
        let published = self
            .publisher
            .publish(&envelope, &TraceContext::default())
            .await
            .unwrap();
        assert!(!published.duplicate, "{} stored twice", envelope.id);
        published.sequence
    }

    pub async fn publish_change(&self, change: SettingsChange) -> u64 {
        match change {
            SettingsChange::Company(c) => self.publish(c).await,
            SettingsChange::Number(n) => self.publish(n).await,
            SettingsChange::User(u) => self.publish(u).await,
            SettingsChange::Contact(c) => self.publish(c).await,
        }
    }

    /// How many messages CALLS holds.
    pub async fn calls_stored(&self) -> u64 {
        let mut stream = self.js.get_stream(CALLS).await.unwrap();
        stream.info().await.unwrap().state.messages
    }

    /// Every recorded decision, in CALLS order.
    pub async fn routes(&self) -> Vec<(u64, CallRoute)> {
        let mut routes = Vec::new();
        scan(
            &self.js,
            CALLS,
            &["call.route.>".to_string()],
            Start::First,
            &NoProgress,
            "routes",
            |m| {
                let e = Envelope::<CallRoute>::decode(&m.payload, &m.subject).unwrap();
                routes.push((m.seq, e.data));
                Ok(Flow::Continue)
            },
        )
        .await
        .unwrap();
        routes
    }
}

/// Records decisions as the router does, without one: a projection kept at the SETTINGS
/// sequence of the last settings event published, each call decided from it and its
/// `call.route` published with that `settings_seq`.
pub struct Recorder {
    pub streams: Streams,
    pub projection: Projection,
}

impl Recorder {
    pub async fn start() -> Recorder {
        Recorder {
            streams: Streams::start().await,
            projection: Projection::new(),
        }
    }

    pub async fn settings(&mut self, changes: Vec<SettingsChange>) -> Vec<u64> {
        let mut seqs = Vec::new();
        for change in changes {
            let seq = self.streams.publish_change(change.clone()).await;
            self.projection.apply(&Record {
                seq,
                change: Some(change),
            });
            seqs.push(seq);
        }
        seqs
    }

    /// Publishes the call and its decision; returns the decision and its CALLS sequence.
    pub async fn call(&self, call: CallInbound) -> (u64, CallRoute) {
        let route = self.route_for(&call);
        self.streams.publish(call).await;
        let seq = self.streams.publish(route.clone()).await;
        (seq, route)
    }

    /// Publishes the call and its decision as a v1 router recorded it.
    pub async fn call_v1(&self, call: CallInbound) -> (u64, CallRoute) {
        let route = self.route_for(&call);
        self.streams.publish(call).await;
        let seq = self.streams.publish_v1(route.clone()).await;
        (seq, v1(route))
    }

    /// The decision the router would record for `call` now.
    pub fn route_for(&self, call: &CallInbound) -> CallRoute {
        let empty = TenantState::new(call.tenant_id.clone());
        let state = self.projection.tenant(&call.tenant_id).unwrap_or(&empty);
        decide(call, state).into_route(
            call,
            self.projection.applied_seq(),
            OffsetDateTime::now_utc(),
        )
    }

    /// A carrier status for a dial step.
    pub async fn status(&self, t: &str, call_id: &str, step: u32, status: DialCallStatus) -> u64 {
        self.streams
            .publish(CallStatus {
                call_id: call_id.into(),
                tenant_id: tenant(t),
                step,
                dial_call_status: status,
                dial_call_sid: Some(format!("CL-{step}")),
                dial_call_duration: None,
                received_at: OffsetDateTime::now_utc(),
            })
            .await
    }

    /// A dialer event.
    pub async fn dial(
        &self,
        route: &CallRoute,
        step: u32,
        kind: DialEventKind,
        reason: Option<&str>,
    ) -> u64 {
        let target = route
            .target
            .iter()
            .chain(&route.fallbacks)
            .nth(step as usize)
            .cloned();
        self.streams
            .publish(CallDial {
                call_id: route.call_id.clone(),
                tenant_id: route.tenant_id.clone(),
                step,
                kind,
                target: match kind {
                    DialEventKind::StepStarted
                    | DialEventKind::Answered
                    | DialEventKind::StepFailed => target,
                    _ => None,
                },
                reason: reason.map(Into::into),
                carrier_sid: None,
                outcome_unknown: false,
                acted_by: None,
                // As the chain machine does: an answer carries the decision's caller.
                caller: match kind {
                    DialEventKind::Answered => route.caller.clone(),
                    _ => None,
                },
                at: OffsetDateTime::now_utc(),
            })
            .await
    }
}

/// The real router, in-process, on `streams`.
pub struct Router {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<(), switchboard_router::RouterError>>,
    _dir: tempfile::TempDir,
}

impl Router {
    pub fn start(streams: &Streams) -> Router {
        let dir = tempfile::tempdir().unwrap();
        let config = <switchboard_router::Config as clap::Parser>::parse_from([
            "switchboard-router".to_string(),
            "--nats-url".into(),
            streams.server.url(),
            "--database-url".into(),
            format!("sqlite://{}/router.db?mode=rwc", dir.path().display()),
            "--http-addr".into(),
            "127.0.0.1:0".into(),
        ]);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(switchboard_router::run(config, async move {
            let _ = stopped.await;
        }));
        Router {
            stop: Some(stop),
            task,
            _dir: dir,
        }
    }

    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        (&mut self.task).await.unwrap().unwrap();
    }
}

/// Waits until CALLS holds `n` messages.
pub async fn wait_calls_stored(streams: &Streams, n: u64) {
    switchboard_testkit::eventually(
        Duration::from_secs(30),
        &format!("{n} messages in CALLS"),
        || async { (streams.calls_stored().await >= n).then_some(()) },
    )
    .await
    .unwrap();
}

/// A day on real streams decided by the real router: the morning's settings and calls, the
/// noon changes and calls, the evening changes and calls. Returns the call count.
pub async fn router_day(streams: &Streams, t: &str) -> u64 {
    let router = Router::start(streams);
    let mut stored = 0;
    for (settings, batch) in [
        (day_start(t), "am"),
        (day_noon(t), "noon"),
        (day_evening(t), "pm"),
    ] {
        for change in settings {
            streams.publish_change(change).await;
        }
        let calls = calls(t, batch);
        stored += 2 * calls.len() as u64;
        for call in calls {
            streams.publish(call).await;
        }
        // Each batch decided before the next settings change, so the day has three settings
        // positions (the router's freshness guarantees the changes before each batch are seen).
        wait_calls_stored(streams, stored).await;
    }
    router.stop().await;
    stored / 2
}
