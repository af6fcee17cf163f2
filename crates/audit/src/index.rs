//! Finding every stored event of one call without scanning CALLS: the call index
//! (`INDEX`, `index.call.<call>` → CALLS sequence, written by the gateway's indexer) up to
//! the indexer's acknowledged floor, then a scan of only what lies past that floor. The index
//! being behind (or a gateway that never ran it) makes a lookup slower, never incomplete.

use crate::AuditError;
use crate::read::{Flow, Progress, Start, Stored, scan};
use async_nats::jetstream::{self, context::ConsumerInfoErrorKind, stream::DirectGetErrorKind};
use futures::{StreamExt, TryStreamExt};
use std::collections::BTreeSet;
use switchboard_bus::{CALLS, INDEX, SETTINGS, call_indexer, contact_phone_indexer};
use switchboard_contracts::events::entity;
use switchboard_contracts::{SettingsChange, TenantId, subjects};

/// CALLS events read at once when the index names several.
const PARALLEL_GETS: usize = 16;

/// How a call's events were found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Lookup {
    /// Events the index named.
    pub indexed: usize,
    /// The CALLS sequence from which events were scanned because the index did not cover them
    /// yet (`None`: the index covered everything; `Some(1)` with no index at all).
    pub scanned_from: Option<u64>,
    /// Whether the tenant's SETTINGS history up to the decision was scanned to find the
    /// settings in force (no contact-phone index), rather than read entity by entity.
    pub settings_scanned: bool,
}

/// Every stored CALLS event of `call_id` (of `tenant` only, when given), in stream order.
pub async fn call_events(
    js: &jetstream::Context,
    call_id: &str,
    tenant: Option<&TenantId>,
    progress: &dyn Progress,
) -> Result<(Vec<Stored>, Lookup), AuditError> {
    let ours =
        |subject: &str| tenant.is_none_or(|t| subjects::tenant_of(subject) == Some(t.as_str()));
    let (mut events, covered_to) = match indexed(js, call_id).await? {
        Some((seqs, covered_to)) => (read_calls(js, &seqs).await?, covered_to),
        None => (Vec::new(), None),
    };
    events.retain(|e| {
        ours(&e.subject) && subjects::call_id_of(&e.subject, &e.payload).as_deref() == Some(call_id)
    });
    let lookup = Lookup {
        indexed: events.len(),
        scanned_from: match covered_to {
            Some(Covered::All) => None,
            Some(Covered::To(floor)) => Some(floor + 1),
            None => Some(1),
        },
        settings_scanned: false,
    };
    if let Some(from) = lookup.scanned_from {
        let filter = match tenant {
            Some(t) => format!("call.*.{t}"),
            None => subjects::ALL_CALLS.to_string(),
        };
        let seen: std::collections::HashSet<u64> = events.iter().map(|e| e.seq).collect();
        let finder = memchr::memmem::Finder::new(call_id.as_bytes());
        let stage = if from == 1 {
            "searching CALLS (no call index)"
        } else {
            "searching CALLS past the call index"
        };
        scan(
            js,
            CALLS,
            &[filter],
            Start::Seq(from),
            progress,
            stage,
            |m| {
                if !seen.contains(&m.seq)
                    && finder.find(&m.payload).is_some()
                    && subjects::call_id_of(&m.subject, &m.payload).as_deref() == Some(call_id)
                {
                    events.push(m);
                }
                Ok(Flow::Continue)
            },
        )
        .await?;
    }
    events.sort_by_key(|e| e.seq);
    Ok((events, lookup))
}

/// How far the index covers CALLS.
enum Covered {
    /// Every message stored so far.
    All,
    /// Every message up to this sequence.
    To(u64),
}

/// The CALLS sequences the index holds for `call_id`, and how far it covers; `None` when there
/// is no index (no indexer ever ran).
async fn indexed(
    js: &jetstream::Context,
    call_id: &str,
) -> Result<Option<(Vec<u64>, Option<Covered>)>, AuditError> {
    // The floor first: every entry for a sequence at or below it is written before the floor
    // passes it, so reading entries after it misses none.
    let calls = js
        .get_stream_no_info(CALLS)
        .await
        .map_err(AuditError::nats("open the CALLS stream"))?;
    let info = match calls.consumer_info(call_indexer().name).await {
        Ok(info) => info,
        Err(e) if e.kind() == ConsumerInfoErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(AuditError::nats("read the call indexer's position")(e)),
    };
    let covered = if info.num_pending == 0 && info.num_ack_pending == 0 {
        Covered::All
    } else {
        Covered::To(info.ack_floor.stream_sequence)
    };
    let seqs = entries(js, &subjects::call_index(call_id)).await?;
    Ok(Some((seqs.into_iter().collect(), Some(covered))))
}

/// The CALLS messages at `seqs` (those still stored).
async fn read_calls(js: &jetstream::Context, seqs: &[u64]) -> Result<Vec<Stored>, AuditError> {
    let calls = js
        .get_stream_no_info(CALLS)
        .await
        .map_err(AuditError::nats("open the CALLS stream"))?;
    let calls = &calls;
    futures::stream::iter(seqs.iter().copied())
        .map(|seq| async move {
            match calls.direct_get(seq).await {
                Ok(m) => Ok(Some(Stored {
                    seq: m.sequence,
                    time: m.time,
                    subject: m.subject,
                    payload: m.payload,
                })),
                // Aged out of CALLS (the index outlived it by a moment).
                Err(e) if e.kind() == DirectGetErrorKind::NotFound => Ok(None),
                Err(e) => Err(AuditError::nats(format!("read CALLS #{seq}"))(e)),
            }
        })
        .buffer_unordered(PARALLEL_GETS)
        .try_filter_map(|m| async move { Ok(m) })
        .try_collect()
        .await
}

/// Every event stored on SETTINGS `subject` (one entity's history) up to sequence `upto`, by
/// direct gets (JetStream keeps a per-subject index, so this reads only that history).
pub async fn entity_history(
    js: &jetstream::Context,
    subject: &str,
    upto: u64,
) -> Result<Vec<Stored>, AuditError> {
    let settings = js
        .get_stream_no_info(SETTINGS)
        .await
        .map_err(AuditError::nats("open the SETTINGS stream"))?;
    let mut history = Vec::new();
    let mut next = 1;
    while next <= upto {
        match settings
            .direct_get_next_for_subject(subject, Some(next))
            .await
        {
            Ok(m) if m.sequence <= upto => {
                next = m.sequence + 1;
                history.push(Stored {
                    seq: m.sequence,
                    time: m.time,
                    subject: m.subject,
                    payload: m.payload,
                });
            }
            Ok(_) => break,
            Err(e) if e.kind() == DirectGetErrorKind::NotFound => break,
            Err(e) => {
                return Err(AuditError::nats(format!("read the history of {subject}"))(
                    e,
                ));
            }
        }
    }
    Ok(history)
}

/// The SETTINGS subjects of `tenant`'s contacts whose settings listed a phone with `key`
/// ([`subjects::phone_index_key`]) at any sequence up to `upto`: a superset of the contacts
/// that have that number as of `upto`. `None` when there is no contact-phone index (no
/// indexer ever ran); what the index does not cover yet is scanned.
pub async fn contacts_with_phone_key(
    js: &jetstream::Context,
    tenant: &TenantId,
    key: &str,
    upto: u64,
) -> Result<Option<BTreeSet<String>>, AuditError> {
    let settings = js
        .get_stream_no_info(SETTINGS)
        .await
        .map_err(AuditError::nats("open the SETTINGS stream"))?;
    let info = match settings.consumer_info(contact_phone_indexer().name).await {
        Ok(info) => info,
        Err(e) if e.kind() == ConsumerInfoErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(AuditError::nats(
                "read the contact-phone indexer's position",
            )(e));
        }
    };
    let covered_to = if info.num_pending == 0 && info.num_ack_pending == 0 {
        u64::MAX
    } else {
        info.ack_floor.stream_sequence
    };
    let mut seqs = entries(js, &subjects::phone_index(tenant, key)).await?;
    seqs.retain(|seq| *seq <= upto);
    let mut contacts = BTreeSet::new();
    for seq in seqs {
        match settings.direct_get(seq).await {
            Ok(m) => {
                contacts.insert(m.subject.to_string());
            }
            Err(e) if e.kind() == DirectGetErrorKind::NotFound => {}
            Err(e) => return Err(AuditError::nats(format!("read SETTINGS #{seq}"))(e)),
        }
    }
    if covered_to < upto {
        // Past the index: the tenant's contact events up to `upto`, read for their phones.
        let filter = subjects::settings(tenant, entity::CONTACT, "*");
        let key = key.to_string();
        scan(
            js,
            SETTINGS,
            &[filter],
            Start::Seq(covered_to + 1),
            &crate::NoProgress,
            "reading contacts past the contact-phone index",
            |m| {
                if m.seq > upto {
                    return Ok(Flow::Stop);
                }
                if let Ok(SettingsChange::Contact(c)) =
                    SettingsChange::decode(&m.payload, &m.subject)
                    && c.phones
                        .iter()
                        .any(|p| subjects::phone_index_keys(p).contains(&key))
                {
                    contacts.insert(m.subject.to_string());
                }
                Ok(Flow::Continue)
            },
        )
        .await?;
    }
    Ok(Some(contacts))
}

/// The stream sequences the entries on INDEX `subject` name, each once (an entry written twice,
/// by a redelivery past the de-duplication window, is read once; the indexers write nothing
/// else), by direct gets on the subject.
async fn entries(js: &jetstream::Context, subject: &str) -> Result<BTreeSet<u64>, AuditError> {
    let index = js
        .get_stream_no_info(INDEX)
        .await
        .map_err(AuditError::nats("open the INDEX stream"))?;
    let mut seqs = BTreeSet::new();
    let mut next = 1;
    loop {
        match index.direct_get_next_for_subject(subject, Some(next)).await {
            Ok(entry) => {
                next = entry.sequence + 1;
                if let Some(seq) = std::str::from_utf8(&entry.payload)
                    .ok()
                    .and_then(|s| s.parse::<u64>().ok())
                {
                    seqs.insert(seq);
                }
            }
            Err(e) if e.kind() == DirectGetErrorKind::NotFound => return Ok(seqs),
            Err(e) => {
                return Err(AuditError::nats(format!(
                    "read the index entries on {subject}"
                ))(e));
            }
        }
    }
}
