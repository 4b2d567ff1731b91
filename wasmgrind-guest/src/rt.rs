//! The exports the runtime calls (wasm32 only). Their names and signatures are those of
//! `wasmgrind_core::abi` (`THREAD_START`, `MALLOC`, `FREE`, `GUEST_INIT`).

use std::alloc::Layout;
use std::cell::Cell;
use std::fmt::{self, Write as _};

use crate::{codes, sys};

thread_local! {
    /// The code the next panic of this thread reports; `GuestPanic` unless the library
    /// panics on purpose with a more precise one.
    static PANIC_CODE: Cell<i32> = const { Cell::new(codes::GUEST_PANIC) };
}

/// Makes the next panic of this thread report `code`.
pub(crate) fn set_panic_code(code: i32) {
    PANIC_CODE.with(|c| c.set(code));
}

/// `__wasmgrind_init()`: installs the hooks that report panics and allocation failures
/// to the runtime. The runtime calls it once before the guest function.
#[no_mangle]
pub extern "C" fn __wasmgrind_init() {
    std::panic::set_hook(Box::new(report_panic));
    std::alloc::set_alloc_error_hook(report_alloc_error);
}

/// The panic hook: `wasmgrind.panic(code, "file:line: message")`.
fn report_panic(info: &std::panic::PanicHookInfo<'_>) {
    let text = info
        .payload_as_str()
        .unwrap_or("panic with a payload that is not a string");
    let msg = match info.location() {
        Some(l) => format!("{}:{}: {text}", l.file(), l.line()),
        None => text.to_owned(),
    };
    let code = PANIC_CODE.with(|c| c.replace(codes::GUEST_PANIC));
    sys::give_up(code, msg.as_bytes())
}

/// The allocation error hook: reports `OutOfMemory` without allocating.
fn report_alloc_error(layout: Layout) {
    // The longest message, with both numbers at u32::MAX, has 67 bytes.
    let mut msg = StackStr {
        buf: [0; 96],
        len: 0,
    };
    write!(
        msg,
        "memory allocation of {} bytes (align {}) failed",
        layout.size(),
        layout.align()
    )
    .expect("the message fits its buffer");
    sys::give_up(codes::OUT_OF_MEMORY, &msg.buf[..msg.len])
}

/// A fixed buffer for a message that must not allocate.
struct StackStr {
    buf: [u8; 96],
    len: usize,
}

impl fmt::Write for StackStr {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len + s.len();
        self.buf
            .get_mut(self.len..end)
            .ok_or(fmt::Error)?
            .copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// `thread_start(start_arg)`: the entry point of every thread the runtime starts for
/// [`crate::thread::spawn`].
///
/// # Safety
///
/// `start_arg` must be the `start_arg` that `spawn` passed to `thread_create`, used once.
#[no_mangle]
pub unsafe extern "C" fn thread_start(start_arg: i32) {
    // SAFETY: the runtime passes back what `spawn` gave it, once.
    unsafe { crate::thread::start(start_arg as u32 as usize) }
}

/// `__wasmgrind_malloc(size, align) -> ptr`: allocates from the guest's heap for the
/// runtime (thread stacks, TLS blocks). Returns 0 when out of memory or when `align` is
/// not a power of two. A zero size allocates one byte.
#[no_mangle]
pub extern "C" fn __wasmgrind_malloc(size: i32, align: i32) -> i32 {
    match layout(size, align) {
        // SAFETY: the layout has a non-zero size.
        Some(l) => unsafe { std::alloc::alloc(l) as i32 },
        None => 0,
    }
}

/// `__wasmgrind_free(ptr, size, align)`: frees what [`__wasmgrind_malloc`] returned.
/// A null `ptr` is ignored.
///
/// # Safety
///
/// `ptr` must come from `__wasmgrind_malloc(size, align)` and not be freed yet.
#[no_mangle]
pub unsafe extern "C" fn __wasmgrind_free(ptr: i32, size: i32, align: i32) {
    if ptr == 0 {
        return;
    }
    let Some(l) = layout(size, align) else {
        panic!(
            "__wasmgrind_free({ptr}, {size}, {align}): the alignment is not a power of two, \
             so the block cannot come from __wasmgrind_malloc"
        );
    };
    // SAFETY: the caller guarantees `ptr` came from `__wasmgrind_malloc` with this layout.
    unsafe { std::alloc::dealloc(ptr as u32 as usize as *mut u8, l) }
}

/// The layout of a runtime allocation: sizes are unsigned, zero counts as one.
fn layout(size: i32, align: i32) -> Option<Layout> {
    Layout::from_size_align((size as u32 as usize).max(1), align as u32 as usize).ok()
}
