//! One tenant's settings in memory, kept current by applying settings-change events, with the
//! per-entity version guard: an event whose version is not newer than the one applied for its
//! entity changes nothing, so duplicates and out-of-order delivery never regress state.
//!
//! # Memory layout
//!
//! The router holds every tenant in memory, and a tenant may have a million contacts (target:
//! 1M contacts under 300 MB resident). Contacts are nearly all of it, so they are laid out for
//! size, while every lookup stays constant-time (one hash probe; two for a shared number):
//!
//! - **Dense tables, each id stored once.** Contacts and users live in `Vec`s, in order of
//!   first appearance, and are found by id through a [`hashbrown::HashTable`] of 4-byte handles
//!   (positions in the `Vec`), hashed by the id held in the entity itself ([`IdTable`]). A
//!   `HashMap<EntityId, _>` would store every id again in a 32-byte bucket, and since hashbrown
//!   doubles its buckets, a map of 1M entries may have 2M of them: bucket size counts twice.
//!   Nothing is removed from these tables, so handles stay valid.
//! - **Ids lent, then found by address.** The ids [`SettingsView::contacts_with_phone`] and
//!   [`ContactView::assigned_user_id`] lend are the tables' own; looking one of them up again
//!   (as the rules do: caller → contact → assigned user → user) finds its entry from its
//!   address, without hashing it or probing the id index ([`IdTable::lent`]): at 1M contacts
//!   that probe was two more cache misses per known caller.
//! - **Tombstones.** A deleted contact stays, with its version (so that an older event cannot
//!   resurrect it) and its assigned user (still shown by [`SettingsView::contact`]); its phones
//!   are dropped, as deleted contacts are not in the caller index.
//! - **Interned users.** A contact names its assigned user by handle into the users table, which
//!   holds each user id once and lends it to [`ContactView`]. A user named by a contact before
//!   (or without) its own event has an entry without settings, which [`SettingsView::user`]
//!   does not show. What a decision reads of a user (id, phone, working hours) is one aligned
//!   64-byte line ([`UserEntry`]); the switches are a byte per user beside it, and what only
//!   applying events reads is apart ([`Users`]): a known caller's owner is one cache line.
//! - **Phones packed in the contact.** Normalized numbers are kept as [`Packed`] integers (8
//!   bytes: digits and digit count). A phone entered in canonical E.164 (`+14158675310`) is its
//!   own normalization in every region, so only that integer is kept: a contact whose only
//!   phone is such holds it in its 8-byte [`Phones`] word. Other contacts (several phones, or
//!   one entered any other way, kept as entered to read again when the tenant's region
//!   changes) hold the position of their phones in a side slab ([`Contacts::listed`]).
//! - **Caller index of handles.** Number → contacts is an open-addressing table of 8-byte slots
//!   naming a contact, with 32 bits of the number's hash ([`CallerIndex`]): a lookup reads one
//!   line of the index, then the contact it must read anyway, whose phones confirm the number.
//!   A number listed by several contacts (rare) is flagged in its slot, and their ids are in a
//!   side map, since [`SettingsView::contacts_with_phone`] lends them as a sorted slice.
//! - **Shared working hours.** Users with the same schedule, and business hours equal to
//!   theirs, share one compiled [`Hours`] ([`HoursCache`]), which then stays in cache for every
//!   decision.
//! - **Hashing.** Every table hashes with foldhash, keyed per table from the standard library's
//!   `RandomState` (operating-system randomness: caller numbers are attacker-controlled); it is
//!   several times cheaper than SipHash, which was the largest single cost of a lookup.
//!
//! So a contact with one canonical phone takes 48 bytes in the dense table plus a bucket of
//! the id index (5 bytes) and a slot of the caller index (8 bytes), each table having up to
//! twice as many buckets or slots as entries: about 74 bytes of index per contact at 1M
//! contacts. `switchboard-bench --only memory` reports 88–96 bytes resident per contact (maps
//! keyed by id and number took 539): the rest is the tenant's users and block list, and what
//! the allocator keeps for a while of the tables' last doubling (mimalloc's purge delay). The
//! dense tables grow by doubling like any `Vec`; the pages of unused capacity of a large
//! allocation are never touched.

use crate::view::{
    BlockList, CompanyView, ContactView, NumberView, SettingPhone, SettingsView, UserView,
};
use compact_str::CompactString;
use foldhash::SharedSeed;
use foldhash::fast::SeedableRandomState;
use hashbrown::HashTable;
use jiff::tz::TimeZone;
use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::num::{NonZeroU32, NonZeroU64};
use std::ops::{Index, IndexMut};
use std::sync::{Arc, OnceLock};
use switchboard_contracts::{
    AfterHoursKind, AnonymousCallers, BlockedAction, DEFAULT_RING_TIMEOUT_SECS, E164, EntityId,
    FinalAction, Hours, Prefer, Region, RingGroup, Schedule, Screening, SettingsChange, TenantId,
};

/// What applying one event did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// The event was newer than the entity's state and replaced it.
    Changed,
    /// The entity already had this or a newer version; nothing changed.
    Stale {
        /// The version already applied.
        current: u64,
    },
}

/// An event that cannot be applied to this state at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StateError {
    /// The event belongs to another tenant: tenants never see each other's data.
    #[error("event for tenant {event} applied to the state of tenant {state}")]
    WrongTenant {
        /// The state's tenant.
        state: TenantId,
        /// The event's tenant.
        event: TenantId,
    },
}

#[derive(Debug, Clone)]
struct Company {
    version: u64,
    phone: Option<SettingPhone>,
    region: Region,
    final_action: Option<FinalAction>,
    /// `None`: UTC.
    time_zone: Option<TimeZone>,
    /// Shared with the users whose working hours are the same schedule ([`HoursCache`]).
    business_hours: Option<Arc<Hours>>,
    /// The forward's number, read in the company's own region (of the same event); `None`:
    /// the final action.
    after_hours: Option<SettingPhone>,
    ring_timeout_secs: u32,
    returning_caller_days: u32,
    blocked: BlockList,
    blocked_action: BlockedAction,
    anonymous_callers: AnonymousCallers,
    screening: Screening,
}

#[derive(Debug, Clone)]
struct Number {
    version: u64,
    forwarding_raw: Option<String>,
    forwarding: Option<SettingPhone>,
    released: bool,
    user_id: Option<EntityId>,
    prefer: Prefer,
    ring_timeout_secs: Option<u32>,
    ring_group: Option<RingGroup>,
}

/// What a user's own event set that no decision reads: kept apart from [`UserEntry`], which
/// every decision reads.
#[derive(Debug, Clone)]
struct UserEvent {
    version: u64,
    phone_raw: Option<String>,
}

/// Compiles a schedule once, when its setting is applied. A schedule that does not compile
/// (only possible for a change that skipped validation: decoded events are validated) is
/// never open, which is the cautious reading of hours that cannot be read.
fn compile(schedule: &Schedule) -> Hours {
    // The field only names a refusal, which is dropped here.
    schedule.compile("hours").unwrap_or_else(|_| Hours::never())
}

/// Users' working hours and the company's business hours, compiled once per distinct schedule
/// among the last few applied and shared: users mostly share a handful of schedules, so the
/// hours every decision reads stay in cache however many users there are (at 10,000 users, a
/// compiled copy each was about 3.5 MB, and two cache misses per decision); and a decision
/// that reads the same compiled schedule twice (business hours, then a user working the same
/// hours) converts the call's instant to local time once (`Moment::hours` in decide.rs).
#[derive(Debug, Clone, Default)]
struct HoursCache {
    recent: Vec<(Schedule, Arc<Hours>)>,
    next: usize,
}

impl HoursCache {
    const SIZE: usize = 16;

    fn intern(&mut self, schedule: &Schedule) -> Arc<Hours> {
        if let Some((_, hours)) = self.recent.iter().find(|(s, _)| s == schedule) {
            return Arc::clone(hours);
        }
        let hours = Arc::new(compile(schedule));
        let entry = (schedule.clone(), Arc::clone(&hours));
        if self.recent.len() < Self::SIZE {
            self.recent.push(entry);
        } else {
            self.recent[self.next] = entry;
            self.next = (self.next + 1) % Self::SIZE;
        }
        hours
    }
}

/// A user id the tenant knows, from the user's event or from a contact assigned to it, with
/// what a decision reads of the user: one cache line, aligned to one (the user's switches
/// are in [`Users::switches`], what only applying events reads in [`Users::events`]).
#[derive(Debug, Clone)]
#[repr(align(64))]
struct UserEntry {
    id: EntityId,
    /// Read in the tenant's region; `None` without one, or until the user's own event.
    phone: Option<SettingPhone>,
    /// Shared with the users of the same schedule ([`HoursCache`]).
    working_hours: Option<Arc<Hours>>,
}

#[cfg(target_pointer_width = "64")]
const _: () = assert!(std::mem::size_of::<UserEntry>() == 64);

/// The users: ids and what decisions read ([`UserEntry`]), then by handle their switches and
/// the rest of their own event.
#[derive(Debug, Clone)]
struct Users {
    table: IdTable<UserEntry>,
    /// A byte per user, so that they all stay in cache: [`Users::SET`] once the user's own
    /// event arrived, then its `active`, `available` and `ring_only_in_working_hours`.
    switches: Vec<u8>,
    /// `None` until the user's own event arrives.
    events: Vec<Option<UserEvent>>,
}

impl Users {
    const SET: u8 = 1;
    const ACTIVE: u8 = 2;
    const AVAILABLE: u8 = 4;
    const RING_ONLY_IN_WORKING_HOURS: u8 = 8;

    fn new() -> Self {
        Users {
            table: IdTable::new(),
            switches: Vec::new(),
            events: Vec::new(),
        }
    }

    /// The handle of `id`, storing it without settings first if it is not known yet.
    fn intern(&mut self, id: &EntityId) -> Handle {
        if let Some(handle) = self.table.find(id) {
            return handle;
        }
        self.switches.push(0);
        self.events.push(None);
        self.table.insert(UserEntry {
            id: id.clone(),
            phone: None,
            working_hours: None,
        })
    }

    /// The version of the user's own event, if it arrived.
    fn version(&self, handle: Handle) -> Option<u64> {
        self.events[handle as usize].as_ref().map(|e| e.version)
    }
}

/// A contact: 48 bytes, whatever its phones (those not held inline are in
/// [`Contacts::listed`]).
#[derive(Debug, Clone)]
struct Contact {
    id: EntityId,
    version: u64,
    /// As listed in the last event, read in the tenant's region; none once deleted.
    phones: Phones,
    assigned_user: Option<UserRef>,
    deleted: bool,
}

#[cfg(target_pointer_width = "64")]
const _: () = assert!(std::mem::size_of::<Contact>() == 48);

/// The position of an entity in its [`IdTable`].
type Handle = u32;

/// The handle of a contact's assigned user, plus one: non-zero, so that `Option<UserRef>` takes
/// 4 bytes.
#[derive(Debug, Clone, Copy)]
struct UserRef(NonZeroU32);

impl UserRef {
    fn new(user: Handle) -> Self {
        // Handles are below 2^31 (see `next_handle`), so this never saturates.
        UserRef(NonZeroU32::MIN.saturating_add(user))
    }

    fn handle(self) -> Handle {
        self.0.get() - 1
    }
}

/// The hasher of every table here: foldhash (a multiply-fold hash, several times faster than
/// SipHash on these short keys), keyed per table from the standard library's `RandomState`,
/// i.e. from the operating system's randomness, since caller numbers are attacker-controlled
/// (foldhash's own seeding draws only on address-space layout when built without `std`).
pub(crate) type Hasher = SeedableRandomState;

/// A new table's hasher (see [`Hasher`]).
pub(crate) fn hasher() -> Hasher {
    static SHARED: OnceLock<SharedSeed> = OnceLock::new();
    let shared = SHARED.get_or_init(|| SharedSeed::from_u64(RandomState::new().hash_one(0u64)));
    SeedableRandomState::with_seed(RandomState::new().hash_one(1u64), shared)
}

/// Entities with an id (contacts, users), stored once each and densely, in order of first
/// appearance, and found by id in constant time through an index of handles hashed by the id
/// held in the entity. Nothing is ever removed, so handles stay valid.
#[derive(Debug, Clone)]
struct IdTable<T> {
    items: Vec<T>,
    index: HashTable<Handle>,
    hasher: Hasher,
}

trait HasId {
    fn id(&self) -> &EntityId;
}

impl HasId for Contact {
    fn id(&self) -> &EntityId {
        &self.id
    }
}

impl HasId for UserEntry {
    fn id(&self) -> &EntityId {
        &self.id
    }
}

/// The handle for the entity about to be stored at position `len`. Handles stay below
/// 2^31 - 1 so that a slot of the caller index holds one plus one and a flag in 32 bits; no
/// tenant comes near that (2^31 contacts would take over 100 GB).
fn next_handle(len: usize) -> Handle {
    let handle = Handle::try_from(len).unwrap_or(Handle::MAX);
    assert!(
        handle < (1 << 31) - 1,
        "more than 2^31 - 1 entities in one tenant"
    );
    handle
}

impl<T: HasId> IdTable<T> {
    fn new() -> Self {
        IdTable {
            items: Vec::new(),
            index: HashTable::new(),
            hasher: hasher(),
        }
    }

    fn len(&self) -> usize {
        self.items.len()
    }

    /// The handle of the entity whose own id `id` is, if `id` was lent by this table (as
    /// [`SettingsView::contacts_with_phone`] and [`ContactView::assigned_user_id`] lend them):
    /// found from its address, without hashing or probing the index. Safe code: the address
    /// only picks the candidate, which must then be the very same id object.
    fn lent(&self, id: &EntityId) -> Option<Handle> {
        let offset = std::ptr::from_ref(id)
            .addr()
            .checked_sub(self.items.as_ptr().addr())?;
        let position = offset / std::mem::size_of::<T>().max(1);
        let item = self.items.get(position)?;
        std::ptr::eq(item.id(), id).then(|| next_handle(position))
    }

    fn find(&self, id: &EntityId) -> Option<Handle> {
        if let Some(handle) = self.lent(id) {
            return Some(handle);
        }
        let items = &self.items;
        self.index
            .find(self.hasher.hash_one(id), |&h| items[h as usize].id() == id)
            .copied()
    }

    fn get(&self, id: &EntityId) -> Option<&T> {
        self.find(id).map(|h| &self.items[h as usize])
    }

    /// Stores `item`, whose id must not be in the table yet.
    fn insert(&mut self, item: T) -> Handle {
        let handle = next_handle(self.items.len());
        let hash = self.hasher.hash_one(item.id());
        self.items.push(item);
        let (items, hasher) = (&self.items, &self.hasher);
        self.index
            .insert_unique(hash, handle, |&h| hasher.hash_one(items[h as usize].id()));
        handle
    }
}

impl<T> Index<Handle> for IdTable<T> {
    type Output = T;
    fn index(&self, handle: Handle) -> &T {
        &self.items[handle as usize]
    }
}

impl<T> IndexMut<Handle> for IdTable<T> {
    fn index_mut(&mut self, handle: Handle) -> &mut T {
        &mut self.items[handle as usize]
    }
}

/// A normalized number packed in 8 bytes: its digits as an integer, and their count in bits
/// 50–53 (so leading zeros would count). E.164 allows at most 15 digits (< 2^50), and
/// [`E164::parse`] yields nothing longer, nor anything but digits after the `+`. Bit 63 is
/// always clear (see [`Phones`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Packed(NonZeroU64);

impl Packed {
    const COUNT_SHIFT: u32 = 50;

    /// `None` for text that no valid number has (more than 15 digits, or not digits).
    fn of(number: &E164) -> Option<Packed> {
        let digits = number.as_str().strip_prefix('+')?;
        if digits.is_empty() || digits.len() > 15 {
            return None;
        }
        let mut value = 0u64;
        for digit in digits.bytes() {
            if !digit.is_ascii_digit() {
                return None;
            }
            value = value * 10 + u64::from(digit - b'0');
        }
        let count = digits.len() as u64;
        NonZeroU64::new(value | count << Self::COUNT_SHIFT).map(Packed)
    }

    fn parsed(number: Result<E164, impl Sized>) -> Option<Packed> {
        number.ok().as_ref().and_then(Packed::of)
    }
}

/// One of a contact's phones, when it is not held inline in the contact.
#[derive(Debug, Clone)]
enum Phone {
    /// Entered in canonical E.164 (`+14158675310`): its own normalization in every region.
    Canonical(Packed),
    /// Entered any other way (national format, punctuation, or not a number at all): kept as
    /// entered, to be read again when the tenant's region changes, beside its reading in the
    /// tenant's region if it is a valid number there.
    Entered {
        raw: CompactString,
        normalized: Option<Packed>,
    },
}

impl Phone {
    fn read(raw: &str, region: Region) -> Phone {
        match E164::parse(raw, region) {
            // A leading `+` means the region plays no part in the reading.
            Ok(number) if number.as_str() == raw => match Packed::of(&number) {
                Some(packed) => Phone::Canonical(packed),
                None => Phone::Entered {
                    raw: raw.into(),
                    normalized: None,
                },
            },
            parsed => Phone::Entered {
                raw: raw.into(),
                normalized: Packed::parsed(parsed),
            },
        }
    }

    fn normalized(&self) -> Option<Packed> {
        match self {
            Phone::Canonical(number) => Some(*number),
            Phone::Entered { normalized, .. } => *normalized,
        }
    }

    /// Reads the phone again in `region` (the tenant's region changed).
    fn reread(&mut self, region: Region) {
        if let Phone::Entered { raw, normalized } = self {
            *normalized = Packed::parsed(E164::parse(raw, region));
        }
    }
}

/// A contact's phones, in 8 bytes: none (0); its only phone, entered in canonical E.164, as
/// that [`Packed`] number (bit 63 clear), which is what nearly every contact has; or (bit 63
/// set) the position of its phones in [`Contacts::listed`] (several phones, or one entered
/// another way).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Phones(u64);

impl Phones {
    const LISTED: u64 = 1 << 63;

    fn listed(self) -> Option<usize> {
        (self.0 & Self::LISTED != 0).then_some((self.0 & !Self::LISTED) as usize)
    }
}

/// The contacts table, with the phones that do not fit in a contact ([`Phones`]): a slab whose
/// free slots are reused when a contact's phones change.
#[derive(Debug, Clone)]
struct Contacts {
    table: IdTable<Contact>,
    listed: Vec<Box<[Phone]>>,
    free: Vec<usize>,
}

impl Contacts {
    fn new() -> Self {
        Contacts {
            table: IdTable::new(),
            listed: Vec::new(),
            free: Vec::new(),
        }
    }

    /// Stores the phones of an event, read in `region`.
    fn read_phones(&mut self, raw: &[String], region: Region) -> Phones {
        let phones: Box<[Phone]> = match raw {
            [] => return Phones::default(),
            [one] => match Phone::read(one, region) {
                Phone::Canonical(packed) => return Phones(packed.0.get()),
                entered => Box::new([entered]),
            },
            many => many.iter().map(|raw| Phone::read(raw, region)).collect(),
        };
        let slot = match self.free.pop() {
            Some(slot) => {
                self.listed[slot] = phones;
                slot
            }
            None => {
                self.listed.push(phones);
                self.listed.len() - 1
            }
        };
        Phones(slot as u64 | Phones::LISTED)
    }

    /// Frees the slot of phones no contact holds any more.
    fn release(&mut self, phones: Phones) {
        if let Some(slot) = phones.listed() {
            self.listed[slot] = Box::default();
            self.free.push(slot);
        }
    }

    /// Calls `f` with the number of each valid phone of `contact`.
    fn for_each_number(&self, contact: Handle, mut f: impl FnMut(Packed)) {
        let phones = self.table[contact].phones;
        match phones.listed() {
            None => {
                if let Some(packed) = NonZeroU64::new(phones.0) {
                    f(Packed(packed));
                }
            }
            Some(slot) => {
                for number in self.listed[slot].iter().filter_map(Phone::normalized) {
                    f(number);
                }
            }
        }
    }

    /// Whether `contact` lists `number` among its valid phones.
    fn lists(&self, contact: Handle, number: Packed) -> bool {
        let phones = self.table[contact].phones;
        match phones.listed() {
            None => phones.0 == number.0.get(),
            Some(slot) => self.listed[slot]
                .iter()
                .any(|phone| phone.normalized() == Some(number)),
        }
    }
}

/// An entry of the caller index, in 8 bytes (0 is an empty slot): the low 32 bits of the hash
/// of the number it stands for (its home slot, and a fingerprint), and a contact that lists
/// the number (its handle plus one, so that an entry is never 0) with the
/// [`Slot::SHARED`] flag when other contacts list it too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Slot(u64);

impl Slot {
    const EMPTY: Slot = Slot(0);
    const SHARED: u64 = 1 << 31;

    fn new(hash: u32, contact: Handle, shared: bool) -> Slot {
        let flag = if shared { Self::SHARED } else { 0 };
        Slot(u64::from(hash) << 32 | flag | u64::from(contact + 1))
    }

    fn hash(self) -> u32 {
        (self.0 >> 32) as u32
    }

    fn contact(self) -> Handle {
        (self.0 as u32 & !(Self::SHARED as u32)) - 1
    }

    fn is_shared(self) -> bool {
        self.0 & Self::SHARED != 0
    }
}

/// Caller number → the contacts listing it (deleted ones are not indexed): an open-addressing
/// table of 8-byte [`Slot`]s with linear probing, so that a lookup reads one cache line of the
/// index (hashbrown's tables read a control group and a bucket, two lines once the table is
/// larger than the cache), then the contact it names, which it must read anyway. A slot holds
/// no number: the contact's phones confirm it, and the hash bits it keeps place it again when
/// the table grows or a neighbour is removed, without reading any contact. A number listed by
/// several contacts (rare) is flagged in its slot, and their ids are in a side map, since
/// [`SettingsView::contacts_with_phone`] lends them as a sorted slice.
#[derive(Debug, Clone)]
struct CallerIndex {
    /// A power of two long (or empty), at most 3/4 full.
    slots: Box<[Slot]>,
    len: usize,
    /// The numbers listed by more than one contact → their ids, sorted, no duplicates.
    shared: HashMap<Packed, Vec<EntityId>, Hasher>,
    hasher: Hasher,
}

impl CallerIndex {
    fn new() -> Self {
        CallerIndex {
            slots: Box::default(),
            len: 0,
            shared: HashMap::with_hasher(hasher()),
            hasher: hasher(),
        }
    }

    /// The low 32 bits of the number's hash: its home slot (tables stay under 2^32 slots)
    /// and the fingerprint a slot is compared with before its contact is read.
    fn hash(&self, number: Packed) -> u32 {
        self.hasher.hash_one(number.0) as u32
    }

    fn mask(&self) -> usize {
        self.slots.len().wrapping_sub(1)
    }

    /// The position of the slot for `number` (hashed `hash`), if it is indexed.
    fn find(&self, contacts: &Contacts, number: Packed, hash: u32) -> Option<usize> {
        let mask = self.mask();
        if self.slots.is_empty() {
            return None;
        }
        let mut at = hash as usize & mask;
        loop {
            let slot = self.slots[at];
            if slot == Slot::EMPTY {
                return None;
            }
            if slot.hash() == hash && contacts.lists(slot.contact(), number) {
                return Some(at);
            }
            at = (at + 1) & mask;
        }
    }

    /// Puts `slot` in the first empty slot from its home (there is one: the table is never
    /// full).
    fn place(slots: &mut [Slot], slot: Slot) {
        let mask = slots.len() - 1;
        let mut at = slot.hash() as usize & mask;
        while slots[at] != Slot::EMPTY {
            at = (at + 1) & mask;
        }
        slots[at] = slot;
    }

    /// Makes room for one more entry, keeping the table at most 3/4 full.
    fn reserve_one(&mut self) {
        let capacity = self.slots.len();
        if (self.len + 1) * 4 <= capacity * 3 {
            return;
        }
        let mut slots = vec![Slot::EMPTY; (capacity * 2).max(8)].into_boxed_slice();
        for &slot in self.slots.iter().filter(|&&s| s != Slot::EMPTY) {
            Self::place(&mut slots, slot);
        }
        self.slots = slots;
    }

    /// Empties the slot at `at`, moving later slots of its run back so that every entry stays
    /// reachable from its home without tombstones (backward-shift deletion).
    fn take(&mut self, mut at: usize) {
        let mask = self.mask();
        let mut next = (at + 1) & mask;
        loop {
            let slot = self.slots[next];
            if slot == Slot::EMPTY {
                break;
            }
            let home = slot.hash() as usize & mask;
            // `slot` may move back to `at` unless its home lies after `at`, up to `next`.
            if (next.wrapping_sub(home) & mask) >= (next.wrapping_sub(at) & mask) {
                self.slots[at] = slot;
                at = next;
            }
            next = (next + 1) & mask;
        }
        self.slots[at] = Slot::EMPTY;
        self.len -= 1;
    }

    fn get<'a>(&'a self, contacts: &'a Contacts, number: &E164) -> &'a [EntityId] {
        // A number that does not pack is in no contact (see `Phone::read`).
        let Some(number) = Packed::of(number) else {
            return &[];
        };
        match self.find(contacts, number, self.hash(number)) {
            None => &[],
            Some(at) => {
                let slot = self.slots[at];
                if slot.is_shared() {
                    self.shared.get(&number).map_or(&[], Vec::as_slice)
                } else {
                    std::slice::from_ref(&contacts.table[slot.contact()].id)
                }
            }
        }
    }

    /// Adds `contact`, which lists `number`.
    fn add(&mut self, contacts: &Contacts, number: Packed, contact: Handle) {
        let hash = self.hash(number);
        let Some(at) = self.find(contacts, number, hash) else {
            self.reserve_one();
            Self::place(&mut self.slots, Slot::new(hash, contact, false));
            self.len += 1;
            return;
        };
        let existing = self.slots[at];
        let id = &contacts.table[contact].id;
        if existing.is_shared() {
            let ids = self.shared.entry(number).or_default();
            if let Err(at) = ids.binary_search(id) {
                ids.insert(at, id.clone());
            }
        } else if existing.contact() != contact {
            let other = contacts.table[existing.contact()].id.clone();
            let mut ids = vec![other, id.clone()];
            ids.sort();
            self.shared.insert(number, ids);
            self.slots[at] = Slot::new(hash, existing.contact(), true);
        }
    }

    /// Removes `contact` from the contacts listing `number`, while the contact still lists it.
    fn remove(&mut self, contacts: &Contacts, number: Packed, contact: Handle) {
        let hash = self.hash(number);
        let Some(at) = self.find(contacts, number, hash) else {
            return;
        };
        let existing = self.slots[at];
        if !existing.is_shared() {
            if existing.contact() == contact {
                self.take(at);
            }
            return;
        }
        let Some(ids) = self.shared.get_mut(&number) else {
            return;
        };
        let Ok(position) = ids.binary_search(&contacts.table[contact].id) else {
            return;
        };
        ids.remove(position);
        let still_shared = ids.len() > 1;
        if existing.contact() == contact || !still_shared {
            // The slot must name a contact that keeps listing the number.
            let replacement = ids
                .first()
                .and_then(|id| contacts.table.find(id))
                .filter(|&h| contacts.lists(h, number));
            match replacement {
                Some(h) => self.slots[at] = Slot::new(hash, h, still_shared),
                None => self.take(at),
            }
        }
        if !still_shared {
            self.shared.remove(&number);
        }
    }

    fn clear(&mut self) {
        self.slots.fill(Slot::EMPTY);
        self.len = 0;
        self.shared.clear();
    }
}

/// The settings of one tenant, indexed for constant-time lookups by the routing rules.
#[derive(Debug, Clone)]
pub struct TenantState {
    tenant: TenantId,
    company: Option<Company>,
    numbers: HashMap<E164, Number, Hasher>,
    users: Users,
    /// Deleted ones included, as tombstones.
    contacts: Contacts,
    by_phone: CallerIndex,
    hours: HoursCache,
}

fn normalize(raw: &Option<String>, region: Region) -> Option<SettingPhone> {
    raw.as_deref().map(|r| SettingPhone::normalize(r, region))
}

/// The version guard ([`SettingsChange::supersedes`]): `Stale` unless `change` is newer than
/// the `current` version of its entity.
fn guard(change: &SettingsChange, current: Option<u64>) -> Option<Applied> {
    match current {
        Some(current) if !change.supersedes(Some(current)) => Some(Applied::Stale { current }),
        _ => None,
    }
}

impl TenantState {
    /// An empty state for `tenant`.
    pub fn new(tenant: TenantId) -> Self {
        TenantState {
            tenant,
            company: None,
            numbers: HashMap::with_hasher(hasher()),
            users: Users::new(),
            contacts: Contacts::new(),
            by_phone: CallerIndex::new(),
            hours: HoursCache::default(),
        }
    }

    /// The tenant this state belongs to.
    pub fn tenant(&self) -> &TenantId {
        &self.tenant
    }

    /// How many contacts are held (deleted ones included, as tombstones).
    pub fn contact_count(&self) -> usize {
        self.contacts.table.len()
    }

    /// The version applied for an entity (`company`/`number`/`user`/`contact`, id as in the
    /// event's subject), if any.
    pub fn version_of(&self, entity: &str, id: &str) -> Option<u64> {
        use switchboard_contracts::entity;
        match entity {
            entity::COMPANY => self.company.as_ref().map(|c| c.version),
            entity::NUMBER => E164::parse_strict(&format!("+{id}"))
                .ok()
                .and_then(|n| self.numbers.get(&n))
                .map(|n| n.version),
            entity::USER => EntityId::parse("user_id", id)
                .ok()
                .and_then(|id| self.users.table.find(&id))
                .and_then(|h| self.users.version(h)),
            entity::CONTACT => EntityId::parse("contact_id", id)
                .ok()
                .and_then(|id| self.contacts.table.get(&id))
                .map(|c| c.version),
            _ => None,
        }
    }

    /// Applies one settings change under the version guard.
    pub fn apply(&mut self, change: &SettingsChange) -> Result<Applied, StateError> {
        if change.tenant_id() != &self.tenant {
            return Err(StateError::WrongTenant {
                state: self.tenant.clone(),
                event: change.tenant_id().clone(),
            });
        }
        let region = self.region();
        Ok(match change {
            SettingsChange::Company(c) => {
                if let Some(stale) = guard(change, self.company.as_ref().map(|c| c.version)) {
                    return Ok(stale);
                }
                let new_region = c
                    .default_region
                    .as_deref()
                    .and_then(Region::parse)
                    .unwrap_or_default();
                let after_hours = c
                    .after_hours
                    .as_ref()
                    .filter(|a| a.kind == AfterHoursKind::Forward)
                    .map(|a| {
                        SettingPhone::normalize(a.number.as_deref().unwrap_or(""), new_region)
                    });
                self.company = Some(Company {
                    version: c.version,
                    phone: normalize(&c.company_phone, new_region),
                    region: new_region,
                    final_action: c.final_action.clone(),
                    // Validated events name a zone that exists; anything else reads as UTC.
                    time_zone: c
                        .time_zone
                        .as_deref()
                        .and_then(|name| switchboard_contracts::schedule::time_zone(name).ok()),
                    business_hours: c.business_hours.as_ref().map(|s| self.hours.intern(s)),
                    after_hours,
                    ring_timeout_secs: c.ring_timeout_secs.unwrap_or(DEFAULT_RING_TIMEOUT_SECS),
                    returning_caller_days: c.returning_caller_days,
                    blocked: BlockList::new(c.blocked_callers.iter().map(String::as_str)),
                    blocked_action: c.blocked_action.unwrap_or_default(),
                    anonymous_callers: c.anonymous_callers.unwrap_or_default(),
                    screening: c.screening.unwrap_or_default(),
                });
                if new_region != region {
                    self.renormalize();
                }
                Applied::Changed
            }
            SettingsChange::Number(n) => {
                if let Some(stale) = guard(change, self.numbers.get(&n.number).map(|n| n.version)) {
                    return Ok(stale);
                }
                self.numbers.insert(
                    n.number.clone(),
                    Number {
                        version: n.version,
                        forwarding: normalize(&n.forwarding_number, region),
                        forwarding_raw: n.forwarding_number.clone(),
                        released: n.released,
                        user_id: n.user_id.clone(),
                        prefer: n.prefer,
                        ring_timeout_secs: n.ring_timeout_secs,
                        ring_group: n.ring_group.clone(),
                    },
                );
                Applied::Changed
            }
            SettingsChange::User(u) => {
                let handle = self.users.table.find(&u.user_id);
                if let Some(stale) = guard(change, handle.and_then(|h| self.users.version(h))) {
                    return Ok(stale);
                }
                let handle = handle.unwrap_or_else(|| self.users.intern(&u.user_id));
                let switch = |on: bool, bit: u8| if on { bit } else { 0 };
                self.users.switches[handle as usize] = Users::SET
                    | switch(u.active, Users::ACTIVE)
                    | switch(u.available, Users::AVAILABLE)
                    | switch(
                        u.ring_only_in_working_hours,
                        Users::RING_ONLY_IN_WORKING_HOURS,
                    );
                self.users.events[handle as usize] = Some(UserEvent {
                    version: u.version,
                    phone_raw: u.phone.clone(),
                });
                let entry = &mut self.users.table[handle];
                entry.phone = normalize(&u.phone, region);
                entry.working_hours = u.working_hours.as_ref().map(|s| self.hours.intern(s));
                Applied::Changed
            }
            SettingsChange::Contact(c) => {
                let handle = self.contacts.table.find(&c.contact_id);
                if let Some(stale) = guard(change, handle.map(|h| self.contacts.table[h].version)) {
                    return Ok(stale);
                }
                let assigned_user = c
                    .assigned_user_id
                    .as_ref()
                    .map(|id| UserRef::new(self.users.intern(id)));
                // A deleted contact is not indexed: its phones are never read again.
                let phones = if c.deleted {
                    Phones::default()
                } else {
                    self.contacts.read_phones(&c.phones, region)
                };
                let handle = match handle {
                    Some(h) => {
                        self.unindex(h);
                        let contact = &mut self.contacts.table[h];
                        let old = std::mem::replace(&mut contact.phones, phones);
                        contact.version = c.version;
                        contact.assigned_user = assigned_user;
                        contact.deleted = c.deleted;
                        self.contacts.release(old);
                        h
                    }
                    None => self.contacts.table.insert(Contact {
                        id: c.contact_id.clone(),
                        version: c.version,
                        phones,
                        assigned_user,
                        deleted: c.deleted,
                    }),
                };
                self.index(handle);
                Applied::Changed
            }
        })
    }

    /// Adds a contact's valid numbers to the caller index, unless the contact is deleted.
    fn index(&mut self, contact: Handle) {
        let (contacts, by_phone) = (&self.contacts, &mut self.by_phone);
        if contacts.table[contact].deleted {
            return;
        }
        contacts.for_each_number(contact, |number| {
            by_phone.add(contacts, number, contact);
        });
    }

    /// Removes a contact's numbers from the caller index (before its phones change).
    fn unindex(&mut self, contact: Handle) {
        let (contacts, by_phone) = (&self.contacts, &mut self.by_phone);
        contacts.for_each_number(contact, |number| {
            by_phone.remove(contacts, number, contact);
        });
    }

    /// The tenant's region changed: numbers entered without a country code mean something
    /// else now, so every stored number is normalized again.
    fn renormalize(&mut self) {
        let region = self.region();
        for number in self.numbers.values_mut() {
            number.forwarding = normalize(&number.forwarding_raw, region);
        }
        let users = &mut self.users;
        for (user, event) in users.table.items.iter_mut().zip(&users.events) {
            if let Some(event) = event {
                user.phone = normalize(&event.phone_raw, region);
            }
        }
        self.by_phone.clear();
        for phones in &mut self.contacts.listed {
            for phone in phones.iter_mut() {
                phone.reread(region);
            }
        }
        for handle in 0..self.contacts.table.len() {
            self.index(next_handle(handle));
        }
    }
}

impl SettingsView for TenantState {
    fn region(&self) -> Region {
        self.company.as_ref().map(|c| c.region).unwrap_or_default()
    }

    fn company_phone(&self) -> Option<&SettingPhone> {
        self.company.as_ref().and_then(|c| c.phone.as_ref())
    }

    fn final_action(&self) -> Option<&FinalAction> {
        self.company.as_ref().and_then(|c| c.final_action.as_ref())
    }

    fn company(&self) -> CompanyView<'_> {
        match &self.company {
            None => CompanyView::DEFAULT,
            Some(c) => CompanyView {
                time_zone: c.time_zone.as_ref().unwrap_or(&crate::view::UTC),
                business_hours: c.business_hours.as_deref(),
                after_hours: c.after_hours.as_ref(),
                ring_timeout_secs: c.ring_timeout_secs,
                returning_caller_days: c.returning_caller_days,
                blocked_action: c.blocked_action,
                anonymous_callers: c.anonymous_callers,
                screening: c.screening,
            },
        }
    }

    fn number(&self, number: &E164) -> Option<NumberView<'_>> {
        self.numbers.get(number).map(|n| NumberView {
            forwarding_number: n.forwarding.as_ref(),
            released: n.released,
            user_id: n.user_id.as_ref(),
            prefer: n.prefer,
            ring_timeout_secs: n.ring_timeout_secs,
            ring_group: n.ring_group.as_ref(),
        })
    }

    fn user(&self, user_id: &EntityId) -> Option<UserView<'_>> {
        let handle = self.users.table.find(user_id)?;
        let switches = self.users.switches[handle as usize];
        if switches & Users::SET == 0 {
            return None;
        }
        let user = &self.users.table[handle];
        Some(UserView {
            phone: user.phone.as_ref(),
            active: switches & Users::ACTIVE != 0,
            available: switches & Users::AVAILABLE != 0,
            working_hours: user.working_hours.as_deref(),
            ring_only_in_working_hours: switches & Users::RING_ONLY_IN_WORKING_HOURS != 0,
        })
    }

    fn contact(&self, contact_id: &EntityId) -> Option<ContactView<'_>> {
        self.contacts.table.get(contact_id).map(|c| ContactView {
            contact_id: &c.id,
            assigned_user_id: c.assigned_user.map(|u| &self.users.table[u.handle()].id),
            deleted: c.deleted,
        })
    }

    fn contacts_with_phone(&self, phone: &E164) -> &[EntityId] {
        self.by_phone.get(&self.contacts, phone)
    }

    fn blocked(&self, caller: &E164) -> Option<&str> {
        self.company
            .as_ref()
            .and_then(|c| c.blocked.matching(caller.as_str()))
    }
}
