//! The trimmer gives freed memory back and counts it. A test binary of its
//! own: it reads the whole process's heap, so a test running beside it in
//! the same process (allocating, or holding memory that keeps the free
//! share below the trim rule) would make it fail for no fault of its own.

use server::allocator::{start_trimmer, stats, TRIM_CHECK};

#[test]
fn freed_memory_goes_back_and_is_counted() {
    if stats().is_none() {
        eprintln!("SKIPPED: the trimmer needs glibc's malloc (Linux, gnu target)");
        return;
    }
    start_trimmer().expect("glibc has malloc_trim");
    start_trimmer().expect("twice too");
    // 32 MiB in 64 KiB blocks (below the mmap threshold, so they live in
    // an arena), every block touched, then every other one freed: free
    // chunks between live ones, which free() alone never gives back.
    let mut blocks: Vec<Vec<u8>> = (0..512).map(|_| vec![1u8; 64 << 10]).collect();
    let before = stats().expect("glibc says");
    // Held for two looks, so the trimmer has seen the peak.
    std::thread::sleep(2 * TRIM_CHECK);
    for b in blocks.iter_mut().step_by(2) {
        *b = Vec::new();
    }
    let deadline = std::time::Instant::now() + 10 * TRIM_CHECK;
    while stats().expect("glibc says").trims == before.trims {
        assert!(
            std::time::Instant::now() < deadline,
            "no trim after the frees"
        );
        std::thread::sleep(TRIM_CHECK / 5);
    }
    drop(blocks);
    let after = stats().expect("glibc says");
    assert!(after.trimmed_free_bytes > before.trimmed_free_bytes);
    assert!(after.allocated_bytes < before.allocated_bytes);
}
