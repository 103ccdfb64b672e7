"""Copy-paste: occlusion order of the merge presets, labels after a paste on a small pair (ignore
pixels, the necklace/chin exception), jitter bounds, determinism per (seed, epoch, index)."""

from __future__ import annotations

import numpy as np
import torch

from lt_faceparse.data.celebamask_layout import MERGE_PRESETS
from lt_faceparse.data.sample import Sample
from lt_faceparse.engine.sampling import EpochSeededDataset
from lt_faceparse.longtail.copy_paste import CopyPasteDataset, occlusion_table, paste_class, shift_2d
from lt_faceparse.taxonomy import get_taxonomy

TAX = get_taxonomy("celebamask-hq")
ID = {name: TAX.id_of(name) for name in TAX.names}
BG, HAIR, SKIN, NECK, CLOTH, HAT, NECKL, EYEG, LEYE = (ID[n] for n in ("background", "hair", "skin", "neck", "cloth",
                                                                       "hat", "neck_l", "eye_g", "l_eye"))
I = 255


def test_occlusion_table_follows_the_preset_with_the_necklace_exception():
    covers = occlusion_table(TAX, MERGE_PRESETS["segface"])
    assert covers[HAT, HAIR] and covers[HAT, SKIN] and covers[HAT, BG]  # a pasted hat covers hair
    assert not covers[HAIR, HAT]  # ... and hair never covers a hat
    assert covers[EYEG, LEYE] and covers[EYEG, HAIR] and not covers[EYEG, HAT]
    assert covers[NECKL, NECK] and covers[NECKL, CLOTH] and covers[NECKL, HAIR]
    assert not covers[NECKL, SKIN]  # the chin stays in front of a necklace, whatever the preset
    assert all(covers[c, c] for c in range(TAX.num_classes)) and covers[:, BG].all()
    official = occlusion_table(TAX, MERGE_PRESETS["official"])  # neck and cloth paint over the necklace
    assert not official[NECKL, NECK] and not official[NECKL, CLOTH] and official[NECK, NECKL]
    anything = occlusion_table(get_taxonomy("lapa"))  # no paint order: paste over everything
    assert anything.all()


def _pair():
    # target (4 x 6): hair on top, skin (face), an ignored pixel, neck and cloth below
    label = torch.tensor([
        [HAIR, HAIR, HAIR, HAIR, BG, BG],
        [HAIR, SKIN, SKIN, HAIR, BG, BG],
        [SKIN, SKIN, SKIN, SKIN, I, BG],
        [NECK, NECK, NECK, NECK, CLOTH, CLOTH],
    ])
    # donor: a hat over the top two rows (cols 0..4), a necklace on row 3 (cols 1..4)
    donor = torch.tensor([
        [HAT, HAT, HAT, HAT, HAT, BG],
        [HAT, HAT, HAT, HAT, HAT, BG],
        [SKIN, SKIN, SKIN, SKIN, NECK, BG],
        [NECK, NECKL, NECKL, NECKL, NECKL, BG],
    ])
    image = torch.zeros(3, 4, 6)
    donor_image = torch.ones(3, 4, 6)
    return image, label, donor_image, donor


def test_labels_after_pasting_a_hat_and_a_necklace():
    covers = torch.as_tensor(occlusion_table(TAX, MERGE_PRESETS["segface"]))
    image, label, donor_image, donor = _pair()
    img, lab = paste_class(image, label, donor_image, donor, HAT, (0, 0), covers)
    assert lab.tolist() == [
        [HAT, HAT, HAT, HAT, HAT, BG],
        [HAT, HAT, HAT, HAT, HAT, BG],
        [SKIN, SKIN, SKIN, SKIN, I, BG],
        [NECK, NECK, NECK, NECK, CLOTH, CLOTH],
    ]
    assert torch.equal(img[0] == 1, lab == HAT)  # pasted pixels carry the donor's image, the others keep theirs
    # the necklace moved up one row: over neck and cloth it is pasted, over skin (the chin) and the ignored
    # pixel it is not
    img, lab = paste_class(image, label, donor_image, donor, NECKL, (-1, 0), covers)
    assert lab.tolist() == [
        [HAIR, HAIR, HAIR, HAIR, BG, BG],
        [HAIR, SKIN, SKIN, HAIR, BG, BG],
        [SKIN, SKIN, SKIN, SKIN, I, BG],
        [NECK, NECK, NECK, NECK, CLOTH, CLOTH],
    ]
    img, lab = paste_class(image, label, donor_image, donor, NECKL, (0, 1), covers)  # moved right by one
    assert lab[3].tolist() == [NECK, NECK, NECKL, NECKL, NECKL, NECKL]
    assert torch.equal(img[0] == 1, lab != label)
    valid = set(range(TAX.num_classes)) | {I}
    assert set(lab.unique().tolist()) <= valid
    # under the official preset neck and cloth paint over a necklace: nothing is pasted
    official = torch.as_tensor(occlusion_table(TAX, MERGE_PRESETS["official"]))
    assert torch.equal(paste_class(image, label, donor_image, donor, NECKL, (0, 1), official)[1], label)


def test_shift_moves_and_fills():
    t = torch.arange(6).view(2, 3)
    assert shift_2d(t, 0, 1, -1).tolist() == [[-1, 0, 1], [-1, 3, 4]]
    assert shift_2d(t, -1, 0, -1).tolist() == [[3, 4, 5], [-1, -1, -1]]
    assert shift_2d(t, 5, 0, 0).tolist() == [[0, 0, 0], [0, 0, 0]]


class _Faces(torch.utils.data.Dataset):
    """Samples on a 20 x 20 grid: image i has a one-pixel hat at (10, 10) when ``i`` is odd."""

    taxonomy = TAX

    def __init__(self, n: int = 6):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, index):
        label = torch.full((20, 20), BG)
        label[15:, :] = CLOTH
        label[0, 0] = I
        if index % 2:
            label[10, 10] = HAT
        image = torch.full((3, 20, 20), float(index))
        return Sample(image=image, label=label, name=str(index), orig_size=(20, 20), index=index, taxonomy=TAX.name)


def _presence(ds):
    return np.stack([np.bincount(ds[i].label[ds[i].label != I].flatten().numpy(), minlength=TAX.num_classes) > 0
                     for i in range(len(ds))])


def test_jitter_stays_within_its_bounds_and_labels_stay_valid():
    base = _Faces()
    wrapped = CopyPasteDataset(base, _presence(base), [HAT, NECKL], prob=1.0, jitter=0.1,
                               covers=occlusion_table(TAX, MERGE_PRESETS["segface"]))
    assert wrapped.classes == [HAT]  # no image holds a necklace: never chosen
    seeded = EpochSeededDataset(wrapped, seed=0)
    offsets = set()
    for epoch in range(60):
        seeded.set_epoch(epoch)
        sample = seeded[0]  # image 0 has no hat of its own
        where = (sample.label == HAT).nonzero().tolist()
        assert len(where) == 1
        (y, x), = where
        offsets.add((y - 10, x - 10))
        assert sample.image[0, y, x].item() % 2 == 1  # the donor's pixel (an odd image)
        assert sample.label[0, 0].item() == I
        assert set(sample.label.unique().tolist()) <= {BG, CLOTH, HAT, I}
    assert {dy for dy, _ in offsets} == {dx for _, dx in offsets} == {-2, -1, 0, 1, 2}  # 0.1 x 20 px


def test_pastes_are_deterministic_per_seed_epoch_and_index():
    base = _Faces()
    wrapped = CopyPasteDataset(base, _presence(base), [HAT], prob=0.5, jitter=0.1,
                               covers=occlusion_table(TAX, MERGE_PRESETS["segface"]))
    a, b = EpochSeededDataset(wrapped, seed=1), EpochSeededDataset(wrapped, seed=1)
    a.set_epoch(3)
    b.set_epoch(3)
    for index in (0, 2, 4, 2):
        assert torch.equal(a[index].label, b[index].label) and torch.equal(a[index].image, b[index].image)
    pasted = []
    for epoch in range(40):
        a.set_epoch(epoch)
        pasted.append(bool((a[0].label == HAT).any()))
    assert 8 < sum(pasted) < 32  # prob 0.5
    none = CopyPasteDataset(base, _presence(base), [HAT], prob=0.0, covers=occlusion_table(TAX))
    assert torch.equal(none[0].label, base[0].label)
