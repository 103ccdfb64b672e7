import os
import subprocess
import sys
import textwrap

import pytest

from lt_faceparse import runtime
from lt_faceparse.runtime import HUGE_PAGES_ENV, huge_pages_setting, prefer_huge_pages


def test_prefer_huge_pages_sets_the_variable(monkeypatch):
    monkeypatch.delenv(HUGE_PAGES_ENV, raising=False)
    prefer_huge_pages()
    assert huge_pages_setting()["thp_mem_alloc_enable"] == "1"


def test_prefer_huge_pages_keeps_the_users_choice(monkeypatch):
    monkeypatch.setenv(HUGE_PAGES_ENV, "0")
    prefer_huge_pages()
    assert huge_pages_setting()["thp_mem_alloc_enable"] == "0"


@pytest.mark.parametrize("text, mode", [
    ("always [madvise] never\n", "madvise"),
    ("[always] madvise never\n", "always"),
    ("always madvise [never]\n", "never"),
])
def test_kernel_mode_is_the_bracketed_word(tmp_path, monkeypatch, text, mode):
    setting = tmp_path / "enabled"
    setting.write_text(text)
    monkeypatch.setattr(runtime, "KERNEL_THP_SETTING", setting)
    assert huge_pages_setting()["kernel_thp"] == mode


def test_kernel_mode_is_none_without_the_file(tmp_path, monkeypatch):
    monkeypatch.setattr(runtime, "KERNEL_THP_SETTING", tmp_path / "missing")
    assert huge_pages_setting()["kernel_thp"] is None


FAULTS_SCRIPT = textwrap.dedent("""
    import resource, sys
    from lt_faceparse.runtime import prefer_huge_pages
    if sys.argv[1] == "on":
        prefer_huge_pages()
    import torch
    faults = []
    for _ in range(4):  # 64 MB: above glibc's largest mmap threshold, so mapped afresh every time
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        torch.empty(16 * 2**20).fill_(1.0)
        faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    print(min(faults[1:]))
""")


def _faults(mode: str) -> int:
    out = subprocess.run([sys.executable, "-c", FAULTS_SCRIPT, mode], capture_output=True, text=True, check=True,
                         env={k: v for k, v in os.environ.items() if k != HUGE_PAGES_ENV})
    return int(out.stdout.split()[-1])


@pytest.mark.skipif(huge_pages_setting()["kernel_thp"] != "madvise",
                    reason="huge pages are given on request only in the kernel's madvise mode")
def test_huge_pages_cut_page_faults_of_large_tensors():
    """A 64 MB tensor takes 16,384 faults of 4 kB pages; with huge pages a few dozen 2 MB ones."""
    off, on = _faults("off"), _faults("on")
    assert off >= 16_000
    assert on <= off / 20


@pytest.mark.parametrize("user_value, before_numpy, expected", [
    (None, True, ("True", "1")),  # set before numpy loads
    ("3", True, ("True", "3")),  # the user's choice is kept
    (None, False, ("False", None)),  # numpy already loaded: too late, nothing set
])
def test_one_blas_thread_applies_only_before_numpy_loads(user_value, before_numpy, expected):
    env = {k: v for k, v in os.environ.items() if k != runtime.BLAS_THREADS_ENV}
    if user_value is not None:
        env[runtime.BLAS_THREADS_ENV] = user_value
    probe = textwrap.dedent(f"""
        import os, sys
        {'' if before_numpy else 'import numpy'}
        from lt_faceparse.runtime import one_blas_thread, BLAS_THREADS_ENV
        print(one_blas_thread(), os.environ.get(BLAS_THREADS_ENV))
    """)
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, check=True)
    applied, value = out.stdout.split()
    assert (applied, None if value == "None" else value) == expected
