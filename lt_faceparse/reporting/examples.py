"""The example figures of a report: qualitative grid, class legend, SegFace token masks and attention."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from lt_faceparse.data import build_dataset, dataset_class
from lt_faceparse.data.transforms import denormalize
from lt_faceparse.engine.evaluate import load_runner
from lt_faceparse.engine.runner import BatchRunner
from lt_faceparse.errors import DataError
from lt_faceparse.reporting import attention as A, figures as F
from lt_faceparse.records import provenance_of, record_label, taxonomy_of_record
from lt_faceparse.reporting.outputs import ReportOutputs, data_caption, models_caption
from lt_faceparse.reporting.tables import file_slug
from lt_faceparse.taxonomy import Taxonomy


def example_tail(record: Any, taxonomy: Taxonomy) -> list[int]:
    """The classes the examples should show, from common to rare: the accessory (tail) classes, or,
    for a taxonomy without accessories, the rarest third of the foreground classes by presence in
    the record's images."""
    if taxonomy.accessory_ids:
        return list(taxonomy.accessory_ids)
    stats = record.per_image
    fg = taxonomy.foreground_ids
    if stats is None or not fg:
        return []
    presence = (stats.gt[:, fg] > 0).mean(0)
    rarest = sorted(range(len(fg)), key=lambda i: (presence[i], fg[i]))[:max(1, len(fg) // 3)]
    return [fg[i] for i in reversed(rarest)]


def pick_examples(record: Any, taxonomy: Taxonomy, count: int) -> list[int]:
    """Dataset indices of the ``count`` images with the most tail classes (then most tail pixels);
    tail classes as in :func:`example_tail`."""
    stats = record.per_image
    if stats is None:
        return []
    tail = example_tail(record, taxonomy)
    present = (stats.gt[:, tail] > 0).sum(1)
    pixels = stats.gt[:, tail].sum(1)
    order = sorted(range(stats.num_images), key=lambda i: (-present[i], -pixels[i], int(stats.image_ids[i])))
    return [int(stats.image_ids[i]) for i in order[:count]]


def example_indices(record: Any, dataset: Any, taxonomy: Taxonomy, count: int) -> list[int]:
    """Dataset indices of :func:`pick_examples`' images, found by name when the record has image names
    (a :class:`DataError` when the dataset lacks one: not the data the record was scored on)."""
    picked = pick_examples(record, taxonomy, count)
    stats = record.per_image
    if stats is None or stats.names is None:
        return picked
    name_of = dict(zip(stats.image_ids.tolist(), stats.names))
    position = {name: i for i, name in enumerate(dataset.names)}
    missing = [name_of[i] for i in picked if name_of[i] not in position]
    if missing:
        raise DataError(dataset.root, f"the {dataset.split} split here lacks images the record {record.path} was "
                                      f"scored on (e.g. {missing[:3]}); pass --data-root with the right dataset")
    return [position[name_of[i]] for i in picked]


def _load_models(records: Sequence[Any], device: str) -> list[tuple[Any, BatchRunner]]:
    """(record, its weight file's model as evaluation runs it) of every record whose weights exist."""
    loaded = []
    for r in records:
        weights = provenance_of(r).weights
        if weights and Path(weights).is_file():
            loaded.append((r, load_runner(weights, map_location=device)[0]))
    return loaded


def _predict(runner: BatchRunner, sample: Any, device: str) -> np.ndarray:
    """The label map of one dataset sample, predicted inside the weights' RoI warp when they have one."""
    landmarks = None if sample.landmarks is None else sample.landmarks.unsqueeze(0).to(device)
    with torch.inference_mode():
        logits = runner(sample.image.unsqueeze(0).to(device), landmarks)
    return logits[0].argmax(0).cpu().numpy().astype(np.uint8)


def example_dataset_root(record: Any, data_root: str | Path | None) -> tuple[Path | None, str | None]:
    """(root, None) of the images a record was scored on: ``data_root`` (the ``--data-root`` flag)
    when given, else the root stored in the record's provenance; or (None, why not) when there is
    none or it does not exist (moved, or the record was made on another machine)."""
    prov = provenance_of(record)
    where = f" (record {record.path})" if getattr(record, "path", None) else ""
    if data_root is not None:
        if not Path(data_root).is_dir():
            raise DataError(data_root, "--data-root: no such dataset folder")
        return Path(data_root), None
    root = prov.data_root
    if not root:
        return None, (f"the record{where} does not say where its images are (written before records kept "
                      "their dataset root); pass --data-root DIR")
    if not Path(root).is_dir():
        return None, (f"the dataset root {root} stored in the record{where} does not exist (moved, or made on "
                      "another machine); pass --data-root DIR with the dataset's new location")
    return Path(root), None


def example_figures(records: Sequence[Any], out_dir: Path, outputs: ReportOutputs, *, data_root: str | None,
                    count: int, device: str, suffix: str = "") -> None:
    """Qualitative grid (Figure 3 style) and token figures (Figure 4a + attention per layer); the
    images come from the dataset root stored in the records (or ``data_root``). ``suffix`` ends every
    file stem (one per protocol group when a report has several)."""
    if not records:
        return
    first = records[0]
    prov = provenance_of(first)
    root, why_not = example_dataset_root(first, data_root)
    if root is None:
        outputs.skipped.append(f"qualitative and token figures: {why_not}")
        return
    fmt = prov.data_format or prov.dataset
    resolution = prov.resolution
    same_res = [r for r in records if provenance_of(r).resolution == resolution]
    loaded = _load_models(same_res, device)
    if not loaded:
        outputs.skipped.append("qualitative and token figures: no weight file named in the records exists ("
                               + ", ".join(str(provenance_of(r).weights) for r in same_res) + ")")
        return
    taxonomy = taxonomy_of_record(first)
    folder = dataset_class(fmt).dataset_name == "folder"
    dataset = build_dataset(fmt, root, prov.split, resolution=resolution, merge=prov.merge or "segface",
                            taxonomy=taxonomy if folder else None)
    indices = example_indices(first, dataset, taxonomy, count)
    samples = [dataset[i] for i in indices]
    images = [denormalize(s.image) for s in samples]
    labels = [s.label.numpy().astype(np.uint8) for s in samples]
    short = short_labels([r for r, _ in loaded])
    predictions = {name: [_predict(m, s, device) for s in samples] for name, (r, m) in zip(short, loaded)}
    caption_base = data_caption(same_res) + " " + models_caption([r for r, _ in loaded])
    tail = example_tail(first, taxonomy)
    tail_text = ("tail (accessory) classes" if taxonomy.accessory_ids else
                 "rarest classes (" + ", ".join(taxonomy[i].display for i in tail) + "; the taxonomy has no "
                 "accessory classes)")
    fig = F.qualitative_figure(images, labels, predictions, taxonomy, names=[s.name for s in samples],
                               crop_classes=tail)
    outputs.add("qualitative", F.save_figure(fig, out_dir, f"qualitative{suffix}", (
        f"Qualitative comparison (SegFace Figure 3 style): input, ground truth, each model's prediction, and a "
        f"zoomed crop around the rarest of the {tail_text} present (ground truth, then each model). Images "
        f"chosen as the test images with the most of these classes. Colours: class palette (class_legend). "
        "Columns: "
        + ", ".join(f"{name} = {record_label(r)}" for name, (r, _) in zip(short, loaded)) + ". " + caption_base)))
    outputs.add("class_legend", F.save_figure(F.legend_figure(taxonomy), out_dir, "class_legend",
                                              f"Class colours of taxonomy {taxonomy.name}."))

    for r, runner in loaded:
        model = runner.model
        if not A.supports_token_maps(model) or provenance_of(r).model != "segface":
            continue
        for n, (sample, image, label) in enumerate(zip(samples[:2], images[:2], labels[:2])):
            maps = A.token_maps(model, sample.image.to(device))
            classes = A.default_classes(label, taxonomy)
            stem = f"token_masks_{file_slug(record_label(r))}{suffix}_{n}"
            share = {taxonomy[c].display: A.attention_peak_in_class(maps, label, c) for c in classes}
            share_text = ", ".join(f"{k} {100 * v:.0f}%" for k, v in share.items() if v == v)
            outputs.add("token_masks", F.save_figure(
                A.token_mask_figure(image, maps, taxonomy, classes), out_dir, stem,
                f"Class-token masks sigmoid(S_i) of {record_label(r)} on test image {sample.name} (SegFace Figure 4a "
                f"style; white = 1). Classes: tail classes present first, then head classes. " + caption_base))
            stem = f"token_attention_{file_slug(record_label(r))}{suffix}_{n}"
            outputs.add("token_attention", F.save_figure(
                A.token_attention_figure(image, maps, taxonomy, classes), out_dir, stem,
                f"Token-to-face cross-attention of each class token of {record_label(r)} per decoder layer (last "
                f"column: the final token-to-face attention), averaged over heads, upsampled from the stride-4 face "
                f"tokens and scaled to each map's maximum, on test image {sample.name}. Share of the final-layer "
                f"attention mass on the token's own ground-truth class: {share_text}. " + caption_base))
        break  # one SegFace model is enough for the token figures


def short_labels(records: Sequence[Any]) -> list[str]:
    """Panel titles: the model name, plus the backbone's last name part and the resolution only
    where needed to tell records apart."""
    def parts(r: Any, level: int) -> str:
        prov = provenance_of(r)
        name = str(prov.model or record_label(r))
        if level >= 1 and prov.backbone:
            name += f" ({str(prov.backbone).split('/')[-1]})"
        if level >= 2 and prov.resolution:
            name += f" @{prov.resolution}"
        return name

    for level in range(3):
        labels = [parts(r, level) for r in records]
        if len(set(labels)) == len(labels):
            return labels
    return [record_label(r) for r in records]


