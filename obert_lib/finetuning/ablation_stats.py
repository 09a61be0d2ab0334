"""Paired statistics for an ablation: mean ± std per task × variant, Δ against the baseline, paired t-test and
Wilcoxon signed-rank test over seeds, and the cost in seconds per optimiser step relative to the baseline.

References: Student's t distribution through the regularized incomplete beta function, I_x(a, b), evaluated
by Lentz's continued fraction (Press et al., Numerical Recipes, 3rd ed., §6.4 `betacf`, §6.14.9);
Wilcoxon (1945) signed-rank test with zero differences dropped (Wilcoxon's own rule, scipy's default
zero_method='wilcox') and average ranks for ties; its exact null distribution counts all 2^n sign
assignments (here by dynamic programming over rank sums, which gives the same counts as enumerating them).
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import pandas as pd

SUMMARY_COLUMNS = [
    "task",
    "variant",
    "baseline",
    "n",
    "mean",
    "std",
    "delta",
    "n_pairs",
    "t",
    "p_t",
    "p_wilcoxon",
    "seconds_per_step",
    "cost_ratio",
    "failed",
]


def _betacf(a: float, b: float, x: float, max_iter: int = 300, eps: float = 1e-15) -> float:
    """Continued fraction of the incomplete beta function (Numerical Recipes §6.4, modified Lentz)."""
    tiny = 1e-300
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, max_iter + 1):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < eps:
            break
    return h


def betainc(a: float, b: float, x: float) -> float:
    """Regularized incomplete beta function I_x(a, b) for a, b > 0 and 0 <= x <= 1 (Numerical Recipes §6.4)."""
    if not 0.0 <= x <= 1.0:
        raise ValueError(f"betainc: x={x} is outside [0, 1]")
    if x in (0.0, 1.0):
        return x
    log_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    if x < (a + 1.0) / (a + b + 2.0):  # the continued fraction converges fast here; else use the symmetry
        return math.exp(log_front) * _betacf(a, b, x) / a
    return 1.0 - math.exp(log_front) * _betacf(b, a, 1.0 - x) / b


def t_two_sided_p(t: float, df: float) -> float:
    """Two-sided p-value P(|T| >= |t|) of Student's t with `df` degrees of freedom: I_{df/(df+t²)}(df/2, 1/2)."""
    if math.isnan(t) or df <= 0:
        return math.nan
    if math.isinf(t):
        return 0.0
    return min(1.0, betainc(df / 2.0, 0.5, df / (df + t * t)))


def paired_t(x: Sequence[float], y: Sequence[float]) -> tuple[float, float]:
    """Paired t-test of x against y: (t, two-sided p) on the differences x − y, n − 1 degrees of freedom.

    NaN for fewer than 2 pairs and for differences that are all zero (t is 0/0, as in scipy.stats.ttest_rel);
    identical nonzero differences give t = ±inf and p = 0.
    """
    d = np.asarray(x, dtype=float) - np.asarray(y, dtype=float)
    n = len(d)
    if n < 2:
        return math.nan, math.nan
    mean, sd = float(d.mean()), float(d.std(ddof=1))
    if sd == 0.0:
        if mean == 0.0:
            return math.nan, math.nan
        return math.copysign(math.inf, mean), 0.0
    t = mean / (sd / math.sqrt(n))
    return t, t_two_sided_p(t, n - 1)


def _average_ranks(values: np.ndarray) -> np.ndarray:
    """Ranks 1..n of `values`, ties sharing their average rank."""
    order = np.argsort(values, kind="mergesort")
    ranks = np.empty(len(values), dtype=float)
    sorted_values = values[order]
    start = 0
    while start < len(values):
        end = start
        while end + 1 < len(values) and sorted_values[end + 1] == sorted_values[start]:
            end += 1
        ranks[order[start : end + 1]] = (start + end) / 2.0 + 1.0
        start = end + 1
    return ranks


def wilcoxon_exact(x: Sequence[float], y: Sequence[float]) -> float:
    """Exact two-sided p of the Wilcoxon signed-rank test of x against y (paired).

    Zero differences are dropped; ties among |d| get average ranks. p = the share of the 2^n equally likely
    sign assignments whose positive-rank sum W lies at least as far from its mean n(n+1)/4 as the observed
    one (for tie-free data this equals scipy's exact 2·min-tail p). NaN for fewer than 2 pairs or when every
    difference is zero. With n = 3 the smallest possible p is 2/8 = 0.25.
    """
    d = np.asarray(x, dtype=float) - np.asarray(y, dtype=float)
    if len(d) < 2:
        return math.nan
    d = d[d != 0.0]
    if len(d) == 0:
        return math.nan
    doubled = np.rint(2.0 * _average_ranks(np.abs(d))).astype(int)  # average ranks are multiples of 1/2
    total = int(doubled.sum())
    counts = [0] * (total + 1)  # counts[s]: sign assignments whose doubled positive-rank sum is s
    counts[0] = 1
    for r in doubled:
        for s in range(total, r - 1, -1):
            counts[s] += counts[s - r]
    observed = int(doubled[d > 0].sum())
    distance = abs(2 * observed - total)
    extreme = sum(c for s, c in enumerate(counts) if abs(2 * s - total) >= distance)
    return min(1.0, extreme / 2 ** len(d))


def summarise_ablation(
    runs: pd.DataFrame,
    baseline: str,
    metric: str = "eval_metric",
    cost: str = "seconds_per_step",
    order: Sequence[tuple[str, str]] | None = None,
) -> pd.DataFrame:
    """One row per task × variant from the runs table (columns task, variant, seed, status, `metric`, `cost`).

    Only runs with status other than 'failed' count. n, mean, std (ddof=1; NaN for n < 2) of `metric`;
    delta = mean − the baseline variant's mean on the same task; the paired tests pair runs by seed (seeds
    present in both); seconds_per_step = mean of `cost`; cost_ratio = that mean / the baseline's mean (a ratio
    of means). The baseline's own row has delta 0, cost_ratio 1 and NaN tests. `order` fixes the row order
    (default: first appearance in `runs`).
    """
    runs = runs.assign(**{c: math.nan for c in (metric, cost) if c not in runs})  # every run failed: no metrics
    ok = runs[runs["status"] != "failed"] if "status" in runs else runs
    if order is None:
        order = list(dict.fromkeys(zip(runs["task"], runs["variant"])))
    rows = []
    for task, variant in order:
        mine = ok[(ok["task"] == task) & (ok["variant"] == variant)]
        base = ok[(ok["task"] == task) & (ok["variant"] == baseline)]
        values = mine[metric].astype(float) if len(mine) else pd.Series(dtype=float)
        base_values = base[metric].astype(float) if len(base) else pd.Series(dtype=float)
        mean = float(values.mean()) if len(values) else math.nan
        base_mean = float(base_values.mean()) if len(base_values) else math.nan
        paired = mine.set_index("seed")[[metric]].join(
            base.set_index("seed")[[metric]], how="inner", lsuffix="_variant", rsuffix="_baseline"
        )
        x, y = paired[f"{metric}_variant"].to_numpy(float), paired[f"{metric}_baseline"].to_numpy(float)
        is_baseline = variant == baseline
        t, p_t = (math.nan, math.nan) if is_baseline else paired_t(x, y)
        sps = float(mine[cost].astype(float).mean()) if len(mine) else math.nan
        base_sps = float(base[cost].astype(float).mean()) if len(base) else math.nan
        n_failed = len(runs[(runs["task"] == task) & (runs["variant"] == variant)]) - len(mine)
        rows.append(
            {
                "task": task,
                "variant": variant,
                "baseline": is_baseline,
                "n": len(values),
                "mean": mean,
                "std": float(values.std(ddof=1)) if len(values) >= 2 else math.nan,
                "delta": mean - base_mean,
                "n_pairs": len(paired),
                "t": t,
                "p_t": p_t,
                "p_wilcoxon": math.nan if is_baseline else wilcoxon_exact(x, y),
                "seconds_per_step": sps,
                "cost_ratio": sps / base_sps if base_sps and not math.isnan(base_sps) else math.nan,
                "failed": n_failed,
            }
        )
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)
