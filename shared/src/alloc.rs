//! Process-wide allocator settings, so resident memory follows what is in use: buffers of half a
//! MiB and more (large files of an archive, write buffers) are mapped for their use and unmapped
//! when freed, instead of staying in the heap.
//!
//! glibc's malloc raises its mapping threshold to the size of each mapped block freed, so after
//! the first large file every later one came from the heap, and the heaps kept their peak: on a
//! build of 517 archives with files of 1–8 MiB the coordinator's peak resident memory was
//! 188–240 MiB from run to run, and 124 MiB with the threshold fixed.

/// Blocks of at least this many bytes are mapped, never taken from the heap.
pub const MAP_THRESHOLD: i32 = 512 << 10;

/// Fixes the mapping threshold at [`MAP_THRESHOLD`] (glibc; elsewhere nothing to do). Called at
/// the start of each program's `run`.
#[allow(unsafe_code)]
pub fn bound_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallopt only sets a malloc parameter under malloc's own lock; it takes no
        // pointers and is MT-safe (glibc's manual), so no Rust invariant is involved.
        let set = unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, MAP_THRESHOLD) };
        if set != 1 {
            tracing::debug!("mallopt(M_MMAP_THRESHOLD) was refused; the heap keeps its default");
        }
    }
}
