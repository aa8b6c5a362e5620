//! Call deadlines without a tokio timer per call.
//!
//! A tokio timer costs a call that goes pending about 840 instructions
//! (callgrind): a handle clone, a clock read, a lock around tokio's timer
//! wheel to insert the entry and another to remove it. And while any timer
//! is in the wheel, every park of the runtime reads the clock and turns the
//! wheel. Most calls end long before their deadline, so almost all of that
//! is wasted.
//!
//! Here a call that goes pending claims a slot in its tokio runtime's table
//! with one atomic `fetch_or`, writes when its timeout began and its
//! deadline, on the deadline clock (`clock::deadline_now`, the CPU's
//! counter where it can serve: the call usually read it already, to time
//! itself), and its waker, and frees the slot when it ends. One thread for
//! the whole process, the timer thread, sleeps until the earliest deadline
//! of any table, wakes the calls that are due on that runtime's own clock,
//! and sleeps again. A timer that comes due after its call has ended is kept
//! rather than cancelled: a new call's deadline is almost always later, so
//! it arms without waking the thread.
//!
//! Exactness: a call is never cut off early. The counter and tokio's clock
//! may run at rates a little apart (the counter's calibration; NTP slewing
//! the kernel's clock, at most 500 ppm), so the thread maps each deadline
//! onto the runtime's clock once, soon after it is armed, erring late by
//! [`DRIFT_PPM`] of the time since it was armed, and compares that with the
//! runtime's clock. While calls arm deadlines the thread comes by every
//! [`MAP_WITHIN`] (a call that finds it away for longer wakes it), so the
//! mapping adds at most 100 µs. Beyond that a call is late by the thread's
//! wake-up (Linux's 50 µs timer slack, plus scheduling): well inside
//! tokio's own 1 ms timer granularity.
//!
//! Paused clocks: tokio can pause only a current-thread runtime's clock, and
//! auto-advance jumps to tokio timers, not to ours. A runtime whose clock is
//! paused when its first deadline is armed gets no table: its calls use a
//! plain tokio timer each, exactly as before. A clock paused later is seen by
//! the timer thread within 5 ms (it checks current-thread runtimes that have
//! deadlines armed); it retires the table and wakes every armed call, which
//! re-arms the same deadline on a tokio timer. A table whose runtime is gone
//! never leaves a call without a deadline either: the thread does not belong
//! to any runtime, and a waker outlives its runtime harmlessly.

use crate::clock::Clock;
use std::cell::{Cell, RefCell, UnsafeCell};
use std::collections::HashMap;
use std::ptr::NonNull;
use std::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed, Release, SeqCst};
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, AtomicU64, AtomicUsize};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::task::Waker;
use std::thread::Thread;
use std::time::Duration;
use tokio::runtime::{Handle, Id, RuntimeFlavor};
use tokio::time::Instant;

const PAGE_SLOTS: usize = 64;
const MAX_PAGES: usize = 1024;
const NONE: u64 = u64::MAX;

// A slot's states. Only its owner (the call) moves it out of `IDLE` and
// `FIRED`; only the driver moves it out of `FIRING`; whoever wins a CAS
// from `ARMED` owns the waker until it stores the next state.
const IDLE: u32 = 0;
const ARMED: u32 = 1;
const UPDATING: u32 = 2;
const FIRING: u32 = 3;
const FIRED: u32 = 4;

struct Slot {
    state: AtomicU32,
    /// When the call's timeout began, on the deadline clock.
    armed_at: AtomicU64,
    /// `armed_at` plus the timeout.
    deadline: AtomicU64,
    /// The timer thread's own: `deadline` on the runtime's clock, mapped
    /// once for the arming that had `mapped_for`'s `(armed_at, deadline)`.
    exact: AtomicU64,
    mapped_for: (AtomicU64, AtomicU64),
    waker: UnsafeCell<Option<Waker>>,
}

struct Page {
    used: AtomicU64,
    slots: [Slot; PAGE_SLOTS],
}

impl Page {
    fn new() -> Self {
        Page {
            used: AtomicU64::new(0),
            slots: std::array::from_fn(|_| Slot {
                state: AtomicU32::new(IDLE),
                armed_at: AtomicU64::new(0),
                deadline: AtomicU64::new(NONE),
                exact: AtomicU64::new(NONE),
                mapped_for: (AtomicU64::new(NONE), AtomicU64::new(NONE)),
                waker: UnsafeCell::new(None),
            }),
        }
    }

    fn claim(&self) -> Option<u32> {
        let mut used = self.used.load(Relaxed);
        while used != u64::MAX {
            let bit = (!used).trailing_zeros();
            let before = self.used.fetch_or(1 << bit, SeqCst);
            if before & (1 << bit) == 0 {
                return Some(bit);
            }
            used = before | (1 << bit);
        }
        None
    }
}

/// One tokio runtime's table of armed deadlines.
pub(crate) struct Deadlines {
    runtime: Id,
    /// To read the runtime's clock from the timer thread.
    handle: Handle,
    /// Only a current-thread runtime's clock can be paused.
    may_pause: bool,
    clock: Clock,
    /// Pages are added in order and freed with the table.
    pages: Box<[AtomicPtr<Page>]>,
    page_count: AtomicUsize,
    grow: Mutex<()>,
    /// When the timer thread will look at this table next, on the deadline
    /// clock, `NONE` for never: a call that needs it sooner wakes it.
    earliest: AtomicU64,
    /// The timer thread's own: when it last looked (deadline clock), and
    /// how many looks in a row found no call had armed since.
    last_visit: AtomicU64,
    quiet_visits: AtomicU32,
    /// False once retired: armed calls then keep their deadline on a tokio
    /// timer.
    alive: AtomicBool,
}

// The waker cells are guarded by the slot states above.
unsafe impl Sync for Deadlines {}
unsafe impl Send for Deadlines {}

impl Deadlines {
    /// A table for the runtime `handle` belongs to; made inside it, so its
    /// clock is that runtime's.
    fn new(handle: &Handle) -> Self {
        Deadlines {
            runtime: handle.id(),
            handle: handle.clone(),
            may_pause: handle.runtime_flavor() == RuntimeFlavor::CurrentThread,
            clock: Clock::new(),
            pages: (0..MAX_PAGES)
                .map(|_| AtomicPtr::new(std::ptr::null_mut()))
                .collect(),
            page_count: AtomicUsize::new(0),
            grow: Mutex::new(()),
            earliest: AtomicU64::new(NONE),
            last_visit: AtomicU64::new(0),
            quiet_visits: AtomicU32::new(0),
            alive: AtomicBool::new(true),
        }
    }

    fn page(&self, index: usize) -> &Page {
        // Pages below `page_count` are set and live as long as the table.
        unsafe { &*self.pages[index].load(Acquire) }
    }

    fn slot(&self, page: u32, bit: u32) -> &Slot {
        &self.page(page as usize).slots[bit as usize]
    }

    fn claim(&self) -> Option<(u32, u32)> {
        let count = self.page_count.load(Acquire);
        let start = HINT.with(|hint| hint.get()) % count.max(1);
        for i in 0..count {
            let page = (start + i) % count;
            if let Some(bit) = self.page(page).claim() {
                HINT.with(|hint| hint.set(page));
                return Some((page as u32, bit));
            }
        }
        self.claim_in_new_page(count)
    }

    #[cold]
    fn claim_in_new_page(&self, seen: usize) -> Option<(u32, u32)> {
        let _grow = self.grow.lock().unwrap_or_else(|e| e.into_inner());
        let count = self.page_count.load(Acquire);
        // Another thread may have added pages meanwhile; try those first.
        for page in seen..count {
            if let Some(bit) = self.page(page).claim() {
                return Some((page as u32, bit));
            }
        }
        if count == MAX_PAGES {
            return None;
        }
        self.pages[count].store(Box::into_raw(Box::new(Page::new())), Release);
        self.page_count.store(count + 1, Release);
        let bit = self.page(count).claim()?;
        HINT.with(|hint| hint.set(count));
        Some((count as u32, bit))
    }

    /// Fires every armed deadline due at `now`; returns the earliest one
    /// left, on the runtime's clock.
    fn fire_due(&self, now: Now) -> u64 {
        let mut next = NONE;
        self.each_claimed(|slot| {
            if let Some(left) = fire_if_due(slot, now) {
                next = next.min(left);
            }
        });
        next
    }

    /// Whether any call armed a deadline at or after `since` (deadline
    /// clock), in a slot still claimed or not.
    fn armed_since(&self, since: u64) -> bool {
        (0..self.page_count.load(Acquire)).any(|index| {
            let page = self.page(index);
            page.slots
                .iter()
                .any(|slot| slot.armed_at.load(Relaxed) >= since)
        })
    }

    /// Runs `f` on every claimed slot. The loads are `SeqCst`: retiring
    /// relies on them to see a slot armed just before (see `Armed::new`).
    fn each_claimed(&self, mut f: impl FnMut(&Slot)) {
        for index in 0..self.page_count.load(SeqCst) {
            let page = self.page(index);
            let mut used = page.used.load(SeqCst);
            while used != 0 {
                f(&page.slots[used.trailing_zeros() as usize]);
                used &= used - 1;
            }
        }
    }

    /// Retires the table: every armed call is woken, finds it dead and keeps
    /// its deadline on a tokio timer.
    fn retire(&self) {
        self.alive.store(false, SeqCst);
        self.wake_all();
    }

    /// Wakes every armed call without firing it.
    fn wake_all(&self) {
        self.each_claimed(|slot| {
            if let Some(waker) = take_waker(slot, ARMED) {
                waker.wake();
            }
        });
    }

    /// Frees a claimed slot that is not armed.
    fn release(&self, page: u32, bit: u32) {
        let slot = self.slot(page, bit);
        drop(unsafe { (*slot.waker.get()).take() });
        self.page(page as usize)
            .used
            .fetch_and(!(1 << bit), Release);
    }

    /// Whether any slot is claimed.
    fn claimed(&self) -> bool {
        (0..self.page_count.load(Acquire)).any(|index| self.page(index).used.load(Acquire) != 0)
    }

    /// Armed deadlines in the table.
    fn armed(&self) -> usize {
        let mut armed = 0;
        self.each_claimed(|slot| armed += usize::from(slot.state.load(Acquire) == ARMED));
        armed
    }
}

impl Drop for Deadlines {
    fn drop(&mut self) {
        for page in self.pages.iter() {
            let page = page.load(Acquire);
            if !page.is_null() {
                drop(unsafe { Box::from_raw(page) });
            }
        }
    }
}

/// How far the deadline clock and a runtime's clock may drift apart, in
/// parts per million of the time between two readings: NTP slews the
/// kernel's clock by at most 500 ppm; the counter's first calibration is
/// good to about 100 ppm. Four times that margin costs at most 100 µs.
pub(crate) const DRIFT_PPM: u64 = 2_000;

/// How soon after a call arms its deadline the timer thread maps it onto
/// the runtime's clock; the mapping errs late by `DRIFT_PPM` of this.
const MAP_WITHIN: Duration = Duration::from_millis(50);

/// Looks in a row without a newly armed deadline after which the thread
/// stops coming by every `MAP_WITHIN` (the next call to arm wakes it).
const QUIET_VISITS: u32 = 20;

/// One moment on both clocks: the deadline clock (`deadline`) and the
/// runtime's (`exact`).
#[derive(Clone, Copy, Debug)]
struct Now {
    deadline: u64,
    exact: u64,
}

impl Now {
    fn read(table: &Deadlines) -> Now {
        Now {
            deadline: crate::clock::deadline_now(),
            exact: table.clock.exact_nanos(),
        }
    }

    /// A deadline armed at `armed_at` on the deadline clock, on the
    /// runtime's clock: never before it, and later by at most `DRIFT_PPM`
    /// of the time between the arming and now. (The two clocks' offset
    /// moves by at most that much between two moments.)
    fn map(self, armed_at: u64, deadline: u64) -> u64 {
        let offset = i128::from(self.exact) - i128::from(self.deadline);
        let drift = i128::from(self.deadline.abs_diff(armed_at) / (1_000_000 / DRIFT_PPM));
        let exact = i128::from(deadline) + offset + drift;
        exact.clamp(0, i128::from(NONE - 1)) as u64
    }
}

/// A slot's deadline on the runtime's clock, mapped on first sight.
fn exact_deadline(slot: &Slot, now: Now) -> u64 {
    let armed_at = slot.armed_at.load(Relaxed);
    let deadline = slot.deadline.load(Relaxed);
    let (at, of) = &slot.mapped_for;
    if at.load(Relaxed) == armed_at && of.load(Relaxed) == deadline {
        return slot.exact.load(Relaxed);
    }
    let exact = now.map(armed_at, deadline);
    slot.exact.store(exact, Relaxed);
    at.store(armed_at, Relaxed);
    of.store(deadline, Relaxed);
    exact
}

/// The driver's step for one slot: `Some(deadline)`, on the runtime's
/// clock, for a deadline still ahead.
fn fire_if_due(slot: &Slot, now: Now) -> Option<u64> {
    loop {
        match slot.state.load(SeqCst) {
            ARMED => {}
            UPDATING => {
                std::hint::spin_loop();
                continue;
            }
            _ => return None,
        }
        let deadline = exact_deadline(slot, now);
        if deadline > now.exact {
            return Some(deadline);
        }
        if slot
            .state
            .compare_exchange(ARMED, FIRING, Acquire, Relaxed)
            .is_err()
        {
            continue;
        }
        // The slot may have changed hands since the first read; the deadline
        // read while we hold it is the one that counts.
        let deadline = exact_deadline(slot, now);
        if deadline > now.exact {
            slot.state.store(ARMED, Release);
            return Some(deadline);
        }
        let waker = unsafe { (*slot.waker.get()).clone() };
        slot.state.store(FIRED, Release);
        if let Some(waker) = waker {
            waker.wake();
        }
        return None;
    }
}

/// A copy of an armed slot's waker, leaving the slot in `then`.
fn take_waker(slot: &Slot, then: u32) -> Option<Waker> {
    loop {
        match slot.state.compare_exchange(ARMED, FIRING, Acquire, Relaxed) {
            Ok(_) => {
                let waker = unsafe { (*slot.waker.get()).clone() };
                slot.state.store(then, Release);
                return waker;
            }
            Err(UPDATING) => std::hint::spin_loop(),
            Err(_) => return None,
        }
    }
}

thread_local! {
    /// The table of the tokio runtime this thread last armed a deadline in.
    static CURRENT: RefCell<Option<Local>> = const { RefCell::new(None) };
    /// The page this thread last claimed a slot in, so that threads spread
    /// over pages instead of contending for the first.
    static HINT: Cell<usize> = const { Cell::new(0) };
}

/// A thread's view of one runtime's table.
struct Local {
    runtime: Id,
    /// `None` for a runtime whose clock is paused.
    table: Option<Arc<Deadlines>>,
    /// A slot this thread keeps claimed between calls: the next call arms it
    /// without the two atomic operations of claiming and releasing.
    spare: Option<(u32, u32)>,
}

impl Drop for Local {
    fn drop(&mut self) {
        if let (Some(table), Some((page, bit))) = (&self.table, self.spare) {
            table.release(page, bit);
        }
    }
}

/// Every runtime that has armed a deadline: its table, or `None` when its
/// clock was found paused (its calls use tokio timers from then on).
type Tables = HashMap<Id, Option<Weak<Deadlines>>>;

static TABLES: Mutex<Option<Tables>> = Mutex::new(None);

/// A claimed slot in the table of the tokio runtime this thread runs in,
/// the table made on first use; `None` outside a runtime, on a paused
/// clock, or in a full table.
///
/// A thread's kept slot that holds `waker` already is taken without asking
/// tokio which runtime this is (an `Arc` clone and drop): the same task, or
/// the same `block_on`, runs on the same runtime, and the waker the slot
/// keeps keeps that task (or runtime) alive, so its address is not reused.
/// The one waker two runtimes share is a thread's park waker, which a
/// multi-thread `block_on` and `Handle::block_on` hand out on any runtime;
/// a table taken that way is another running runtime's, whose clock is the
/// same. Only a test that pauses one of two runtimes it drives from one
/// thread by `Handle::block_on` could tell.
fn claim_here(waker: &Waker) -> Option<(NonNull<Deadlines>, u32, u32)> {
    let kept = CURRENT.try_with(|current| {
        let mut current = current.try_borrow_mut().ok()?;
        let local = current.as_mut()?;
        let table = local.table.as_ref()?;
        let (page, bit) = local.spare?;
        // A kept slot is this thread's alone.
        let holds = unsafe { (*table.slot(page, bit).waker.get()).as_ref() }
            .is_some_and(|kept| same_waker(kept, waker));
        if !holds || !table.alive.load(Relaxed) {
            return None;
        }
        local.spare = None;
        Some((NonNull::from(&**table), page, bit))
    });
    if let Ok(Some(kept)) = kept {
        return Some(kept);
    }
    claim_in_current_runtime()
}

fn claim_in_current_runtime() -> Option<(NonNull<Deadlines>, u32, u32)> {
    let handle = Handle::try_current().ok()?;
    let runtime = handle.id();
    CURRENT
        .try_with(|current| {
            let mut current = current.try_borrow_mut().ok()?;
            let fresh = match &*current {
                Some(local) if local.runtime == runtime => match &local.table {
                    None => return None,
                    Some(table) => !table.alive.load(Relaxed),
                },
                _ => true,
            };
            if fresh {
                *current = Some(Local {
                    runtime,
                    table: table_for(&handle),
                    spare: None,
                });
            }
            let local = current.as_mut()?;
            let table = local.table.as_ref()?;
            let (page, bit) = match local.spare.take() {
                Some(spare) => spare,
                None => table.claim()?,
            };
            Some((NonNull::from(&**table), page, bit))
        })
        .ok()
        .flatten()
}

/// Keeps a released slot claimed for this thread's next call, when the
/// thread has none and the slot is in its current table.
fn keep_as_spare(table: NonNull<Deadlines>, page: u32, bit: u32) -> bool {
    CURRENT
        .try_with(|current| {
            let Ok(mut current) = current.try_borrow_mut() else {
                return false;
            };
            match current.as_mut() {
                Some(local)
                    if local.spare.is_none()
                        && local.table.as_ref().is_some_and(|t| {
                            std::ptr::eq(&**t, table.as_ptr()) && t.alive.load(Relaxed)
                        }) =>
                {
                    local.spare = Some((page, bit));
                    true
                }
                _ => false,
            }
        })
        .unwrap_or(false)
}

#[cold]
fn table_for(handle: &Handle) -> Option<Arc<Deadlines>> {
    let mut tables = TABLES.lock().unwrap_or_else(|e| e.into_inner());
    let tables = tables.get_or_insert_with(HashMap::new);
    let runtime = handle.id();
    match tables.get(&runtime) {
        Some(None) => return None,
        Some(Some(table)) => {
            if let Some(table) = table.upgrade().filter(|t| t.alive.load(Acquire)) {
                return Some(table);
            }
        }
        None => {}
    }
    if handle.runtime_flavor() == RuntimeFlavor::CurrentThread && crate::paused::clock_is_paused() {
        tables.insert(runtime, None);
        return None;
    }
    let table = Arc::new(Deadlines::new(handle));
    tables.insert(runtime, Some(Arc::downgrade(&table)));
    drop(
        TABLES_ADDED
            .lock()
            .map(|mut added| added.push(table.clone())),
    );
    timer_thread().unpark();
    Some(table)
}

/// Takes a table out of the registry; `paused` marks its runtime as one
/// whose calls use tokio timers from now on.
fn forget(table: &Arc<Deadlines>, paused: bool) {
    let mut tables = TABLES.lock().unwrap_or_else(|e| e.into_inner());
    let tables = tables.get_or_insert_with(HashMap::new);
    if paused {
        tables.insert(table.runtime, None);
    } else if let Some(Some(entry)) = tables.get(&table.runtime) {
        if entry.as_ptr() == Arc::as_ptr(table) {
            tables.remove(&table.runtime);
        }
    }
}

/// Tables the timer thread has not seen yet.
static TABLES_ADDED: Mutex<Vec<Arc<Deadlines>>> = Mutex::new(Vec::new());

/// How often the timer thread looks for a paused clock in a current-thread
/// runtime that has deadlines armed.
const PAUSE_CHECK: Duration = Duration::from_millis(5);

fn timer_thread() -> &'static Thread {
    static THREAD: OnceLock<Thread> = OnceLock::new();
    THREAD.get_or_init(|| {
        std::thread::Builder::new()
            .name("resilience-timer".into())
            .spawn(run_timer_thread)
            .expect("cannot start the resilience timer thread")
            .thread()
            .clone()
    })
}

fn run_timer_thread() {
    let mut tables: Vec<Arc<Deadlines>> = Vec::new();
    loop {
        if let Ok(mut added) = TABLES_ADDED.lock() {
            tables.append(&mut added);
        }
        let mut wait: Option<Duration> = None;
        tables.retain(|table| {
            // The thread holds every table until no thread holds it and no
            // slot in it is claimed: an armed call points into it without a
            // count of its own (that count would cost every call two atomic
            // operations).
            if Arc::strong_count(table) == 1 {
                std::sync::atomic::fence(Acquire);
                if !table.claimed() {
                    table.retire();
                    forget(table, false);
                    return false;
                }
            }
            if !table.alive.load(Acquire) {
                return true;
            }
            match visit(table) {
                Visit::Retired => true,
                Visit::Next(next) => {
                    if let Some(next) = next {
                        wait = Some(wait.map_or(next, |w| w.min(next)));
                    }
                    true
                }
            }
        });
        match wait {
            Some(wait) => std::thread::park_timeout(wait),
            None => std::thread::park(),
        }
    }
}

enum Visit {
    Retired,
    /// How long until the table needs the thread again.
    Next(Option<Duration>),
}

/// Fires a table's due deadlines on its runtime's clock.
fn visit(table: &Arc<Deadlines>) -> Visit {
    let _runtime = table.handle.enter();
    if table.may_pause && table.armed() > 0 && crate::paused::clock_is_paused() {
        forget(table, true);
        table.retire();
        return Visit::Retired;
    }
    // From here, a call that arms either is seen below or finds `NONE` and
    // wakes the thread.
    table.earliest.swap(NONE, SeqCst);
    let now = Now::read(table);
    let next = table.fire_due(now);
    let mut wait = (next != NONE).then(|| next - now.exact);
    // Keep coming by while calls arm deadlines, to map them soon.
    let since = table.last_visit.swap(now.deadline, Relaxed);
    let quiet = if table.armed() > 0 || table.armed_since(since) {
        0
    } else {
        table.quiet_visits.load(Relaxed).saturating_add(1)
    };
    table.quiet_visits.store(quiet, Relaxed);
    if quiet < QUIET_VISITS {
        wait = Some(wait.map_or(MAP_WITHIN.as_nanos() as u64, |w| {
            w.min(MAP_WITHIN.as_nanos() as u64)
        }));
    }
    if table.may_pause && table.armed() > 0 {
        wait = Some(wait.map_or(PAUSE_CHECK.as_nanos() as u64, |w| {
            w.min(PAUSE_CHECK.as_nanos() as u64)
        }));
    }
    let promise = wait.map_or(NONE, |w| now.deadline.saturating_add(w));
    table.earliest.fetch_min(promise, SeqCst);
    // A call that armed meanwhile may need the thread sooner.
    let earliest = table.earliest.load(SeqCst);
    if earliest < promise {
        wait = Some(earliest.saturating_sub(now.deadline));
    }
    Visit::Next(wait.map(Duration::from_nanos))
}

/// A call's armed deadline; dropping it disarms it.
pub(crate) struct Armed {
    /// Kept alive by the timer thread while the slot is claimed.
    table: NonNull<Deadlines>,
    page: u32,
    bit: u32,
}

// The table is `Sync`; the slot is this call's alone.
unsafe impl Send for Armed {}
unsafe impl Sync for Armed {}

/// What [`Armed::poll`] found.
pub(crate) enum Due {
    Pending,
    Fired,
    /// The table's driver stopped; the deadline (on tokio's clock) must be
    /// kept some other way.
    Orphaned(Instant),
}

impl Armed {
    /// Arms a deadline `timeout` after `armed_at` (deadline clock) for the
    /// task `waker` belongs to; `None` when no table can take it.
    pub(crate) fn new(armed_at: u64, timeout: Duration, waker: &Waker) -> Option<Armed> {
        let (table_ptr, page, bit) = claim_here(waker)?;
        let table = unsafe { table_ptr.as_ref() };
        let timeout = u64::try_from(timeout.as_nanos()).unwrap_or(NONE);
        let deadline = armed_at.saturating_add(timeout).min(NONE - 1);
        let slot = table.slot(page, bit);
        // A claimed slot is ours alone until it is armed.
        let kept = unsafe { &mut *slot.waker.get() };
        if !kept.as_ref().is_some_and(|kept| same_waker(kept, waker)) {
            *kept = Some(waker.clone());
        }
        slot.armed_at.store(armed_at, Relaxed);
        slot.deadline.store(deadline, Relaxed);
        slot.state.store(ARMED, SeqCst);
        // The thread must come by before the deadline, and soon enough to
        // map it onto the runtime's clock.
        let need_by = deadline.min(armed_at.saturating_add(MAP_WITHIN.as_nanos() as u64));
        if need_by < table.earliest.load(SeqCst)
            && need_by < table.earliest.fetch_min(need_by, SeqCst)
        {
            timer_thread().unpark();
        }
        Some(Armed {
            table: table_ptr,
            page,
            bit,
        })
    }

    fn table(&self) -> &Deadlines {
        unsafe { self.table.as_ref() }
    }

    fn slot(&self) -> &Slot {
        self.table().slot(self.page, self.bit)
    }

    /// [`Armed::poll`] right after arming: the deadline lies ahead and the
    /// waker is current, so only a table retired meanwhile is news.
    pub(crate) fn first_poll(&self) -> Due {
        if self.table().alive.load(SeqCst) {
            return Due::Pending;
        }
        self.orphaned()
    }

    /// The deadline as a tokio instant, for a tokio timer to keep. On a
    /// clock paused since the call armed, the time it has spent in the
    /// table is unknown on that clock (anything from none to all of it), so
    /// the whole timeout starts again: never early, late by at most the few
    /// milliseconds the timer thread took to find the pause.
    #[cold]
    fn orphaned(&self) -> Due {
        let table = self.table();
        let slot = self.slot();
        let (armed_at, deadline) = (slot.armed_at.load(Relaxed), slot.deadline.load(Relaxed));
        let now = Now::read(table);
        let exact = if table.may_pause && crate::paused::clock_is_paused() {
            now.exact.saturating_add(deadline - armed_at)
        } else {
            now.map(armed_at, deadline)
        };
        Due::Orphaned(table.clock.instant_at(exact))
    }

    /// Whether the deadline has passed; keeps the waker current.
    pub(crate) fn poll(&self, waker: &Waker) -> Due {
        let slot = self.slot();
        loop {
            match slot.state.load(Acquire) {
                FIRED => return Due::Fired,
                ARMED => {}
                _ => {
                    std::hint::spin_loop();
                    continue;
                }
            }
            if !self.table().alive.load(Acquire) {
                return self.orphaned();
            }
            // Only the owner writes the waker, so reading it here is safe.
            if unsafe { (*slot.waker.get()).as_ref() }.is_some_and(|w| same_waker(w, waker)) {
                return Due::Pending;
            }
            if slot
                .state
                .compare_exchange(ARMED, UPDATING, Acquire, Relaxed)
                .is_ok()
            {
                unsafe { *slot.waker.get() = Some(waker.clone()) };
                slot.state.store(ARMED, Release);
                return Due::Pending;
            }
        }
    }
}

/// `Waker::will_wake`, but comparing the vtables' functions rather than
/// their addresses: a clone of the waker tokio's `block_on` hands out has a
/// vtable at another address with the same functions, which `will_wake`
/// takes for another waker, costing a clone and a drop every call.
fn same_waker(kept: &Waker, waker: &Waker) -> bool {
    kept.data() == waker.data() && kept.vtable() == waker.vtable()
}

impl Drop for Armed {
    fn drop(&mut self) {
        let slot = self.slot();
        loop {
            match slot.state.compare_exchange(ARMED, IDLE, AcqRel, Acquire) {
                Ok(_) | Err(FIRED) | Err(IDLE) => break,
                Err(_) => std::hint::spin_loop(),
            }
        }
        slot.state.store(IDLE, Relaxed);
        // A spare keeps its waker: the same task's next call then arms it
        // without cloning one (two atomic operations).
        if !keep_as_spare(self.table, self.page, self.bit) {
            self.table().release(self.page, self.bit);
        }
    }
}

/// The table of the tokio runtime this thread runs in, for tests.
#[cfg(test)]
pub(crate) fn table_here() -> Option<Arc<Deadlines>> {
    let (table, page, bit) = claim_in_current_runtime()?;
    let table = unsafe { table.as_ref() };
    table.release(page, bit);
    let tables = TABLES.lock().unwrap();
    tables.as_ref()?.get(&table.runtime)?.as_ref()?.upgrade()
}

#[cfg(test)]
impl Deadlines {
    pub(crate) fn is_alive(&self) -> bool {
        self.alive.load(Acquire)
    }

    pub(crate) fn armed_now(&self) -> usize {
        self.armed()
    }

    pub(crate) fn retire_now(&self) {
        self.retire()
    }
}

#[cfg(test)]
mod mapping_tests {
    use super::*;

    const MS: u64 = 1_000_000;

    /// The runtime's clock runs at `rate` of the deadline clock's, from an
    /// arbitrary offset: the true deadline is the arming moment on the
    /// runtime's clock plus the timeout, measured on the runtime's clock.
    #[test]
    fn a_mapped_deadline_is_never_early_and_late_by_a_fraction_of_its_lag() {
        let origin = (1u64 << 62, 7 * MS);
        for ppm in [-600i64, -500, -100, 0, 100, 500] {
            let rate = |since: u64| (since as i128 * (1_000_000 + ppm as i128) / 1_000_000) as u64;
            for lag in [0, MS, 50 * MS, 1_000 * MS] {
                for timeout in [MS, 20 * MS, 10_000 * MS] {
                    let armed_at = origin.0 + 3_000 * MS;
                    let exact_at_arming = origin.1 + rate(armed_at - origin.0);
                    let now = Now {
                        deadline: armed_at + lag,
                        exact: origin.1 + rate(armed_at + lag - origin.0),
                    };
                    let mapped = now.map(armed_at, armed_at + timeout);
                    let truth = exact_at_arming + timeout;
                    assert!(mapped >= truth, "{ppm} ppm, lag {lag}: {mapped} < {truth}");
                    let late = mapped - truth;
                    let bound = lag * (DRIFT_PPM + 600) / 1_000_000 + 1;
                    assert!(late <= bound, "{ppm} ppm, lag {lag}: late by {late} ns");
                }
            }
        }
    }

    #[test]
    fn mapped_within_its_window_a_deadline_is_late_by_at_most_a_tenth_of_a_millisecond() {
        let lag = MAP_WITHIN.as_nanos() as u64;
        let now = Now {
            deadline: 1 << 62,
            exact: 500 * MS,
        };
        let armed_at = now.deadline - lag;
        let mapped = now.map(armed_at, armed_at + 10_000 * MS);
        let on_same_clocks = now.exact - lag + 10_000 * MS;
        assert_eq!(mapped - on_same_clocks, 100_000);
    }
}
