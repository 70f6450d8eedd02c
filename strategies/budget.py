"""Budget handling, in one place: strategies propose frames (or boxes), the Picker accepts or refuses.

A frame is accepted when it is still available (selectable, not picked, not within +-dt1 of a
picked frame of its video) and fits every limit of the `Budget`: frames, estimated boxes and
cost (frame_cost * frames + box_cost * boxes). Before labeling, a frame's boxes are estimated by
its predicted boxes with confidence >= ``budget.box_conf_threshold``.

A proposal that does not fit is skipped and the next one is tried (greedy knapsack fill in rank
order): a top-ranked crowded frame that would overflow a box budget does not end the cycle.
Note that under a boxes-only budget a frame with no predicted boxes costs nothing; add a frame
limit or a cost model with frame_cost > 0 to bound how many such frames are taken.
"""

from __future__ import annotations

import numpy as np

from strategies.pool import Budget, ScoredPool
from strategies.temporal import TemporalIndex


def estimated_boxes(pool: ScoredPool, conf_threshold: float) -> np.ndarray:
    """(N,) predicted boxes per frame with confidence >= conf_threshold."""
    keep = pool.box_conf >= conf_threshold
    return np.bincount(pool.box_image_index[keep], minlength=pool.num_images).astype(np.int64)


def expected_frames(pool: ScoredPool, budget: Budget, selectable: np.ndarray) -> int:
    """How many frames the budget buys, roughly (for sizing candidate sets): exact for frame budgets."""
    n = int(selectable.sum())
    limits = [n]
    if budget.frames is not None:
        limits.append(budget.frames)
    per_frame = float(estimated_boxes(pool, budget.box_conf_threshold)[selectable].mean()) if n else 0.0
    if budget.boxes is not None and per_frame > 0:
        limits.append(int(np.ceil(budget.boxes / per_frame)))
    if budget.cost is not None:
        unit = budget.spent(1, 0) + budget.box_cost * per_frame
        if unit > 0:
            limits.append(int(np.ceil(budget.cost / unit)))
    return max(min(limits), 0)


class Picker:
    """Accumulates picks in rank order under a budget and the dt1 temporal rule."""

    def __init__(
        self,
        pool: ScoredPool,
        budget: Budget,
        selectable: np.ndarray,
        temporal: TemporalIndex | None = None,
        dt1: int = 0,
    ) -> None:
        self.budget = budget
        self.available = np.asarray(selectable, bool).copy()  # read-only outside the Picker
        self._n_available = int(self.available.sum())
        self.boxes_per_frame = estimated_boxes(pool, budget.box_conf_threshold)
        self._temporal = temporal if dt1 > 0 else None
        self._dt1 = dt1
        self.picked: list[int] = []
        self.values: list[float] = []
        self.boxes: list[int] = []  # box rows queried (box-level strategies only)
        self._picked_set: set[int] = set()
        self.frames_spent = 0
        self.boxes_spent = 0

    def _fits(self, frames: int, boxes: int) -> bool:
        b, f, x = self.budget, self.frames_spent + frames, self.boxes_spent + boxes
        if b.frames is not None and f > b.frames:
            return False
        if b.boxes is not None and x > b.boxes:
            return False
        return b.cost is None or b.spent(f, x) <= b.cost + 1e-9

    @property
    def full(self) -> bool:
        """No further frame can be accepted (frame limit reached, or nothing available)."""
        b = self.budget
        return (b.frames is not None and self.frames_spent >= b.frames) or self._n_available == 0

    def _retire(self, frames: np.ndarray | int) -> None:
        self._n_available -= int(np.count_nonzero(self.available[frames]))
        self.available[frames] = False

    def _accept_frame(self, i: int, value: float, boxes: int) -> None:
        self.picked.append(i)
        self.values.append(float(value))
        self._picked_set.add(i)
        self.frames_spent += 1
        self.boxes_spent += boxes
        self._retire(i)
        if self._temporal is not None:
            self._retire(self._temporal.neighbours(i, self._dt1))

    def offer(self, i: int, value: float) -> bool:
        """Take frame i if it is available and fits; otherwise refuse (and never offer it again)."""
        i = int(i)
        if not self.available[i]:
            return False
        boxes = int(self.boxes_per_frame[i])
        if not self._fits(1, boxes):
            self._retire(i)
            return False
        self._accept_frame(i, value, boxes)
        return True

    def offer_box(self, box: int, frame: int, value: float) -> bool:
        """Box-level query: one box costs one box; its frame costs one frame the first time."""
        frame = int(frame)
        if frame in self._picked_set:
            if not self._fits(0, 1):
                return False
            self.boxes_spent += 1
        else:
            if not self.available[frame] or not self._fits(1, 1):
                return False
            self._accept_frame(frame, value, 1)
        self.boxes.append(int(box))
        return True

    def take_in_order(self, order: np.ndarray, values: np.ndarray) -> None:
        """Offer frames in rank order until the budget is full."""
        b = self.budget
        if b.boxes is None and b.cost is None and self._temporal is None:
            # Frame-only budget, no temporal rule: the prefix of the available frames.
            order = np.asarray(order)
            ok = self.available[order]
            room = max(b.frames - self.frames_spent, 0) if b.frames is not None else len(order)
            take = np.flatnonzero(ok)[:room]
            for k in take:
                self._accept_frame(int(order[k]), float(values[k]), int(self.boxes_per_frame[order[k]]))
            return
        order = np.asarray(order, np.int64)
        # Availability and room only shrink, so once the remaining room is below the cheapest
        # frame still ahead in the order, nothing more can fit.
        boxes = self.boxes_per_frame[order]
        min_boxes_ahead = np.minimum.accumulate(boxes[::-1])[::-1]
        min_cost_ahead = np.minimum.accumulate(b.spent(1, boxes[::-1]))[::-1] if b.cost is not None else None
        for k, (i, v) in enumerate(zip(order.tolist(), np.asarray(values).tolist(), strict=True)):
            if self.full:
                break
            if b.boxes is not None and b.boxes - self.boxes_spent < min_boxes_ahead[k]:
                break
            if min_cost_ahead is not None:
                room = b.cost - b.spent(self.frames_spent, self.boxes_spent)  # type: ignore[operator]
                if room + 1e-9 < min_cost_ahead[k]:
                    break
            self.offer(i, v)
