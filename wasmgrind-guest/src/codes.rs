//! The status codes of the runtime ABI (`wasmgrind_core::abi::ErrorCode`), mirrored so
//! that the guest library needs no dependency. A host test checks the mirror.

/// Success.
pub(crate) const OK: i32 = 0;
/// The joined thread trapped.
pub(crate) const THREAD_TRAPPED: i32 = 6;
/// A Rust panic in the guest.
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
pub(crate) const GUEST_PANIC: i32 = 100;
/// The guest ran out of memory.
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
pub(crate) const OUT_OF_MEMORY: i32 = 101;
/// A call to `thread_create` failed and the guest could not go on.
pub(crate) const CREATE_FAILED: i32 = 102;
/// The runtime failed to start a thread (the host fallback's spawn error).
#[cfg_attr(target_arch = "wasm32", allow(dead_code))]
pub(crate) const SPAWN_FAILED: i32 = 2;
/// `thread_join` named an unknown thread (the host fallback's join error).
#[cfg_attr(target_arch = "wasm32", allow(dead_code))]
pub(crate) const UNKNOWN_THREAD: i32 = 3;

/// Every code with its description, as in `wasmgrind_core::abi::ErrorCode::description`.
pub(crate) const TABLE: [(i32, &str); 11] = [
    (OK, "success"),
    (1, "the runtime's thread limit is reached"),
    (SPAWN_FAILED, "the runtime failed to start the thread"),
    (UNKNOWN_THREAD, "no thread has this id"),
    (4, "the thread was already joined"),
    (5, "a thread tried to join itself"),
    (THREAD_TRAPPED, "the joined thread trapped"),
    (GUEST_PANIC, "the guest panicked"),
    (OUT_OF_MEMORY, "the guest ran out of memory"),
    (CREATE_FAILED, "the guest could not create a thread"),
    (103, "the guest could not join a thread"),
];

/// The description of `code`, or `None` for a code this library does not know.
pub(crate) fn describe(code: i32) -> Option<&'static str> {
    TABLE.iter().find(|(c, _)| *c == code).map(|(_, d)| *d)
}

#[cfg(test)]
mod tests {
    use wasmgrind_core::abi::ErrorCode;

    #[test]
    fn mirror_matches_the_abi() {
        assert_eq!(super::TABLE.len(), ErrorCode::ALL.len());
        for (code, (raw, text)) in ErrorCode::ALL.iter().zip(super::TABLE) {
            assert_eq!(code.code(), raw, "code of {code:?}");
            assert_eq!(code.description(), text, "description of {code:?}");
        }
        assert_eq!(super::OK, ErrorCode::Ok.code());
        assert_eq!(super::SPAWN_FAILED, ErrorCode::SpawnFailed.code());
        assert_eq!(super::UNKNOWN_THREAD, ErrorCode::UnknownThread.code());
        assert_eq!(super::THREAD_TRAPPED, ErrorCode::ThreadTrapped.code());
        assert_eq!(super::GUEST_PANIC, ErrorCode::GuestPanic.code());
        assert_eq!(super::OUT_OF_MEMORY, ErrorCode::OutOfMemory.code());
        assert_eq!(super::CREATE_FAILED, ErrorCode::CreateFailed.code());
        assert_eq!(super::describe(77), None);
    }
}
