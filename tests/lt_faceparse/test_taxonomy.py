import numpy as np
import pytest

from lt_faceparse.taxonomy import (
    ACCESSORY,
    BACKGROUND,
    CELEBAMASK_HQ,
    HELEN,
    LAPA,
    get_taxonomy,
    list_taxonomies,
    taxonomy_from_names,
)

# face-parsing.PyTorch (zll) numbering, from datasets.md
ZLL = ["background", "skin", "l_brow", "r_brow", "l_eye", "r_eye", "eye_g", "l_ear", "r_ear", "ear_r",
       "nose", "mouth", "u_lip", "l_lip", "neck", "neck_l", "cloth", "hair", "hat"]
SEGFACE = ["background", "neck", "skin", "cloth", "l_ear", "r_ear", "l_brow", "r_brow", "l_eye", "r_eye",
           "nose", "mouth", "l_lip", "u_lip", "hair", "eye_g", "hat", "ear_r", "neck_l"]


def test_builtin_taxonomies_have_published_class_counts():
    assert {"celebamask-hq", "helen", "lapa"} <= set(list_taxonomies())
    assert CELEBAMASK_HQ.num_classes == 19
    assert LAPA.num_classes == HELEN.num_classes == 11
    assert CELEBAMASK_HQ.names == SEGFACE
    assert get_taxonomy("CelebAMask") is CELEBAMASK_HQ
    with pytest.raises(KeyError, match="unknown taxonomy"):
        get_taxonomy("ade20k")


def test_paper_column_order_matches_table_1():
    tb = [CELEBAMASK_HQ.display_names[i] for i in CELEBAMASK_HQ.display_order]
    assert tb == ["Face", "Nose", "E-Glasses", "L-Eye", "R-Eye", "L-Brow", "R-Brow", "L-Ear", "R-Ear",
                  "I-Mouth", "U-Lip", "L-Lip", "Hair", "Hat", "Earring", "Necklace", "Neck", "Cloth"]
    ta = [LAPA.display_names[i] for i in LAPA.display_order]
    assert ta == ["Skin", "Hair", "Nose", "L-Eye", "R-Eye", "L-Brow", "R-Brow", "L-Lip", "I-Mouth", "U-Lip"]


def test_kinds_and_groups():
    assert CELEBAMASK_HQ.background_ids == [0]
    assert [CELEBAMASK_HQ.names[i] for i in CELEBAMASK_HQ.accessory_ids] == ["eye_g", "hat", "ear_r", "neck_l"]
    assert CELEBAMASK_HQ[15].kind == ACCESSORY and CELEBAMASK_HQ[0].kind == BACKGROUND
    assert dict(HELEN.groups)["mouth"] == (7, 8, 9)
    assert dict(HELEN.groups)["overall"] == (2, 3, 4, 5, 6, 7, 8, 9)


def test_zll_converter_known_ids_and_round_trip():
    # zll 17 is hair -> our 14; zll 1 skin -> our 2; zll 9 earring -> our 17
    lut = CELEBAMASK_HQ.lut_from("zll")
    assert (lut[17], lut[1], lut[9], lut[15]) == (14, 2, 17, 18)
    for zll_id, name in enumerate(ZLL):
        assert lut[zll_id] == SEGFACE.index(name)
    rng = np.random.default_rng(0)
    ours = rng.integers(0, 19, size=(7, 9)).astype(np.uint8)
    ours[0, 0] = 255
    back = CELEBAMASK_HQ.convert_from(CELEBAMASK_HQ.convert_to(ours, "zll"), "zll")
    np.testing.assert_array_equal(back, ours)
    for numbering in ("official", "ours"):
        np.testing.assert_array_equal(
            CELEBAMASK_HQ.convert_from(CELEBAMASK_HQ.convert_to(ours, numbering), numbering), ours)
    assert lut[200] == 255  # ids unknown to the numbering become ignore
    with pytest.raises(KeyError, match="no numbering"):
        CELEBAMASK_HQ.lut_from("bisenet-v2")


def test_official_numbering_is_the_authors_label_list():
    lut = CELEBAMASK_HQ.lut_to("official")
    assert lut[CELEBAMASK_HQ.id_of("skin")] == 1
    assert lut[CELEBAMASK_HQ.id_of("cloth")] == 18
    assert lut[CELEBAMASK_HQ.id_of("neck_l")] == 16


def test_flip_lut_swaps_pairs_and_is_an_involution():
    lut = CELEBAMASK_HQ.flip_lut()
    assert (lut[4], lut[5], lut[6], lut[7], lut[8], lut[9]) == (5, 4, 7, 6, 9, 8)
    assert lut[14] == 14 and lut[255] == 255
    np.testing.assert_array_equal(lut[lut], np.arange(256))
    assert (LAPA.flip_lut()[2], LAPA.flip_lut()[5]) == (3, 4)


def test_colorize_uses_palette():
    label = np.array([[0, 14], [255, 2]], dtype=np.uint8)
    rgb = CELEBAMASK_HQ.colorize(label)
    assert rgb.shape == (2, 2, 3)
    assert tuple(rgb[0, 1]) == CELEBAMASK_HQ[14].color
    assert tuple(rgb[1, 0]) == (255, 255, 255)


def test_user_taxonomy_infers_flip_pairs_and_kinds():
    tax = taxonomy_from_names("mine", ["background", "skin", "left_eye", "right_eye", "hat", "beard"])
    assert tax.flip_pairs == ((2, 3),)
    assert tax[0].kind == BACKGROUND and tax[4].kind == ACCESSORY and tax[5].kind == "head"
    assert tax[2].display == "Left Eye"
    assert len({c.color for c in tax.classes}) == 6
    with pytest.raises(ValueError, match="duplicate"):
        taxonomy_from_names("bad", ["a", "a"])
