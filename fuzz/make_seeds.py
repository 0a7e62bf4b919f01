#!/usr/bin/env python3
"""Writes the seed corpus for the gguf_reader fuzz target into fuzz/seeds/gguf_reader/.

Small GGUF v2/v3 files assembled from the format description (ggml/docs/gguf.md): every
metadata value type, nested arrays, general.alignment, several tensor types, a tensorless
file. Run from anywhere: python3 fuzz/make_seeds.py
"""
import os
import struct

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "seeds", "gguf_reader")

U8, I8, U16, I16, U32, I32, F32, BOOL, STR, ARR, U64, I64, F64 = range(13)
SCALAR = {U8: "<B", I8: "<b", U16: "<H", I16: "<h", U32: "<I", I32: "<i", F32: "<f",
          BOOL: "<?", U64: "<Q", I64: "<q", F64: "<d"}


def s(x):
    b = x.encode() if isinstance(x, str) else x
    return struct.pack("<Q", len(b)) + b


def payload(t, v):
    if t == STR:
        return s(v)
    if t == ARR:
        et, items = v
        return struct.pack("<IQ", et, len(items)) + b"".join(payload(et, i) for i in items)
    return struct.pack(SCALAR[t], v)


def gguf(kvs, tensors, version=3, align=32):
    """tensors: (name, dims, ggml type id, data bytes); offsets packed and aligned."""
    out = b"GGUF" + struct.pack("<IQQ", version, len(tensors), len(kvs))
    for k, t, v in kvs:
        out += s(k) + struct.pack("<I", t) + payload(t, v)
    off, blobs = 0, b""
    for name, dims, ty, data in tensors:
        out += s(name) + struct.pack("<I", len(dims)) + b"".join(struct.pack("<Q", d) for d in dims)
        out += struct.pack("<IQ", ty, off)
        padded = data + b"\0" * (-len(data) % align)
        blobs += padded
        off += len(padded)
    if tensors:
        out += b"\0" * (-len(out) % align)
    return out + blobs


def main():
    os.makedirs(OUT, exist_ok=True)
    seeds = {
        "base.gguf": gguf(
            [("general.architecture", STR, "llama"),
             ("test.list", ARR, (I32, [1, 2, 3])),
             ("test.nested", ARR, (ARR, [(STR, ["a"]), (STR, ["bc"])]))],
            [("a", [4], 0, b"\x01" * 16), ("b", [32, 2], 8, b"\x02" * 68)]),
        "all_types_align64.gguf": gguf(
            [("general.alignment", U32, 64),
             ("u8", U8, 200), ("i8", I8, -3), ("u16", U16, 60000), ("i16", I16, -300),
             ("u32", U32, 7), ("i32", I32, -7), ("f32", F32, 0.5), ("bool", BOOL, True),
             ("str", STR, "h\u00e9llo"), ("u64", U64, 2**40), ("i64", I64, -2**40), ("f64", F64, 1e300),
             ("f32s", ARR, (F32, [1.0, -2.0])), ("empty", ARR, (U8, []))],
            [("q4k", [256], 12, bytes(range(144))), ("f16", [3, 2], 1, b"\x00\x3c" * 6),
             ("zero", [0, 4], 0, b"")],
            align=64),
        "vocab_like_v2.gguf": gguf(
            [("tokenizer.ggml.model", STR, "llama"),
             ("tokenizer.ggml.tokens", ARR, (STR, ["<unk>", "<s>", "</s>", "\u2581a"])),
             ("tokenizer.ggml.scores", ARR, (F32, [0.0, 0.0, 0.0, -1.5])),
             ("tokenizer.ggml.token_type", ARR, (I32, [2, 3, 3, 1])),
             ("tokenizer.ggml.add_bos_token", BOOL, True)],
            [], version=2),
        "llama_shapes.gguf": gguf(
            [("general.architecture", STR, "llama"), ("llama.block_count", U32, 1),
             ("llama.embedding_length", U32, 32)],
            [("token_embd.weight", [32, 4], 2, b"\x11" * 72),
             ("blk.0.attn_norm.weight", [32], 0, b"\x00\x00\x80\x3f" * 32),
             ("blk.0.ffn_down.weight", [32, 1, 1, 1], 8, b"\x22" * 34)]),
    }
    for name, data in seeds.items():
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(data)
    print(f"wrote {len(seeds)} seeds to {OUT}")


if __name__ == "__main__":
    main()
