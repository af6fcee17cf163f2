//! `switchboard`: the operator's and auditor's command line. Publishes settings events and
//! places test calls, printing the decision. (Explain, replay, what-if and lint join with the
//! audit issue.) Exit codes: 0 success, 1 failure, 2 usage, 3 a waited-for decision did not
//! arrive in time.
#![allow(clippy::print_stdout)] // a command-line tool: printing is its job

use anyhow::Context as _;
use async_nats::jetstream::{self, consumer};
use clap::{Parser, Subcommand};
use futures::StreamExt;
use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;
use switchboard_bus::{NatsArgs, Publisher, StreamArgs, TraceContext, ensure_streams};
use switchboard_contracts::{
    CallInbound, CallRoute, CompanySettings, ContactSettings, EntityId, Envelope, EventData,
    NumberSettings, TenantId, UserSettings,
};
use time::OffsetDateTime;

const SOURCE: &str = "/switchboard/cli";

#[derive(Debug, Parser)]
#[command(name = "switchboard", version, about = "Switchboard command line")]
struct Cli {
    #[command(flatten)]
    nats: NatsArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Settings events.
    Settings {
        #[command(subcommand)]
        command: SettingsCommand,
    },
    /// Publish a test `call.inbound` and (with --wait) print its decision.
    Call(CallArgs),
}

#[derive(Debug, Subcommand)]
enum SettingsCommand {
    /// Publish the settings in FILE: a JSON array of `{"type": …, "data": {…}}` objects.
    Apply {
        /// The file.
        file: PathBuf,
        #[command(flatten)]
        streams: StreamArgs,
    },
}

#[derive(Debug, clap::Args)]
struct CallArgs {
    /// Tenant.
    #[arg(long)]
    tenant: String,
    /// The dialed number.
    #[arg(long)]
    to: String,
    /// The caller (empty or `anonymous` for a withheld number).
    #[arg(long, default_value = "")]
    from: String,
    /// The lead, if the producer knows it.
    #[arg(long)]
    contact_id: Option<String>,
    /// Call id (default: a fresh `CLI…` id).
    #[arg(long)]
    call_id: Option<String>,
    /// Wait this many seconds for the decision and print it.
    #[arg(long, num_args = 0..=1, default_missing_value = "10")]
    wait: Option<u64>,
    /// Print the decision as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Deserialize)]
struct SettingsItem {
    #[serde(rename = "type")]
    event_type: String,
    data: serde_json::Value,
}

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    let code = match run(cli).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("switchboard: {e:#}");
            1
        }
    };
    std::process::exit(code);
}

async fn run(cli: Cli) -> anyhow::Result<i32> {
    let client = cli.nats.connect("switchboard-cli").await?;
    let js = jetstream::new(client.clone());
    let publisher = Publisher::new(js.clone());
    let code = match cli.command {
        Command::Settings {
            command: SettingsCommand::Apply { file, streams },
        } => {
            ensure_streams(&js, &streams.options()).await?;
            apply_settings(&publisher, &file).await?;
            0
        }
        Command::Call(args) => call(&js, &publisher, args).await?,
    };
    client.flush().await?;
    Ok(code)
}

async fn publish<T: EventData>(publisher: &Publisher, data: T) -> anyhow::Result<u64> {
    let envelope = Envelope::new(data, SOURCE, OffsetDateTime::now_utc());
    data_valid(&envelope)?;
    let published = publisher
        .publish(&envelope, &TraceContext::default())
        .await?;
    let note = if published.duplicate {
        " (duplicate, already stored)"
    } else {
        ""
    };
    println!(
        "published {} {} at {} #{}{note}",
        T::TYPE,
        envelope.data.ce_subject(),
        published.stream,
        published.sequence
    );
    Ok(published.sequence)
}

fn data_valid<T: EventData>(envelope: &Envelope<T>) -> anyhow::Result<()> {
    envelope
        .data
        .validate()
        .with_context(|| format!("invalid {} {}", T::TYPE, envelope.data.ce_subject()))
}

fn typed<T: EventData>(value: serde_json::Value) -> anyhow::Result<T> {
    serde_json::from_value(value).with_context(|| format!("invalid data for {}", T::TYPE))
}

async fn apply_settings(publisher: &Publisher, file: &PathBuf) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("failed to read {}", file.display()))?;
    let items: Vec<SettingsItem> = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a JSON array of {{type, data}}", file.display()))?;
    for item in items {
        match item.event_type.as_str() {
            CompanySettings::TYPE => {
                publish(publisher, typed::<CompanySettings>(item.data)?).await?
            }
            NumberSettings::TYPE => publish(publisher, typed::<NumberSettings>(item.data)?).await?,
            UserSettings::TYPE => publish(publisher, typed::<UserSettings>(item.data)?).await?,
            ContactSettings::TYPE => {
                publish(publisher, typed::<ContactSettings>(item.data)?).await?
            }
            other => anyhow::bail!("unknown settings type {other:?}"),
        };
    }
    Ok(())
}

async fn call(
    js: &jetstream::Context,
    publisher: &Publisher,
    args: CallArgs,
) -> anyhow::Result<i32> {
    let tenant = TenantId::new(args.tenant)?;
    let call_id = args
        .call_id
        .unwrap_or_else(|| format!("CLI{}", OffsetDateTime::now_utc().unix_timestamp_nanos()));
    let call = CallInbound {
        call_id: call_id.clone(),
        tenant_id: tenant.clone(),
        to: args.to,
        from: args.from,
        received_at: OffsetDateTime::now_utc(),
        contact_id: args
            .contact_id
            .map(|c| EntityId::parse("contact_id", c))
            .transpose()?,
    };
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
        return Ok(0);
    };
    let deadline = tokio::time::sleep(Duration::from_secs(wait));
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            _ = &mut deadline => {
                eprintln!("switchboard: no decision for {call_id} within {wait} s (is the router running?)");
                return Ok(3);
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
                return Ok(0);
            }
        }
    }
}

fn print_route(route: &CallRoute, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(route)?);
        return Ok(());
    }
    println!("call        {}", route.call_id);
    println!("rule        {}", route.rule.as_str());
    match &route.target {
        Some(t) => println!("target      {} ({})", t.number.as_str(), t.rule.as_str()),
        None => println!("target      none"),
    }
    for t in &route.fallbacks {
        println!("then        {} ({})", t.number.as_str(), t.rule.as_str());
    }
    println!(
        "finally     {:?}: {}",
        route.final_action.kind, route.final_action.message
    );
    println!("settings    SETTINGS #{}", route.settings_seq);
    println!("why");
    for (i, line) in route.explanation.iter().enumerate() {
        println!("  {}. {line}", i + 1);
    }
    Ok(())
}
