"""Console commands: one small file per command."""

import os

# oneDNN (torch's CPU matmuls) keeps up to 1,024 compiled primitives, one per shape; batches of
# varying lengths make many shapes, and in bf16 each holds buffers of its own. 64 keeps peak memory
# about 15 % lower at the same speed (the README's performance section). It is read
# when oneDNN first runs, so setting it here, before any command computes, is in time; a value the
# user set is kept.
os.environ.setdefault("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "64")
