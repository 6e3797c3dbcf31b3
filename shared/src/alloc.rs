//! Process-wide allocator settings, so resident memory follows what is in use: buffers of half a
//! MiB and more (large files of an archive, write buffers) are mapped for their use and unmapped
//! when freed, instead of staying in the heap; and threads share one heap (arena) per core
//! instead of up to eight per core.
//!
//! glibc's malloc raises its mapping threshold to the size of each mapped block freed, so after
//! the first large file every later one came from the heap, and the heaps kept their peak: on a
//! build of 517 archives with files of 1–8 MiB the coordinator's peak resident memory was
//! 188–240 MiB from run to run, and 124 MiB with the threshold fixed. Every thread that allocates
//! while another holds its arena's lock gets an arena of its own, up to eight per core; each keeps
//! what was freed in it, so a long build's blocking threads left many heaps half full: a build of
//! 20,080 archives peaked at 399 MiB with glibc's default and 342 MiB with one arena per core, and
//! took no longer.

/// Blocks of at least this many bytes are mapped, never taken from the heap.
pub const MAP_THRESHOLD: i32 = 512 << 10;

/// Fixes the mapping threshold at [`MAP_THRESHOLD`] and allows one arena per core (glibc;
/// elsewhere nothing to do). Called at the start of each program's `run`, before the build's
/// threads start.
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
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        let arenas = libc::c_int::try_from(cores).unwrap_or(libc::c_int::MAX);
        // SAFETY: as above.
        if unsafe { libc::mallopt(libc::M_ARENA_MAX, arenas) } != 1 {
            tracing::debug!("mallopt(M_ARENA_MAX) was refused; threads keep glibc's arena limit");
        }
    }
}
