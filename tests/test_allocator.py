"""seq2seq.allocator: the commands keep what a step frees mapped for the next step (glibc only)."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

from seq2seq.allocator import user_tuned

GLIBC = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"

# Allocates 24 MiB (under the 32 MiB mapping threshold), touches it, frees it, and prints whether
# the commands' import tuned malloc and how much of the 24 MiB the process still holds.
PROBE = """
import torch, seq2seq.cli.train
from seq2seq.allocator import keep_freed_memory
def rss():
    return int(open("/proc/self/statm").read().split()[1]) * 4096
x = torch.ones(6 << 20)
held = rss()
del x
print(keep_freed_memory(), (rss() - held + (24 << 20)) / (24 << 20))
"""


def probe(**env_changes) -> tuple[str, float]:
    env = {k: v for k, v in os.environ.items() if k != "GLIBC_TUNABLES" and not k.startswith("MALLOC_")}
    env.update(env_changes)
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    tuned, kept = out.stdout.split()
    return tuned, float(kept)


def test_a_user_tuning_of_malloc_is_left_alone():
    assert user_tuned({"GLIBC_TUNABLES": "glibc.malloc.trim_threshold=0"})
    assert user_tuned({"MALLOC_ARENA_MAX": "2"})
    assert not user_tuned({"PATH": "/bin", "ONEDNN_PRIMITIVE_CACHE_CAPACITY": "64"})


@pytest.mark.skipif(not GLIBC, reason="glibc's malloc only")
def test_the_commands_keep_freed_blocks_mapped_unless_the_user_tuned_malloc():
    tuned, kept = probe()
    assert tuned == "True" and kept > 0.9  # freed, yet still mapped: the next step reuses it
    tuned, kept = probe(MALLOC_ARENA_MAX="8")
    assert tuned == "False" and kept < 0.1  # glibc's default: a block this size goes back at once
