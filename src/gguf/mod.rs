//! GGUF v2/v3 reader (memory-mapped, validated) and writer.
