//! Model configuration read from GGUF metadata, tensor shape checks, memory estimate.
