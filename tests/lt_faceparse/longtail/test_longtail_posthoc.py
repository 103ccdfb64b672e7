"""Post-hoc logit adjustment on known priors, the flip swap, and both through eval, FaceParser and parse."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image

from lt_faceparse.cli import main as cli_main
from lt_faceparse.engine.config import load_config
from lt_faceparse.engine.evaluate import evaluate_checkpoint
from lt_faceparse.engine.train import train
from lt_faceparse.longtail.posthoc import PosthocModel, apply_posthoc, flip_logits_back, flip_permutation
from lt_faceparse.longtail.priors import ClassPriors
from lt_faceparse.records import load_record
from lt_faceparse.taxonomy import get_taxonomy

TAX = get_taxonomy("celebamask-hq")
L_EYE, R_EYE, SKIN = TAX.id_of("l_eye"), TAX.id_of("r_eye"), TAX.id_of("skin")


class _Fixed(torch.nn.Module):
    """Returns the same logits (K x H x W) for every image, whatever its content."""

    def __init__(self, logits: torch.Tensor):
        super().__init__()
        self.register_buffer("logits", logits)

    def forward(self, images):
        return self.logits.expand(images.shape[0], *self.logits.shape).clone()

    def loss(self, logits, target):
        return logits.sum() * 0


def test_logit_adjustment_subtracts_tau_log_prior():
    lapa = get_taxonomy("lapa")  # 11 classes
    z = torch.zeros(11, 1, 2)
    z[0, 0, :] = 3.0  # background leads on both pixels
    z[1, 0, 1] = 1.0  # skin is second on pixel 1
    prior = np.full(11, 0.05)
    prior[0] = 0.5  # π = (0.5, 0.05, ..., 0.05), Σ = 1
    x = torch.zeros(1, 3, 1, 2)
    plain = _Fixed(z)(x)
    for tau in (1.0, 0.5):
        adjusted = PosthocModel(_Fixed(z), lapa, logit_adjust=tau, log_prior=np.log(prior))(x)
        log_prior = torch.log(torch.tensor(prior, dtype=torch.float32)).view(1, -1, 1, 1)
        assert torch.allclose(adjusted, plain - tau * log_prior)
    # by hand, pixel 1: τ = 1: background 3 - ln .5 = 3.693 < skin 1 - ln .05 = 3.996;
    #                   τ = .5: background 3 - .5 ln .5 = 3.347 > skin 1 - .5 ln .05 = 2.498
    # pixel 0: background 3.693 > any other class 0 - ln .05 = 2.996
    assert 3 - math.log(0.5) < 1 - math.log(0.05) and 3 - 0.5 * math.log(0.5) > 1 - 0.5 * math.log(0.05)
    assert plain.argmax(1).tolist() == [[[0, 0]]]
    assert PosthocModel(_Fixed(z), lapa, logit_adjust=1.0, log_prior=np.log(prior))(x).argmax(1).tolist() == [[[0, 1]]]
    assert PosthocModel(_Fixed(z), lapa, logit_adjust=0.5, log_prior=np.log(prior))(x).argmax(1).tolist() == [[[0, 0]]]
    with pytest.raises(ValueError, match="log priors"):
        PosthocModel(_Fixed(z), lapa, logit_adjust=1.0, log_prior=np.zeros(3))


def _priors(pixels, source):
    lapa = get_taxonomy("lapa")
    counts = np.asarray(pixels, dtype=np.int64)
    return ClassPriors(tuple(lapa.names), counts, np.ones(len(counts), dtype=np.int64), 1, source)


def test_logit_adjustment_towards_target_priors_corrects_a_label_shift():
    lapa = get_taxonomy("lapa")
    z = torch.randn(11, 3, 4, generator=torch.Generator().manual_seed(0))
    x = torch.zeros(2, 3, 3, 4)
    source = _priors([500, 100, 50, 50, 50, 50, 50, 50, 50, 50, 0], "control")  # last class never seen: count 1
    target = _priors([700, 100, 50, 40, 40, 30, 10, 10, 10, 5, 5], "long-tail")
    for tau in (1.0, 0.5):
        model, info = apply_posthoc(_Fixed(z), lapa, logit_adjust=tau, priors_file=source, target_priors=target)
        shift = torch.tensor(source.log_pixel_prior() - target.log_pixel_prior(), dtype=torch.float32)
        assert torch.allclose(model(x), _Fixed(z)(x) - tau * shift.view(1, -1, 1, 1))
        assert info["priors"] == "control" and info["target_priors"] == "long-tail"
    # by hand, class 1 against class 10 at τ = 1: log(100/1000) - log(1/1000) vs log(100/1000) - log(5/1000)
    assert math.isclose(float(shift[1] - shift[10]), math.log(100 / 1) - math.log(100 / 5), rel_tol=1e-6)
    # no shift (target = source): the logits are unchanged; a uniform target: Menon et al.'s balanced form
    same, _ = apply_posthoc(_Fixed(z), lapa, logit_adjust=1.0, priors_file=source, target_priors=source)
    assert torch.equal(same(x), _Fixed(z)(x))
    uniform, _ = apply_posthoc(_Fixed(z), lapa, logit_adjust=1.0, priors_file=source,
                               target_priors=_priors([7] * 11, "uniform"))
    balanced, info = apply_posthoc(_Fixed(z), lapa, logit_adjust=1.0, priors_file=source)
    assert torch.equal(uniform(x).argmax(1), balanced(x).argmax(1)) and "target_priors" not in info
    with pytest.raises(ValueError, match="--logit-adjust"):
        apply_posthoc(_Fixed(z), lapa, target_priors=target)


def test_flip_swaps_left_and_right_channels_and_mirrors_columns():
    perm = flip_permutation(TAX)
    assert perm[L_EYE].item() == R_EYE and perm[R_EYE].item() == L_EYE and perm[SKIN].item() == SKIN
    a = torch.zeros(TAX.num_classes, 1, 2)
    a[L_EYE, 0] = torch.tensor([1.0, 0.0])  # "left eye on the image's left column"
    a[R_EYE, 0] = torch.tensor([0.0, 3.0])
    a[SKIN, 0] = torch.tensor([5.0, 7.0])
    back = flip_logits_back(a[None], perm)[0]
    assert back[L_EYE, 0].tolist() == [3.0, 0.0] and back[R_EYE, 0].tolist() == [0.0, 1.0]
    assert back[SKIN, 0].tolist() == [7.0, 5.0]
    tta = PosthocModel(_Fixed(a), TAX, tta="flip")(torch.zeros(1, 3, 1, 2))[0]
    assert tta[L_EYE, 0].tolist() == [2.0, 0.0] and tta[R_EYE, 0].tolist() == [0.0, 2.0]  # (A + P(flip A)) / 2
    assert tta[SKIN, 0].tolist() == [6.0, 6.0]


def test_flip_tta_leaves_a_mirror_equivariant_model_unchanged():
    class Mirror(torch.nn.Module):
        """logits(x) = conv with a left/right symmetric kernel, channels mapped so that mirroring the input
        mirrors the output with l/r swapped."""

        def __init__(self):
            super().__init__()
            g = torch.Generator().manual_seed(0)
            w = torch.randn(TAX.num_classes, 3, 3, 3, generator=g)
            w = w + w.flip(-1)  # symmetric kernels
            perm = flip_permutation(TAX)
            w = (w + w[perm]) / 2  # mirror classes share their kernels
            self.register_buffer("w", w)

        def forward(self, images):
            return torch.nn.functional.conv2d(images, self.w, padding=1)

        def loss(self, logits, target):
            return logits.sum() * 0

    x = torch.randn(2, 3, 8, 8)
    model = Mirror()
    assert torch.allclose(PosthocModel(model, TAX, tta="flip")(x), model(x), atol=1e-5)


@pytest.fixture(scope="module")
def runs(synth_root, tmp_path_factory):
    """A plain tiny run and one trained with logit adjustment (its priors go into the weight file)."""
    base = tmp_path_factory.mktemp("posthoc_runs")
    out = {}
    for name, longtail in (("plain", {}), ("la", {"loss": {"name": "logit_adjusted", "tau": 1.0}})):
        config = load_config("synth_tiny", [f"out={base / name}", f"data.root={synth_root}", "data.synthetic=null",
                                            "data.resolution=32", "optim.epochs=2", "data.val_split=null"])
        config["longtail"].update(longtail)
        torch.manual_seed(0)
        out[name] = train(config) / "final.safetensors"
    return out


def test_eval_records_post_hoc_options_and_where_priors_came_from(runs, synth_root, tmp_path):
    plain = evaluate_checkpoint(runs["plain"], "celebamask-hq", synth_root, "val", device="cpu")
    assert plain.provenance.posthoc == {"tau_norm": None, "logit_adjust": None, "tta": None, "priors": None, "prior_unit": None}
    assert plain.provenance.longtail["label"] == "plain" and "+" not in plain.label
    adjusted = evaluate_checkpoint(runs["plain"], "celebamask-hq", synth_root, "val", device="cpu", logit_adjust=1.0,
                                   tta="flip", out_dir=tmp_path / "adj")
    post = adjusted.provenance.posthoc
    assert post["logit_adjust"] == 1.0 and post["tta"] == "flip" and post["priors"].startswith("train split of")
    assert adjusted.label.endswith("+post-hoc LA(τ=1) +flip TTA")
    assert load_record(tmp_path / "adj").provenance.posthoc == post
    assert adjusted.confusion != plain.confusion
    # a run trained with priors carries them: eval uses the weight file's
    trained = evaluate_checkpoint(runs["la"], "celebamask-hq", synth_root, "val", device="cpu", logit_adjust=0.5)
    assert trained.provenance.posthoc["priors"].startswith("weight-file metadata")
    assert trained.label.endswith("+LA(τ=1) +post-hoc LA(τ=0.5)")
    # an explicit class_frequencies.csv wins
    cli = cli_main(["freq", "--dataset", "celebamask-hq", "--root", str(synth_root), "--split", "train",
                    "--out", str(tmp_path / "freq")])
    assert cli == 0
    from_csv = evaluate_checkpoint(runs["la"], "celebamask-hq", synth_root, "val", device="cpu", logit_adjust=0.5,
                                   priors=tmp_path / "freq" / "class_frequencies.csv")
    assert from_csv.provenance.posthoc["priors"] == f"file {tmp_path / 'freq' / 'class_frequencies.csv'}"
    assert from_csv.confusion == trained.confusion  # the same counts, read from two places


def test_post_hoc_options_through_the_eval_and_parse_commands(runs, synth_root, tmp_path, capsys):
    assert cli_main(["eval", "--checkpoint", str(runs["plain"]), "--dataset", "celebamask-hq", "--root",
                     str(synth_root), "--split", "val", "--device", "cpu", "--out", str(tmp_path / "rec"),
                     "--logit-adjust", "1", "--tta", "flip"]) == 0
    printed = capsys.readouterr().out
    assert "protocol input, post-hoc LA(τ=1) + flip TTA (priors: train split of" in printed
    assert load_record(tmp_path / "rec").provenance.posthoc["tta"] == "flip"
    image = np.asarray(Image.open(next((synth_root / "CelebA-HQ-img").glob("*.jpg"))).convert("RGB"))
    Image.fromarray(image).save(tmp_path / "face.png")
    assert cli_main(["parse", "--checkpoint", str(runs["la"]), str(tmp_path / "face.png"), "--out",
                     str(tmp_path / "parsed"), "--tta", "flip", "--logit-adjust", "0.5"]) == 0
    assert "flip TTA" in capsys.readouterr().out and (tmp_path / "parsed" / "face_label.png").is_file()
    assert cli_main(["parse", "--checkpoint", str(runs["plain"]), str(tmp_path / "face.png"), "--out",
                     str(tmp_path / "p2"), "--logit-adjust", "1"]) == 2  # no priors anywhere: a clear error
    assert "needs class priors" in capsys.readouterr().err


def test_target_priors_through_the_eval_command(runs, synth_root, tmp_path, capsys):
    assert cli_main(["freq", "--dataset", "celebamask-hq", "--root", str(synth_root), "--split", "train",
                     "--out", str(tmp_path / "freq")]) == 0
    csv = str(tmp_path / "freq" / "class_frequencies.csv")
    base = ["eval", "--checkpoint", str(runs["plain"]), "--dataset", "celebamask-hq", "--root", str(synth_root),
            "--split", "val", "--device", "cpu"]
    assert cli_main([*base, "--out", str(tmp_path / "plain")]) == 0
    capsys.readouterr()
    # the training split's own priors as the target: no shift, the same counts as the plain scoring
    assert cli_main([*base, "--out", str(tmp_path / "same"), "--logit-adjust", "1", "--priors", csv,
                     "--target-priors", csv]) == 0
    assert f"(priors: file {csv}; target priors: file {csv})" in capsys.readouterr().out
    shifted = load_record(tmp_path / "same")
    assert shifted.provenance.posthoc["target_priors"] == f"file {csv}"
    assert shifted.label.endswith("+post-hoc LA(τ=1, to target priors)")
    assert shifted.confusion == load_record(tmp_path / "plain").confusion
    assert cli_main([*base, "--out", str(tmp_path / "bad"), "--target-priors", csv]) == 2
    err = capsys.readouterr().err.strip()
    assert "--logit-adjust" in err and len(err.splitlines()) == 1


def test_face_parser_applies_the_adjustment(runs):
    from lt_faceparse.inference.parser import FaceParser
    from lt_faceparse.weights import load_model

    model, meta = load_model(runs["la"])
    parser = FaceParser.from_checkpoint(runs["la"], logit_adjust=1.0, tta="flip")
    assert parser.posthoc["logit_adjust"] == 1.0 and parser.posthoc["priors"].startswith("weight-file metadata")
    image = (np.random.default_rng(0).random((32, 32, 3)) * 255).astype(np.uint8)
    from lt_faceparse.data.transforms import normalize_image

    x = normalize_image(image)[None]
    counts = np.maximum(np.asarray(meta["longtail"]["priors"]["pixel_counts"], dtype=np.float64), 1)
    log_prior = torch.tensor(np.log(counts / counts.sum()), dtype=torch.float32).view(1, -1, 1, 1)
    with torch.no_grad():
        z = model(x)
        mirrored = model(x.flip(-1)).flip(-1)[:, flip_permutation(TAX)]
        expected = ((z + mirrored) / 2 - log_prior).argmax(1)[0]
    assert np.array_equal(parser.predict([image])[0].label, expected.numpy().astype(np.uint8))


@pytest.mark.slow
@pytest.mark.parametrize("model", ["segface", "fcn", "segformer", "bisenet", "tiny"])
def test_post_hoc_options_evaluate_every_registered_model_through_the_cli(model, synth_root, tmp_path):
    from lt_faceparse.models import build_model
    from lt_faceparse.weights import save_model

    kwargs = {"tiny": {"width": 8}, "segface": {"backbone": "mobilenet", "dim": 32},
              "fcn": {"backbone": "mobilenet", "channels": 16}, "segformer": {"backbone": "mobilenet", "dim": 32},
              "bisenet": {}}[model]
    torch.manual_seed(0)
    net = build_model(model, num_classes=TAX.num_classes, **kwargs).eval()
    weights = save_model(net, tmp_path / "w.safetensors", {"model": model, "model_kwargs": dict(net.build_kwargs),
                                                            "taxonomy": TAX.name, "resolution": 32})
    for flags in (["--logit-adjust", "1.0"], ["--tta", "flip"], ["--logit-adjust", "0.5", "--tta", "flip"]):
        out = tmp_path / "_".join(f.strip("-") for f in flags)
        assert cli_main(["eval", "--checkpoint", str(weights), "--dataset", "celebamask-hq", "--root", str(synth_root),
                         "--split", "val", "--device", "cpu", "--out", str(out), *flags]) == 0
        posthoc = load_record(out).provenance.posthoc
        assert posthoc["tta"] == ("flip" if "--tta" in flags else None)
        assert posthoc["logit_adjust"] == (float(flags[1]) if flags[0] == "--logit-adjust" else None)
