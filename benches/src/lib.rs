//! roamgate's benchmarks.
