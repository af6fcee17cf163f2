//! `switchboard`: the operator's and auditor's command line. Publishes settings events, places
//! test calls and prints their decision, and audits the streams (explain, replay, what-if,
//! lint) with `switchboard-audit`, of which this is a thin front-end: parse flags, draw a
//! progress bar, print the report (a table for people, `--json` for scripts), exit with a code
//! that says what was found.
#![allow(clippy::print_stdout)] // a command-line tool: printing is its job

use anyhow::Context as _;
use async_nats::jetstream::{self, consumer};
use clap::{Parser, Subcommand};

mod keys;
mod new_tenants;
use futures::StreamExt;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::path::{Path, PathBuf};
use std::time::Duration;
use switchboard_audit::{Progress, Selection};
use switchboard_bus::{NatsArgs, Publisher, StreamArgs, TraceContext, ensure_streams};
use switchboard_contracts::{
    CallInbound, CallRoute, EntityId, Envelope, EventData, SettingsChange, TenantId,
};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

const SOURCE: &str = "/switchboard/cli";

/// Exit codes (also in `--help` and the README).
mod exit {
    /// Done; nothing found.
    pub const OK: i32 = 0;
    /// Failed (NATS unreachable, bad input); the message says why.
    pub const FAILURE: i32 = 1;
    /// A waited-for decision did not arrive in time (`call --wait`).
    pub const NO_DECISION: i32 = 3;
    /// The audit found something: replay differences, lint problems.
    pub const FOUND: i32 = 4;
    /// `explain`: no event of that call is stored.
    pub const NOT_FOUND: i32 = 5;
    /// `settings apply`: the file names a tenant SETTINGS holds no event of, not confirmed.
    pub const NEW_TENANT: i32 = 6;
}

const EXIT_CODES: &str = "Exit codes:
  0  success; replay found no difference, lint no problem
  1  failure (NATS unreachable, bad input); the message says why
  2  usage error (unknown flag, missing argument)
  3  call --wait: no decision arrived in time
  4  replay found differences, lint found problems, or settings apply --dry-run found
     problems or stale versions (each is listed)
  5  explain: no event of that call is stored
  6  settings apply: the file names a tenant SETTINGS holds no event of (new, or a typo?)
     and it was not confirmed (--new-tenant TENANT, or y at the prompt); nothing published";

/// Where `make run` records its nats-server's URL while it runs (scripts/run.sh).
const MAKE_RUN_CONTEXT: &str = ".run/nats-url";

#[derive(Debug, Parser)]
#[command(
    name = "switchboard",
    version,
    about = "Switchboard command line: settings, test calls, and audits of the streams",
    after_help = EXIT_CODES
)]
struct Cli {
    #[command(flatten)]
    nats: NatsArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Settings events.
    #[command(after_help = EXIT_CODES)]
    Settings {
        #[command(subcommand)]
        command: SettingsCommand,
    },
    /// Publish a test `call.inbound` and (with --wait) print its decision.
    #[command(after_help = EXIT_CODES)]
    Call(CallArgs),
    /// API keys of the gateway's JSON API, kept hashed in the tenants' secrets file (no NATS
    /// needed).
    #[command(after_help = EXIT_CODES)]
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// A call's whole life from the streams: inbound event, decision and explanation, the
    /// settings in force (with their SETTINGS sequences), each dial step and outcome.
    #[command(after_help = EXIT_CODES)]
    Explain {
        /// The call id (the carrier's, e.g. a Twilio CallSid).
        call_id: String,
        /// The tenant (faster: only its subjects are searched).
        #[arg(long)]
        tenant: Option<String>,
        #[command(flatten)]
        output: Output,
    },
    /// Decide every recorded call again with the current routing code, from the settings as of
    /// its decision, and list each difference. Exits 4 on any difference.
    #[command(after_help = EXIT_CODES)]
    Replay {
        #[command(flatten)]
        window: Window,
        /// Only decisions at or after this CALLS stream sequence.
        #[arg(long, conflicts_with_all = ["since", "until"])]
        from_seq: Option<u64>,
        #[command(flatten)]
        output: Output,
    },
    /// Apply proposed settings (a settings file) on top of the current settings and show how
    /// past calls would ring instead: counts per rule before and after, and examples. With
    /// `returning_caller_days` proposed, each call is decided with who had answered its caller
    /// by then (the dialer's answers in CALLS), and the report counts the calls that would go
    /// back to that person.
    #[command(name = "what-if", after_help = EXIT_CODES)]
    WhatIf {
        /// The proposed settings: a JSON array of `{"type": …, "data": {…}}` (as for
        /// `settings apply`). Nothing is published.
        #[arg(long)]
        settings: PathBuf,
        #[command(flatten)]
        window: Window,
        /// Most example calls shown.
        #[arg(long, default_value_t = 10)]
        examples: usize,
        #[command(flatten)]
        output: Output,
    },
    /// Settings in which a call can end with no target or a bad one, each with how to fix it.
    /// Exits 4 when something is found.
    #[command(after_help = EXIT_CODES)]
    Lint {
        /// Only this tenant.
        #[arg(long)]
        tenant: Option<String>,
        #[command(flatten)]
        output: Output,
    },
}

/// Which recorded calls an audit reads.
#[derive(Debug, clap::Args)]
struct Window {
    /// Only this tenant.
    #[arg(long)]
    tenant: Option<String>,
    /// Only decisions stored at or after this time: RFC 3339 (`2026-11-21T09:00:00Z`) or an
    /// age (`30m`, `24h`, `7d`).
    #[arg(long)]
    since: Option<String>,
    /// Only decisions stored before this time (same forms as --since).
    #[arg(long)]
    until: Option<String>,
}

/// How a report is printed.
#[derive(Debug, clap::Args)]
struct Output {
    /// Print the report as JSON (for scripts) instead of tables.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// Create an API key for TENANT and print it once (stdout). With --tenants-file, add its
    /// SHA-256 to that file (the gateway reloads it within seconds, no restart); without, print
    /// the entry to add (stderr). The key itself is stored nowhere.
    Create {
        /// The tenant.
        #[arg(long)]
        tenant: String,
        /// The key's id, to name it when rotating (default: `k-<UTC date>-<time>`).
        #[arg(long)]
        id: Option<String>,
        /// The tenants' secrets file to add it to (the gateway's --tenants-file).
        #[arg(long, env = "SWITCHBOARD_TENANTS_FILE")]
        tenants_file: Option<PathBuf>,
    },
    /// Revoke API key ID of TENANT: remove it from the tenants' secrets file (refused by the
    /// gateway within seconds).
    Revoke {
        /// The tenant.
        #[arg(long)]
        tenant: String,
        /// The key's id.
        #[arg(long)]
        id: String,
        /// The tenants' secrets file.
        #[arg(long, env = "SWITCHBOARD_TENANTS_FILE")]
        tenants_file: PathBuf,
    },
    /// List the API key ids of every tenant (never a key or a hash).
    List {
        /// The tenants' secrets file.
        #[arg(long, env = "SWITCHBOARD_TENANTS_FILE")]
        tenants_file: PathBuf,
        /// JSON instead of lines.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
enum SettingsCommand {
    /// Publish the settings in FILE: a JSON array of `{"type": …, "data": {…}}` objects, read
    /// strictly (an unknown field is refused by name). A version not newer than the one in force
    /// is refused as stale, and then nothing is published. A tenant of which SETTINGS holds no
    /// event yet (a new one, or a typo such as `acmee`) is published only once confirmed:
    /// --new-tenant TENANT, or `y` when asked (on a terminal); otherwise nothing is (exit 6).
    Apply {
        /// The file.
        file: PathBuf,
        /// Publish nothing: check the file, show how past calls would ring with it (what-if,
        /// the last 7 days) and lint the settings as they would be.
        #[arg(long)]
        dry_run: bool,
        /// TENANT is meant to be new: publish its settings although SETTINGS holds no event of
        /// it yet (repeat for several tenants; harmless once the tenant exists).
        #[arg(long = "new-tenant", value_name = "TENANT", value_parser = tenant_id)]
        new_tenants: Vec<TenantId>,
        #[command(flatten)]
        streams: StreamArgs,
    },
}

#[derive(Debug, clap::Args)]
struct CallArgs {
    /// Tenant.
    #[arg(long)]
    tenant: String,
    /// The dialed number, read exactly as the gateway reads Twilio's `To` and the API's `to`:
    /// any format, a national number in `--default-region`; refused (exit 1, nothing
    /// published) only when it is not a possible number. Published in E.164.
    #[arg(long)]
    to: String,
    /// ISO 3166-1 region a `--to` without a country code is read in: the gateway's setting of
    /// the same name.
    #[arg(long, env = "SWITCHBOARD_DEFAULT_REGION", default_value = "US", value_parser = region)]
    default_region: switchboard_contracts::Region,
    /// The caller (empty or `anonymous` for a withheld number).
    #[arg(long, default_value = "")]
    from: String,
    /// The lead, if the producer knows it.
    #[arg(long)]
    contact_id: Option<String>,
    /// Call id (default: a fresh `CLI…` id).
    #[arg(long)]
    call_id: Option<String>,
    /// When the call came in (`received_at`, RFC 3339, e.g. `2026-12-07T18:05:00-06:00`):
    /// business and working hours are checked at this instant. Default: now.
    #[arg(long, value_parser = rfc3339)]
    at: Option<OffsetDateTime>,
    /// Wait this many seconds for the decision and print it.
    #[arg(long, num_args = 0..=1, default_missing_value = "10")]
    wait: Option<u64>,
    /// Print the decision as JSON.
    #[arg(long)]
    json: bool,
}

#[tokio::main]
async fn main() {
    let matches = <Cli as clap::CommandFactory>::command().get_matches();
    let mut cli = match <Cli as clap::FromArgMatches>::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    // Neither --nats-url nor NATS_URL: the NATS of `make run` in this checkout, if it runs,
    // rather than whatever listens on the default port.
    if matches.subcommand_name() != Some("keys")
        && matches!(
            matches.value_source("url"),
            None | Some(clap::parser::ValueSource::DefaultValue)
        )
        && let Ok(url) = std::fs::read_to_string(MAKE_RUN_CONTEXT)
        && !url.trim().is_empty()
    {
        cli.nats.url = url.trim().to_string();
        eprintln!(
            "switchboard: using make run's NATS at {} (from {MAKE_RUN_CONTEXT}; --nats-url or NATS_URL overrides)",
            cli.nats.url
        );
    }
    let code = match run(cli).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("switchboard: {e:#}");
            exit::FAILURE
        }
    };
    std::process::exit(code);
}

async fn run(cli: Cli) -> anyhow::Result<i32> {
    // Keys live in a file, not on NATS.
    if let Command::Keys { command } = &cli.command {
        match command {
            KeysCommand::Create {
                tenant,
                id,
                tenants_file,
            } => {
                TenantId::new(tenant.as_str())?;
                let key = keys::create(tenant, id.clone(), tenants_file.as_deref())?;
                println!("{key}");
            }
            KeysCommand::Revoke {
                tenant,
                id,
                tenants_file,
            } => keys::revoke(tenant, id, tenants_file)?,
            KeysCommand::List { tenants_file, json } => keys::list(tenants_file, *json)?,
        }
        return Ok(exit::OK);
    }
    let client = cli.nats.connect("switchboard-cli").await?;
    let js = jetstream::new(client.clone());
    let publisher = Publisher::new(js.clone());
    let code = match cli.command {
        Command::Settings {
            command:
                SettingsCommand::Apply {
                    file,
                    dry_run: true,
                    new_tenants,
                    ..
                },
        } => dry_run(&js, &file, &new_tenants).await?,
        Command::Settings {
            command:
                SettingsCommand::Apply {
                    file,
                    streams,
                    new_tenants,
                    ..
                },
        } => {
            ensure_streams(&js, &streams.options()).await?;
            apply_settings(&js, &publisher, &file, &new_tenants).await?
        }
        Command::Call(args) => call(&js, &publisher, args).await?,
        // Answered above, without NATS.
        Command::Keys { .. } => exit::OK,
        Command::Explain {
            call_id,
            tenant,
            output,
        } => {
            let tenant = tenant.map(TenantId::new).transpose()?;
            let bar = Bar::new();
            let life = switchboard_audit::explain(&js, &call_id, tenant.as_ref(), &bar).await;
            bar.clear();
            match life? {
                None => {
                    eprintln!("switchboard: no event of call {call_id} is stored in CALLS");
                    exit::NOT_FOUND
                }
                Some(life) => {
                    print_report(&life, output.json, switchboard_audit::CallLife::to_text)?;
                    exit::OK
                }
            }
        }
        Command::Replay {
            window,
            from_seq,
            output,
        } => {
            let mut selection = window.selection()?;
            selection.from_seq = from_seq;
            let bar = Bar::new();
            let started = std::time::Instant::now();
            let report = switchboard_audit::replay(&js, &selection, &bar).await;
            bar.clear();
            let report = report?;
            let seconds = started.elapsed().as_secs_f64();
            // Timing goes to stderr: the report itself stays deterministic.
            eprintln!(
                "replayed {} decision(s) in {seconds:.1} s ({:.0}/s)",
                report.calls_replayed,
                report.calls_replayed as f64 / seconds.max(1e-9)
            );
            print_report(
                &report,
                output.json,
                switchboard_audit::ReplayReport::to_text,
            )?;
            if report.is_clean() {
                exit::OK
            } else {
                exit::FOUND
            }
        }
        Command::WhatIf {
            settings,
            window,
            examples,
            output,
        } => {
            let selection = window.selection()?;
            let proposal = read_settings_file(&settings)?;
            let bar = Bar::new();
            let report =
                switchboard_audit::what_if(&js, &proposal, &selection, examples, &bar).await;
            bar.clear();
            print_report(
                &report?,
                output.json,
                switchboard_audit::WhatIfReport::to_text,
            )?;
            exit::OK
        }
        Command::Lint { tenant, output } => {
            let selection = Selection {
                tenant: tenant.map(TenantId::new).transpose()?,
                ..Selection::default()
            };
            let bar = Bar::new();
            let report = switchboard_audit::lint(&js, &selection, &bar).await;
            bar.clear();
            let report = report?;
            print_report(&report, output.json, switchboard_audit::LintReport::to_text)?;
            if report.findings.is_empty() {
                exit::OK
            } else {
                exit::FOUND
            }
        }
    };
    client.flush().await?;
    Ok(code)
}

async fn publish<T: EventData>(publisher: &Publisher, data: T) -> anyhow::Result<u64> {
    let (published, what) = publish_quietly(publisher, data).await?;
    let note = if published.duplicate {
        " (duplicate, already stored)"
    } else {
        ""
    };
    // On stderr: stdout is the command's answer (one JSON document with --json).
    eprintln!(
        "published {what} at {} #{}{note}",
        published.stream, published.sequence
    );
    Ok(published.sequence)
}

/// Publishes `data`, waits for the ack, prints nothing; with what was published, for people.
async fn publish_quietly<T: EventData>(
    publisher: &Publisher,
    data: T,
) -> anyhow::Result<(switchboard_bus::Published, String)> {
    let envelope = Envelope::new(data, SOURCE, OffsetDateTime::now_utc());
    data_valid(&envelope)?;
    let published = publisher
        .publish(&envelope, &TraceContext::default())
        .await?;
    Ok((
        published,
        format!("{} {}", T::TYPE, envelope.data.ce_subject()),
    ))
}

/// Publishes a settings change. An answer "duplicate" is a re-run only when the stored event
/// is this one; otherwise its version was spent by a refused event (same event id), and that
/// is an error, never "already stored".
async fn publish_setting(
    js: &jetstream::Context,
    publisher: &Publisher,
    change: SettingsChange,
) -> anyhow::Result<()> {
    let (published, what) = match change.clone() {
        SettingsChange::Company(c) => publish_quietly(publisher, c).await?,
        SettingsChange::Number(n) => publish_quietly(publisher, n).await?,
        SettingsChange::User(u) => publish_quietly(publisher, u).await?,
        SettingsChange::Contact(c) => publish_quietly(publisher, c).await?,
    };
    if published.duplicate {
        if let Err(spent) =
            switchboard_audit::settings::duplicate_is_same(js, published.sequence, &change).await?
        {
            anyhow::bail!("{what} not stored: {spent}");
        }
        eprintln!(
            "unchanged {what}: already stored at {} #{}",
            published.stream, published.sequence
        );
    } else {
        eprintln!(
            "published {what} at {} #{}",
            published.stream, published.sequence
        );
    }
    Ok(())
}

fn data_valid<T: EventData>(envelope: &Envelope<T>) -> anyhow::Result<()> {
    envelope
        .data
        .validate()
        .with_context(|| format!("invalid {} {}", T::TYPE, envelope.data.ce_subject()))
}

fn read_settings_file(file: &Path) -> anyhow::Result<Vec<SettingsChange>> {
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("failed to read {}", file.display()))?;
    switchboard_audit::parse_settings_file(&text)
        .with_context(|| format!("failed to read the settings in {}", file.display()))
}

async fn apply_settings(
    js: &jetstream::Context,
    publisher: &Publisher,
    file: &Path,
    confirmed: &[TenantId],
) -> anyhow::Result<i32> {
    // Every item is checked before the first is published: a bad file publishes nothing.
    let (fresh, stale) = against_stored(js, read_settings_file(file)?).await?;
    if !stale.is_empty() {
        anyhow::bail!("nothing published:\n  {}", stale.join("\n  "));
    }
    let new = new_tenants::unknown(js, &fresh).await?;
    let unconfirmed = new_tenants::unconfirmed(&new, confirmed);
    if !unconfirmed.is_empty() {
        use std::io::IsTerminal as _;
        // Asked only of a person at a terminal; a script gets the refusal and exit 6.
        let confirmed_now = std::io::stdin().is_terminal()
            && std::io::stderr().is_terminal()
            && new_tenants::ask(
                &unconfirmed,
                &mut std::io::stdin().lock(),
                &mut std::io::stderr(),
            )?;
        if !confirmed_now {
            eprintln!(
                "switchboard: nothing published: {}; if that is meant, run again with {}",
                new_tenants::warning(&unconfirmed),
                new_tenants::flags(&unconfirmed)
            );
            return Ok(exit::NEW_TENANT);
        }
    }
    if !new.is_empty() {
        eprintln!("new tenant(s): {}", new_tenants::names(&new));
    }
    for change in fresh {
        publish_setting(js, publisher, change).await?;
    }
    Ok(exit::OK)
}

/// Splits `changes` against the settings in force (each entity's SETTINGS history as the
/// router applies it: a refused event is not in force): the ones to publish, and why each
/// stale one is stale. A version that is not newer than the one in force is stale (the router
/// would file it as settings.rejected), unless it is exactly that event (a re-run:
/// "unchanged").
async fn against_stored(
    js: &jetstream::Context,
    changes: Vec<SettingsChange>,
) -> anyhow::Result<(Vec<SettingsChange>, Vec<String>)> {
    let mut fresh = Vec::with_capacity(changes.len());
    let mut stale = Vec::new();
    for (i, change) in changes.into_iter().enumerate() {
        let subject = change.nats_subject();
        let in_force = switchboard_audit::settings::entity_in_force(js, &subject).await?;
        match in_force.check(&change) {
            Ok(true) => eprintln!(
                "unchanged {subject}: version {} is in force (SETTINGS #{})",
                change.version(),
                in_force.applied.as_ref().map_or(0, |(seq, _)| *seq)
            ),
            Ok(false) => fresh.push(change),
            Err(why) => stale.push(format!("item {}: {subject}: {why}", i + 1)),
        }
    }
    Ok((fresh, stale))
}

/// `settings apply --dry-run`: the file checked, what-if over the last 7 days, and lint of
/// the settings with the file applied; exits 4 when lint finds problems. Publishes nothing.
/// New tenants are reported (as `settings apply` would ask about them), not counted as
/// problems.
async fn dry_run(
    js: &jetstream::Context,
    file: &Path,
    confirmed: &[TenantId],
) -> anyhow::Result<i32> {
    let proposal = read_settings_file(file)?;
    let (fresh, stale) = against_stored(js, proposal.clone()).await?;
    let new = new_tenants::unknown(js, &fresh).await?;
    eprintln!(
        "{}: {} settings event(s), all valid; nothing is published (--dry-run)",
        file.display(),
        proposal.len()
    );
    if !stale.is_empty() {
        eprintln!(
            "{} would be refused as stale (settings apply publishes nothing then):\n  {}",
            stale.len(),
            stale.join("\n  ")
        );
    }
    let unconfirmed = new_tenants::unconfirmed(&new, confirmed);
    if !unconfirmed.is_empty() {
        eprintln!(
            "warning: {}; settings apply publishes them only with {} (or y at its prompt)",
            new_tenants::warning(&unconfirmed),
            new_tenants::flags(&unconfirmed)
        );
    } else if !new.is_empty() {
        eprintln!(
            "new tenant(s), confirmed with --new-tenant: {}",
            new_tenants::names(&new)
        );
    }
    let now = OffsetDateTime::now_utc();
    let selection = Selection {
        since: Some(now - time::Duration::days(7)),
        ..Selection::default()
    };
    let bar = Bar::new();
    let what_if = switchboard_audit::what_if(js, &proposal, &selection, 5, &bar).await;
    bar.clear();
    print!("{}", what_if?.to_text());
    let bar = Bar::new();
    let lint = switchboard_audit::lint_with(js, &Selection::default(), &proposal, &bar).await;
    bar.clear();
    let lint = lint?;
    println!();
    print!("{}", lint.to_text());
    Ok(if lint.findings.is_empty() && stale.is_empty() {
        exit::OK
    } else {
        exit::FOUND
    })
}

/// Prints `report` as pretty JSON or as text.
fn print_report<T: serde::Serialize>(
    report: &T,
    json: bool,
    text: impl Fn(&T) -> String,
) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(report)?);
    } else {
        print!("{}", text(report));
    }
    Ok(())
}

impl Window {
    fn selection(&self) -> anyhow::Result<Selection> {
        let now = OffsetDateTime::now_utc();
        let selection = Selection {
            tenant: self.tenant.clone().map(TenantId::new).transpose()?,
            since: self
                .since
                .as_deref()
                .map(|t| parse_time(t, now).context("invalid --since"))
                .transpose()?,
            until: self
                .until
                .as_deref()
                .map(|t| parse_time(t, now).context("invalid --until"))
                .transpose()?,
            from_seq: None,
        };
        selection.validate()?;
        Ok(selection)
    }
}

/// RFC 3339, or an age before `now`: a number and `s`, `m`, `h` or `d`.
fn parse_time(text: &str, now: OffsetDateTime) -> anyhow::Result<OffsetDateTime> {
    if let Ok(time) = OffsetDateTime::parse(text, &Rfc3339) {
        return Ok(time);
    }
    let unit = match text.chars().last() {
        Some('s') => 1,
        Some('m') => 60,
        Some('h') => 3600,
        Some('d') => 86_400,
        _ => 0,
    };
    let amount = text
        .get(..text.len().saturating_sub(1))
        .and_then(|n| n.parse::<i64>().ok())
        .filter(|n| *n >= 0 && unit > 0);
    match amount.and_then(|n| n.checked_mul(unit)) {
        Some(seconds) => Ok(now - time::Duration::seconds(seconds)),
        None => anyhow::bail!(
            "{text:?} is neither an RFC 3339 time (2026-11-21T09:00:00Z) nor an age (30m, 24h, 7d)"
        ),
    }
}

/// A progress bar on stderr (drawn only on a terminal, so scripts and pipes see nothing).
struct Bar(ProgressBar);

impl Bar {
    fn new() -> Self {
        let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
        if let Ok(style) =
            ProgressStyle::with_template("{msg:20} [{bar:40}] {pos}/{len} {per_sec} eta {eta}")
        {
            bar.set_style(style.progress_chars("=> "));
        }
        Bar(bar)
    }

    fn clear(&self) {
        self.0.finish_and_clear();
    }
}

impl Progress for Bar {
    fn stage(&self, name: &str, total: Option<u64>) {
        self.0.reset();
        self.0.set_length(total.unwrap_or(0));
        self.0.set_message(name.to_string());
    }

    fn advance(&self, n: u64) {
        self.0.inc(n);
    }
}

/// Reads a tenant id (`--new-tenant`).
fn tenant_id(text: &str) -> Result<TenantId, String> {
    TenantId::new(text).map_err(|e| e.to_string())
}

/// Reads an RFC 3339 instant (`--at`).
fn rfc3339(text: &str) -> Result<OffsetDateTime, String> {
    OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).map_err(|e| {
        format!("{text:?} is not an RFC 3339 time such as 2026-12-07T18:05:00-06:00: {e}")
    })
}

async fn call(
    js: &jetstream::Context,
    publisher: &Publisher,
    args: CallArgs,
) -> anyhow::Result<i32> {
    let call = inbound_call(&args)?;
    let (tenant, call_id) = (call.tenant_id.clone(), call.call_id.clone());
    // Listen before publishing, so the decision cannot slip by.
    let decisions = match args.wait {
        Some(_) => Some(
            js.get_stream(switchboard_bus::CALLS)
                .await?
                .create_consumer(consumer::pull::OrderedConfig {
                    filter_subject: switchboard_contracts::subjects::call_route(&tenant),
                    deliver_policy: consumer::DeliverPolicy::New,
                    ..Default::default()
                })
                .await?
                .messages()
                .await?,
        ),
        None => None,
    };
    publish(publisher, call).await?;
    let (Some(mut decisions), Some(wait)) = (decisions, args.wait) else {
        return Ok(exit::OK);
    };
    let deadline = tokio::time::sleep(Duration::from_secs(wait));
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            _ = &mut deadline => {
                eprintln!("switchboard: no decision for {call_id} within {wait} s (is the router running?)");
                return Ok(exit::NO_DECISION);
            }
            next = decisions.next() => {
                let Some(message) = next else { anyhow::bail!("the decision stream ended") };
                let message = message?;
                let Ok(route) = Envelope::<CallRoute>::decode(&message.payload, &message.subject) else {
                    continue;
                };
                if route.data.call_id != call_id {
                    continue;
                }
                print_route(&route.data, args.json)?;
                return Ok(exit::OK);
            }
        }
    }
}

/// The `call.inbound` `switchboard call` publishes. The dialed number is read with the
/// gateway's function ([`switchboard_contracts::E164::accept`], as for Twilio's `To` and the
/// API's `to`): a number the gateway would refuse is refused here, and one it accepts
/// (possible, known to the phone-number metadata or not) is published in E.164 as it would be.
fn inbound_call(args: &CallArgs) -> anyhow::Result<CallInbound> {
    let to = switchboard_contracts::E164::accept("to", &args.to, args.default_region)?;
    let call = CallInbound {
        call_id: args
            .call_id
            .clone()
            .unwrap_or_else(|| format!("CLI{}", OffsetDateTime::now_utc().unix_timestamp_nanos())),
        tenant_id: TenantId::new(args.tenant.clone())?,
        to: to.as_str().to_string(),
        from: args.from.clone(),
        received_at: args.at.unwrap_or_else(OffsetDateTime::now_utc),
        contact_id: args
            .contact_id
            .clone()
            .map(|c| EntityId::parse("contact_id", c))
            .transpose()?,
    };
    Ok(call)
}

/// Reads an ISO 3166-1 alpha-2 region (`--default-region`).
fn region(code: &str) -> Result<switchboard_contracts::Region, String> {
    switchboard_contracts::Region::parse(code)
        .ok_or_else(|| format!("{code:?} is not an ISO 3166-1 alpha-2 region such as US or GB"))
}

fn print_route(route: &CallRoute, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(route)?);
        return Ok(());
    }
    print!("{}", route_text(route));
    Ok(())
}

/// A decision for people (numbers masked, as E164's Display does in every command; `--json`
/// is the data): rule, legs (a ring group's members, screening), final action, positions, why.
fn route_text(route: &CallRoute) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = writeln!(out, "call        {}", route.call_id);
    if let Some(caller) = &route.caller {
        let _ = writeln!(out, "caller      {caller}");
    }
    let _ = writeln!(out, "rule        {}", route.rule.as_str());
    let leg = |t: &switchboard_contracts::Target| {
        let mut notes = vec![t.rule.as_str().to_string()];
        if !t.group.is_empty() {
            let members: Vec<String> = t
                .group
                .iter()
                .map(|m| format!("{} {}", m.user_id, m.number))
                .collect();
            notes[0] = format!("{}: {} at once", t.rule.as_str(), members.join(", "));
        }
        if let Some(secs) = t.ring_timeout_secs {
            notes.push(format!("rings {secs} s"));
        }
        if t.screen {
            notes.push("screened: press 1 to accept".into());
        }
        format!("{} ({})", t.number, notes.join(", "))
    };
    match &route.target {
        Some(t) => _ = writeln!(out, "target      {}", leg(t)),
        None => _ = writeln!(out, "target      none"),
    }
    for t in &route.fallbacks {
        let _ = writeln!(out, "then        {}", leg(t));
    }
    let kind = route.final_action.kind.as_str();
    match route.final_action.kind {
        switchboard_contracts::FinalActionKind::Reject => {
            let _ = writeln!(
                out,
                "finally     {kind}: refused unanswered (the caller's carrier plays busy)"
            );
        }
        _ => _ = writeln!(out, "finally     {kind}: {}", route.final_action.message),
    }
    let _ = writeln!(
        out,
        "settings    SETTINGS #{}{}",
        route.settings_seq,
        if route.calls_seq > 0 {
            format!(", answers up to CALLS #{}", route.calls_seq)
        } else {
            String::new()
        }
    );
    let _ = writeln!(out, "why");
    for (i, line) in route.explanation_lines().iter().enumerate() {
        let _ = writeln!(out, "  {}. {line}", i + 1);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call_args(extra: &[&str]) -> CallArgs {
        let mut argv = vec!["switchboard", "call", "--tenant", "acme"];
        argv.extend_from_slice(extra);
        match Cli::try_parse_from(argv).unwrap().command {
            Command::Call(args) => args,
            other => panic!("{other:?}"),
        }
    }

    /// A decision as `switchboard call` prints it: a simultaneous group's members on its leg,
    /// screened legs, a rejection instead of a message, the caller and the CALLS position of
    /// the returning-caller history; numbers masked.
    #[test]
    fn a_route_prints_group_members_screening_and_a_rejection() {
        use switchboard_contracts::{
            E164, FinalAction, FinalActionKind, GroupMember, Rule, Target,
        };
        let number = |n: &str| E164::parse_strict(n).unwrap();
        let user = |u: &str| EntityId::parse("user_id", u).unwrap();
        let mut leg = Target::single(
            number("+12064561234"),
            Some(user("u-alice")),
            Rule::RingGroup,
            Some(15),
        );
        leg.group = vec![
            GroupMember {
                number: number("+12064561234"),
                user_id: user("u-alice"),
            },
            GroupMember {
                number: number("+12064561235"),
                user_id: user("u-carol"),
            },
        ];
        leg.screen = true;
        let route = CallRoute {
            call_id: "CA-1".into(),
            tenant_id: TenantId::new("acme").unwrap(),
            rule: Rule::RingGroup,
            target: Some(leg),
            fallbacks: vec![Target::single(
                number("+16172531234"),
                None,
                Rule::CompanyPhone,
                Some(20),
            )],
            final_action: FinalAction {
                kind: FinalActionKind::Voicemail,
                message: "Leave a message.".into(),
            },
            reasons: Vec::new(),
            explanation: Vec::new(),
            settings_seq: 7,
            calls_seq: 42,
            caller: Some(number("+14158675312")),
            decided_at: OffsetDateTime::UNIX_EPOCH,
        };
        let text = route_text(&route);
        for line in [
            "caller      +14*******12",
            "target      +12*******34 (ring_group: u-alice +12*******34, u-carol +12*******35 \
             at once, rings 15 s, screened: press 1 to accept)",
            "then        +16*******34 (company_phone, rings 20 s)",
            "finally     voicemail: Leave a message.",
            "settings    SETTINGS #7, answers up to CALLS #42",
        ] {
            assert!(text.lines().any(|l| l == line), "{line:?} missing\n{text}");
        }
        assert!(!text.contains("2064561235"), "{text}");

        let rejected = CallRoute {
            rule: Rule::Blocked,
            target: None,
            fallbacks: Vec::new(),
            final_action: FinalAction {
                kind: FinalActionKind::Reject,
                message: Default::default(),
            },
            calls_seq: 0,
            caller: None,
            ..route
        };
        let text = route_text(&rejected);
        assert!(
            text.contains("target      none\n")
                && text.contains(
                    "finally     reject: refused unanswered (the caller's carrier plays busy)\n"
                )
                && text.contains("settings    SETTINGS #7\n")
                && !text.contains("caller "),
            "{text}"
        );
    }

    /// Issue 16: "`switchboard call --to` validates exactly as the gateway does": the same
    /// numbers accepted (a possible number the metadata does not know included), the same
    /// refused with the same error, national numbers read in the gateway's default region.
    #[test]
    fn call_reads_the_dialed_number_as_the_gateway_does() {
        let us = switchboard_contracts::Region::DEFAULT;
        for to in [
            "+16502530000",
            "(650) 253-0000",
            "+1 555 010 0199",
            "+1 200 555 0100",
            "+1 650 253 000",
            "not a number",
            "anonymous",
        ] {
            let gateway = switchboard_contracts::E164::accept("to", to, us);
            let cli = inbound_call(&call_args(&["--to", to]));
            match (gateway, cli) {
                (Ok(number), Ok(call)) => assert_eq!(call.to, number.as_str(), "{to}"),
                (Err(refused), Err(e)) => assert_eq!(e.to_string(), refused.to_string(), "{to}"),
                (gateway, cli) => panic!("{to}: gateway {gateway:?}, cli {cli:?}"),
            }
        }
        let call = inbound_call(&call_args(&["--to", "+1 555 010 0199"])).unwrap();
        assert_eq!(call.to, "+15550100199");
        let err = inbound_call(&call_args(&["--to", "+1 650 253 000"])).unwrap_err();
        assert!(
            err.to_string().contains("invalid phone number in `to`"),
            "{err}"
        );
        // A national number in another region, as a gateway configured for it reads it.
        let gb = call_args(&["--to", "020 7946 0018", "--default-region", "gb"]);
        assert_eq!(inbound_call(&gb).unwrap().to, "+442079460018");
        assert!(
            Cli::try_parse_from([
                "switchboard",
                "call",
                "--tenant",
                "a",
                "--to",
                "1",
                "--default-region",
                "XX"
            ])
            .is_err()
        );
    }
}
