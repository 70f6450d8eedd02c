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

import torch
import torch.nn.functional as F
from torchvision.ops import roi_align

from core.divergence import Divergence, divergence_setting  # noqa: F401 - re-exported for the detector

_EPS = 1e-7  # as strategies.spatial
_CLASS_CHUNK = 16
_NEGLIGIBLE = 1e-3  # pixel divergence skips a class whose probability stays below this over a whole level
# most elements of one upsampled (images x classes x pixels) chunk of the pixel divergence. A CPU takes one
# image at a time (it is bound by memory bandwidth, and the images of a chunk are padded to the largest
# class count among them: work for nothing); a GPU takes a dozen 640 px images at once (2**26 floats:
# 256 MB a tensor, about 6 of them alive at once, per scoring thread)
_CPU_BUDGET = 0
_GPU_BUDGET = 2**26


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


def _binary_entropy(p: torch.Tensor, inplace: bool = False) -> torch.Tensor:
    """Elementwise entropy (nats); ``inplace`` overwrites ``p``. This is the hot loop of scoring.

    (Two vectorised logs beat ``torch.special.entr`` twice on a CPU: measured.)"""
    p = p.clamp_(_EPS, 1.0 - _EPS) if inplace else p.clamp(_EPS, 1.0 - _EPS)
    q = 1.0 - p
    return p.log().mul_(p).add_(q.log().mul_(q)).neg_()


def _window_mean(x: torch.Tensor, radius: int, pooled: bool | None = None) -> torch.Tensor:
    """Mean over the (2r+1)^2 window of the last two axes, windows cut at the border.

    On a GPU two ``avg_pool2d`` kernels (a row mean, then a column mean; ``count_include_pad=False``
    divides by the cells that exist, whose product is the 2-D window's count); on a CPU, where those
    kernels are slower than plain additions, a separable box sum of about 2 log2(2r+1) additions
    (``pooled`` chooses one of the two whatever the device: the tests hold both to the specification)."""
    if radius == 0:
        return x
    h, w, k = x.shape[-2], x.shape[-1], 2 * radius + 1
    if pooled is None:
        pooled = x.is_cuda
    if pooled:
        flat = x.reshape(-1, 1, h, w)
        flat = F.avg_pool2d(flat, (1, k), stride=1, padding=(0, radius), count_include_pad=False)
        flat = F.avg_pool2d(flat, (k, 1), stride=1, padding=(radius, 0), count_include_pad=False)
        return flat.reshape(x.shape)
    padded = F.pad(x, (radius, radius, radius, radius))
    sums = _box_sum(_box_sum(padded, k, -2), k, -1)
    return sums.div_(_window_counts(h, radius, x.device)[:, None] * _window_counts(w, radius, x.device))


def _box_sum(x: torch.Tensor, k: int, dim: int) -> torch.Tensor:
    """Sums of k consecutive elements along ``dim`` (length n + k - 1 -> n), by doubling: sums of 1, 2,
    4 ... consecutive elements, those of k's binary digits added up (3 + 2 passes for k = 9, not 8)."""
    n = x.shape[dim] - k + 1
    result: torch.Tensor | None = None
    offset, span, power = 0, 1, x
    while span <= k:
        if k & span:
            part = power.narrow(dim, offset, n)
            result = part.clone() if result is None else result.add_(part)
            offset += span
        if 2 * span <= k:
            length = power.shape[dim] - span
            power = power.narrow(dim, 0, length) + power.narrow(dim, span, length)
        span *= 2
    assert result is not None
    return result


def _window_counts(n: int, radius: int, device: torch.device) -> torch.Tensor:
    """How many of the 2r+1 positions around each of n positions exist (a window cut at the border)."""
    i = torch.arange(n, device=device)
    return (i.clamp(max=radius) + 1 + (n - 1 - i).clamp(max=radius)).float()


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


def level_divergence(
    m: torch.Tensor, radius: int, mask: torch.Tensor | None = None, *, scratch: bool = False
) -> torch.Tensor:
    """(..., H, W) Eq. 4 on (..., C, H, W) probabilities: the per-class divergence summed over classes.

    ``mask`` (..., C) of 0/1 drops classes (padding of a batch whose images have different class counts);
    a dropped class adds an exact zero, so an image's result does not depend on its batch. ``scratch``:
    ``m`` is a temporary that may be overwritten (saves a copy of the largest tensor)."""
    m = m.float()
    mean_entropy = _binary_entropy(_window_mean(m, radius), inplace=radius > 0)  # r = 0: the mean is m itself
    entropy = _binary_entropy(m, inplace=scratch)
    if mask is not None and (m.is_cuda or not bool(mask.all())):  # all ones: x * 1 = x, skip the passes
        mask = mask.to(m.dtype)[..., None, None]
        mean_entropy, entropy = mean_entropy.mul_(mask), entropy.mul_(mask)
    # the window mean is linear, so the mean entropy is summed over classes first (C times less work)
    return (mean_entropy.sum(-3) - _window_mean(entropy.sum(-3), radius)).clamp_min_(0.0)


def _active_classes(m: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(n, L) indices of each image's classes above `_NEGLIGIBLE`, in class order, and their 0/1 mask.

    L is the largest count in the batch; shorter rows are padded with masked-out classes."""
    active = m.amax(dim=(-2, -1)) >= _NEGLIGIBLE  # (n, C)
    count = int(active.sum(1).max()) if active.numel() else 0
    order = torch.argsort((~active).to(torch.uint8), dim=1, stable=True)[:, :count]
    return order, active.gather(1, order)


def pixel_divergence_batch(
    levels: Sequence[torch.Tensor],
    in_shape: Sequence[int],
    region: tuple[int, int, int, int],
    gain: float,
    settings: Divergence,
    budget: int | None = None,
) -> torch.Tensor:
    """(n, Rh, Rw) region maxima of the pixel divergence of n images of one original shape.

    ``levels`` are (n, C, h, w) class maps, ``region`` the images' content inside the letterboxed
    input (`content_box`), ``gain`` the letterbox scale (input pixels per original pixel). Each image
    gets exactly the numbers it would get alone: its own classes above `_NEGLIGIBLE`, in the same
    chunks of `_CLASS_CHUNK`. ``budget``: most elements of one upsampled chunk (images x classes x
    pixels); the default keeps a CPU to about one image at a time and lets a GPU take the batch."""
    top, left, bottom, right = region
    n = int(levels[0].shape[0])
    r = max(1, round(settings.radius * gain)) if settings.radius > 0 else 0
    size = tuple(int(v) for v in in_shape)
    pixels = (bottom - top) * (right - left)
    if budget is None:
        budget = _GPU_BUDGET if levels[0].device.type == "cuda" else _CPU_BUDGET
    per = max(1, budget // max(1, _CLASS_CHUNK * pixels))  # images per upsampled chunk
    total = levels[0].new_zeros((n, bottom - top, right - left), dtype=torch.float32)
    for m in levels:
        order, mask = _active_classes(m)  # speed: an absent class adds at most H(1e-3) = 0.008 nats
        if order.shape[1] == 0:
            continue
        idx = order[:, :, None, None].expand(-1, -1, *m.shape[-2:])
        chosen = m.gather(1, idx)
        for c in range(0, chosen.shape[1], _CLASS_CHUNK):  # chunks: 80 classes at 640 px would take 130 MB
            for i in range(0, n, per):
                keep = mask[i : i + per, c : c + _CLASS_CHUNK]
                width = int(keep.sum(1).max())  # this chunk's images' most classes: no work on padding
                if width == 0:
                    continue
                part = chosen[i : i + per, c : c + width].float()
                up = F.interpolate(part, size=size, mode="bilinear", align_corners=False)
                total[i : i + per] += level_divergence(
                    up[..., top:bottom, left:right], r, keep[:, :width], scratch=True
                )
    k = max(1, round(settings.region * gain))
    return F.max_pool2d(total[:, None], k, stride=k, ceil_mode=True)[:, 0]


def pixel_divergence(
    levels: Sequence[torch.Tensor],
    in_shape: Sequence[int],
    region: tuple[int, int, int, int],
    gain: float,
    settings: Divergence,
) -> torch.Tensor:
    """(Rh, Rw) region maxima of the pixel divergence of one image's (C, h, w) level maps
    (`pixel_divergence_batch` of a batch of one)."""
    return pixel_divergence_batch([m[None] for m in levels], in_shape, region, gain, settings)[0]


def _unit(x: torch.Tensor) -> torch.Tensor:
    return x / x.norm(dim=-1, keepdim=True).clamp_min(1e-12)


def box_embeddings(
    feats: Sequence[torch.Tensor], boxes: torch.Tensor, image_index: torch.Tensor, strides: Sequence[int]
) -> torch.Tensor:
    """(K, sum of level channels) unit-norm embeddings of the boxes of a batch, on the features' device.

    ``boxes`` (K, 4) input-pixel xyxy of every image's boxes in one tensor, ``image_index`` (K,) the
    image of each: one ``roi_align`` per level for the whole batch."""
    dim = sum(f.shape[1] for f in feats)
    if len(boxes) == 0:
        return feats[0].new_zeros((0, dim), dtype=torch.float32)
    rois = torch.cat((image_index[:, None].to(boxes.dtype), boxes), 1).float()
    # sampling_ratio=-1: one bilinear sample per cell of the box, i.e. the average over the whole box
    pooled = [
        roi_align(f.float(), rois, output_size=1, spatial_scale=1.0 / s, sampling_ratio=-1, aligned=True)
        for f, s in zip(feats, strides, strict=True)
    ]
    parts = [_unit(p.flatten(1)) for p in pooled]
    return torch.cat(parts, 1) / len(parts) ** 0.5


def image_embeddings(deepest: torch.Tensor, region: tuple[int, int, int, int], stride: int) -> torch.Tensor:
    """(n, C) unit-norm means of (n, C, h, w) maps over the cells that overlap the images' common content."""
    top, left, bottom, right = region
    cells = deepest[:, :, top // stride : -(-bottom // stride), left // stride : -(-right // stride)]
    return _unit(cells.float().mean(dim=(2, 3)))
