"""Selection speed: greedy k-center over box embeddings and uncertainty ranking of 1M boxes.

    .venv/bin/python benchmarks/select_speed.py            # the full sizes (about a minute)
    .venv/bin/python benchmarks/select_speed.py --quick    # 10x smaller, a smoke run

Every time is printed next to a baseline measured in the same run on the same arrays (one
distance pass over all points; the plain k-center without triangle pruning; one read of the
probability matrix), so the ratios stay meaningful on a busy shared machine where absolute
times swing; the k-center also prints how many distances it evaluated, a work count that
does not depend on the load. Targets on the 2-core dev box: k-center 100k x 256, 1,000 picks < 10 s; uncertainty
ranking of 1M boxes < 2 s. Peak memory (tracemalloc, numpy allocations) shows k-center is O(N).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from strategies import Budget, CycleState, ScoredPool, select  # noqa: E402
from strategies.diversity import KCenter  # noqa: E402

MiB = 1 << 20


def clustered(rng: np.random.Generator, n: int, d: int, clusters: int = 500, noise: float = 0.35) -> np.ndarray:
    """Embeddings as a detector's tend to be: objects of a kind near each other (a Gaussian mixture)."""
    centres = rng.standard_normal((clusters, d), dtype=np.float32)
    return centres[rng.integers(0, clusters, n)] + noise * rng.standard_normal((n, d), dtype=np.float32)


def isotropic(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    """The worst case for pruning: no structure, every pair about equally far apart."""
    return rng.standard_normal((n, d), dtype=np.float32)


def box_pool(emb: np.ndarray, probs: np.ndarray | None = None, boxes_per_frame: int = 1) -> ScoredPool:
    m = len(emb) if probs is None else len(probs)
    n = m // boxes_per_frame
    if probs is None:
        probs = np.full((m, 1), 0.9, np.float32)
    return ScoredPool(
        frame_ids=np.array([f"f{i}" for i in range(n)], dtype=object),
        box_offsets=np.arange(0, m + 1, boxes_per_frame, dtype=np.int64),
        box_xyxy=np.zeros((m, 4), np.float32),
        box_conf=probs.max(axis=1),
        box_probs=probs,
        box_embeddings=emb,
        image_embeddings=np.zeros((n, 0), np.float32),
        image_sizes=np.zeros((n, 2), np.int32),
    )


def one_pass(x: np.ndarray, repeats: int = 15) -> list[float]:
    """Seconds of ``repeats`` full distance updates: (N, d) x (d,), squared distance, running min."""
    sq = np.einsum("ij,ij->i", x, x)
    mind = np.full(len(x), np.inf, np.float32)
    times = []
    for r in range(repeats):
        v = x[r]
        t = time.perf_counter()
        d2 = sq - 2 * (x @ v) + v @ v
        np.minimum(mind, d2, out=mind)
        int(np.argmax(mind))
        times.append(time.perf_counter() - t)
    return times


def kcenter_picks(x: np.ndarray, picks: int, prune: bool = True) -> tuple[float, list[int], int]:
    """Seconds, picks and distances evaluated by the KCenter core loop (first center: row 0)."""
    kc = KCenter(x, prune=prune)
    alive = np.ones(len(x), bool)
    order, i = [], 0
    t = time.perf_counter()
    for _ in range(picks):
        alive[i] = False
        order.append(i)
        kc.add_rows([i], alive)
        i, _ = kc.farthest(alive)
    return time.perf_counter() - t, order, kc.rows_computed


def timed_select(name: str, pool: ScoredPool, budget: Budget, **params: object) -> tuple[float, int]:
    t = time.perf_counter()
    sel = select(name, pool, budget, CycleState(), seed=0, **params)
    return time.perf_counter() - t, len(sel.indices)


def peak_mib(fn: object) -> float:
    tracemalloc.start()
    tracemalloc.reset_peak()
    fn()  # type: ignore[operator]
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak / MiB


def bench_kcenter(n: int, d: int, picks: int, rng: np.random.Generator) -> None:
    print(f"\n== greedy k-center: {n:,} box embeddings x {d}, {picks:,} picks ==")
    datasets = (("clustered (500-component mixture)", clustered), ("isotropic Gaussian (worst case)", isotropic))
    for label, make in datasets:
        x = make(rng, n, d)
        check = min(picks, 100)
        passes = one_pass(x)
        t_plain, plain_order, _ = kcenter_picks(x, check, prune=False)
        t_core, order, rows = kcenter_picks(x, picks)
        t_sel, got = timed_select("object_diversity", box_pool(x), Budget(frames=picks), metric="euclidean")
        base = float(np.median(passes + one_pass(x)))  # measured before and after the runs
        print(f"-- {label}")
        print(f"   baseline: one distance pass (median of 30)    {base * 1e3:8.2f} ms")
        print(
            f"   baseline: plain k-center, first {check} picks    {t_plain:8.2f} s   "
            f"{t_plain / check * 1e3:6.2f} ms/pick = {t_plain / check / base:5.2f} passes"
        )
        print(
            f"   pruned k-center core, {picks} picks          {t_core:8.2f} s   "
            f"{t_core / picks * 1e3:6.2f} ms/pick = {t_core / picks / base:5.2f} passes"
        )
        print(f"     distances evaluated per pick: {rows / picks / n:6.1%} of N (deterministic work count)")
        print(
            f"   select('object_diversity'), {got} frames      {t_sel:8.2f} s   "
            f"(target < 10 s: {'ok' if t_sel < 10 else 'MISSED'}; {picks} plain passes ~ {picks * base:5.2f} s)"
        )
        print(f"   same first {check} picks as the plain k-center: {order[:check] == plain_order}")


def bench_memory(d: int, sizes: list[int], picks: int, rng: np.random.Generator) -> None:
    print(f"\n== k-center peak memory (tracemalloc, beyond the input), d={d}, {picks} picks ==")
    print(f"   {'N':>8} {'input MiB':>10} {'core MiB':>9} {'B/point':>8} {'select MiB':>11} {'N x N f32 GiB':>14}")
    for n in sizes:
        x = clustered(rng, n, d)
        pool = box_pool(x)
        core = peak_mib(lambda x=x: kcenter_picks(x, picks))
        full = peak_mib(lambda pool=pool: select("object_diversity", pool, Budget(frames=picks), CycleState()))
        print(
            f"   {n:>8,} {x.nbytes / MiB:>10.1f} {core:>9.2f} {core * MiB / n:>8.1f} {full:>11.1f}"
            f" {n * n * 4 / 2**30:>14.1f}"
        )
    print("   core: distances, nearest-center ids and per-pass temporaries (a few N-vectors);")
    print("   select: also the (N, d) copy of the boxes above the confidence threshold.")


def bench_uncertainty(m: int, c: int, per_frame: int, rng: np.random.Generator) -> None:
    print(f"\n== uncertainty ranking: {m:,} boxes x {c} classes in {m // per_frame:,} frames ==")
    probs = rng.random((m, c), dtype=np.float32) ** 8  # mostly small, a few confident
    pool = box_pool(np.zeros((m, 0), np.float32), probs, per_frame)
    times = []
    for r in range(5):
        t = time.perf_counter()
        pool.box_probs.max(axis=1)
        times.append(time.perf_counter() - t)
        del r
    base = float(np.median(times))
    print(f"   baseline: one read of the probabilities (max over classes)   {base:6.3f} s")
    for measure in ("least_confidence", "margin", "entropy"):
        for budget in (Budget(frames=1000), Budget(boxes=5000)):
            t, got = timed_select("uncertainty", pool, budget, measure=measure, aggregation="max")
            limit = f"frames={budget.frames}" if budget.frames else f"boxes={budget.boxes}"
            print(
                f"   {measure:>16}, {limit:<12} -> {got:5d} frames   {t:6.3f} s  ({t / base:5.1f}x baseline,"
                f" target < 2 s: {'ok' if t < 2 else 'MISSED'})"
            )
    t, _ = timed_select("uncertainty", pool, Budget(frames=1000), measure="margin", class_weights=True)
    print(f"   margin + class weights, frames=1000                          {t:6.3f} s  ({t / base:5.1f}x baseline)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10x smaller sizes, a smoke run")
    args = parser.parse_args()
    scale = 10 if args.quick else 1
    rng = np.random.default_rng(0)
    print(
        f"numpy {np.__version__}; sizes {'/10 (quick)' if args.quick else 'full'}; "
        f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs"
    )
    bench_kcenter(100_000 // scale, 256, 1000 // scale, rng)
    bench_memory(256, [25_000 // scale, 50_000 // scale, 100_000 // scale], 50, rng)
    bench_uncertainty(1_000_000 // scale, 80, 10, rng)
    print(
        f"\nload average at the end {os.getloadavg()[0]:.2f}: other jobs on these cores stretch the times,"
        " not the work counts"
    )


if __name__ == "__main__":
    main()
