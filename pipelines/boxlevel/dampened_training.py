"""Training on partial labels: noisy boxes count with a dampened loss (lambda_d) instead of fully.

How a box's weight reaches the loss (ultralytics 8.4.190):

1. `WeightedYOLODataset` reads an optional 6th column (the weight) from YOLO label files; standard
   5-column files read as weight 1 (`pipelines.boxlevel.partial_labels.write_weighted_yolo_dataset`).
2. Augmentations drop, concatenate and reorder boxes, indexing ``cls`` and ``instances`` together.
   So the weight rides along as a second ``cls`` column from `update_labels_info` until
   `SplitWeights`, just before `Format`, moves it to ``labels["weights"]``; `collate_fn` batches it.
3. `WeightedDetectionLoss` implements the box-level paper's Eq. 3 (``normalisation="per_group"``,
   the default)::

       L = (1 / N_l) * sum_{a in labeled anchors} l(a) + lambda_d * (1 / N_n) * sum_{a in noisy anchors} l(a)

   where a box is *labeled* when its weight is 1 and *noisy* when 0 < weight < 1 (its weight is
   its lambda_d), and N_g is the ultralytics normaliser (the target-score sum) of the group's
   foreground anchors. So the labeled boxes keep their share however many noisy boxes an image
   has (1 labeled + 9 noisy boxes at lambda_d = 0.5: 1 / 1.5 = 67 % of the box loss).
   Boxes of weight 0 are removed before target assignment: lambda_d = 0 is exactly training on
   the labeled boxes alone. Background anchors (assigned to no box) keep the stock normaliser
   N_l + N_n; the stock clamp (normaliser >= 1) scales both groups alike, keeping their ratio.
   With every weight 1 (or no weights) the loss is ultralytics' own. Decision: lambda_d = 1 makes
   noisy boxes labels (one group), since a weight-1 box is indistinguishable from a labeled one.
   ``normalisation="shared"`` keeps the earlier rule by name: each foreground anchor's terms are
   multiplied by its box's weight and everything is divided by one shared normaliser, so the
   labeled share shrinks as noisy boxes grow (the example above: 1 / (1 + 9 * 0.5) = 18 %).

`DampenedTrainer` uses the dataset for training (validation stays stock) and attaches the loss
after set-up; checkpoints hold a stock `DetectionModel` (the trainer strips the criterion), so
models trained here load anywhere. `dampened_trainer` gives `pipelines.cycle.yolo_ops.train_yolo` the class.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import numpy as np
import torch

from core.settings import configure_environment

configure_environment()  # before ultralytics is imported: its settings live in the project, not in ~
from ultralytics.data.dataset import YOLODataset  # noqa: E402
from ultralytics.data.utils import check_image, verify_image_label  # noqa: E402
from ultralytics.models.yolo.detect import DetectionTrainer  # noqa: E402
from ultralytics.utils import DEFAULT_CFG, colorstr  # noqa: E402
from ultralytics.utils.loss import E2ELoss, v8DetectionLoss  # noqa: E402
from ultralytics.utils.tal import make_anchors  # noqa: E402
from ultralytics.utils.torch_utils import unwrap_model  # noqa: E402

log = logging.getLogger("alod.yolo")


# -- labels with weights -----------------------------------------------------------------------
def read_weighted_rows(lb_file: str) -> np.ndarray | None:
    """(n, 6) class, x, y, w, h, weight of a label file with a 6-column line; None for standard files."""
    if not os.path.isfile(lb_file):
        return None
    with open(lb_file, encoding="utf-8-sig") as f:
        rows = [line.split() for line in f.read().strip().splitlines() if line.strip()]
    if not any(len(r) == 6 for r in rows):
        return None
    if any(len(r) not in (5, 6) for r in rows):
        raise ValueError(f"{lb_file}: a weighted label file has 5 or 6 values per line (class x y w h [weight])")
    return np.array([[*r, "1"] if len(r) == 5 else r for r in rows], dtype=np.float32)


def verify_weighted_label(args: tuple) -> list:
    """ultralytics' `verify_image_label` result plus the file's weights (None when all weigh 1)."""
    im_file, lb_file, prefix, _keypoint, num_cls, _nkpt, _ndim, single_cls = args
    try:
        rows = read_weighted_rows(lb_file)
        if rows is None:
            return [*verify_image_label(args), None]
        msg, shape = check_image(im_file)
        lb, weights = rows[:, :5], rows[:, 5]
        assert (lb[:, 1:] <= 1.01).all() and (lb[:, 1:] >= -0.01).all(), "non-normalized or out of bounds coordinates"
        assert (lb[:, 0] % 1 == 0).all() and (single_cls or lb[:, 0].max() < num_cls), "bad class index"
        assert ((weights >= 0) & (weights <= 1)).all(), f"weights must be in [0, 1]: {weights.min()}..{weights.max()}"
        return [im_file, lb, shape, [], None, 0, 1, 0, 0, f"{prefix}{msg}" if msg else "", weights]
    except Exception as e:  # the stock scan's contract: a bad pair is reported and skipped
        return [None] * 5 + [0, 0, 0, 1, f"{prefix}{im_file}: ignoring corrupt image/label: {e}", None]


class SplitWeights:
    """Moves the weight column that rode along in ``cls`` to ``labels["weights"]`` (before Format)."""

    def __call__(self, labels: dict[str, Any]) -> dict[str, Any]:
        cls = np.asarray(labels["cls"])
        if cls.ndim != 2 or cls.shape[1] != 2:
            raise ValueError(f"expected cls with a weight column (n, 2), got {cls.shape}: an augmentation rebuilt cls")
        labels["weights"] = torch.from_numpy(np.ascontiguousarray(cls[:, 1], dtype=np.float32))
        labels["cls"] = np.ascontiguousarray(cls[:, :1])
        return labels


class WeightedYOLODataset(YOLODataset):
    """YOLODataset whose labels carry ``weights`` (n,) from an optional 6th label column."""

    def verify_args(self) -> tuple:
        _, iterable = super().verify_args()
        return verify_weighted_label, iterable

    def result_to_label(self, result: list) -> tuple:
        label, *counts = super().result_to_label(result[:10])
        if label is not None:
            weights = result[10]
            label["weights"] = np.ones(len(label["cls"]), np.float32) if weights is None else weights
        return (label, *counts)

    def get_cache_hash(self) -> str:
        return super().get_cache_hash() + "-weighted"  # never share a cache with the stock dataset

    def update_labels(self, include_class: list[int] | None) -> None:
        if include_class is not None:
            wanted = np.array(include_class).reshape(1, -1)
            for label in self.labels:
                label["weights"] = label["weights"][(label["cls"] == wanted).any(1)]
        super().update_labels(include_class)

    def update_labels_info(self, label: dict[str, Any]) -> dict[str, Any]:
        weights = label.pop("weights")
        label = super().update_labels_info(label)
        label["cls"] = np.concatenate([label["cls"].reshape(-1, 1), weights.reshape(-1, 1)], axis=1)
        return label

    def build_transforms(self, hyp: Any) -> Any:
        transforms = super().build_transforms(hyp)
        transforms.insert(-1, SplitWeights())  # the last transform is Format
        return transforms

    @staticmethod
    def collate_fn(batch: list[dict]) -> dict:
        weights = [b.pop("weights") for b in batch]
        out = YOLODataset.collate_fn(batch)
        out["weights"] = torch.cat(weights, 0)
        return out


# -- the loss ------------------------------------------------------------------------------------
NORMALISATIONS = ("per_group", "shared")


def drop_weightless(batch: dict[str, Any]) -> dict[str, Any]:
    """The batch without its weight-0 boxes (they carry no loss, nor take anchors from other boxes)."""
    keep = batch["weights"].view(-1) > 0
    if bool(keep.all()):
        return batch
    out = dict(batch)
    for k in ("batch_idx", "cls", "bboxes", "weights"):
        out[k] = batch[k][keep]
    return out


def anchor_multipliers(
    fg_mask: torch.Tensor, assigned_weight: torch.Tensor, target_scores: torch.Tensor, normalisation: str
) -> torch.Tensor:
    """(b, a) factor on each anchor's loss terms, all divided afterwards by the stock normaliser N_l + N_n.

    ``per_group`` (Eq. 3): labeled anchors (N_l + N_n) / N_l, noisy anchors w (N_l + N_n) / N_n,
    background 1. ``shared``: w on foreground anchors, 1 on background."""
    fg = fg_mask.bool()
    out = torch.ones_like(assigned_weight)
    if normalisation == "shared":
        return torch.where(fg, assigned_weight, out)
    if normalisation != "per_group":
        raise ValueError(f"normalisation must be one of {NORMALISATIONS}, got {normalisation!r}")
    per_anchor = target_scores.sum(-1)
    labeled, noisy = fg & (assigned_weight >= 1), fg & (assigned_weight < 1)
    n_l, n_n = per_anchor[labeled].sum(), per_anchor[noisy].sum()
    total = n_l + n_n
    if n_l > 0:
        out = torch.where(labeled, total / n_l, out)
    if n_n > 0:
        out = torch.where(noisy, assigned_weight * total / n_n, out)
    return out


class WeightedDetectionLoss(v8DetectionLoss):
    """`v8DetectionLoss` with a weight per target (``batch["weights"]``; without it, the stock loss).

    ``normalisation``: ``per_group`` (Eq. 3 of the box-level paper) or ``shared`` (the earlier rule);
    see the module docstring."""

    normalisation: str = "per_group"

    def get_assigned_targets_and_loss(self, preds: dict[str, torch.Tensor], batch: dict[str, Any], **assign_kwargs):
        if batch.get("weights") is None:
            return super().get_assigned_targets_and_loss(preds, batch, **assign_kwargs)
        if self.normalisation == "per_group":
            batch = drop_weightless(batch)
        # The body of v8DetectionLoss.get_assigned_targets_and_loss (8.4.190); changes marked "weight".
        loss = torch.zeros(3, device=self.device)  # box, cls, dfl
        pred_distri = preds["boxes"].permute(0, 2, 1).contiguous()
        pred_scores = preds["scores"].permute(0, 2, 1).contiguous()
        anchor_points, stride_tensor = make_anchors(preds["feats"], self.stride, 0.5)
        dtype, batch_size = pred_scores.dtype, pred_scores.shape[0]
        imgsz = torch.tensor(preds["feats"][0].shape[2:], device=self.device, dtype=dtype) * self.stride[0]

        weights = batch["weights"].view(-1, 1).to(batch["bboxes"].dtype)  # weight: one more target column
        targets = torch.cat((batch["batch_idx"].view(-1, 1), batch["cls"].view(-1, 1), batch["bboxes"], weights), 1)
        targets = self.preprocess(targets.to(self.device), batch_size, scale_tensor=imgsz[[1, 0, 1, 0]])
        gt_labels, gt_bboxes, gt_weights = targets.split((1, 4, 1), 2)
        mask_gt = gt_bboxes.sum(2, keepdim=True).gt_(0.0)
        pred_bboxes = self.bbox_decode(anchor_points, pred_distri)  # xyxy, (b, h*w, 4)
        _, target_bboxes, target_scores, fg_mask, target_gt_idx = self.assigner(
            pred_scores.detach().sigmoid(),
            (pred_bboxes.detach() * stride_tensor).type(gt_bboxes.dtype),
            anchor_points * stride_tensor,
            gt_labels,
            gt_bboxes,
            mask_gt,
            **assign_kwargs,
        )
        target_scores_sum = target_scores.sum().clamp_(min=1)  # weight: N_l + N_n, stock; groups via anchor_weight

        # weight: each anchor's factor from its target's weight (`anchor_multipliers`)
        anchor_weight = torch.ones_like(fg_mask, dtype=dtype)
        if gt_weights.shape[1]:
            assigned = gt_weights.squeeze(-1).gather(1, target_gt_idx.long()).to(dtype)
            assigned = torch.where(fg_mask.bool(), assigned, torch.ones_like(assigned))
            anchor_weight = anchor_multipliers(fg_mask, assigned, target_scores.to(dtype), self.normalisation)
        anchor_weight = anchor_weight.unsqueeze(-1)

        bce_loss = self.bce(pred_scores, target_scores.to(dtype)) * anchor_weight  # weight
        if self.class_weights is not None:
            bce_loss *= self.class_weights
        loss[1] = bce_loss.sum() / target_scores_sum
        loss[0], loss[2] = self.bbox_loss(
            pred_distri,
            pred_bboxes,
            anchor_points,
            target_bboxes / stride_tensor,
            target_scores * anchor_weight,  # weight: BboxLoss weighs each anchor by its target score sum
            target_scores_sum,
            fg_mask,
            imgsz,
            stride_tensor,
        )
        loss[0] *= self.hyp.box
        loss[1] *= self.hyp.cls
        loss[2] *= self.hyp.dfl
        return (
            (fg_mask, target_gt_idx, target_bboxes, anchor_points, stride_tensor),
            loss,
            dict(zip(self.loss_names, loss.detach(), strict=True)),
        )


def weighted_criterion(model: torch.nn.Module, normalisation: str = "per_group") -> Any:
    """The model's own criterion with `WeightedDetectionLoss` in place of `v8DetectionLoss`."""
    if normalisation not in NORMALISATIONS:
        raise ValueError(f"normalisation must be one of {NORMALISATIONS}, got {normalisation!r}")
    if getattr(model.model[-1], "one2one_cv2", None) is not None:  # end-to-end heads (YOLO26)
        criterion = E2ELoss(model, WeightedDetectionLoss)
        criterion.one2many.normalisation = criterion.one2one.normalisation = normalisation
        return criterion
    criterion = WeightedDetectionLoss(model)
    criterion.normalisation = normalisation
    return criterion


def _attach_weighted_loss(trainer: DetectionTrainer) -> None:
    model = unwrap_model(trainer.model)
    # after set-up: model.args and class weights are in place
    model.criterion = weighted_criterion(model, getattr(trainer, "normalisation", "per_group"))


class DampenedTrainer(DetectionTrainer):
    """Detection training with per-box weights (`WeightedYOLODataset` + `WeightedDetectionLoss`)."""

    normalisation: str = "per_group"  # of WeightedDetectionLoss: per_group (Eq. 3) | shared

    def __init__(self, cfg: Any = DEFAULT_CFG, overrides: dict[str, Any] | None = None, _callbacks: Any = None):
        super().__init__(cfg, overrides, _callbacks)
        self.add_callback("on_pretrain_routine_end", _attach_weighted_loss)

    def build_dataset(self, img_path: str, mode: str = "train", batch: int | None = None) -> Any:
        if mode != "train":
            return super().build_dataset(img_path, mode, batch)
        args = self.args  # the arguments of ultralytics.data.build_yolo_dataset for mode="train"
        return WeightedYOLODataset(
            img_path=img_path,
            imgsz=args.imgsz,
            batch_size=batch,
            augment=True,
            hyp=args,
            rect=args.rect,
            cache=args.cache or None,
            single_cls=args.single_cls or False,
            stride=max(int(unwrap_model(self.model).stride.max()), 32),
            pad=0.0,
            prefix=colorstr("train: "),
            task=args.task,
            classes=args.classes,
            data=self.data,
            fraction=args.fraction,
        )


class SharedNormalisationTrainer(DampenedTrainer):
    """`DampenedTrainer` with the earlier loss rule (``normalisation="shared"``)."""

    normalisation = "shared"


def dampened_trainer(normalisation: str = "per_group") -> type[DampenedTrainer]:
    """The trainer class `pipelines.cycle.yolo_ops.train_yolo` takes (``trainer=``) for label files
    that weigh boxes (6th column): ``per_group`` (Eq. 3) or ``shared`` (the earlier rule)."""
    if normalisation not in NORMALISATIONS:
        raise ValueError(f"normalisation must be one of {NORMALISATIONS}, got {normalisation!r}")
    return DampenedTrainer if normalisation == "per_group" else SharedNormalisationTrainer
