//! The global allocator on wasm32: std's allocator, with every allocation and free
//! reported to the runtime (`wasmgrind.heap_alloc` / `heap_free`).
//!
//! The instrumenter leaves the allocator's own code untraced, so its spin lock does not
//! order the threads that allocate and its bookkeeping is not mistaken for races. The
//! reports take its place: the race detector starts every block that is handed out or
//! given back with fresh state, so memory that one thread frees and another reuses is
//! never reported.

use std::alloc::{GlobalAlloc, Layout, System};

// The names are those of `wasmgrind_core::abi::HEAP_ALLOC` and `HEAP_FREE`; `cargo xtask
// guests` checks every built guest's imports against the ABI.
#[link(wasm_import_module = "wasmgrind")]
extern "C" {
    #[link_name = "heap_alloc"]
    fn wasmgrind_heap_alloc(ptr: *mut u8, size: usize);
    #[link_name = "heap_free"]
    fn wasmgrind_heap_free(ptr: *mut u8, size: usize);
}

/// std's allocator with allocations reported to the runtime.
struct Reported;

// std's allocator, each call in a function of its own whose name the instrumenter knows
// (`wasmgrind_guest::alloc::system_*`): inlined into its callers, the allocator's spin
// lock would be traced in their code and order every thread that allocates.

/// `System.alloc`, never inlined.
#[inline(never)]
unsafe fn system_alloc(layout: Layout) -> *mut u8 {
    // SAFETY: the caller's contract is `System.alloc`'s.
    unsafe { System.alloc(layout) }
}

/// `System.alloc_zeroed`, never inlined.
#[inline(never)]
unsafe fn system_alloc_zeroed(layout: Layout) -> *mut u8 {
    // SAFETY: the caller's contract is `System.alloc_zeroed`'s.
    unsafe { System.alloc_zeroed(layout) }
}

/// `System.dealloc`, never inlined.
#[inline(never)]
unsafe fn system_dealloc(ptr: *mut u8, layout: Layout) {
    // SAFETY: the caller's contract is `System.dealloc`'s.
    unsafe { System.dealloc(ptr, layout) }
}

/// `System.realloc`, never inlined.
#[inline(never)]
unsafe fn system_realloc(ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
    // SAFETY: the caller's contract is `System.realloc`'s.
    unsafe { System.realloc(ptr, layout, new_size) }
}

// SAFETY: every method forwards to `System` with the caller's arguments; the reports are
// notifications that neither allocate nor touch the blocks.
unsafe impl GlobalAlloc for Reported {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract is `System.alloc`'s.
        let p = unsafe { system_alloc(layout) };
        if !p.is_null() {
            // SAFETY: a notification with integer arguments.
            unsafe { wasmgrind_heap_alloc(p, layout.size()) };
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract is `System.alloc_zeroed`'s.
        let p = unsafe { system_alloc_zeroed(layout) };
        if !p.is_null() {
            // SAFETY: a notification with integer arguments.
            unsafe { wasmgrind_heap_alloc(p, layout.size()) };
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // Reported before the block goes back, while no other thread can have it.
        // SAFETY: a notification with integer arguments.
        unsafe { wasmgrind_heap_free(ptr, layout.size()) };
        // SAFETY: the caller's contract is `System.dealloc`'s.
        unsafe { system_dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller's contract is `System.realloc`'s.
        let q = unsafe { system_realloc(ptr, layout, new_size) };
        if !q.is_null() {
            // SAFETY: notifications with integer arguments.
            unsafe {
                wasmgrind_heap_free(ptr, layout.size());
                wasmgrind_heap_alloc(q, new_size);
            }
        }
        q
    }
}

#[global_allocator]
static ALLOCATOR: Reported = Reported;
