//! Mutable statics for a program that runs on one vCPU, without threads or interrupts.

use core::cell::UnsafeCell;

/// A static that the runtime mutates through raw pointers.
///
/// Users take `&mut` only for short stretches that call no code which could touch the same
/// static again (no formatting of caller-supplied values, no callbacks).
pub(crate) struct Global<T>(UnsafeCell<T>);

// SAFETY: a guest has exactly one vCPU, no threads and no interrupts, so a `Global` is never
// accessed from two threads; exclusive access within the one thread is the users' duty (see
// the type's documentation).
unsafe impl<T> Sync for Global<T> {}

impl<T> Global<T> {
    /// Wraps `value`.
    pub(crate) const fn new(value: T) -> Global<T> {
        Global(UnsafeCell::new(value))
    }

    /// A raw pointer to the value.
    pub(crate) const fn as_ptr(&self) -> *mut T {
        self.0.get()
    }
}
