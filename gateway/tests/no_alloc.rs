//! Encapsulation and decapsulation allocate nothing: a counting global allocator watches the
//! thread that runs them.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use common::*;
use roamgate_gateway::esp::{Decapsulated, decapsulate};

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: every call is forwarded unchanged to the system allocator; the counter is a
// thread-local `Cell` that never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|a| a.set(a.get() + 1));
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract, which we pass on.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System.alloc` above with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.with(|a| a.set(a.get() + 1));
        // SAFETY: as for `dealloc`, and `new_size` is the caller's, per the contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn allocations() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

#[test]
fn no_allocation_per_packet() {
    // The counter sees this thread's allocations.
    let b = allocations();
    let v = std::hint::black_box(vec![1u8; 10]);
    assert_eq!(allocations(), b + 1);
    drop(v);
    for spec in PairSpec::all() {
        let sa = spec.pair();
        let inner = InnerSpec::udp(spec.inner_v6, vec![0x42; 300]).build();
        let mut frames: Vec<Frame> = (0..16).map(|_| Frame::new(&inner)).collect();
        let before = allocations();
        for f in &mut frames {
            let e = sa
                .out
                .encapsulate(&sa.path, &mut f.buf, f.start, f.len)
                .unwrap();
            let r = decapsulate(&mut f.buf, e.start, e.len, |_| Some(&sa.inb)).unwrap();
            assert!(matches!(r, Decapsulated::Packet { .. }));
        }
        assert_eq!(allocations() - before, 0, "{spec:?} allocated");
    }
}
