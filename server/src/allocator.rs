//! The memory allocator (placeholder until measured).
