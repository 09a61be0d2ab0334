"""Chinese word segmentation + POS tags in C, the same output as rjieba.tag (jieba-rs 0.11, HMM on).

The C extension `_segmenter` implements Sun Junyi's jieba algorithm as jieba-rs does (dictionary
DAG, max-probability route, finalseg HMM for unknown runs, posseg HMM to tag unknown words). The
data are read at run time from the installed jieba 0.42.1 package: dict.txt and the finalseg/ and
posseg/ probability modules, which hold the data jieba-rs embeds (its finalseg emissions rounded
to 6 decimals, which is done here too).
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path

from obert_lib.corpus._segmenter import Model

# jieba's log-probability of the impossible.
MIN_FLOAT = -3.14e100
# finalseg states in jieba's (alphabetical) order, which is how its Viterbi breaks ties.
HMM_STATES = "BEMS"
# posseg positions in jieba-rs's numbering: state = position * n_tags + tag index.
POS_POSITIONS = "BMES"


def _jieba_dir() -> Path:
    """The installed jieba package (found, not imported)."""
    return Path(importlib.util.find_spec("jieba").origin).parent


def _jieba_table(module: str) -> dict:
    """`P` of one of jieba's probability modules (e.g. "finalseg/prob_emit"), loaded from the .py
    file (through its bytecode cache) without staying in sys.modules, so the tables are freed."""
    name = "_jieba_" + module.replace("/", "_")
    spec = importlib.util.spec_from_file_location(name, _jieba_dir() / f"{module}.py")
    table = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(table)
    return table.P


def _jieba_model_data() -> dict:
    """jieba 0.42.1's dictionary and HMM tables, laid out as `_segmenter.Model` takes them."""
    hmm_start, hmm_trans, hmm_emit = (_jieba_table(f"finalseg/prob_{t}") for t in ("start", "trans", "emit"))
    pos_start, pos_trans, pos_emit = (_jieba_table(f"posseg/prob_{t}") for t in ("start", "trans", "emit"))
    tags = sorted({tag for _, tag in pos_start})
    state = {(p, t): i * len(tags) + j for i, p in enumerate(POS_POSITIONS) for j, t in enumerate(tags)}
    start = [MIN_FLOAT] * len(state)
    trans: list[dict] = [{} for _ in state]
    emit: list[dict] = [{} for _ in state]
    for key, prob in pos_start.items():
        start[state[key]] = prob
    for key, row in pos_trans.items():
        trans[state[key]] = {state[to]: prob for to, prob in row.items()}
    for key, row in pos_emit.items():
        emit[state[key]] = row
    return {
        "dictionary": (_jieba_dir() / "dict.txt").read_bytes(),
        "hmm_start": [hmm_start[s] for s in HMM_STATES],
        "hmm_trans": [[hmm_trans[a].get(b, MIN_FLOAT) for b in HMM_STATES] for a in HMM_STATES],
        # jieba-rs embeds cppjieba's hmm.model, whose emission log-probabilities are jieba's
        # printed with "%f" (6 decimals); start and transition ones are kept in full.
        "hmm_emit": [{ch: float("%f" % p) for ch, p in hmm_emit[s].items()} for s in HMM_STATES],
        "pos_tags": tags,
        "pos_start": start,
        "pos_trans": trans,
        "pos_emit": emit,
        "pos_char_state": {
            ch: [state[s] for s in states] for ch, states in _jieba_table("posseg/char_state_tab").items()
        },
    }


class Segmenter(Model):
    """jieba-rs word segmentation + POS tags in C (same output as rjieba.tag).

    Methods (in C): tag(text) -> [(word, tag)], tag_offsets(text) -> packed native int32
    (char_start, char_end, tag_id, record_id) per word, add_word(word, freq=None, tag=None),
    suggest_freq(segment), record_word(record_id); attributes tag_names (tag id -> POS string)
    and n_records. Record ids are dictionary line indices, then added words; -1 is "not in the
    dictionary". Offsets are str code-point offsets and the words tile the text.
    """

    def __init__(self) -> None:
        super().__init__(**_jieba_model_data())

    def add_word(self, word: str, freq: int | None = None, tag: str | None = None) -> None:
        """Add `word` like rjieba.add_word: freq None -> suggest_freq(word); an existing word keeps its tag."""
        super().add_word(word, freq, tag)


@functools.lru_cache(maxsize=None)
def default_segmenter() -> Segmenter:
    """The process-wide Segmenter the corpus stage uses, built on first use; annotate.load_user_dict adds
    user words to it (and to rjieba), so keep a Segmenter() of your own for an unchanged dictionary."""
    return Segmenter()
