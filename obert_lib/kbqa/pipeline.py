"""The KgCLUE QA pipeline: mention tagger -> candidate entities -> relation classifier -> object from the store.

`KbqaPipeline(tagger_dir, relation_dir, store).ask(question)`:
1. mention detection: the tagger (finetuning data.task "kgclue_ner", tags O/B-SUBJ/I-SUBJ) tags the question;
   each token's tag covers the characters of its offsets (a word's later sub-tokens continue its tag as I-), and
   the spans are read as `finetuning.ner.spans` reads them (seqeval's default mode);
2. candidate entities: `store.entities(mention)` (exact surface form, suffix removed) for every mention; when
   none is found, `store.fuzzy_entities(mention)`; when the tagger found no mention or neither lookup found an
   entity, `store.fuzzy_entities(question)` (every substring of the question; `question_fallback`); at most
   `max_candidates` entities, in that order;
3. relation choice: every relation of every candidate is paired with the question (the candidate's mention
   wrapped in 「」 when the classifier was trained so, `relation_data.mark`) and scored by the pair classifier
   (probability of label "1"); the best (entity, relation) wins, the earlier candidate on ties;
4. the object: the first of `store.objects(entity, relation)` (code-point order).
`ask` answers {"answer": "S ||| P ||| O" or "", "stage": "answered" | "mention_missed" (no mention and no
entity found from the question) | "entity_not_found" (mentions, but no entity), and the trace: mentions, spans,
via ("exact" | "fuzzy" | "question" | None), candidates, entity, relation, object, score}.

`evaluate(rows)` scores the answers with the official metric (`metric.evaluate`, aligned by id) and puts every
question into the first stage that failed (`error_stage`), so the counts add up to the number of questions:
correct (all three fields equal the gold ones), mention_missed (the gold entity is not among the candidates and
no predicted mention overlaps the gold mention), entity_not_found (a mention overlaps it, yet the gold entity is
not among the candidates), wrong_relation (the gold entity is a candidate but another (entity, relation) pair
won: a wrong relation or a homonym's), wrong_object (right entity and relation, another of its objects).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

from ..config import ConfigError, DataError
from .metric import normalize, parse_answer
from .relation_data import LABELS, RELATION_META, mark, mention_span, split_answer

STAGES = ("correct", "mention_missed", "entity_not_found", "wrong_relation", "wrong_object")
TAGGER_LABELS = ["O", "B-SUBJ", "I-SUBJ"]  # finetuning.ner.KGCLUE_TAGS
DEFAULT_MAX_LENGTH = 128


def _check_question(question) -> str:
    if not isinstance(question, str) or not question.strip():
        raise DataError(f"question: {question!r} is empty; give a question such as '刘晓华主要讲什么课啊？'")
    return question.strip()


def _max_length(model_dir: Path) -> int:
    """model.max_length of the finetuning run that saved `model_dir` (its parent's config.json), else 128."""
    saved = model_dir.parent / "config.json"
    if saved.is_file():
        return int(json.loads(saved.read_text(encoding="utf-8")).get("model", {}).get("max_length", 128))
    return DEFAULT_MAX_LENGTH


def _load(model_dir, what: str, kind: str, labels: list[str]):
    """(model, tokenizer, info) of a finetuned model, checked to be the `kind` with `labels` the pipeline needs."""
    from ..finetuning import model as ftmodel
    from ..finetuning.model import FINETUNE_FILE
    from ..model.checkpoint_check import load_tokenizer

    path = Path(model_dir)
    if not (path / FINETUNE_FILE).is_file():
        raise ConfigError(
            f"{what}: {path} holds no fine-tuned model ({FINETUNE_FILE}); train it with `obert kbqa train` "
            "(kbqa.train.train_kbqa)"
        )
    model, info = ftmodel.load(path)
    if info.get("kind") != kind or list(info.get("labels", [])) != labels:
        raise ConfigError(
            f"{what}: {path} is a {info.get('kind')} model with labels {info.get('labels')}, not the {kind} model "
            f"with labels {labels} this stage needs"
        )
    return model, load_tokenizer(path, key=what), info


class KbqaPipeline:
    """Answers KgCLUE questions from a knowledge store with the two fine-tuned models (module docstring)."""

    def __init__(
        self,
        tagger_dir: str | Path,
        relation_dir: str | Path,
        store,
        *,
        max_candidates: int = 10,
        question_fallback: bool = True,
        mark_mention: bool | None = None,
        batch_size: int = 64,
        device: str | None = None,
    ):
        """store: a `KnowledgeStore` or the path of one (opened here, closed by `close`). mark_mention: None reads
        how the classifier was trained (kbqa_relation.json beside relation_dir), else True."""
        import torch

        from .store import KnowledgeStore

        if max_candidates < 1:
            raise ConfigError(f"max_candidates: {max_candidates} must be >= 1")
        if batch_size < 1:
            raise ConfigError(f"batch_size: {batch_size} must be >= 1")
        self._own_store = not isinstance(store, KnowledgeStore)
        self.store = KnowledgeStore(store) if self._own_store else store
        try:
            self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
            self.tagger, self.tagger_tokenizer, _ = _load(tagger_dir, "tagger_dir", "tagging", TAGGER_LABELS)
            self.relation, self.relation_tokenizer, _ = _load(relation_dir, "relation_dir", "pair", LABELS)
        except BaseException:
            self.close()
            raise
        self.tagger.to(self.device)
        self.relation.to(self.device)
        self.tagger_max_length = _max_length(Path(tagger_dir))
        self.relation_max_length = _max_length(Path(relation_dir))
        if mark_mention is None:
            meta = Path(relation_dir).parent / RELATION_META
            saved = json.loads(meta.read_text(encoding="utf-8")) if meta.is_file() else {}
            mark_mention = bool(saved.get("mark_mention", True))
        self.mark_mention = mark_mention
        self.max_candidates, self.question_fallback, self.batch_size = max_candidates, question_fallback, batch_size

    def close(self) -> None:
        if getattr(self, "_own_store", False):
            self.store.close()

    def __enter__(self) -> KbqaPipeline:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- stage 1: mentions ----------------------------------------------------------------------------------------

    def mentions(self, questions: Sequence[str]) -> list[list[tuple[int, int]]]:
        """The tagger's subject spans (start, end) per question, character offsets, in order of position."""
        import torch

        from ..finetuning.ner import spans

        out = []
        for start in range(0, len(questions), self.batch_size):
            chunk = list(questions[start : start + self.batch_size])
            enc = self.tagger_tokenizer(chunk, truncation=True, max_length=self.tagger_max_length, padding="longest",
                                        return_offsets_mapping=True, return_token_type_ids=True,
                                        return_tensors="pt")  # fmt: skip
            batch = {k: enc[k].to(self.device) for k in ("input_ids", "attention_mask", "token_type_ids")}
            with torch.inference_mode():
                best = self.tagger(batch).logits.argmax(-1).cpu().tolist()
            for b, question in enumerate(chunk):
                tags = self._char_tags(question, enc.word_ids(b), enc["offset_mapping"][b].tolist(), best[b])
                out.append(sorted((s, e) for _, s, e in spans(tags)))
        return out

    @staticmethod
    def _char_tags(question: str, word_ids, offsets, predicted) -> list[str]:
        """One tag per character from the tags of the first token of each word (as training labels them)."""
        tags: list[str | None] = [None] * len(question)
        word_tag, previous = "O", None
        for word, (s, e), p in zip(word_ids, offsets, predicted):
            if word is None:
                continue
            if word != previous:
                word_tag = TAGGER_LABELS[p]
                tags[s] = word_tag
                s += 1
            inside = "O" if word_tag == "O" else f"I-{word_tag[2:]}"
            for i in range(s, min(e, len(question))):
                tags[i] = inside
            previous = word
        out, following = [], "O"  # uncovered characters (spaces, truncated tail): I- inside an entity, else O
        for tag in reversed(tags):
            out.append(tag if tag is not None else (following if following.startswith("I-") else "O"))
            following = out[-1]
        return out[::-1]

    # --- stage 2: candidates ----------------------------------------------------------------------------------------

    def candidates(
        self, question: str, spans: Sequence[tuple[int, int]]
    ) -> tuple[list[tuple[str, tuple | None]], str | None]:
        """([(entity, the span to mark)], via): exact lookups of the mentions, else fuzzy ones, else the fuzzy
        lookup of the whole question (module docstring); at most `max_candidates`."""
        from ..finetuning.ner import strip_disambiguation

        found: dict[str, tuple | None] = {}
        mentions = [(question[s:e].strip(), (s, e)) for s, e in spans if question[s:e].strip()]
        for via, lookup in (("exact", self.store.entities), ("fuzzy", self._fuzzy)):
            for text, span in mentions:
                for entity in lookup(text):
                    found.setdefault(entity, span)
            if found:
                return list(found.items())[: self.max_candidates], via
        if self.question_fallback:
            for entity in self._fuzzy(question):
                surface = strip_disambiguation(entity)
                at = question.lower().find(surface.lower()) if surface else -1
                found.setdefault(entity, (at, at + len(surface)) if at >= 0 else None)
            if found:
                return list(found.items())[: self.max_candidates], "question"
        return [], None

    def _fuzzy(self, text: str) -> list[str]:
        return self.store.fuzzy_entities(text, limit=self.max_candidates)

    # --- stage 3: relations ---------------------------------------------------------------------------------------

    def score_pairs(self, pairs: Sequence[tuple[str, str]]) -> list[float]:
        """P(label "1") of the classifier for each (text, relation)."""
        import torch

        from ..finetuning.encoding import encode
        from ..finetuning.example_types import Example

        positive = LABELS.index("1")
        scores: list[float] = []
        for start in range(0, len(pairs), self.batch_size):
            chunk = [Example(i, text, pair=rel) for i, (text, rel) in enumerate(pairs[start : start + self.batch_size])]
            batch = encode("pair", self.relation_tokenizer, chunk, self.relation_max_length)
            with torch.inference_mode():
                logits = self.relation({k: v.to(self.device) for k, v in batch.items()}).logits
            scores += logits.float().softmax(-1)[:, positive].cpu().tolist()
        return scores

    # --- the whole pipeline -----------------------------------------------------------------------------------------

    def ask(self, question: str) -> dict:
        """The answer to one question and its trace (module docstring); DataError for an empty question."""
        return self.ask_many([question])[0]

    def ask_many(self, questions: Sequence[str], progress: bool = False) -> list[dict]:
        """`ask` for each question, the models run in batches."""
        from tqdm.auto import tqdm

        questions = [_check_question(q) for q in questions]
        all_spans = self.mentions(questions)
        results, pairs, owners = [], [], []
        for qi, (question, spans) in enumerate(
            tqdm(list(zip(questions, all_spans)), desc="kbqa candidates", disable=not progress)
        ):
            found, via = self.candidates(question, spans)
            results.append({"question": question, "answer": "", "stage": "answered", "mentions":
                            [question[s:e] for s, e in spans], "spans": [list(s) for s in spans], "via": via,
                            "candidates": [e for e, _ in found], "entity": None, "relation": None, "object": None,
                            "score": None})  # fmt: skip
            if not found:
                results[-1]["stage"] = "entity_not_found" if spans else "mention_missed"
            for entity, span in found:
                text = mark(question, span if self.mark_mention else None)
                for relation in self.store.relations(entity):
                    pairs.append((text, relation))
                    owners.append((qi, entity, relation))
        scores = self.score_pairs(pairs) if pairs else []
        best: dict[int, tuple[float, str, str]] = {}
        for (qi, entity, relation), score in zip(owners, scores):
            if qi not in best or score > best[qi][0]:
                best[qi] = (score, entity, relation)
        for qi, (score, entity, relation) in best.items():
            objects = self.store.objects(entity, relation)
            result = results[qi]
            result.update(
                entity=entity, relation=relation, score=round(score, 6), object=objects[0] if objects else None
            )
            result["answer"] = f"{entity} ||| {relation} ||| {objects[0]}" if objects else ""
        return results

    def evaluate(self, rows: Sequence[dict], out_dir: str | Path | None = None, progress: bool = False) -> dict:
        """Official KgCLUE metrics of the answers to `rows` ({"id", "question", "answer"}) with `stages`: the count
        of questions per STAGES entry (they add up to `n`). With `out_dir`: predictions.jsonl (one line per id:
        id, question, gold, answer, stage, error_stage and the trace) and metrics.json written there."""
        from .metric import evaluate as official

        if not rows:
            raise DataError("rows: no questions to evaluate; give KgCLUE rows with answers")
        seen: set[str] = set()
        for row in rows:
            if not isinstance(row, dict) or "id" not in row or "question" not in row or "answer" not in row:
                raise DataError(f'rows: {row!r} is not a KgCLUE row {{"id", "question", "answer"}}')
            if str(row["id"]) in seen:
                raise DataError(f"rows: id {row['id']!r} appears twice; give each question its own id")
            seen.add(str(row["id"]))
        results = self.ask_many([row["question"] for row in rows], progress=progress)
        gold = {row["id"]: row["answer"] for row in rows}
        metrics = official(gold, {row["id"]: r["answer"] for row, r in zip(rows, results)})
        stages = dict.fromkeys(STAGES, 0)
        for row, result in zip(rows, results):
            result["error_stage"] = error_stage(row["question"], row["answer"], result)
            stages[result["error_stage"]] += 1
        metrics["stages"] = stages
        metrics["predictions"] = None
        if out_dir is not None:
            out = Path(out_dir)
            out.mkdir(parents=True, exist_ok=True)
            with open(out / "predictions.jsonl", "w", encoding="utf-8", newline="\n") as fh:
                for row, result in zip(rows, results):
                    line = {"id": row["id"], "gold": row["answer"], **result}
                    fh.write(json.dumps(line, ensure_ascii=False) + "\n")
            metrics["predictions"] = str(out / "predictions.jsonl")
            (out / "metrics.json").write_text(json.dumps(metrics, ensure_ascii=False, indent=2), encoding="utf-8")
        return metrics


def error_stage(question: str, gold_answer: str, result: dict) -> str:
    """The first pipeline stage that failed on this question, one of STAGES (module docstring)."""
    gold, pred = parse_answer(gold_answer), parse_answer(result.get("answer"))
    if gold is None:
        raise DataError(f"gold answer {gold_answer!r} is not 'entity ||| attribute ||| value'")
    if pred is not None and pred == gold:
        return "correct"
    if gold[0] in {normalize(c) for c in result.get("candidates", [])}:
        return "wrong_object" if pred is not None and pred[:2] == gold[:2] else "wrong_relation"
    span = mention_span(question, split_answer(gold_answer)[0])
    if span is not None and any(s < span[1] and span[0] < e for s, e in result.get("spans", [])):
        return "entity_not_found"
    return "mention_missed"


# --- tables and figure for the notebook --------------------------------------------------------------------------


def stage_table(metrics: dict):
    """One row per stage of `evaluate`'s result: count and share of the questions."""
    import pandas as pd

    stages = metrics["stages"]
    total = max(1, sum(stages.values()))
    return pd.DataFrame(
        {"stage": list(stages), "questions": list(stages.values()), "share": [v / total for v in stages.values()]}
    )


def score_table(metrics: dict):
    """The official metrics of `evaluate`'s result (×100, as the leaderboard prints them) and its counts."""
    import pandas as pd

    keys = ["EMF1", "EM_O", "F1_O", "EM_S", "EM_P", "EM_All", "F1_All"]
    rows = [(k, round(100 * metrics[k], 2)) for k in keys] + [(k, metrics[k]) for k in ("n", "scored", "malformed")]
    return pd.DataFrame(rows, columns=["metric", "value"])


def answers_table(results: Sequence[dict]):
    """The answers of `ask_many`, one row per question."""
    import pandas as pd

    keys = ["question", "mentions", "via", "entity", "relation", "object", "score", "stage"]
    return pd.DataFrame([{k: r.get(k) for k in keys} for r in results])


def plot_stages(metrics: dict, title: str | None = None):
    """A bar chart of the questions per stage of `evaluate`'s result, count and share on each bar."""
    import matplotlib.pyplot as plt

    table = stage_table(metrics)
    fig, ax = plt.subplots(figsize=(7, 3.6))
    colors = ["#2e7d32", "#c62828", "#ef6c00", "#6a1b9a", "#546e7a"]
    names = [s.replace("_", "\n") for s in table["stage"]]  # 'mention\nmissed': the five labels fit side by side
    bars = ax.bar(names, table["questions"], color=colors[: len(table)])
    for bar, n, share in zip(bars, table["questions"], table["share"]):
        ax.annotate(f"{n} ({share:.0%})", (bar.get_x() + bar.get_width() / 2, bar.get_height()), ha="center",
                    va="bottom", fontsize=9)  # fmt: skip
    ax.set_ylabel("questions")
    ax.set_ylim(0, max(1, table["questions"].max()) * 1.15)
    score = f"EMF1 {100 * metrics['EMF1']:.1f}"
    ax.set_title(title or f"KgCLUE pipeline by stage, {metrics['n']} questions, {score}")
    fig.tight_layout()
    return fig
