"""Checks of a corpus run that end it with one clear UserError: where it writes, and a run that kept nothing."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from ..config import UserError
from ..paths import check_output_dir as check_output_path

RUN_WRITES = ("_work", "shards", "removed", "tokenizer", "stats.json", "README.md", "config.json")  # under output_dir
_EXAMPLES = 200  # removed records read per reason to explain a run that kept nothing


def check_output_dir(out: Path, inputs: list[Path]) -> None:
    """Refuse, before any work, an output path that is a file, an output inside an input folder, and an input
    among what a run into `out` writes or deletes."""
    check_output_path(out, "output_dir")
    for given in inputs:
        path = given.resolve()
        if path.is_dir() and (out == path or path in out.parents):
            where = "is input folder" if out == path else "is inside input folder"
            raise UserError(
                f"output_dir: {out} {where} {path}: the next run would read its own "
                f"output as input; give an output folder outside {path}"
            )
        written = next((out / name for name in RUN_WRITES if path == out / name or out / name in path.parents), None)
        if written:
            where = "is" if path == written else "is inside"
            raise UserError(
                f"inputs: {path} {where} {written}, which a run into {out} rewrites or deletes; copy "
                f"the input elsewhere or give another output folder"
            )


def dropped_by_reason(step_stats: dict[str, Counter]) -> dict[str, int]:
    """Documents dropped per reason by the filters of one stage (their `dropped_<reason>` counters)."""
    out: Counter = Counter()
    for counts in step_stats.values():
        for label, value in counts.items():
            if label.startswith("dropped_"):
                out[label[len("dropped_") :]] += value
    return dict(sorted(out.items()))


def all_dropped(
    out: Path,
    files: list[Path],
    cfg: Any,
    reader: Any,
    clean: dict[str, Counter],
    seconds: float,
    stage_seconds: dict[str, float],
) -> UserError:
    """Write stats.json of a run whose cleaning kept no document; return the UserError that says why and what to do.

    `reader`: the run's input reader (examples of reader drops come from it when removed/ was not kept);
    `clean`: the clean stage's summed counters per step.
    """
    from ..results import hash_files

    n_in = sum(c.get("documents", 0) for c in clean.values())  # only readers count "documents"
    dropped = dropped_by_reason(clean)
    lines = Counter()
    for counts in clean.values():
        lines.update({k[len("line_removed_") :]: v for k, v in counts.items() if k.startswith("line_removed_")})
    stats = {
        "documents_in": n_in,
        "documents_kept": 0,
        "documents_dropped": dropped,
        "lines_removed": dict(sorted(lines.items())),
        "paragraphs_out": 0,
        "tokens_out": 0,
        "bytes_in": sum(f.stat().st_size for f in files),
        "bytes_out": 0,
        "data_hash": hash_files(files),
        "seconds": round(seconds, 3),
        "stage_seconds": stage_seconds,
    }
    if n_in == 0:
        shown = ", ".join(str(f) for f in files[:3]) + (f" and {len(files) - 3} more" if len(files) > 3 else "")
        if getattr(reader, "name", "") == "obert warc":  # html_input.ObertWarcReader
            skipped = {k: v for c in clean.values() for k, v in c.items() if k.startswith("records_skipped_")}
            message = (
                f"no documents in the inputs: {len(files)} WARC file(s) ({shown}) hold no response or conversion "
                f"record (records of other types are not pages: {skipped or 'none'}); give WARC or WET files of a crawl"
            )
        else:
            message = (
                f"no documents in the inputs: {len(files)} file(s) ({shown}) hold no non-blank line; "
                f"give files with one document per line"
            )
    else:
        reasons = ", ".join(f"{reason} ({n})" for reason, n in sorted(dropped.items(), key=lambda kv: -kv[1]))
        hints = [
            _hint(reason, _records(out / "removed" / reason) or _reread(reader, files, reason), cfg)
            for reason in sorted(dropped, key=lambda r: -dropped[r])
        ]
        noun = "document" if n_in == 1 else "documents"
        message = f"all {n_in} {noun} dropped: {reasons}; " + "; ".join(h for h in hints if h)
    where = f"see {out / 'removed'}/<reason>/ and " if cfg.keep_removed and dropped else "see "
    message += f" ({where}{out / 'stats.json'})"
    (out / "stats.json").write_text(
        json.dumps({**stats, "error": message}, ensure_ascii=False, indent=2), encoding="utf-8"
    )
    return UserError(message)


def no_paragraphs(out: Path, cfg: Any, stats: dict[str, Any]) -> UserError:
    """The UserError of a finished run whose kept documents left no paragraph (stats.json is written)."""
    return UserError(
        f"no paragraph written: the {stats['documents_kept']} kept document(s) hold no line of at least "
        f"min_paragraph_chars={cfg.min_paragraph_chars} characters (each line is a paragraph); lower "
        f"min_paragraph_chars (e.g. --set min_paragraph_chars=4) or join the short lines "
        f"(see {out / 'stats.json'})"
    )


def _records(folder: Path) -> list[dict]:
    """Up to _EXAMPLES removed records of one reason."""
    rows: list[dict] = []
    for f in sorted(folder.glob("*.jsonl")):
        with open(f, encoding="utf-8") as fh:
            for line in fh:
                rows.append(json.loads(line))
                if len(rows) >= _EXAMPLES:
                    return rows
    return rows


def _reread(reader: Any, files: list[Path], reason: str) -> list[dict]:
    """Up to _EXAMPLES drops for `reason` read again from the inputs (a reader's drops only, from its first rows)."""
    from .readers import DROP_KEY  # datatrove: imported only when a run has failed

    rows: list[dict] = []
    for f in files:
        for n, doc in enumerate(reader.read_file(str(f).lstrip("/"))):
            if doc.metadata.get(DROP_KEY) == reason:
                m = doc.metadata
                rows.append({"file": m["file"], "line": m["line"], "detail": m["detail"], "text": doc.text})
            if len(rows) >= _EXAMPLES or n >= 10 * _EXAMPLES:
                break
        if len(rows) >= _EXAMPLES:
            break
    return rows


def _first(records: list[dict]) -> str:
    if not records:
        return ""
    r = records[0]
    where = f"{r['file']}:{r['line']}" if r.get("line") is not None else str(r.get("file"))
    return f" (first: {where}: {r['detail']})"


def _hint(reason: str, records: list[dict], cfg: Any) -> str:
    """What a user should know and do about documents dropped for `reason` (`records`: some of them)."""
    if reason == "missing_text":
        return _missing_text_hint(records, cfg.text_key, cfg.id_key)
    if reason == "unreadable_line":
        return (
            f"lines are not JSON{_first(records)}: each line must be one JSON object (JSON lines); "
            "convert a pretty-printed JSON array with `jq -c '.[]' in.json > in.jsonl`"
        )
    if reason == "unreadable_file":
        return (
            f"files cannot be read{_first(records)}: check that each file is what its name says "
            "(a .gz or .zst name must hold compressed data, .parquet a Parquet file)"
        )
    if reason == "invalid_utf8":
        return f"lines are not UTF-8{_first(records)}: convert the files to UTF-8 (iconv -f GB18030 -t UTF-8)"
    if reason == "too_long":
        return f"documents are longer than max_chars={cfg.max_chars}: raise max_chars or split them"
    if reason == "other_language":
        return (
            f"documents are in a language not in language.keep={cfg.language.keep}{_first(records)}: check the "
            "inputs, or keep that language (language.keep and language.candidates), or --set language.enabled=false"
        )
    return (
        f"{reason} is a quality rule{_first(records)}: check the text is Chinese prose, or loosen the rule "
        "(quality.* and lines.* keys, e.g. --set quality.min_cjk_chars=5)"
    )


def _missing_text_hint(records: list[dict], text_key: str, id_key: str) -> str:
    """Name the fields the rows do have, the string ones first, and the text_key to set."""
    from .readers import json_kind

    string_keys: Counter = Counter()
    other_keys: Counter = Counter()
    kinds: Counter = Counter()
    wrong_type: Counter = Counter()  # the text field is there but null, a number, a list...
    for r in records:
        try:
            row = json.loads(r["text"])
        except (ValueError, TypeError):
            continue
        if not isinstance(row, dict):
            kinds[json_kind(row)] += 1
            continue
        if text_key in row:
            wrong_type[json_kind(row[text_key])] += 1
        for key, value in row.items():
            if key not in (text_key, id_key):
                (string_keys if isinstance(value, str) and value else other_keys)[key] += 1
    hint = f"the text field is `{text_key}`"
    if wrong_type:
        hint += f", which these rows hold as {', '.join(wrong_type)}, not a string"
    if string_keys:
        names = ", ".join(f"`{k}`" for k, _ in string_keys.most_common(5))
        best = string_keys.most_common(1)[0][0]
        return f"{hint}; these rows have {names}: set text_key (e.g. --set text_key={best}) or fix the rows"
    if other_keys:
        names = ", ".join(f"`{k}`" for k, _ in other_keys.most_common(5))
        return f"{hint}; these rows have {names} but no other string field: give rows with the text as a string"
    if kinds:
        kinds_text = " and ".join(k + "s" for k in kinds)
        return f"{hint}; the rows are JSON {kinds_text}, not objects: give one JSON object per line"
    if wrong_type:
        return hint + "; give each row's text as a string"
    return hint + "; set text_key to the field that holds the text"
