"""Process-wide settings for CPU inference speed: huge pages for PyTorch's large CPU tensors.

PyTorch's CPU allocator takes memory from malloc. A SegFace forward pass at 512 px allocates many
16 to 25 MB temporaries; glibc often hands memory of that size back to the kernel when the pass
ends and takes it again in the next, so its pages are faulted in again. How many depends on the
heap's layout: on our 2-core test machine, 14,000 to 39,000 minor page faults (55 to 155 MB) per
pass in six fresh processes, none in a few others; BiSeNet's temporaries happen to stay in the heap.
``THP_MEM_ALLOC_ENABLE=1`` makes PyTorch's allocator (``c10::alloc_cpu``) align allocations of 2 MB
and more to 2 MB and mark them for transparent huge pages, so a fault maps 2 MB instead of 4 kB.
Measured there (six processes per setting, median of six passes each, SegFace-MobileNetV3, 512 px,
batch 1): 2,000 to 5,500 faults per pass instead; median latency 318 -> 306 ms on one thread and
212 -> 182 ms on two, and the slowest process 367 -> 323 ms and 267 -> 218 ms.

PyTorch reads the variable once, at its first CPU allocation, so :func:`prefer_huge_pages` must run
before any tensor is created; the ``lt-faceparse`` command and ``scripts/bench_segface.py`` call it
first thing. It has an effect only where the kernel allows huge pages on request
(``/sys/kernel/mm/transparent_hugepage/enabled`` is ``madvise`` or ``always``). A value the user
set is kept (``THP_MEM_ALLOC_ENABLE=0`` turns it off).
"""

from __future__ import annotations

import ctypes
import os
import sys
from pathlib import Path

from PIL import Image

HUGE_PAGES_ENV = "THP_MEM_ALLOC_ENABLE"
BLAS_THREADS_ENV = "OPENBLAS_NUM_THREADS"
KERNEL_THP_SETTING = Path("/sys/kernel/mm/transparent_hugepage/enabled")


def prefer_huge_pages() -> None:
    """Ask PyTorch to back large CPU tensors with transparent huge pages, unless the user chose."""
    os.environ.setdefault(HUGE_PAGES_ENV, "1")


def one_blas_thread() -> bool:
    """Give numpy's BLAS one thread in a command that works in parallel with processes (``freq``).

    numpy's OpenBLAS starts a thread per core when numpy loads, and after BLAS calls (matplotlib
    makes many, for its transforms) those threads spin a while before they sleep, on the cores the
    worker processes need: a cold ``freq`` on our 2-core machine spent about 0.5 CPU-seconds more
    with them (``scripts/bench_data.py``). OpenBLAS reads the variable when numpy loads, so this
    applies only before that; a value the user set is kept. Returns whether it applied."""
    if "numpy" in sys.modules:
        return False
    os.environ.setdefault(BLAS_THREADS_ENV, "1")
    return True


def huge_pages_setting() -> dict[str, str | None]:
    """``{"thp_mem_alloc_enable": the variable or None, "kernel_thp": the kernel's mode or None}``.

    The kernel's mode is the bracketed word of its setting file (``always``, ``madvise`` or
    ``never``); None where there is no such file (not Linux).
    """
    try:
        words = KERNEL_THP_SETTING.read_text().split()
        kernel = next((w.strip("[]") for w in words if w.startswith("[")), None)
    except OSError:
        kernel = None
    return {"thp_mem_alloc_enable": os.environ.get(HUGE_PAGES_ENV), "kernel_thp": kernel}


# Pillow keeps this many freed image blocks for the next image instead of returning them to malloc.
PIL_BLOCKS_KEPT = 32
# glibc: allocations up to this size come from the heap, which keeps up to TRIM of free memory.
MALLOC_MMAP_THRESHOLD = 64 << 20
MALLOC_TRIM_THRESHOLD = 256 << 20


def reuse_decode_memory() -> bool:
    """Let a process that decodes many images of one size reuse their memory.

    By default each decoded 512 px mask (and each numpy copy of it) gets fresh pages from the kernel
    and returns them when freed: about 90 minor page faults, a third of the cost of reading a
    CelebAMask-HQ mask on our 2-core test machine. Keeping Pillow's freed blocks and keeping freed
    memory in glibc's heap makes that about 6 faults. Returns whether glibc's settings applied
    (False off glibc, where only Pillow's applies)."""
    Image.core.set_blocks_max(PIL_BLOCKS_KEPT)
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3  # <malloc.h>
    return bool(libc.mallopt(m_mmap_threshold, MALLOC_MMAP_THRESHOLD)) and bool(
        libc.mallopt(m_trim_threshold, MALLOC_TRIM_THRESHOLD))
