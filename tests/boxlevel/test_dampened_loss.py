"""WeightedDetectionLoss: a noisy box's contribution to the detection loss scales with its weight lambda_d."""

from __future__ import annotations

import pytest
import torch

from pipelines.boxlevel.dampened_training import WeightedDetectionLoss, weighted_criterion


@pytest.fixture(scope="module")
def model():
    from ultralytics.cfg import get_cfg
    from ultralytics.nn.tasks import DetectionModel

    torch.manual_seed(0)
    m = DetectionModel("yolo11n.yaml", nc=3, verbose=False)  # built from its yaml: nothing is downloaded
    m.args = get_cfg()  # the loss gains box / cls / dfl
    return m.train()


@pytest.fixture(scope="module")
def preds(model):
    torch.manual_seed(1)
    with torch.no_grad():
        return model(torch.rand(2, 3, 64, 64))


def batch(noisy_weight: float | None) -> dict[str, torch.Tensor]:
    """Image 0: a labeled box (class 0) and a noisy one (class 1); image 1: one labeled box (class 2)."""
    out = {
        "batch_idx": torch.tensor([0.0, 0.0, 1.0]),
        "cls": torch.tensor([[0.0], [1.0], [2.0]]),
        "bboxes": torch.tensor([[0.3, 0.3, 0.4, 0.4], [0.75, 0.7, 0.3, 0.35], [0.5, 0.5, 0.5, 0.6]]),  # xywh, 0-1
    }
    if noisy_weight is not None:
        out["weights"] = torch.tensor([1.0, noisy_weight, 1.0])
    return out


def loss(criterion, preds, noisy_weight: float | None) -> torch.Tensor:
    return criterion.get_assigned_targets_and_loss(preds, batch(noisy_weight))[1]  # (box, cls, dfl)


def test_the_noisy_box_contribution_scales_by_lambda_d(model, preds):
    criterion = WeightedDetectionLoss(model)
    without, full = loss(criterion, preds, 0.0), loss(criterion, preds, 1.0)
    contribution = full - without
    assert (contribution > 0).all()  # the noisy box adds to each term (box, cls, dfl)
    for lambda_d in (0.5, 0.25):
        assert torch.allclose(loss(criterion, preds, lambda_d) - without, lambda_d * contribution, atol=1e-6)


def test_weight_one_or_no_weights_is_ultralytics_loss(model, preds):
    from ultralytics.utils.loss import v8DetectionLoss

    stock = loss(v8DetectionLoss(model), preds, None)
    criterion = WeightedDetectionLoss(model)
    assert torch.allclose(loss(criterion, preds, 1.0), stock, atol=1e-6)
    assert torch.allclose(loss(criterion, preds, None), stock)


def test_the_whole_loss_call_passes_the_weights_through(model, preds):
    criterion = weighted_criterion(model)
    total_half, _ = criterion(preds, batch(0.5))
    total_full, _ = criterion(preds, batch(1.0))
    assert total_half.sum() < total_full.sum()


def test_a_batch_without_boxes_trains_on_background_only(model, preds):
    empty = {"batch_idx": torch.zeros(0), "cls": torch.zeros(0, 1), "bboxes": torch.zeros(0, 4),
             "weights": torch.zeros(0)}  # fmt: skip
    box, cls, dfl = WeightedDetectionLoss(model).get_assigned_targets_and_loss(preds, empty)[1]
    assert box == 0 and dfl == 0 and cls > 0
