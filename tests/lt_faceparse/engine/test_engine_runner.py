import torch
import torch.nn as nn

from lt_faceparse.engine.runner import BatchRunner


class _AuxModel(nn.Module):
    """Main head + one auxiliary head; loss adds the auxiliary loss when it gets extras."""

    def __init__(self):
        super().__init__()
        self.main = nn.Conv2d(3, 2, 1)
        self.aux = nn.Conv2d(3, 2, 1)

    def forward(self, images, return_extras=False):
        logits = self.main(images)
        return (logits, {"aux_logits": [self.aux(images)]}) if return_extras else logits

    def loss(self, logits, target, extras=None):
        loss = nn.functional.cross_entropy(logits, target)
        for aux in (extras or {}).get("aux_logits", []):
            loss = loss + nn.functional.cross_entropy(aux, target)
        return loss


def test_runner_trains_auxiliary_heads_and_evaluates_logits_only():
    torch.manual_seed(0)
    model = _AuxModel()
    runner = BatchRunner(model)
    images, target = torch.randn(2, 3, 4, 4), torch.randint(0, 2, (2, 4, 4))
    runner.train()
    loss, logits = runner.compute_loss(runner(images), target)
    expected = (nn.functional.cross_entropy(model.main(images), target)
                + nn.functional.cross_entropy(model.aux(images), target))
    torch.testing.assert_close(loss, expected)
    loss.backward()
    assert model.aux.weight.grad.abs().sum() > 0
    runner.eval()
    out = runner(images)
    assert isinstance(out, torch.Tensor) and out.shape == (2, 2, 4, 4)
