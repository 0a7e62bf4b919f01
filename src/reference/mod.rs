//! Plain-Rust CPU forward pass: the oracle every GPU kernel is tested against.
