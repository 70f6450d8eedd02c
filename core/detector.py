"""A YOLO detector that returns everything active learning needs from ONE forward pass.

Per box: xyxy in pixels, confidence, class, the full class-probability vector and an
embedding; per image: an embedding, the spatial-divergence map and, optionally, the
boxes of a horizontally flipped second view. The `score` stage and the Label Studio
backend's ``/predict`` both call `Detector.detect`, so they cannot disagree.

Boxes equal ``YOLO(weights).predict(image, imgsz=..., conf=..., iou=..., max_det=...)``:
the same AutoBackend, letterbox, NMS and ``scale_boxes`` are used. Each image is letterboxed
on its own and images of one call are batched by their letterboxed shape, so a frame's
result never depends on the other frames of the batch (ultralytics letterboxes mixed-shape
batches to a square instead). Everything after the forward pass is computed for the whole
batch on the model's device and reaches the host in one copy per output and batch.
"""

from __future__ import annotations

import copy
import os
import threading
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from core.features import (
    Divergence,
    box_embeddings,
    class_maps,
    content_box,
    divergence_maps,
    image_embeddings,
    level_shapes,
    pixel_divergence_batch,
)
from core.settings import configure_environment, disable_ultralytics_integrations, resolve_path


@dataclass(frozen=True)
class ImageDetections:
    """What one image yields. Box arrays share their first axis (K boxes, C classes)."""

    width: int
    height: int
    xyxy: np.ndarray  # (K, 4) float32, pixels of the original image
    conf: np.ndarray  # (K,) float32, equals probs.max(axis=1)
    cls: np.ndarray  # (K,) int64
    probs: np.ndarray  # (K, C) float32, independent sigmoid per class
    embeddings: np.ndarray  # (K, Db) float32, unit norm; Db = 0 for formats without feature maps
    image_embedding: np.ndarray  # (D,) float32, unit norm; D = 0 for formats without feature maps
    divergence: np.ndarray | None = None  # (h, w) float32: region maxima (pixels) or the finest grid (grid units)
    flip_xyxy: np.ndarray | None = None  # (F, 4) boxes of the flipped view, in original coordinates
    flip_conf: np.ndarray | None = None  # (F,)
    flip_cls: np.ndarray | None = None  # (F,)
    flip_probs: np.ndarray | None = None  # (F, C)

    @property
    def num_boxes(self) -> int:
        return len(self.conf)


def resolve_device(device: str | int | None = "auto") -> torch.device:
    """``auto`` (or None/"") is the first CUDA GPU when present, else the CPU.

    Goes through ultralytics' ``select_device``, as ``YOLO.predict`` does: on the CPU it also sets
    torch's thread count the way predict does, so both compute the same numbers.
    """
    configure_environment()
    from ultralytics.utils.torch_utils import select_device

    wanted = "" if device is None or str(device).lower() in ("", "auto") else str(device)
    return select_device(wanted, verbose=False)


def resolve_half(half: bool | str | None, device: torch.device) -> bool:
    """``auto``: fp16 on a GPU, fp32 on the CPU (fp16 convolutions on CPU are slow and lossy)."""
    if half is None or str(half).lower() == "auto":
        return device.type == "cuda"
    if isinstance(half, str):
        return half.lower() in ("1", "true", "yes", "on")
    return bool(half)


class Detector:
    """Load the model once, then call `detect` per request or per pool batch (thread-safe)."""

    def __init__(
        self,
        weights: str | Path | torch.nn.Module,
        *,
        device: str | int | None = "auto",
        half: bool | str | None = "auto",
        imgsz: int | Sequence[int] = 640,
        conf: float = 0.25,
        iou: float = 0.7,
        max_det: int = 300,
        batch: int = 8,
        agnostic_nms: bool = False,
    ) -> None:
        configure_environment()
        disable_ultralytics_integrations()
        from ultralytics.nn.autobackend import AutoBackend
        from ultralytics.utils.checks import check_imgsz

        offline = os.environ.get("YOLO_OFFLINE", "").lower() in ("1", "true")
        if isinstance(weights, (str, Path)) and not Path(weights).exists():
            if offline or Path(weights).parent != Path("."):  # online, a bare name like yolo11n.pt downloads
                raise FileNotFoundError(f"model weights not found: {weights}")
        # AutoBackend fuses a module in place: never fuse the caller's model (YOLO.predict copies it too)
        self.weights = copy.deepcopy(weights) if isinstance(weights, torch.nn.Module) else str(weights)
        self.device = resolve_device(device)
        # end2end=False: NMS-free heads (YOLO26, v10) fall back to their one-to-many head plus NMS,
        # the only path that has per-box class-probability vectors (= predict(..., nms=True)).
        self.model = AutoBackend(
            model=self.weights,
            device=self.device,
            fp16=resolve_half(half, self.device),
            fuse=True,
            verbose=False,
            end2end=False,
        )
        self.model.eval()
        self.format: str = self.model.format
        if self.model.end2end:
            raise ValueError(
                f"{weights}: an exported end-to-end (NMS-free) model has no class-probability vectors; "
                "export it without NMS or use the .pt checkpoint"
            )
        if getattr(self.model, "task", "detect") not in (None, "detect"):
            raise ValueError(f"{weights}: a {self.model.task} model, expected a detection model")
        names = self.model.names
        self.names: tuple[str, ...] = tuple(str(names[i]) for i in range(len(names)))
        self.stride = int(self.model.stride)
        fixed = hasattr(self.model, "imgsz") and not getattr(self.model, "dynamic", False)
        self.imgsz: list[int] = check_imgsz(self.model.imgsz if fixed else imgsz, stride=self.stride, min_dim=2)
        # ultralytics' predictor: minimal rectangle for PyTorch and dynamic exports, else a fixed square
        self.rect = self.format == "pt" or (getattr(self.model, "dynamic", False) and self.format != "imx")
        self.conf, self.iou, self.max_det = float(conf), float(iou), int(max_det)
        self.batch = max(1, int(batch))
        self.agnostic_nms = bool(agnostic_nms)
        self._lock = threading.Lock()
        self._feats: list[torch.Tensor] | None = None
        self.strides: tuple[int, ...] = (8, 16, 32)
        self.has_features = self.format == "pt" and hasattr(self.model.model, "model")
        if self.has_features:
            head = self.model.model.model[-1]
            self.strides = tuple(int(s) for s in head.stride.tolist())
            head.register_forward_pre_hook(self._capture_features)

    @classmethod
    def from_params(cls, params: dict[str, Any], weights: str | Path | None = None, **overrides: Any) -> Detector:
        """A detector configured by params.yaml's ``model`` and ``detector`` sections (conf = predict threshold)."""
        det = params["detector"]
        kwargs: dict[str, Any] = {
            "device": det["device"],
            "half": det["half"],
            "imgsz": params["model"]["imgsz"],
            "conf": det["conf_predict"],
            "iou": det["iou"],
            "max_det": det["max_det"],
            "batch": det["batch"],
            "agnostic_nms": det["agnostic_nms"],
        }
        kwargs.update(overrides)
        weights = weights or resolve_path(params, params["model"]["base_weights"])
        return cls(weights, **kwargs)

    @property
    def num_classes(self) -> int:
        return len(self.names)

    def _capture_features(self, module: torch.nn.Module, inputs: tuple[Any, ...]) -> None:
        self._feats = list(inputs[0])

    def detect(
        self,
        images: Sequence[np.ndarray],
        conf: float | None = None,
        tta_flip: bool = False,
        divergence_radius: int | dict | Divergence | None = None,
    ) -> list[ImageDetections]:
        """Detections for BGR uint8 (H, W, 3) images, in order.

        ``conf`` overrides the detector's threshold (scoring uses a low one). ``tta_flip`` adds
        a horizontally flipped view (``flip_*`` fields); ``divergence_radius`` adds the
        spatial-divergence map (`core.features.Divergence`: a settings dict from
        `core.features.divergence_setting`, or an int for the earlier grid rule with that radius).
        """
        for i, image in enumerate(images):
            if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8 or 0 in image.shape:
                raise ValueError(f"image {i}: expected a non-empty (H, W, 3) uint8 BGR array, got {image.shape}")
        groups: dict[tuple[int, ...] | None, list[int]] = defaultdict(list)
        for i, image in enumerate(images):
            groups[self._input_shape(image) if self.rect else None].append(i)
        results: list[ImageDetections | None] = [None] * len(images)
        threshold = self.conf if conf is None else float(conf)
        divergence_radius = Divergence.parse(divergence_radius)
        for indices in groups.values():
            for start in range(0, len(indices), self.batch):
                part = indices[start : start + self.batch]
                batch = self._detect_batch([images[i] for i in part], threshold, tta_flip, divergence_radius)
                for i, result in zip(part, batch, strict=True):
                    results[i] = result
        return results  # type: ignore[return-value]

    def _input_shape(self, image: np.ndarray) -> tuple[int, ...]:
        """The letterboxed input's (h, w) of one image: images that share it share a forward pass.

        Each image is letterboxed on its own, so its input tensor, and its result, is the same
        whichever images share the pass; grouping by this rather than by the original shape keeps
        mixed-size pools (hard hats: 230 sizes in 706 images) in full batches."""
        from ultralytics.data.augment import LetterBox

        letterbox = LetterBox(self.imgsz, auto=self.rect, stride=self.stride)
        get_params = getattr(letterbox, "get_params", None)
        if get_params is None:  # an ultralytics without it: batch by the original shape
            return tuple(image.shape)
        p = get_params({"img": image})
        return (p["new_unpad"][1] + p["top"] + p["bottom"], p["new_unpad"][0] + p["left"] + p["right"])

    def _letterbox(self, images: list[np.ndarray]) -> torch.Tensor:
        """ultralytics' BasePredictor.preprocess for a list of same-shape images."""
        from ultralytics.data.augment import LetterBox

        letterbox = LetterBox(self.imgsz, auto=self.rect, stride=self.stride)
        boxed = [letterbox(image=im) for im in images]
        x = torch.from_numpy(boxed[0]).unsqueeze(0) if len(boxed) == 1 else torch.from_numpy(np.stack(boxed))
        x = x.to(self.device).permute(0, 3, 1, 2).contiguous().flip(1)  # BHWC BGR -> BCHW RGB
        return (x.half() if self.model.fp16 else x.float()).div_(255)

    def _forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor] | None]:
        self._feats = None
        raw = self.model(x)
        raw = raw[0] if isinstance(raw, (list, tuple)) else raw
        feats, self._feats = self._feats, None
        return raw, feats

    def _nms(self, raw: torch.Tensor, conf: float) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        from ultralytics.utils.nms import non_max_suppression

        dets, keep = non_max_suppression(
            raw, conf, self.iou, None, self.agnostic_nms, max_det=self.max_det, nc=0, return_idxs=True
        )
        return dets, [k.view(-1).long() for k in keep]

    @torch.inference_mode()
    def _detect_batch(
        self, images: list[np.ndarray], conf: float, tta_flip: bool, div: Divergence | None
    ) -> list[ImageDetections]:
        """One forward pass; every output is computed for the whole batch on the model's device and
        copied to the host once per batch (per original image shape for the few per-shape outputs)."""
        n = len(images)
        with self._lock:
            x = self._letterbox(images)
            raw, feats = self._forward(torch.cat((x, x.flip(-1))) if tta_flip else x)
        dets, keep = self._nms(raw, conf)
        in_shape = tuple(x.shape[2:])
        nc = self.num_classes
        shapes = [tuple(image.shape[:2]) for image in images]
        subsets: dict[tuple[int, ...], list[int]] = defaultdict(list)  # images of one original shape
        for b, shape in enumerate(shapes):
            subsets[shape].append(b)

        main = _Boxes.gather(raw, dets[:n], keep[:n], nc)
        xyxy = _scale(in_shape, main.xyxy, main.image, subsets)
        if feats is not None:
            embeddings = box_embeddings([f[:n] for f in feats], main.xyxy, main.image, self.strides)
            deepest = feats[-1][:n]
            image_emb = deepest.new_empty((n, deepest.shape[1]), dtype=torch.float32)
            for shape, members in subsets.items():
                region = content_box(in_shape, shape)
                image_emb[members] = image_embeddings(deepest[members], region, self.strides[-1])
        else:
            embeddings = raw.new_zeros((len(main.xyxy), 0), dtype=torch.float32)
            image_emb = raw.new_zeros((n, 0), dtype=torch.float32)
        divergence = self._divergence(raw[:n], in_shape, subsets, div)
        flip = None
        if tta_flip:
            flip = _Boxes.gather(raw[n:], dets[n:], keep[n:], nc)
            unflipped = flip.xyxy.clone()
            unflipped[:, [0, 2]] = in_shape[1] - flip.xyxy[:, [2, 0]]  # un-flip in the letterboxed frame
            flip_xyxy = _np(_scale(in_shape, unflipped, flip.image, subsets))
            flip_host = flip.to_host()

        host = main.to_host()
        xyxy_np, embeddings_np, image_np = _np(xyxy), _np(embeddings), _np(image_emb)
        results = []
        for b, (h0, w0) in enumerate(shapes):
            rows = host.rows(b)
            fields: dict[str, Any] = {"image_embedding": image_np[b]}
            if divergence is not None:
                fields["divergence"] = divergence[b]
            if flip is not None:
                frows = flip_host.rows(b)
                fields["flip_xyxy"] = flip_xyxy[frows]
                fields["flip_conf"] = flip_host.conf[frows]
                fields["flip_cls"] = flip_host.cls[frows]
                fields["flip_probs"] = flip_host.probs[frows]
            results.append(
                ImageDetections(
                    width=w0,
                    height=h0,
                    xyxy=xyxy_np[rows],
                    conf=host.conf[rows],
                    cls=host.cls[rows],
                    probs=host.probs[rows],
                    embeddings=embeddings_np[rows],
                    **fields,
                )
            )
        return results

    def _divergence(
        self,
        raw: torch.Tensor,
        in_shape: tuple[int, ...],
        subsets: dict[tuple[int, ...], list[int]],
        div: Divergence | None,
    ) -> list[np.ndarray] | None:
        """Each image's divergence map (host arrays), or None when not asked for or not available."""
        grids = level_shapes(in_shape, self.strides, raw.shape[-1]) if div is not None else None
        if div is None or not grids:
            return None
        levels = class_maps(raw[:, 4 : 4 + self.num_classes], grids)
        out: list[np.ndarray | None] = [None] * len(raw)
        if div.units == "grid":
            maps = _np(divergence_maps(levels, int(div.radius)))
            s = min(self.strides)
            for shape, members in subsets.items():
                top, left, bottom, right = content_box(in_shape, shape)
                for b in members:  # the cells of the finest grid that cover the image
                    out[b] = maps[b, top // s : -(-bottom // s), left // s : -(-right // s)].copy()
            return out  # type: ignore[return-value]
        for (h0, w0), members in subsets.items():
            gain = min(in_shape[0] / h0, in_shape[1] / w0)
            index = torch.tensor(members, device=raw.device)
            region = content_box(in_shape, (h0, w0))
            maps = _np(pixel_divergence_batch([m[index] for m in levels], in_shape, region, gain, div))
            for j, b in enumerate(members):
                out[b] = maps[j]
        return out  # type: ignore[return-value]


@dataclass(frozen=True)
class _Boxes:
    """The kept boxes of a batch as flat tensors (K rows), with the image of each row."""

    xyxy: torch.Tensor  # (K, 4) input pixels
    conf: torch.Tensor  # (K,)
    cls: torch.Tensor  # (K,)
    probs: torch.Tensor  # (K, C)
    image: torch.Tensor  # (K,) int64
    counts: list[int]

    @classmethod
    def gather(cls, raw: torch.Tensor, dets: list[torch.Tensor], keep: list[torch.Tensor], nc: int) -> _Boxes:
        counts = [len(d) for d in dets]
        flat = torch.cat(dets) if dets else raw.new_zeros((0, 6))
        image = torch.repeat_interleave(  # output_size: no device-to-host sync to learn it
            torch.arange(len(dets), device=raw.device), torch.tensor(counts, device=raw.device), output_size=sum(counts)
        )
        anchors = torch.cat(keep) if keep else image
        probs = raw[:, 4 : 4 + nc].transpose(1, 2)[image, anchors]  # (K, C): each box's anchor's class vector
        return cls(flat[:, :4], flat[:, 4], flat[:, 5], probs, image, counts)

    def to_host(self) -> _HostBoxes:
        offsets = np.concatenate(([0], np.cumsum(self.counts))).astype(np.int64)
        nc = self.probs.shape[1]
        return _HostBoxes(_np(self.conf), self.cls.long().cpu().numpy(), _np(self.probs).reshape(-1, nc), offsets)


@dataclass(frozen=True)
class _HostBoxes:
    conf: np.ndarray
    cls: np.ndarray
    probs: np.ndarray
    offsets: np.ndarray

    def rows(self, b: int) -> slice:
        return slice(int(self.offsets[b]), int(self.offsets[b + 1]))


def _scale(
    in_shape: tuple[int, ...], xyxy: torch.Tensor, image: torch.Tensor, subsets: dict[tuple[int, ...], list[int]]
) -> torch.Tensor:
    """Input-pixel boxes to each image's original pixels: ultralytics' ``scale_boxes`` once per original shape."""
    from ultralytics.utils.ops import scale_boxes

    out = xyxy.clone()
    if len(subsets) == 1:
        return scale_boxes(in_shape, out, next(iter(subsets)))
    for shape, members in subsets.items():
        rows = torch.isin(image, torch.tensor(members, device=image.device))
        out[rows] = scale_boxes(in_shape, out[rows], shape)
    return out


def _np(t: torch.Tensor) -> np.ndarray:
    return t.float().cpu().numpy()
