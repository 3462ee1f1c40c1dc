//! Semantic cache (issue 3).
