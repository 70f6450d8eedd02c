"""WeightedDetectionLoss: Eq. 3 of the box-level paper (per-group normalisers), and the earlier shared rule by name."""

from __future__ import annotations

import pytest
import torch

from pipelines.boxlevel.dampened_training import WeightedDetectionLoss, weighted_criterion


def shared(model):
    return weighted_criterion(model, "shared")


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


def test_shared_rule_the_noisy_box_contribution_scales_by_lambda_d(model, preds):
    criterion = shared(model)
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
    total_quarter, _ = criterion(preds, batch(0.25))
    total_half, _ = criterion(preds, batch(0.5))
    assert total_quarter.sum() < total_half.sum()


def test_a_batch_without_boxes_trains_on_background_only(model, preds):
    empty = {
        "batch_idx": torch.zeros(0),
        "cls": torch.zeros(0, 1),
        "bboxes": torch.zeros(0, 4),
        "weights": torch.zeros(0),
    }
    box, cls, dfl = WeightedDetectionLoss(model).get_assigned_targets_and_loss(preds, empty)[1]
    assert box == 0 and dfl == 0 and cls > 0


def same_box_batch(n_images: int, weights: list[float]) -> dict[str, torch.Tensor]:
    """One box per image, the same box everywhere (class 0): identical images give identical per-box losses."""
    return {
        "batch_idx": torch.arange(n_images, dtype=torch.float32),
        "cls": torch.zeros(n_images, 1),
        "bboxes": torch.tensor([[0.45, 0.5, 0.4, 0.5]]).repeat(n_images, 1),
        "weights": torch.tensor(weights),
    }


@pytest.fixture(scope="module")
def ten_same_preds(model):
    torch.manual_seed(2)
    with torch.no_grad():
        return model(torch.rand(1, 3, 64, 64).repeat(10, 1, 1, 1))


def test_eq3_one_labeled_and_nine_noisy_boxes_labeled_share(model, ten_same_preds):
    # Eq. 3 by hand, with l the (identical) per-box average loss: L = l + 0.5 * (9 l) / 9 = 1.5 l, so the
    # labeled box holds 1 / 1.5 = 67 % of the loss. Ten labeled copies average to l as well (one group).
    criterion = WeightedDetectionLoss(model)
    per_box = criterion.get_assigned_targets_and_loss(ten_same_preds, same_box_batch(10, [1.0] * 10))[1]
    mixed = criterion.get_assigned_targets_and_loss(ten_same_preds, same_box_batch(10, [1.0] + [0.5] * 9))[1]
    for term in (0, 2):  # box (IoU) and DFL terms: foreground anchors only
        assert float(per_box[term] / mixed[term]) == pytest.approx(0.667, abs=1e-3)


def test_shared_rule_gives_the_labeled_box_18_percent(model, ten_same_preds):
    # one shared normaliser: the labeled box is 1 of 1 + 9 * 0.5 box-equivalents, 1 / 5.5 = 18 %
    criterion = shared(model)
    ten_labeled = criterion.get_assigned_targets_and_loss(ten_same_preds, same_box_batch(10, [1.0] * 10))[1]
    mixed = criterion.get_assigned_targets_and_loss(ten_same_preds, same_box_batch(10, [1.0] + [0.5] * 9))[1]
    assert float(ten_labeled[0] / 10 / mixed[0]) == pytest.approx(0.182, abs=1e-3)


def test_eq3_lambda_zero_is_training_on_the_labeled_boxes_alone(model, preds):
    from ultralytics.utils.loss import v8DetectionLoss

    labeled_alone = {k: v[[0, 2]] for k, v in batch(None).items()}  # the noisy box (row 1) left out
    stock = v8DetectionLoss(model).get_assigned_targets_and_loss(preds, labeled_alone)[1]
    assert torch.allclose(loss(WeightedDetectionLoss(model), preds, 0.0), stock, atol=1e-6)
    # the shared rule keeps the weight-0 box's anchors out of the background: not the same loss
    assert not torch.allclose(loss(shared(model), preds, 0.0), stock, atol=1e-6)


def test_eq3_noisy_group_term_is_linear_in_lambda_d(model, ten_same_preds):
    criterion = WeightedDetectionLoss(model)

    def total(lam: float) -> torch.Tensor:
        return criterion.get_assigned_targets_and_loss(ten_same_preds, same_box_batch(10, [1.0] + [lam] * 9))[1]

    assert torch.allclose(total(0.5) - total(0.25), total(0.75) - total(0.5), rtol=1e-4, atol=1e-5)
    assert (total(0.5) > total(0.25)).all()


def test_unknown_normalisation_is_refused(model):
    with pytest.raises(ValueError, match="normalisation"):
        weighted_criterion(model, "mean")
