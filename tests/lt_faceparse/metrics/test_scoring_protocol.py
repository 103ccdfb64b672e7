import numpy as np
import pytest
import torch

from lt_faceparse.data.sample import Batch
from lt_faceparse.metrics import ConfusionMatrix, update_for_protocol


class _Labels:
    """The part of a dataset that native scoring uses."""

    def __init__(self, labels, resize_mode="square", resolution=4):
        self.labels, self.resize_mode, self.resolution = labels, resize_mode, resolution

    def read_label(self, index):
        return self.labels[index]


def _batch(labels, orig_sizes, indices):
    n = len(indices)
    return Batch(images=torch.zeros(n, 3, 4, 4), labels=labels, names=[str(i) for i in indices],
                 orig_sizes=torch.tensor(orig_sizes), indices=torch.tensor(indices))


def _logits_for(ids: torch.Tensor, k: int) -> torch.Tensor:
    return torch.nn.functional.one_hot(ids, k).permute(0, 3, 1, 2).float() * 5


def test_input_protocol_scores_at_network_resolution():
    ids = torch.tensor([[[0, 1, 1, 2]] * 4])
    labels = torch.tensor([[[0, 1, 2, 2]] * 4])
    m = ConfusionMatrix(3)
    update_for_protocol(m, _logits_for(ids, 3), _batch(labels, [[8, 8]], [5]), "input")
    cm = m.compute()
    assert cm.tolist() == [[4, 0, 0], [0, 4, 0], [0, 4, 4]]
    assert m.per_image_stats().image_ids.tolist() == [5]


def test_native_protocol_upsamples_to_original_label():
    # left half class 1, right half class 2 at 4 x 4; the original label is 6 x 8
    ids = torch.tensor([[[1, 1, 2, 2]] * 4])
    original = np.zeros((6, 8), np.uint8)
    original[:, :4] = 1
    original[:, 4:] = 2
    original[0, 0] = 255
    original[:, 3] = 0  # a background column the 4 x 4 prediction cannot resolve
    m = ConfusionMatrix(3)
    update_for_protocol(m, _logits_for(ids, 3), _batch(None, [[6, 8]], [0]), "native", _Labels([original]))
    cm = m.compute()
    assert cm.sum() == 47
    assert cm.tolist() == [[0, 6, 0], [0, 17, 0], [0, 0, 24]]


def test_native_protocol_drops_padding():
    # pad mode: a 2 x 4 original becomes a 2 x 4 content block on a 4 x 4 canvas; bottom rows are padding
    ids = torch.tensor([[[1, 1, 2, 2], [1, 1, 2, 2], [0, 0, 0, 0], [0, 0, 0, 0]]])
    original = np.array([[1, 1, 2, 2], [1, 1, 2, 2]], np.uint8)
    m = ConfusionMatrix(3)
    update_for_protocol(m, _logits_for(ids, 3), _batch(None, [[2, 4]], [0]), "native",
                        _Labels([original], resize_mode="pad", resolution=4))
    assert m.compute().tolist() == [[0, 0, 0], [0, 4, 0], [0, 0, 4]]


def test_protocol_errors():
    m = ConfusionMatrix(3)
    logits = torch.zeros(1, 3, 4, 4)
    with pytest.raises(ValueError, match="unknown scoring protocol"):
        update_for_protocol(m, logits, _batch(torch.zeros(1, 4, 4, dtype=torch.long), [[4, 4]], [0]), "full")
    with pytest.raises(ValueError, match="differ in size"):
        update_for_protocol(m, logits, _batch(torch.zeros(1, 8, 8, dtype=torch.long), [[8, 8]], [0]), "input")
    with pytest.raises(ValueError, match="needs the dataset"):
        update_for_protocol(m, logits, _batch(None, [[8, 8]], [0]), "native")
