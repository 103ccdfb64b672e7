import numpy as np
import pytest

from lt_faceparse.custom_taxonomy import taxonomy_differences, taxonomy_from_names
from lt_faceparse.taxonomy import (ACCESSORY, BACKGROUND, CELEBAMASK_HQ, HELEN, LAPA, Taxonomy, get_taxonomy,
                                   list_taxonomies, register_taxonomy)

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
    tax = taxonomy_from_names("mine", ["background", "skin", "left_eye", "right_eye", "hat", "beard", "mouth"])
    assert tax.flip_pairs == ((2, 3),)
    assert tax[0].kind == BACKGROUND and tax[4].kind == ACCESSORY and tax[5].kind == "head"
    # display names are the names themselves: never borrowed by similar name (CelebAMask-HQ's
    # "mouth" is the inner mouth, printed "I-Mouth"; a user's "mouth" may be the whole mouth)
    assert tax.display_names == tax.names
    assert len({c.color for c in tax.classes}) == 7 and tax[0].color == (0, 0, 0)  # distinct generated colours
    given = taxonomy_from_names("mine2", ["background", "mouth", "glasses"], display_names=[None, "Mouth", ""],
                                kinds=[None, None, ACCESSORY])
    assert given.display_names == ["background", "Mouth", "glasses"] and given.accessory_ids == [2]
    with pytest.raises(ValueError, match="2 display_names for 3 classes"):
        taxonomy_from_names("bad", ["a", "b", "c"], display_names=["A", "B"])
    with pytest.raises(ValueError, match="kind 'tail'"):
        taxonomy_from_names("bad", ["a", "b"], kinds=[None, "tail"])
    with pytest.raises(ValueError, match="duplicate"):
        taxonomy_from_names("bad", ["a", "a"])


@pytest.mark.parametrize("taxonomy", [CELEBAMASK_HQ, LAPA, HELEN,
                                      taxonomy_from_names("rt", ["background", "skin", "l_eye", "r_eye", "hat"],
                                                          display_names=[None, "Skin", "L eye", "R eye", None])])
def test_to_dict_from_dict_round_trip(taxonomy):
    import json

    data = json.loads(json.dumps(taxonomy.to_dict()))  # through JSON, as weight files and records store it
    back = Taxonomy.from_dict(data)
    assert back == taxonomy and taxonomy_differences(back, taxonomy) == {}
    assert back.display_names == taxonomy.display_names and back.flip_pairs == taxonomy.flip_pairs
    assert back.palette.tolist() == taxonomy.palette.tolist() and back.groups == taxonomy.groups
    assert [c.kind for c in back.classes] == [c.kind for c in taxonomy.classes]
    assert back.display_order == taxonomy.display_order and back.numberings == taxonomy.numberings
    if taxonomy.numberings:
        assert np.array_equal(back.lut_from("zll" if "zll" in taxonomy.numberings else "authors"),
                              taxonomy.lut_from("zll" if "zll" in taxonomy.numberings else "authors"))


def test_from_dict_names_what_is_wrong():
    good = LAPA.to_dict()
    for mutate, message in [
        (lambda d: d.pop("classes"), r"lacks \['classes'\]"),
        (lambda d: d["classes"][1].pop("display"), r"classes\[1\] must hold id, name, display"),
        (lambda d: d["classes"][1].update(color=[0, 0, 300]), r"classes\[1\] colour \[0, 0, 300\]"),
        (lambda d: d["classes"][1].update(kind="tail"), r"classes\[1\] kind 'tail'"),
        (lambda d: d["classes"][1].update(id=5), "class ids must be 0..K-1"),
        (lambda d: d.update(flip_pairs=[[2, 99]]), "bad flip pair"),
        (lambda d: d.update(format=2), "this library reads format 1"),
    ]:
        import copy

        data = copy.deepcopy(good)
        mutate(data)
        with pytest.raises(ValueError, match=message):
            Taxonomy.from_dict(data)


def test_builtin_taxonomies_cannot_be_redefined():
    with pytest.raises(ValueError, match="built-in"):
        register_taxonomy(taxonomy_from_names("lapa", LAPA.names), overwrite=True)
    assert get_taxonomy("lapa") is LAPA
