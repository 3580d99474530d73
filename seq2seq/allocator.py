"""glibc's malloc, tuned for a training loop: what a step frees, the next step reuses.

By default glibc hands the top of its heap back to the kernel whenever more than 128 KiB to 64 MiB
of it is free (a threshold it raises as it goes), and serves blocks over a similar threshold from
fresh mappings. A training step allocates its activations and frees them in the backward pass, so
a step can ask the kernel again for what the last one freed, and fault it in page by page, zeroed
(README, Performance: 1.03x a step on the Multi30k reference recipe in fp32, 1.02x on DialogSum).

`keep_freed_memory` fixes the mapping threshold at its largest (32 MiB) and keeps up to 1 GiB of
freed heap: the step's memory stays mapped for the next one. Peak memory is what the step uses
either way. It only applies where the C library is glibc, and not when the user tunes malloc
(MALLOC_* variables or GLIBC_TUNABLES). The console commands call it; a Python program that uses
the library decides for itself.
"""

from __future__ import annotations

import ctypes
import os
import platform

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 << 20  # glibc's largest on 64-bit systems
TRIM_THRESHOLD = 1 << 30


def user_tuned(environ=os.environ) -> bool:
    return "GLIBC_TUNABLES" in environ or any(k.startswith("MALLOC_") for k in environ)


def keep_freed_memory() -> bool:
    """Tune glibc's malloc as above; False (and nothing done) where it does not apply."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc" or user_tuned():
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
