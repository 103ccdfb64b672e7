"""The catalogue of bad inputs and faults (issue 23): each case, what it does to the library, and the
outcome the contract asks for. The contract (docs/conventions): every error a user can cause is one
line naming the file and the problem, exit code 2; nothing already written is lost or left
inconsistent; a bad item in a batch job is reported and counted.

To add a case: write ``check(tmp_path, capsys, monkeypatch)`` in ``bad_input_cases_data.py`` or
``bad_input_cases_engine.py`` (builders: ``bad_input_data.py``), add one :class:`Case` to
:data:`CASES`, and one row to the table below (a test keeps the two in step). A case already proven
by another test names it in ``covered_by`` instead of repeating it.

| case | fault | expected outcome |
|---|---|---|
| errors_pickle | a project error crosses a process boundary | it unpickles equal (no dead pool thread) |
| freq_workers_bad_label | `freq --workers 2`, a label id beyond the class list | exit 2 within seconds, one line naming the label |
| freq_workers_celeba_mask_size | `freq --workers 2`, a CelebAMask-HQ part mask of the wrong size | exit 2 within seconds, one line naming the mask |
| api_frequencies_workers_bad_label | `compute_class_frequencies(ds, num_workers=1)`, a bad label | DataError naming the label, no hang |
| loader_workers_truncated_image | `eval --num-workers 1`, a truncated image | exit 2, one line naming the image |
| train_workers_bad_label | `train` with `data.num_workers=1`, a bad label | exit 2 within seconds, one line naming the label |
| record_full_disk_injected | ENOSPC between `per_image.npz` and `record.json` | exit 2 "no space left on device"; old record, leaderboard, compare intact |
| full_disk_tmpfs | a real full 2 MB tmpfs (root only) under eval and a checkpoint | exit 2 / OSError ENOSPC; old record and checkpoint readable |
| checkpoint_full_disk_injected | torch's "unexpected pos" on a checkpoint write | OSError ENOSPC naming the checkpoint; the previous one kept |
| freq_full_disk_keeps_the_old_report | ENOSPC while `freq` draws its figures | exit 2; the old report folder byte for byte |
| classes_bom | `classes.txt` with a UTF-8 byte-order mark | class 0 is `background` (kind background); freq draws its PDF |
| classes_latin1 | `classes.txt` in Latin-1 | freq exit 2 / check-dataset exit 1 naming classes.txt, "UTF-8" |
| out_is_a_file | `--out` is a file: freq, eval, parse, synth, train | exit 2, one line naming it |
| out_not_writable | `--out` without write permission (EACCES) | exit 2 "permission denied" naming the folder |
| corrupt_checkpoint_is_skipped | a checkpoint of the right size with a flipped byte | checksum refused; resume takes the previous one |
| nan_weights_warn | a weight file of NaNs scored by eval | a warning naming the file |
| pretrained_garbage | `pretrained:` garbage, wrong shapes, truncated `.pth` | one-line DataError naming the file |
| failed_first_start_resumes | a config error after the run folder exists, then a fixed config | `--resume auto` starts it over and finishes |
| torch_file_as_weights | a `.pt` given to eval / parse | exit 2 "a PyTorch checkpoint, not a weight file" |
| run_folder_as_weights | `eval --checkpoint RUN_DIR` | reads `final.safetensors`; a folder without one says which names it looked for |
| compare_hint_has_no_force | `compare` of records of two protocols | exit 2 naming the difference, no `force=True` hint |
| overrides_around_resume | `train CFG a=1 --resume auto b=2` | both overrides applied; a real unknown option still refused |
| check_dataset_empty_split | a split folder without images | check-dataset exit 1 naming the folder |
| labels_without_image_warn | a label whose image is missing | a warning with the count |
| mapping_cut_short_warns | a CelebAMask-HQ mapping file cut short | a warning: 4 of the 20 images listed |
| parse_goes_on_past_a_bad_image | `parse` of a folder with one unreadable image | the others written, one warning, exit 2 "1 of 4"; `--strict` stops at it |
| code_running_pickles | a checkpoint / weight file whose pickle runs code | refused, nothing executed |
| taxonomy_mismatch | weights of other classes than the dataset's `classes.txt` | exit 2 naming classes.txt |
| bad_safetensors | a corrupt `.safetensors` | exit 2 naming the file |
| unicode_file_names | non-ASCII image, folder and output names | freq, eval and parse succeed |
| sixteen_bit_labels | 16-bit label PNGs (ids in range / beyond 255) | read as ids / exit 2 "do not fit 0..255" |
| sigkill_resume | SIGKILL mid-run, then resume | bit-identical to the uninterrupted run (covered_by) |
| sigterm_resume | SIGTERM mid-run: checkpoint, exit 143, resume | bit-identical to the uninterrupted run (covered_by) |
| truncated_checkpoint | the newest checkpoint truncated | resume falls back to the previous one with a warning (covered_by) |
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import bad_input_cases_data as data_cases
import bad_input_cases_engine as engine_cases
import pytest

TESTS = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Case:
    """``check(tmp_path, capsys, monkeypatch)`` asserts the expected outcome; ``covered_by``: the
    test (``path::name`` under tests/lt_faceparse) that already proves it; ``slow``: seconds of work."""

    name: str
    check: Callable | None = None
    covered_by: str | None = None
    slow: bool = False


CASES = [
    Case("errors_pickle", data_cases.errors_pickle),
    Case("freq_workers_bad_label", data_cases.freq_workers_bad_label),
    Case("freq_workers_celeba_mask_size", data_cases.freq_workers_celeba_mask_size),
    Case("api_frequencies_workers_bad_label", data_cases.api_frequencies_workers_bad_label),
    Case("loader_workers_truncated_image", engine_cases.loader_workers_truncated_image),
    Case("train_workers_bad_label", engine_cases.train_workers_bad_label, slow=True),
    Case("record_full_disk_injected", engine_cases.record_full_disk_injected),
    Case("full_disk_tmpfs", engine_cases.full_disk_tmpfs),
    Case("checkpoint_full_disk_injected", engine_cases.checkpoint_full_disk_injected),
    Case("freq_full_disk_keeps_the_old_report", data_cases.freq_full_disk_keeps_the_old_report),
    Case("classes_bom", data_cases.classes_bom),
    Case("classes_latin1", data_cases.classes_latin1),
    Case("out_is_a_file", data_cases.out_is_a_file),
    Case("out_not_writable", data_cases.out_not_writable),
    Case("corrupt_checkpoint_is_skipped", engine_cases.corrupt_checkpoint_is_skipped),
    Case("nan_weights_warn", engine_cases.nan_weights_warn),
    Case("pretrained_garbage", data_cases.pretrained_garbage),
    Case("failed_first_start_resumes", engine_cases.failed_first_start_resumes),
    Case("torch_file_as_weights", engine_cases.torch_file_as_weights),
    Case("run_folder_as_weights", engine_cases.run_folder_as_weights),
    Case("compare_hint_has_no_force", engine_cases.compare_hint_has_no_force),
    Case("overrides_around_resume", engine_cases.overrides_around_resume),
    Case("check_dataset_empty_split", data_cases.check_dataset_empty_split),
    Case("labels_without_image_warn", data_cases.labels_without_image_warn),
    Case("mapping_cut_short_warns", data_cases.mapping_cut_short_warns),
    Case("parse_goes_on_past_a_bad_image", data_cases.parse_goes_on_past_a_bad_image),
    Case("code_running_pickles", engine_cases.code_running_pickles),
    Case("taxonomy_mismatch", engine_cases.taxonomy_mismatch),
    Case("bad_safetensors", engine_cases.bad_safetensors),
    Case("unicode_file_names", data_cases.unicode_file_names),
    Case("sixteen_bit_labels", data_cases.sixteen_bit_labels),
    Case("sigkill_resume", covered_by="engine/test_engine_ddp.py::"
                                      "test_run_killed_mid_epoch_and_resumed_ends_with_the_uninterrupted_weights"),
    Case("sigterm_resume", covered_by="engine/test_engine_preemption.py::"
                                      "test_a_signal_checkpoints_its_step_and_the_resumed_run_equals_the_uninterrupted_one"),
    Case("truncated_checkpoint", covered_by="engine/test_engine_resume.py::"
                                            "test_a_truncated_newest_checkpoint_falls_back_to_the_previous_one_with_a_warning"),
]


def _params():
    for case in CASES:
        if case.check is not None:
            yield pytest.param(case, id=case.name, marks=[pytest.mark.slow] if case.slow else [])


@pytest.mark.parametrize("case", _params())
def test_bad_input_gives_the_expected_outcome(case: Case, tmp_path, capsys, monkeypatch, one_torch_thread):
    case.check(tmp_path, capsys, monkeypatch)


def test_the_table_lists_every_case_once_in_order():
    rows = [line.split("|")[1].strip() for line in __doc__.splitlines() if line.startswith("| ")][1:]
    assert rows == [case.name for case in CASES]


@pytest.mark.parametrize("case", [c for c in CASES if c.covered_by], ids=lambda c: c.name)
def test_a_case_covered_elsewhere_names_a_test_that_exists(case: Case):
    path, name = case.covered_by.split("::")
    tree = ast.parse((TESTS / path).read_text(encoding="utf-8"))
    assert name in {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}
