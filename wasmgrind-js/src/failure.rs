//! What the utility module knows of its own failure, for the runtime's error message.
//!
//! A failed allocation or a panic in the utility module aborts it: the runtime sees a trap,
//! `unreachable`, with nothing of its cause. Two things are kept where the runtime can
//! read them after the trap, without allocating (the allocator may be what failed, and
//! its lock may still be held):
//!
//! - [`FailureAllocator`], the crate's global allocator, wraps the system allocator and
//!   remembers the size of the last allocation it could not make ([`failed_allocation`]):
//!   the utility memory is full (a WebAssembly memory holds at most 4 GiB);
//! - a panic hook ([`install_panic_hook`]) copies the panic's message, cut at
//!   [`MESSAGE_BYTES`] bytes, into a static buffer ([`panic_message_ptr`],
//!   [`panic_message_len`]).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::UnsafeCell;
use std::fmt::Write;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering::SeqCst};
use std::sync::Once;

use wasm_bindgen::prelude::*;

/// The system allocator, remembering the size of an allocation it could not make.
pub struct FailureAllocator;

/// The size of the last allocation that failed, plus one; 0 while none did.
static FAILED: AtomicU64 = AtomicU64::new(0);

impl FailureAllocator {
    fn check(ptr: *mut u8, size: usize) -> *mut u8 {
        if ptr.is_null() {
            FAILED.store(size as u64 + 1, SeqCst);
        }
        ptr
    }
}

// SAFETY: every call goes to `System` with the caller's arguments; the wrapper only looks
// at the result.
unsafe impl GlobalAlloc for FailureAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract, passed on.
        Self::check(unsafe { System.alloc(layout) }, layout.size())
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract, passed on.
        Self::check(unsafe { System.alloc_zeroed(layout) }, layout.size())
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract, passed on.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller's contract, passed on.
        Self::check(unsafe { System.realloc(ptr, layout, new_size) }, new_size)
    }
}

/// The size in bytes of the last allocation of the utility module that failed, or `-1`
/// when none did.
#[wasm_bindgen(js_name = failedAllocation)]
pub fn failed_allocation() -> f64 {
    match FAILED.load(SeqCst) {
        0 => -1.0,
        n => (n - 1) as f64,
    }
}

/// Forgets a failed allocation that was handled (a `try_reserve` that failed and said
/// so), so that it is not taken for the cause of a later trap.
pub fn clear_failed_allocation() {
    FAILED.store(0, SeqCst);
}

/// Bytes of a panic's message that are kept.
pub const MESSAGE_BYTES: usize = 1024;

/// The message of the first panic, written once by the panic hook.
struct MessageBuffer(UnsafeCell<[u8; MESSAGE_BYTES]>);

// SAFETY: only the panic hook writes the buffer, once (`TAKEN`), and the runtime reads it
// after `LEN` says it is complete.
unsafe impl Sync for MessageBuffer {}

static MESSAGE: MessageBuffer = MessageBuffer(UnsafeCell::new([0; MESSAGE_BYTES]));
/// Whether a panic has claimed the buffer.
static TAKEN: AtomicBool = AtomicBool::new(false);
/// The length of the message in the buffer, once it is written.
static LEN: AtomicU32 = AtomicU32::new(0);

/// Writes into a fixed buffer, dropping what does not fit (no allocation).
struct Cut<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl Write for Cut<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        for (i, c) in s.char_indices() {
            let end = i + c.len_utf8();
            let room = self.buf.len() - self.len;
            if end - i > room {
                return Ok(());
            }
            self.buf[self.len..self.len + (end - i)].copy_from_slice(&s.as_bytes()[i..end]);
            self.len += end - i;
        }
        Ok(())
    }
}

/// Makes the first panic of the utility module keep its message and location (see the
/// module docs). Installed once per process; later calls do nothing.
pub fn install_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // The hook before this one (std's, which prints the message where there is a
        // standard error) still runs after it.
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            keep(info);
            previous(info);
        }));
    });
}

/// Keeps the message and location of the first panic (see [`install_panic_hook`]).
fn keep(info: &std::panic::PanicHookInfo<'_>) {
    if TAKEN.swap(true, SeqCst) {
        return;
    }
    // SAFETY: `TAKEN` gives this panic alone the buffer.
    let buf = unsafe { &mut *MESSAGE.0.get() };
    let mut w = Cut { buf, len: 0 };
    let _ = write!(w, "{}", info.payload_as_str().unwrap_or("a panic"));
    if let Some(l) = info.location() {
        let _ = write!(w, " (at {}:{})", l.file(), l.line());
    }
    LEN.store(w.len as u32, SeqCst);
}

/// The address of the first panic's message in the utility memory (see
/// [`panic_message_len`]).
#[wasm_bindgen(js_name = panicMessagePtr)]
pub fn panic_message_ptr() -> u32 {
    MESSAGE.0.get() as usize as u32
}

/// The length in bytes (UTF-8) of the first panic's message, 0 while nothing panicked.
#[wasm_bindgen(js_name = panicMessageLen)]
pub fn panic_message_len() -> u32 {
    LEN.load(SeqCst)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cut_writer_keeps_whole_characters_that_fit() {
        let mut buf = [0u8; 5];
        let mut w = Cut {
            buf: &mut buf,
            len: 0,
        };
        write!(w, "ab\u{e9}\u{e9}").unwrap();
        // "ab" (2 bytes) and one "é" (2 bytes) fit; the second "é" would not.
        assert_eq!(&buf[..4], "ab\u{e9}".as_bytes());
    }

    #[test]
    fn the_first_panic_keeps_its_message() {
        install_panic_hook();
        let _ = std::panic::catch_unwind(|| panic!("first failure {}", 42));
        let _ = std::panic::catch_unwind(|| panic!("second"));
        let len = panic_message_len() as usize;
        // SAFETY: the hook wrote `len` bytes and is done.
        let text = unsafe { &(&*MESSAGE.0.get())[..len] };
        let text = std::str::from_utf8(text).unwrap();
        assert!(text.starts_with("first failure 42 (at "), "{text}");
        assert!(text.contains("failure.rs:"), "{text}");
    }

    #[test]
    fn a_failed_allocation_is_remembered() {
        assert!(FailureAllocator::check(std::ptr::null_mut(), 1234).is_null());
        assert_eq!(failed_allocation(), 1234.0);
    }
}
