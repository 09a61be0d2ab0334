"""Which student layer learns from which teacher layer: the uniform map of TinyBERT (Jiao et al. 2020, §3.1,
g(m) = m·N/M) and checks of a hand-written map.

Layers are counted with the embedding output as layer 0, so an L-layer encoder has hidden states 0..L (the
`hidden_states` tuple a transformers encoder returns with output_hidden_states=True has L + 1 entries).
A map is a list of (student_layer, teacher_layer) pairs.
"""

from __future__ import annotations

LayerMap = list[tuple[int, int]]


def uniform_layer_map(teacher_layers: int, student_layers: int, include_embeddings: bool = True) -> LayerMap:
    """Student layer m ↔ teacher layer m·(L_t/L_s), for m = 0..L_s (m = 1..L_s without the embeddings).

    12 → 3: [(0, 0), (1, 4), (2, 8), (3, 12)]; 12 → 4: teacher 0, 3, 6, 9, 12; 24 → 6: teacher 0, 4, ..., 24.
    A student deeper than its teacher, a non-positive depth, or L_t not a multiple of L_s (no uniform map;
    write the pairs by hand and pass them through `check_layer_map`) is a ValueError.
    """
    if teacher_layers < 1 or student_layers < 1:
        raise ValueError(f"layer map: depths must be >= 1, got teacher {teacher_layers}, student {student_layers}")
    if student_layers > teacher_layers:
        raise ValueError(
            f"layer map: a {student_layers}-layer student cannot map uniformly onto a {teacher_layers}-layer teacher"
        )
    if teacher_layers % student_layers:
        raise ValueError(
            f"layer map: {teacher_layers} teacher layers are not a multiple of {student_layers} student layers, so "
            "no uniform map exists; give the (student, teacher) pairs by hand"
        )
    step = teacher_layers // student_layers
    return [(m, m * step) for m in range(0 if include_embeddings else 1, student_layers + 1)]


def check_layer_map(pairs, teacher_layers: int, student_layers: int) -> LayerMap:
    """`pairs` as a LayerMap after checks: indices within 0..L (embeddings = 0), each student layer once."""
    out = [(int(s), int(t)) for s, t in pairs]
    if not out:
        raise ValueError("layer map: empty; give at least one (student, teacher) pair")
    for s, t in out:
        if not (0 <= s <= student_layers and 0 <= t <= teacher_layers):
            raise ValueError(
                f"layer map: pair ({s}, {t}) is outside student layers 0..{student_layers} / teacher layers "
                f"0..{teacher_layers} (0 is the embedding output)"
            )
    students = [s for s, _ in out]
    if len(set(students)) != len(students):
        raise ValueError(f"layer map: student layers {students} repeat; map each student layer once")
    return out
