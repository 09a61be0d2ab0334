"""`obert bench unified`: compute of one shared backbone (UnifiedModel) against T separate task models.

For T tasks in {1, 3, 10} and top N in {1, 3, 6} fine-tuned layers per task, at BERT's 12-layer (base: hidden
768, 12 heads, ffn 3072) and 24-layer (300M: hidden 1024, 16 heads, ffn 4096) shapes, one batch of random token
ids (default 1 x 128 tokens), random weights (OBERT encoder, BERT's absolute positions and Post-LN, a
2-class classification head per task):
- FLOPs: torch.utils.flop_counter.FlopCounterMode over `UnifiedModel.forward` (the shared bottom L − N layers
  once, then T tops of N layers + head) and over T calls of `FinetuneModel.forward` (T full models), on the
  meta device (exact counts, no weights; obert_lib.unified.flops);
- wall time of the same two calls on the CPU under torch.inference_mode, median of `repeats` interleaved runs
  after one untimed forward per shape. The T tops (and the T separate models) are the same modules called T
  times: the compute of T distinct models, the memory of one (ten 24-layer models would need ~13 GB).
Beside the measured ratio shared/separate: OBERT's theory (L + T·N) / (T·L) and the exact layer count
(L − N + T·N) / (T·L). The theory counts the N top layers of the shared backbone once more than a model that
branches after layer L − N runs, so the measured ratio sits N / (T·L) below it (5.6% at T = 10, N = 3, L = 24;
more at small T·L); it matches the layer count to within the heads (one H x 2 linear per task, counted on both
sides) and what the counter does not see (embedding lookups, LayerNorm, GELU, softmax: elementwise).
Last line: `ratio: <measured shared/separate FLOPs at T = 10, N = 3, 24 layers>` (the grid's largest L at
T = 10, N = 3 when the grid lacks 24 layers, else its last row); OBERT reports 0.27 there.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field
from typing import Sequence

import torch

from ..config import ConfigError
from ..model.configuration import PRESETS
from ..unified import flops

OBERT_FIGURE = 0.27  # "at 10 tasks and N = 3 the total compute was about 27% of 10 fully fine-tuned models"
SHAPES = ("base", "300M")  # 12 layers / hidden 768 and 24 layers / hidden 1024


@dataclass
class UnifiedRow:
    layers: int
    tasks: int
    top: int
    shared_flops: int
    separate_flops: int
    layer_flops: int  # one encoder layer, counted alone
    head_flops: int  # one task head, counted alone
    shared_s: list[float] = field(default_factory=list)  # seconds per timed run
    separate_s: list[float] = field(default_factory=list)

    @property
    def ratio(self) -> float:
        return self.shared_flops / self.separate_flops

    @property
    def theory(self) -> float:
        return flops.theory_ratio(self.layers, self.tasks, self.top)

    @property
    def exact(self) -> float:
        return flops.exact_ratio(self.layers, self.tasks, self.top)


def _shape(shape) -> tuple[str, tuple[int, int, int, int]]:
    if isinstance(shape, str):
        if shape not in PRESETS:
            raise ConfigError(f"shapes: {shape!r} is not a model preset; use one of {list(PRESETS)}")
        return shape, PRESETS[shape]
    if len(shape) != 4 or not all(isinstance(x, int) and x > 0 for x in shape):
        raise ConfigError(f"shapes: {shape!r} must be a preset name or (layers, hidden, heads, ffn) integers")
    return "custom", tuple(shape)


def _time(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def _headline(rows: list[UnifiedRow]) -> UnifiedRow:
    picks = [r for r in rows if r.tasks == 10 and r.top == 3]
    return max(picks, key=lambda r: r.layers) if picks else rows[-1]


def run(
    seq_len: int = 128,
    batch_size: int = 1,
    tasks: Sequence[int] = (1, 3, 10),
    tops: Sequence[int] = (1, 3, 6),
    shapes: Sequence = SHAPES,
    repeats: int = 3,
    threads: int | None = None,
    seed: int = 0,
) -> list[UnifiedRow]:
    """Count and time every (shape, T, N) with N <= L; print one table and `ratio: X`."""
    if repeats < 1 or seq_len < 2 or batch_size < 1:
        raise ConfigError("repeats, seq_len, batch_size: must be >= 1 (seq_len >= 2)")
    if not tasks or not tops or min(tasks) < 1 or min(tops) < 1:
        raise ConfigError("tasks, tops: give non-empty lists of integers >= 1")
    named = [_shape(s) for s in shapes]
    saved_threads = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        rows = []
        for _, shape in named:
            shape_rows = []
            for t in tasks:
                for n in [n for n in tops if n <= shape[0]]:
                    m = flops.measured(shape, t, n, batch_size, seq_len)
                    shape_rows.append(UnifiedRow(shape[0], t, n, m["shared"], m["separate"], m["layer"], m["head"]))
            _time_shape(shape, shape_rows, batch_size, seq_len, repeats, seed)
            rows += shape_rows
        _print(named, rows, batch_size, seq_len, repeats, seed)
        return rows
    finally:
        torch.set_num_threads(saved_threads)


def _time_shape(shape, rows: list[UnifiedRow], batch_size: int, seq_len: int, repeats: int, seed: int) -> None:
    """Median-able wall times of each row's two sides; separate runs are timed once per T (they do not depend
    on N) and shared among that T's rows."""
    torch.manual_seed(seed)
    model = flops.task_model(shape)
    inputs = flops.batch(batch_size, seq_len, seed=seed)
    unified = {(r.tasks, r.top): flops.unified_of(model, r.tasks, r.top) for r in rows}
    with torch.inference_mode():
        model(inputs)  # untimed warm-up
        for _ in range(repeats):
            separate = {t: _time(lambda: flops.separate_forward(model, t, inputs)) for t in {r.tasks for r in rows}}
            for r in rows:
                r.shared_s.append(_time(lambda: unified[(r.tasks, r.top)](**inputs)))
                r.separate_s.append(separate[r.tasks])


def _print(named, rows: list[UnifiedRow], batch_size: int, seq_len: int, repeats: int, seed: int) -> None:
    print(f"device: CPU; torch threads: {torch.get_num_threads()}; fp32; random OBERT encoders (absolute positions, "
          f"Post-LN), a 2-class head per task; batch {batch_size} x {seq_len} tokens; seed {seed}")  # fmt: skip
    for name, (layers, hidden, heads, ffn) in named:
        print(f"shape {name}: {layers} layers, hidden {hidden}, {heads} heads, ffn {ffn}")
    print("FLOPs: FlopCounterMode on the meta device, UnifiedModel.forward vs T x FinetuneModel.forward; "
          f"ms: CPU wall time, median of {repeats} interleaved runs (T separate timed once per T)")  # fmt: skip
    print("theory = (L + T·N) / (T·L) (OBERT); layers = (L − N + T·N) / (T·L) (what a backbone shared up to "
          "layer L − N runs); d = measured / that − 1")  # fmt: skip
    header = (f"\n{'L':>3s} {'T':>3s} {'N':>3s} {'theory':>7s} {'layers':>7s} {'GFLOP shared':>12s} "
              f"{'GFLOP separate':>14s} {'FLOPs ratio':>11s} {'d theory':>8s} {'d layers':>8s} {'ms shared':>10s} "
              f"{'ms separate':>11s} {'time ratio':>10s}")  # fmt: skip
    print(header)
    for r in rows:
        shared, separate = statistics.median(r.shared_s), statistics.median(r.separate_s)
        print(
            f"{r.layers:3d} {r.tasks:3d} {r.top:3d} {r.theory:7.4f} {r.exact:7.4f} {r.shared_flops / 1e9:12.4g} "
            f"{r.separate_flops / 1e9:14.4g} {r.ratio:11.4f} {100 * (r.ratio / r.theory - 1):+7.2f}% "
            f"{100 * (r.ratio / r.exact - 1):+7.2f}% {1000 * shared:10.1f} {1000 * separate:11.1f} "
            f"{shared / separate:10.3f}"
        )
    head = _headline(rows)
    print(f"\nOBERT reports {OBERT_FIGURE} at T = 10, N = 3 (10 tasks against 10 fully fine-tuned models); "
          f"here L = {head.layers}, T = {head.tasks}, N = {head.top}: theory {head.theory:.4f}, layers "
          f"{head.exact:.4f}, measured {head.ratio:.4f}")  # fmt: skip
    print(f"ratio: {head.ratio:.4f}")
