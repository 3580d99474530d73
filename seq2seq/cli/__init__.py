"""Console commands: one small file per command."""

import os

# oneDNN (torch's CPU matmuls) keeps up to 1,024 compiled primitives, one per shape; batches of
# varying lengths make many shapes, and in bf16 each holds buffers of its own. 64 keeps peak memory
# about 15 % lower at the same speed (the README's performance section). It is read
# when oneDNN first runs, so setting it here, before any command computes, is in time; a value the
# user set is kept.
os.environ.setdefault("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "64")

# What a training step frees, the next one reuses, rather than glibc handing it back to the kernel
# and faulting it in again (seq2seq/allocator.py).
from seq2seq.allocator import keep_freed_memory  # noqa: E402

keep_freed_memory()
