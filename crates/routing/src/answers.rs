//! "Who answered whom, when": the returning-caller history, a fold of the CALLS stream's
//! `answered` events (`call.dial`, which carry the caller since issue 17).
//!
//! A pure function of the events applied, in CALLS order, and of nothing else (not of settings,
//! not of the clock): the router records in each decision the CALLS sequence up to which it had
//! applied them (`calls_seq`), and replay rebuilds the same history as of that sequence. Every
//! tenant's answers are kept, whether or not it has returning callers on, for the same reason:
//! turning the setting on takes effect at once, with the history already known.
//!
//! Bounded per tenant ([`AnswerBook::MAX_CALLERS_PER_TENANT`] callers): past it, the caller
//! answered longest ago (by CALLS order) is forgotten first. Replay reads the same events into
//! an unbounded [`AnswerLog`] (it re-decides calls made at many positions), so it agrees with
//! the router exactly while a tenant stays under the bound; past it, replay may still know a
//! caller the router had forgotten (`docs/architecture.md`).

use crate::view::{CallerHistory, LastAnswer};
use std::collections::{HashMap, VecDeque};
use switchboard_contracts::{CallDial, DialEventKind, E164, EntityId, TenantId};

/// What an event teaches, if anything: an `answered` event with a caller and a user (a
/// simultaneous group's answer does not say which member took it, so it teaches nothing).
fn answer_of(dial: &CallDial) -> Option<(&E164, &EntityId)> {
    match (&dial.kind, &dial.caller, &dial.target) {
        (DialEventKind::Answered, Some(caller), Some(target)) if target.group.is_empty() => {
            target.user_id.as_ref().map(|user| (caller, user))
        }
        _ => None,
    }
}

/// One tenant's last answer per caller.
#[derive(Debug, Clone)]
pub struct TenantAnswers {
    /// Hashed like the contact index (foldhash, seeded from the OS): looked up on every call
    /// whose lead has no eligible owner.
    by_caller: HashMap<E164, LastAnswer, crate::state::Hasher>,
    /// Callers in the order they were answered (with that answer's sequence; an entry whose
    /// caller was answered again since is stale and skipped when it reaches the front).
    order: VecDeque<(E164, u64)>,
}

impl Default for TenantAnswers {
    fn default() -> Self {
        TenantAnswers {
            by_caller: HashMap::with_hasher(crate::state::hasher()),
            order: VecDeque::new(),
        }
    }
}

impl TenantAnswers {
    /// How many callers are remembered.
    pub fn len(&self) -> usize {
        self.by_caller.len()
    }

    /// Whether no caller is remembered.
    pub fn is_empty(&self) -> bool {
        self.by_caller.is_empty()
    }

    fn learn(&mut self, caller: E164, answer: LastAnswer, cap: usize) {
        self.order.push_back((caller.clone(), answer.seq));
        self.by_caller.insert(caller, answer);
        while self.by_caller.len() > cap {
            let Some((oldest, seq)) = self.order.pop_front() else {
                break;
            };
            if self.by_caller.get(&oldest).is_some_and(|a| a.seq == seq) {
                self.by_caller.remove(&oldest);
            }
        }
        // Stale entries (callers answered again) would otherwise pile up in `order`.
        if self.order.len() > 2 * self.by_caller.len().max(16) {
            let by_caller = &self.by_caller;
            self.order
                .retain(|(caller, seq)| by_caller.get(caller).is_some_and(|a| a.seq == *seq));
        }
    }
}

impl CallerHistory for TenantAnswers {
    fn last_answer(&self, caller: &E164) -> Option<&LastAnswer> {
        self.by_caller.get(caller)
    }
}

/// Every tenant's returning-caller history, and the CALLS sequence it has reached.
#[derive(Debug, Clone, Default)]
pub struct AnswerBook {
    tenants: HashMap<TenantId, TenantAnswers>,
    applied_seq: u64,
    cap: usize,
}

/// A tenant with no history yet.
static EMPTY: std::sync::LazyLock<TenantAnswers> = std::sync::LazyLock::new(TenantAnswers::default);

impl AnswerBook {
    /// The most callers remembered per tenant.
    pub const MAX_CALLERS_PER_TENANT: usize = 200_000;

    /// An empty history with the default bound.
    pub fn new() -> AnswerBook {
        AnswerBook::with_cap(Self::MAX_CALLERS_PER_TENANT)
    }

    /// An empty history remembering at most `cap` callers per tenant (tests).
    pub fn with_cap(cap: usize) -> AnswerBook {
        AnswerBook {
            tenants: HashMap::new(),
            applied_seq: 0,
            cap: cap.max(1),
        }
    }

    /// The CALLS sequence applied so far (every message up to it, answered or not).
    pub fn applied_seq(&self) -> u64 {
        self.applied_seq
    }

    /// Applies the `call.dial` event at CALLS sequence `seq`: an `answered` event with a caller
    /// and a user teaches who answered whom; anything else only advances the sequence. Returns
    /// whether it taught anything. A sequence not above the one applied changes nothing.
    pub fn apply(&mut self, seq: u64, dial: &CallDial) -> bool {
        if seq <= self.applied_seq {
            return false;
        }
        self.applied_seq = seq;
        let Some((caller, user)) = answer_of(dial) else {
            return false;
        };
        let answer = LastAnswer {
            user_id: user.clone(),
            answered_at: dial.at.unix_timestamp(),
            seq,
        };
        let cap = self.cap;
        self.tenants
            .entry(dial.tenant_id.clone())
            .or_default()
            .learn(caller.clone(), answer, cap);
        true
    }

    /// Advances the sequence past a CALLS message that is not a `call.dial` event.
    pub fn skip(&mut self, seq: u64) {
        self.applied_seq = self.applied_seq.max(seq);
    }

    /// One tenant's history (empty when none is known).
    pub fn tenant(&self, tenant: &TenantId) -> &TenantAnswers {
        self.tenants.get(tenant).unwrap_or(&EMPTY)
    }

    /// How many callers are remembered, over all tenants.
    pub fn len(&self) -> usize {
        self.tenants.values().map(TenantAnswers::len).sum()
    }

    /// Whether no caller is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Every answer, per tenant and caller, in CALLS order: the history as of any sequence. What
/// replay and what-if read, since the decisions they re-decide were made at different
/// positions (`calls_seq`) and in no particular order. Unbounded: it holds the answers of the
/// span being audited only.
#[derive(Debug, Clone, Default)]
pub struct AnswerLog {
    tenants: HashMap<TenantId, HashMap<E164, Vec<LastAnswer>>>,
    answers: usize,
}

impl AnswerLog {
    /// An empty log.
    pub fn new() -> AnswerLog {
        AnswerLog::default()
    }

    /// Records the `call.dial` event at CALLS sequence `seq` if it teaches who answered whom;
    /// returns whether it did. Events may come in any order.
    pub fn apply(&mut self, seq: u64, dial: &CallDial) -> bool {
        let Some((caller, user)) = answer_of(dial) else {
            return false;
        };
        let answers = self
            .tenants
            .entry(dial.tenant_id.clone())
            .or_default()
            .entry(caller.clone())
            .or_default();
        let at = answers.partition_point(|a| a.seq < seq);
        if answers.get(at).is_some_and(|a| a.seq == seq) {
            return false;
        }
        answers.insert(
            at,
            LastAnswer {
                user_id: user.clone(),
                answered_at: dial.at.unix_timestamp(),
                seq,
            },
        );
        self.answers += 1;
        true
    }

    /// How many answers are recorded.
    pub fn len(&self) -> usize {
        self.answers
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.answers == 0
    }

    /// `tenant`'s history as the router had applied it at CALLS sequence `seq` (answers at
    /// sequences up to `seq`).
    pub fn as_of<'a>(&'a self, tenant: &TenantId, seq: u64) -> AsOf<'a> {
        AsOf {
            callers: self.tenants.get(tenant),
            seq,
        }
    }
}

/// One tenant's history as of a CALLS sequence (see [`AnswerLog::as_of`]).
#[derive(Debug, Clone, Copy)]
pub struct AsOf<'a> {
    callers: Option<&'a HashMap<E164, Vec<LastAnswer>>>,
    seq: u64,
}

impl CallerHistory for AsOf<'_> {
    fn last_answer(&self, caller: &E164) -> Option<&LastAnswer> {
        let answers = self.callers?.get(caller)?;
        let upto = answers.partition_point(|a| a.seq <= self.seq);
        upto.checked_sub(1).map(|i| &answers[i])
    }
}

#[cfg(test)]
mod tests {
    use super::{AnswerBook, TenantAnswers};
    use crate::view::{CallerHistory, LastAnswer};
    use switchboard_contracts::{
        CallDial, DialEventKind, E164, EntityId, GroupMember, Rule, Target, TenantId,
    };
    use time::OffsetDateTime;

    const CALLER: &str = "+14158675310";

    fn acme() -> TenantId {
        TenantId::new("acme").unwrap()
    }

    fn e164(n: &str) -> E164 {
        E164::parse_strict(n).unwrap()
    }

    fn user(u: &str) -> EntityId {
        EntityId::parse("user_id", u).unwrap()
    }

    /// Caller `n` of a generated population: `+1415555` and four digits.
    fn caller(n: usize) -> String {
        format!("+1415555{n:04}")
    }

    /// The dialer's `answered` event: `user` took a call from `caller` at Unix second `at`.
    fn answered(tenant: &TenantId, caller: &str, user_id: &str, at: i64) -> CallDial {
        CallDial {
            call_id: format!("CA{at}"),
            tenant_id: tenant.clone(),
            step: 0,
            kind: DialEventKind::Answered,
            target: Some(Target::single(
                e164("+13125550100"),
                Some(user(user_id)),
                Rule::AssignedUser,
                Some(20),
            )),
            reason: None,
            carrier_sid: None,
            outcome_unknown: false,
            acted_by: None,
            caller: Some(e164(caller)),
            at: OffsetDateTime::from_unix_timestamp(at).unwrap(),
        }
    }

    fn last<'a>(book: &'a AnswerBook, tenant: &TenantId, caller: &str) -> Option<&'a LastAnswer> {
        book.tenant(tenant).last_answer(&e164(caller))
    }

    /// Only an `answered` event with a caller and a user, on a leg that names who took it,
    /// teaches; every other event only advances the sequence.
    #[test]
    fn only_answers_with_a_caller_and_a_user_teach() {
        let t = acme();
        let mut book = AnswerBook::new();
        let mut seq = 0;
        let mut apply = |book: &mut AnswerBook, dial: &CallDial| {
            seq += 1;
            (book.apply(seq, dial), seq)
        };
        for kind in [
            DialEventKind::StepStarted,
            DialEventKind::StepFailed,
            DialEventKind::ChainExhausted,
            DialEventKind::FinalActionTaken,
        ] {
            let dial = CallDial {
                kind,
                ..answered(&t, CALLER, "u1", 100)
            };
            assert!(!apply(&mut book, &dial).0, "{kind:?}");
        }
        let withheld = CallDial {
            caller: None,
            ..answered(&t, CALLER, "u1", 100)
        };
        assert!(!apply(&mut book, &withheld).0);
        let mut no_user = answered(&t, CALLER, "u1", 100);
        if let Some(target) = &mut no_user.target {
            target.user_id = None;
        }
        assert!(!apply(&mut book, &no_user).0);
        let no_target = CallDial {
            target: None,
            ..answered(&t, CALLER, "u1", 100)
        };
        assert!(!apply(&mut book, &no_target).0);
        let mut group = answered(&t, CALLER, "u1", 100);
        if let Some(target) = &mut group.target {
            target.group = ["u1", "u2"]
                .iter()
                .enumerate()
                .map(|(i, u)| GroupMember {
                    number: e164(&format!("+1312555010{i}")),
                    user_id: user(u),
                })
                .collect();
        }
        assert!(!apply(&mut book, &group).0);
        assert!(book.is_empty());
        assert_eq!(book.applied_seq(), 8, "every event advances the sequence");

        let (taught, seq) = apply(&mut book, &answered(&t, CALLER, "u1", 100));
        assert!(taught);
        assert_eq!(
            last(&book, &t, CALLER),
            Some(&LastAnswer {
                user_id: user("u1"),
                answered_at: 100,
                seq,
            })
        );
        assert_eq!(book.len(), 1);
    }

    /// The answer at the later sequence is the caller's last, whatever its `at`; a sequence
    /// not above the one applied (a redelivery, a replay from an earlier point) changes nothing.
    #[test]
    fn the_later_sequence_wins_and_old_sequences_change_nothing() {
        let t = acme();
        let mut book = AnswerBook::new();
        assert!(book.apply(5, &answered(&t, CALLER, "u1", 500)));
        assert!(book.apply(7, &answered(&t, CALLER, "u2", 400)));
        assert_eq!(
            last(&book, &t, CALLER).map(|a| a.user_id.clone()),
            Some(user("u2"))
        );
        assert_eq!(last(&book, &t, CALLER).map(|a| a.seq), Some(7));

        for seq in [1, 6, 7] {
            assert!(
                !book.apply(seq, &answered(&t, CALLER, "u3", 900)),
                "seq {seq}"
            );
            assert!(!book.apply(seq, &answered(&t, "+12064561234", "u3", 900)));
        }
        assert_eq!(book.applied_seq(), 7);
        assert_eq!(
            last(&book, &t, CALLER).map(|a| a.user_id.clone()),
            Some(user("u2"))
        );
        assert_eq!(book.len(), 1);
    }

    /// `skip` advances past CALLS messages that are not `call.dial` events; an answer at or
    /// below the skipped sequence is then old.
    #[test]
    fn skip_advances_the_sequence() {
        let t = acme();
        let mut book = AnswerBook::new();
        book.skip(10);
        assert_eq!(book.applied_seq(), 10);
        book.skip(4);
        assert_eq!(book.applied_seq(), 10, "never backwards");
        assert!(!book.apply(10, &answered(&t, CALLER, "u1", 100)));
        assert!(book.is_empty());
        assert!(book.apply(11, &answered(&t, CALLER, "u1", 100)));
        assert_eq!(book.applied_seq(), 11);
    }

    /// Tenants share no history: the same caller answered in two tenants is two answers.
    #[test]
    fn tenants_are_isolated() {
        let (acme, globex) = (acme(), TenantId::new("globex").unwrap());
        let mut book = AnswerBook::with_cap(1);
        book.apply(1, &answered(&acme, CALLER, "u1", 100));
        book.apply(2, &answered(&globex, CALLER, "u9", 200));
        book.apply(3, &answered(&globex, "+12064561234", "u9", 300));
        assert_eq!(
            last(&book, &acme, CALLER).map(|a| a.user_id.clone()),
            Some(user("u1"))
        );
        // Globex's cap of one evicted its own caller, not acme's.
        assert_eq!(last(&book, &globex, CALLER), None);
        assert!(last(&book, &globex, "+12064561234").is_some());
        assert_eq!(book.len(), 2);
        let unknown = TenantId::new("initech").unwrap();
        assert!(book.tenant(&unknown).is_empty());
        assert_eq!(last(&book, &unknown, CALLER), None);
    }

    /// Past the per-tenant bound, the caller answered longest ago (by CALLS order) goes first:
    /// a caller answered again since is younger than one answered once in between.
    #[test]
    fn the_cap_evicts_the_caller_answered_longest_ago() {
        let t = acme();
        let mut book = AnswerBook::with_cap(2);
        book.apply(1, &answered(&t, &caller(1), "u1", 100));
        book.apply(2, &answered(&t, &caller(2), "u1", 200));
        book.apply(3, &answered(&t, &caller(1), "u2", 300));
        book.apply(4, &answered(&t, &caller(3), "u3", 400));
        assert_eq!(last(&book, &t, &caller(2)), None, "answered longest ago");
        assert_eq!(last(&book, &t, &caller(1)).map(|a| a.seq), Some(3));
        assert_eq!(last(&book, &t, &caller(3)).map(|a| a.seq), Some(4));
        assert_eq!(book.tenant(&t).len(), 2);

        // A bound of zero still remembers the last caller.
        let mut book = AnswerBook::with_cap(0);
        book.apply(1, &answered(&t, &caller(1), "u1", 100));
        book.apply(2, &answered(&t, &caller(2), "u1", 200));
        assert_eq!(book.len(), 1);
        assert!(last(&book, &t, &caller(2)).is_some());
    }

    /// The bookkeeping stays bounded too: callers answered again and again, or a stream of
    /// new callers, never grow the order queue past a small multiple of the callers kept.
    #[test]
    fn bookkeeping_stays_bounded() {
        let t = acme();
        let bound = |answers: &TenantAnswers| 2 * answers.len().max(16);
        let mut book = AnswerBook::with_cap(3);
        let mut seq = 0;
        for round in 0..2_000 {
            seq += 1;
            book.apply(seq, &answered(&t, &caller(round % 2), "u1", seq as i64));
            let answers = book.tenant(&t);
            assert!(
                answers.order.len() <= bound(answers),
                "{}",
                answers.order.len()
            );
        }
        assert_eq!(book.tenant(&t).len(), 2);
        for n in 0..2_000 {
            seq += 1;
            book.apply(seq, &answered(&t, &caller(100 + n), "u1", seq as i64));
            let answers = book.tenant(&t);
            assert!(answers.len() <= 3);
            assert!(
                answers.order.len() <= bound(answers),
                "{}",
                answers.order.len()
            );
        }
        // The newest three are the ones kept.
        for n in 2_097..2_100 {
            assert!(last(&book, &t, &caller(n)).is_some(), "{n}");
        }
        assert!(last(&book, &t, &caller(2_096)).is_none());
        assert_eq!(book.tenant(&t).by_caller.len(), 3);
    }
}
