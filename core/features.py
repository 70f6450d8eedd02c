"""Embeddings and dense class maps cut from one YOLO forward pass (letterboxed input frame).

Box embedding: the neck feature maps P3/P4/P5 averaged inside the box with
``roi_align`` (adaptive sampling, so a large box is averaged over all of its cells),
each level L2-normalised, concatenated and scaled to unit norm. All levels rather than
only the box's own stride because the levels have different channel counts and a
strategy needs one vector length for every box; the coarser levels add context.

Image embedding: the deepest level (P5) averaged over the cells that cover the image
(letterbox padding excluded, so the aspect ratio does not move the embedding), unit norm.

Divergence maps (the pedestrian-video paper's spatial divergence, `strategies.spatial`), in one
of two units (`Divergence.units`, from params.yaml ``detector.divergence_*`` via `divergence_setting`;
`/predict` and `alod score` both take it from there):

- ``pixels`` (the paper's, default): each level's class maps are upsampled (bilinear) to the
  letterboxed input, the common finest grid, and cut to the image; the score of Eq. 4,
  s(x) = sum_k [H(mean_N(x) p_k) - mean_N(x) H(p_k)], summed over the K classes and over the
  levels, uses a neighbourhood radius r given in pixels of the ORIGINAL frame (default 9); the map
  is then max-pooled over regions of ``region`` x ``region`` original pixels (default 30) and
  that grid of region maxima is what is stored (the strategy averages it). Both lengths are
  converted to input pixels by the letterbox gain and rounded (r at least 1): the input is the
  finest resolution the network saw, so upsampling further would add no information.
- ``grid`` (the earlier rule, by name): r counted in cells of each level, levels repeated up to
  the stride-8 grid; the full map is stored and the strategy's ``region`` counts cells.

Both are batched torch ports of `strategies.spatial`, which stays the specification (tests hold
them equal). Classes are processed in chunks so that 80-class maps at 640 px stay bounded, and in
pixel units a class whose probability stays below 1e-3 over a whole level is skipped (its term is
at most H(1e-3) = 0.008 nats per pixel, in practice far less): with COCO's 80 classes at 640 px
this is the difference between seconds and a fraction of a second per image on a CPU.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torchvision.ops import roi_align

from core.divergence import Divergence, divergence_setting  # noqa: F401 - re-exported for the detector

_EPS = 1e-7  # as strategies.spatial
_CLASS_CHUNK = 16
_NEGLIGIBLE = 1e-3  # pixel divergence skips a class whose probability stays below this over a whole level


def content_box(in_shape: Sequence[int], orig_shape: Sequence[int]) -> tuple[int, int, int, int]:
    """(top, left, bottom, right) of the image inside the letterboxed input, in input pixels.

    The same rounding as ultralytics' LetterBox and ``scale_boxes``.
    """
    gain = min(in_shape[0] / orig_shape[0], in_shape[1] / orig_shape[1])
    new_h, new_w = (max(round(x * gain), 1) for x in orig_shape[:2])
    left = round((in_shape[1] - new_w) / 2 - 0.1)
    top = round((in_shape[0] - new_h) / 2 - 0.1)
    return top, left, top + new_h, left + new_w


def level_shapes(in_shape: Sequence[int], strides: Sequence[int], num_anchors: int) -> list[tuple[int, int]] | None:
    """Grid (h, w) of each detection level, or None when they do not account for every anchor."""
    grids = [(-(-int(in_shape[0]) // s), -(-int(in_shape[1]) // s)) for s in strides]
    return grids if sum(h * w for h, w in grids) == num_anchors else None


def class_maps(scores: torch.Tensor, grids: Sequence[tuple[int, int]]) -> list[torch.Tensor]:
    """Split (B, C, anchors) class probabilities into per-level (B, C, h, w) maps."""
    maps, start = [], 0
    for h, w in grids:
        maps.append(scores[..., start : start + h * w].unflatten(-1, (h, w)))
        start += h * w
    return maps


def _binary_entropy(p: torch.Tensor) -> torch.Tensor:
    """Elementwise entropy (nats), in place on a fresh clamped copy: this is the hot loop of scoring."""
    p = p.clamp(_EPS, 1.0 - _EPS)
    q = 1.0 - p
    return p.log().mul_(p).add_(q.log().mul_(q)).neg_()


def _window_mean(x: torch.Tensor, radius: int) -> torch.Tensor:
    """Mean over the (2r+1)^2 window of the last two axes, windows cut at the border."""
    if radius == 0:
        return x
    h, w, k = x.shape[-2], x.shape[-1], 2 * radius + 1
    padded = F.pad(x, (radius, radius, radius, radius))
    rows = padded[..., 0:h, :].clone()  # separable box sum: rows, then columns
    for i in range(1, k):
        rows += padded[..., i : i + h, :]
    sums = rows[..., 0:w].clone()
    for j in range(1, k):
        sums += rows[..., j : j + w]
    ones = F.pad(x.new_ones(h, w), (radius, radius, radius, radius))
    counts = sum(ones[i : i + h, j : j + w] for i in range(k) for j in range(k))
    return sums.div_(counts)


def divergence_maps(maps: Sequence[torch.Tensor], radius: int = 1) -> torch.Tensor:
    """(B, H, W) on the finest grid: `strategies.spatial.divergence_map` for (B, C, h, w) levels."""
    levels = []
    for m in maps:
        m = m.float().contiguous()
        # the window mean is linear, so the mean entropy is summed over classes first (C times less work)
        s = _binary_entropy(_window_mean(m, radius)).sum(1) - _window_mean(_binary_entropy(m).sum(1), radius)
        levels.append(s.clamp_min(0.0))
    finest = max(levels, key=lambda s: s.shape[-1] * s.shape[-2])
    height, width = finest.shape[-2:]
    total = torch.zeros_like(finest)
    for s in levels:
        fy, fx = height // s.shape[-2], width // s.shape[-1]
        if (s.shape[-2] * fy, s.shape[-1] * fx) != (height, width):
            raise ValueError(f"grid {tuple(s.shape[-2:])} does not divide the finest grid {(height, width)}")
        total += s.repeat_interleave(fy, -2).repeat_interleave(fx, -1)
    return total


def level_divergence(m: torch.Tensor, radius: int, chunk: int = 16) -> torch.Tensor:  # chunk: classes at a time
    """(..., H, W) Eq. 4 on (..., C, H, W) probabilities: the per-class divergence summed over classes."""
    total = None
    for c in range(0, m.shape[-3], chunk):
        part = m[..., c : c + chunk, :, :].float().contiguous()
        # the window mean is linear, so the mean entropy is summed over classes first (C times less work)
        s = _binary_entropy(_window_mean(part, radius)).sum(-3) - _window_mean(_binary_entropy(part).sum(-3), radius)
        total = s if total is None else total + s
    assert total is not None
    return total.clamp_min(0.0)


def pixel_divergence(
    levels: Sequence[torch.Tensor],
    in_shape: Sequence[int],
    region: tuple[int, int, int, int],
    gain: float,
    settings: Divergence,
) -> torch.Tensor:
    """(Rh, Rw) region maxima of the pixel divergence of one image's (C, h, w) level maps.

    ``region`` is the image inside the letterboxed input (`content_box`), ``gain`` the letterbox
    scale (input pixels per original pixel)."""
    top, left, bottom, right = region
    r = max(1, round(settings.radius * gain)) if settings.radius > 0 else 0
    total = None
    size = tuple(int(v) for v in in_shape)
    for m in levels:
        m = m[m.amax(dim=(-2, -1)) >= _NEGLIGIBLE]  # speed: an absent class adds at most H(1e-3) = 0.008 nats
        for c in range(0, m.shape[0], _CLASS_CHUNK):  # upsampled in chunks: 80 classes at 640 px would take 130 MB
            up = F.interpolate(m[None, c : c + _CLASS_CHUNK].float(), size=size, mode="bilinear", align_corners=False)
            s = level_divergence(up[0, :, top:bottom, left:right], r)
            total = s if total is None else total + s
    if total is None:  # no class anywhere: no divergence
        total = levels[0].new_zeros((bottom - top, right - left), dtype=torch.float32)
    k = max(1, round(settings.region * gain))
    return F.max_pool2d(total[None, None], k, stride=k, ceil_mode=True)[0, 0]


def _unit(x: torch.Tensor) -> torch.Tensor:
    return x / x.norm(dim=-1, keepdim=True).clamp_min(1e-12)


def box_embeddings(
    feats: Sequence[torch.Tensor], boxes: Sequence[torch.Tensor], strides: Sequence[int]
) -> list[torch.Tensor]:
    """(K_b, sum of level channels) unit-norm embeddings of each image's boxes (input-pixel xyxy)."""
    counts = [len(b) for b in boxes]
    dim = sum(f.shape[1] for f in feats)
    if sum(counts) == 0:
        return [torch.zeros((0, dim)) for _ in boxes]
    rois = torch.cat(
        [torch.cat((torch.full((len(b), 1), i, dtype=b.dtype, device=b.device), b), 1) for i, b in enumerate(boxes)]
    ).float()
    # sampling_ratio=-1: one bilinear sample per cell of the box, i.e. the average over the whole box
    pooled = [
        roi_align(f.float(), rois, output_size=1, spatial_scale=1.0 / s, sampling_ratio=-1, aligned=True)
        for f, s in zip(feats, strides, strict=True)
    ]
    parts = [_unit(p.flatten(1)) for p in pooled]
    out = torch.cat(parts, 1) / len(parts) ** 0.5
    return list(out.cpu().split(counts))


def image_embedding(deepest: torch.Tensor, region: tuple[int, int, int, int], stride: int) -> np.ndarray:
    """Unit-norm mean of a (C, h, w) map over the cells that overlap the image content."""
    top, left, bottom, right = region
    cells = deepest[:, top // stride : -(-bottom // stride), left // stride : -(-right // stride)]
    return _unit(cells.float().mean(dim=(1, 2))).cpu().numpy()
