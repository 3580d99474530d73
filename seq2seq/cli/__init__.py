"""Console commands: one small file per command."""

import os

# torch's CPU matmuls keep what they build for each shape in two caches: oneDNN's primitives
# (ONEDNN_PRIMITIVE_CACHE_CAPACITY, 1,024 by default) and ideep's, torch's wrapper around oneDNN
# (LRU_CACHE_CAPACITY, 1,024; pytorch/pytorch#27971). Batches of varying lengths make a new shape
# at almost every step, and in bf16 each entry holds buffers of its own, so memory grew for
# hundreds of steps. 16 each: bf16 training 0.88x to 0.93x the step time and 30 % less peak memory
# on the Multi30k reference recipe, 0.91x and 21 % less on DialogSum; fp32 and decoding the same
# speed (README, Performance). They are read when oneDNN first runs, so setting them here, before
# any command computes, is in time; a value the user set is kept. SET_HERE names those set here
# (tools/vs_joeynmt.py gives JoeyNMT torch's defaults).
SET_HERE = tuple(name for name in ("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "LRU_CACHE_CAPACITY")
                 if name not in os.environ)
for _name in SET_HERE:
    os.environ[_name] = "16"

# What a training step frees, the next one reuses, rather than glibc handing it back to the kernel
# and faulting it in again (seq2seq/allocator.py).
from seq2seq.allocator import keep_freed_memory  # noqa: E402

keep_freed_memory()
