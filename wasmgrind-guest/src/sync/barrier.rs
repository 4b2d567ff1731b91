//! A barrier, shaped like `std::sync::Barrier`.

use std::cell::UnsafeCell;
use std::fmt;
use std::sync::atomic::{AtomicU32, Ordering};

use super::raw::RawLock;
use crate::sys;

/// Lets a group of threads wait until all of them have arrived, then lets them all go on.
///
/// `Barrier::new(n).wait()` blocks until `n` threads have called it; then all return,
/// and exactly one of them gets a [`BarrierWaitResult`] whose
/// [`is_leader`](BarrierWaitResult::is_leader) is `true`. The barrier can be used again
/// at once: the next `n` calls form the next group.
///
/// A barrier is not a lock: it reports no lock event, and the deadlock predictor does not
/// see it. Everything a thread did before `wait` happens before everything any thread of
/// its group does after `wait`; the race detector sees this through the barrier's atomic
/// accesses (an internal lock word and a generation counter, which the threads block on
/// with `memory.atomic.wait32`). A barrier that never fills blocks its threads forever,
/// which the runtime's timeout ends.
pub struct Barrier {
    /// Number of threads per group.
    parties: u32,
    /// Guards `arrived` (an untraced lock: not one of the program's locks).
    lock: RawLock,
    /// Threads of the current group that have arrived.
    arrived: UnsafeCell<u32>,
    /// Counts the groups that were let through; waiters sleep on it.
    generation: AtomicU32,
}

// SAFETY: `arrived` is only touched with `lock` held; the rest are atomics.
unsafe impl Sync for Barrier {}

impl Barrier {
    /// A barrier for groups of `n` threads. Like std's, `n` of 0 or 1 lets every thread
    /// through at once, each as the leader.
    ///
    /// # Panics
    ///
    /// If `n` is above `u32::MAX`, more threads than the runtime can have.
    pub fn new(n: usize) -> Self {
        let parties = u32::try_from(n).unwrap_or_else(|_| {
            panic!("Barrier::new({n}): at most u32::MAX threads can meet at a barrier")
        });
        Barrier {
            parties,
            lock: RawLock::new(),
            arrived: UnsafeCell::new(0),
            generation: AtomicU32::new(0),
        }
    }

    /// Blocks until `n` threads (counting this one) have called `wait` for this group,
    /// then returns; the last thread to arrive is the leader.
    pub fn wait(&self) -> BarrierWaitResult {
        self.lock.lock();
        // SAFETY: `arrived` is only accessed with `lock` held.
        let arrived = unsafe { &mut *self.arrived.get() };
        *arrived += 1;
        if *arrived >= self.parties {
            *arrived = 0;
            self.generation.fetch_add(1, Ordering::Release);
            self.lock.unlock();
            sys::wake_all(&self.generation);
            return BarrierWaitResult { is_leader: true };
        }
        // Read with the lock held: the generation cannot move on before this thread's
        // group is complete, which needs the lock.
        let generation = self.generation.load(Ordering::Relaxed);
        self.lock.unlock();
        while self.generation.load(Ordering::Acquire) == generation {
            sys::wait(&self.generation, generation);
        }
        BarrierWaitResult { is_leader: false }
    }
}

impl fmt::Debug for Barrier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Barrier")
            .field("parties", &self.parties)
            .finish_non_exhaustive()
    }
}

/// What [`Barrier::wait`] returns: whether this thread was the group's leader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BarrierWaitResult {
    is_leader: bool,
}

impl BarrierWaitResult {
    /// Whether this thread was the leader of its group: exactly one thread of each group
    /// is, the last to arrive.
    pub fn is_leader(&self) -> bool {
        self.is_leader
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::Mutex;
    use crate::sys::events;
    use crate::thread;
    use std::sync::Arc;

    /// Nobody passes before the last thread arrives: the test waits until the first two
    /// threads are parked on the barrier or one of them has passed, and requires the
    /// former. A `wait` that returns early fails it, whatever the scheduling.
    #[test]
    fn nobody_passes_before_the_last_arrives() {
        let barrier = Arc::new(Barrier::new(3));
        let passed = Arc::new(AtomicU32::new(0));
        let handles: Vec<_> = (0..2)
            .map(|_| {
                let (barrier, passed) = (Arc::clone(&barrier), Arc::clone(&passed));
                thread::spawn(move || {
                    let result = barrier.wait();
                    passed.fetch_add(1, Ordering::SeqCst);
                    result.is_leader()
                })
            })
            .collect();
        while sys::waiters(&barrier.generation) < 2 && passed.load(Ordering::SeqCst) == 0 {
            std::thread::yield_now();
        }
        assert_eq!(
            passed.load(Ordering::SeqCst),
            0,
            "a thread passed the barrier before the last one arrived"
        );
        assert_eq!(sys::waiters(&barrier.generation), 2);
        assert!(
            barrier.wait().is_leader(),
            "the last to arrive is the leader"
        );
        assert_eq!(sys::waiters(&barrier.generation), 0);
        let leaders: Vec<bool> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        assert_eq!(leaders, [false, false]);
        assert_eq!(passed.load(Ordering::SeqCst), 2);
    }

    /// Rounds of write-your-slot, barrier, read-every-slot, barrier: a barrier that lets
    /// a thread through early shows it a slot from another round. One leader per round.
    #[test]
    fn a_barrier_separates_rounds_and_has_one_leader_each() {
        const THREADS: usize = 4;
        const ROUNDS: u32 = 200;
        let barrier = Arc::new(Barrier::new(THREADS));
        let slots = Arc::new((0..THREADS).map(|_| Mutex::new(0)).collect::<Vec<_>>());
        let leaders = Arc::new(AtomicU32::new(0));
        let handles: Vec<_> = (0..THREADS)
            .map(|me| {
                let (barrier, slots, leaders) = (
                    Arc::clone(&barrier),
                    Arc::clone(&slots),
                    Arc::clone(&leaders),
                );
                thread::spawn(move || {
                    for round in 1..=ROUNDS {
                        *slots[me].lock() = round;
                        if barrier.wait().is_leader() {
                            leaders.fetch_add(1, Ordering::SeqCst);
                        }
                        for (other, slot) in slots.iter().enumerate() {
                            let seen = *slot.lock();
                            assert_eq!(seen, round, "thread {me} saw thread {other}'s slot");
                        }
                        barrier.wait();
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().expect("a thread saw a slot of another round");
        }
        assert_eq!(leaders.load(Ordering::SeqCst), ROUNDS);
    }

    #[test]
    fn a_barrier_of_one_or_none_never_blocks_and_reports_no_lock() {
        events::take();
        for n in [0, 1] {
            let b = Barrier::new(n);
            assert!(b.wait().is_leader());
            assert!(b.wait().is_leader());
        }
        assert_eq!(events::take(), []);
    }
}
