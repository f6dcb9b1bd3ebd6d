//! The `it` binary's global allocator: assert_no_alloc's detector (for the real-time tests'
//! `assert_no_alloc` scopes), wrapped to also count the bytes a thread holds while it is
//! measured ([`peak_bytes`], for the fuzz tests' allocation bounds).

use std::alloc::{GlobalAlloc, Layout};
use std::cell::Cell;

use assert_no_alloc::AllocDisabler;

/// assert_no_alloc's allocator plus per-thread byte counts.
pub struct Counting;

thread_local! {
    static MEASURING: Cell<bool> = const { Cell::new(false) };
    static HELD: Cell<i64> = const { Cell::new(0) };
    static PEAK: Cell<i64> = const { Cell::new(0) };
}

/// Adds `delta` bytes to this thread's count while it is measured. Const-initialized cells
/// without destructors: reading them never allocates.
fn count(delta: i64) {
    let _ = MEASURING.try_with(|on| {
        if on.get() {
            let held = HELD.get() + delta;
            HELD.set(held);
            if held > PEAK.get() {
                PEAK.set(held);
            }
        }
    });
}

// SAFETY: every call is forwarded unchanged to `AllocDisabler` (which forwards to the
// system allocator); the counting touches only thread-local integers.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { AllocDisabler.alloc(layout) };
        if !p.is_null() {
            count(layout.size() as i64);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { AllocDisabler.alloc_zeroed(layout) };
        if !p.is_null() {
            count(layout.size() as i64);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { AllocDisabler.dealloc(ptr, layout) };
        count(-(layout.size() as i64));
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { AllocDisabler.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            count(new_size as i64 - layout.size() as i64);
        }
        p
    }
}

/// Runs `f` and returns its result with the most bytes this thread held at once meanwhile
/// (allocated during `f`, not yet freed), what `f` keeps included.
pub fn peak_bytes<R>(f: impl FnOnce() -> R) -> (R, usize) {
    HELD.set(0);
    PEAK.set(0);
    MEASURING.set(true);
    let result = f();
    MEASURING.set(false);
    (result, PEAK.get().max(0) as usize)
}

#[test]
fn the_count_follows_allocations_and_frees() {
    let (_, peak) = peak_bytes(|| {
        let a = vec![0u8; 10_000];
        let b = vec![0u8; 5_000];
        drop(a);
        let c = vec![0u8; 3_000];
        (b, c)
    });
    assert_eq!(peak, 15_000);
    let (v, peak) = peak_bytes(|| {
        let mut v: Vec<u64> = Vec::new();
        for i in 0..1000 {
            v.push(i);
        }
        v
    });
    assert!(
        (8_000..=16_384).contains(&peak),
        "{peak} bytes for 1000 u64 pushed"
    );
    assert_eq!(v.len(), 1000);
}
