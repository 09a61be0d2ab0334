"""The KgCLUE knowledge store: `head\\trelation\\ttail` triples in SQLite (embedded, one file, no server).

Schema (SCHEMA_VERSION 1):
- `entity(id, name, surface)`: `name` the full head as written, its `（…）` disambiguation suffix included
  ('郑多彬（韩国女演员（2000年出生））'); `surface` the head without the suffix, normalised like the metric
  (lower-cased, whitespace collapsed: '郑多彬'). Unique index on name, index on surface.
- `relation(id, name)`: ids in order of first appearance; unique index on name.
- `triple(entity, relation, tail)`: a WITHOUT ROWID table keyed (entity, relation, tail), so the key is the
  (entity, relation) index itself (no second copy of 20M rows) and a repeated triple is stored once (counted in
  `duplicates`). The knowledge file lists an entity's triples together, so ids arrive in key order and inserts
  append. Long tails (descriptions) spill to overflow pages, which is correct, only slower.

Building streams the file once (progress bar over bytes), keeps name -> id dictionaries in memory (about 0.7 GiB
at 2.84M entities, docs/kbqa_store.md), inserts one transaction per chunk, creates the secondary
indexes after the load, and writes to `<db>.tmp-<pid>` renamed over `<db>` at the end: a build that fails leaves
the previous store as it was, and building twice from the same file gives the same store.
"""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path

from ..config import ConfigError, DataError
from .metric import normalize

SCHEMA_VERSION = "1"
MAX_SKIPS_KEPT = 20
MAX_FUZZY_CHARS = 48

_SCHEMA = """
CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE entity(id INTEGER PRIMARY KEY, name TEXT NOT NULL, surface TEXT NOT NULL);
CREATE TABLE relation(id INTEGER PRIMARY KEY, name TEXT NOT NULL);
CREATE TABLE triple(entity INTEGER NOT NULL, relation INTEGER NOT NULL, tail TEXT NOT NULL,
                    PRIMARY KEY (entity, relation, tail)) WITHOUT ROWID;
"""
_INDEXES = """
CREATE UNIQUE INDEX entity_name ON entity(name);
CREATE INDEX entity_surface ON entity(surface);
CREATE UNIQUE INDEX relation_name ON relation(name);
"""


def _parse_line(raw: bytes) -> tuple[str, str, str] | str:
    """(head, relation, tail) of one line, or the reason it is skipped."""
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return f"not UTF-8 (byte {exc.start} of the line)"
    line = line.rstrip("\n").rstrip("\r").lstrip("\ufeff")
    if not line.strip():
        return "blank line"
    parts = line.split("\t")
    if len(parts) != 3:
        return f"{len(parts)} tab-separated fields, not 3"
    head, relation, tail = (p.strip() for p in parts)
    if not (head and relation and tail):
        return "an empty field"
    return head, relation, tail


def build_store(
    knowledge_file: str | Path, db_path: str | Path, progress: bool = True, chunk_size: int = 100_000
) -> dict:
    """Load a `head\\trelation\\ttail` knowledge file into a new SQLite store at `db_path` (replacing one there).

    A malformed line (not three tab-separated non-empty fields, not UTF-8) is skipped and counted, its line
    number and reason kept for the first MAX_SKIPS_KEPT. Returns stats: lines, triples (stored), duplicates,
    entities, relations, skipped, skipped_lines [{"line", "reason"}], seconds, db_bytes, db_path, source.
    """
    from ..finetuning.ner import strip_disambiguation  # lazy: the package imports torch; lookups need none of it

    src, db = Path(knowledge_file), Path(db_path)
    if not src.is_file():
        raise DataError(f"{src} does not exist; give a knowledge file of head<TAB>relation<TAB>tail lines")
    if db.is_dir():
        raise ConfigError(f"db_path: {db} is a folder; give a file path such as {db / 'knowledge.sqlite'}")
    if chunk_size < 1:
        raise ConfigError(f"chunk_size: {chunk_size} must be at least 1")
    db.parent.mkdir(parents=True, exist_ok=True)
    tmp = db.with_name(f"{db.name}.tmp-{os.getpid()}")
    tmp.unlink(missing_ok=True)
    start = time.perf_counter()
    stats = {"lines": 0, "triples": 0, "duplicates": 0, "skipped": 0, "skipped_lines": []}
    entities: dict[str, int] = {}
    relations: dict[str, int] = {}
    conn = sqlite3.connect(tmp, isolation_level=None)
    try:
        for pragma in ("journal_mode=OFF", "synchronous=OFF", "cache_size=-262144", "locking_mode=EXCLUSIVE"):
            conn.execute(f"PRAGMA {pragma}")
        conn.executescript(_SCHEMA)
        new_entities: list[tuple] = []
        new_relations: list[tuple] = []
        triples: list[tuple] = []

        def flush() -> None:
            conn.execute("BEGIN")
            conn.executemany("INSERT INTO entity VALUES (?, ?, ?)", new_entities)
            conn.executemany("INSERT INTO relation VALUES (?, ?)", new_relations)
            before = conn.total_changes
            conn.executemany("INSERT OR IGNORE INTO triple VALUES (?, ?, ?)", triples)
            stored = conn.total_changes - before
            conn.execute("COMMIT")
            stats["triples"] += stored
            stats["duplicates"] += len(triples) - stored
            for rows in (new_entities, new_relations, triples):
                rows.clear()

        bar = _progress(src.stat().st_size, progress, f"loading {src.name}")
        done = lineno = 0
        with open(src, "rb") as fh:
            for lineno, raw in enumerate(fh, 1):
                done += len(raw)
                parsed = _parse_line(raw)
                if isinstance(parsed, str):
                    stats["skipped"] += 1
                    if len(stats["skipped_lines"]) < MAX_SKIPS_KEPT:
                        stats["skipped_lines"].append({"line": lineno, "reason": parsed})
                    continue
                head, relation, tail = parsed
                eid = entities.get(head)
                if eid is None:
                    eid = entities[head] = len(entities) + 1
                    new_entities.append((eid, head, normalize(strip_disambiguation(head))))
                rid = relations.get(relation)
                if rid is None:
                    rid = relations[relation] = len(relations) + 1
                    new_relations.append((rid, relation))
                triples.append((eid, rid, tail))
                if len(triples) >= chunk_size:
                    flush()
                    bar.update(done - bar.n)
        stats["lines"] = lineno
        flush()
        bar.update(done - bar.n)
        bar.close()
        if progress:
            print(f"indexing {len(entities):,} entities and {len(relations):,} relations", flush=True)
        conn.executescript(_INDEXES)
        stats.update(entities=len(entities), relations=len(relations))
        meta = {
            "schema_version": SCHEMA_VERSION,
            "source": str(src.resolve()),
            "source_bytes": str(src.stat().st_size),
            **{k: str(stats[k]) for k in ("lines", "triples", "duplicates", "entities", "relations", "skipped")},
        }
        conn.execute("BEGIN")
        conn.executemany("INSERT INTO meta VALUES (?, ?)", meta.items())
        conn.execute("COMMIT")
        conn.close()
        os.replace(tmp, db)
    except BaseException:
        conn.close()
        tmp.unlink(missing_ok=True)
        raise
    stats.update(
        seconds=round(time.perf_counter() - start, 3), db_bytes=db.stat().st_size, db_path=str(db), source=str(src)
    )
    return stats


def _progress(total: int, enabled: bool, desc: str):
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=desc, disable=not enabled)


class KnowledgeStore:
    """Read-only lookups in a store written by `build_store`. Entity arguments are full heads (suffix included)
    as `entities` returns them; relation names are matched exactly."""

    def __init__(self, db_path: str | Path):
        self.path = Path(db_path)
        if not self.path.is_file():
            raise DataError(
                f"{self.path}: no knowledge store there; build one with build_store(knowledge_file, db_path) "
                "(obert kbqa build-kb)"
            )
        uri = self.path.resolve().as_uri() + "?mode=ro"
        self._conn = sqlite3.connect(uri, uri=True, check_same_thread=False)
        try:
            meta = dict(self._conn.execute("SELECT key, value FROM meta"))
        except sqlite3.DatabaseError as exc:
            self._conn.close()
            raise DataError(f"{self.path}: not a knowledge store ({exc}); rebuild it with build_store") from None
        if meta.get("schema_version") != SCHEMA_VERSION:
            self._conn.close()
            raise DataError(
                f"{self.path}: store schema {meta.get('schema_version')!r}, this code reads {SCHEMA_VERSION!r}; "
                "rebuild it with build_store"
            )
        self.meta = meta

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> KnowledgeStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def entities(self, surface: str) -> list[str]:
        """Full heads whose surface form (suffix removed, lower-cased, whitespace collapsed) equals that of
        `surface`, in load order; a `surface` that is itself a full head comes first."""
        key = normalize(surface)
        exact = [r[0] for r in self._conn.execute("SELECT name FROM entity WHERE name = ?", (surface.strip(),))]
        rows = self._conn.execute("SELECT name FROM entity WHERE surface = ? ORDER BY id", (key,))
        return exact + [r[0] for r in rows if r[0] not in exact]

    def relations(self, entity: str) -> list[str]:
        """The relation names of full head `entity`, in order of their first appearance in the file; [] when the
        entity is unknown."""
        rows = self._conn.execute(
            "SELECT name FROM relation WHERE id IN (SELECT relation FROM triple WHERE entity = "
            "(SELECT id FROM entity WHERE name = ?)) ORDER BY id",
            (entity,),
        )
        return [r[0] for r in rows]

    def objects(self, entity: str, relation: str) -> list[str]:
        """The tails of (full head `entity`, `relation`), distinct, in code-point order; [] when there are none."""
        rows = self._conn.execute(
            "SELECT tail FROM triple WHERE entity = (SELECT id FROM entity WHERE name = ?) "
            "AND relation = (SELECT id FROM relation WHERE name = ?) ORDER BY tail",
            (entity, relation),
        )
        return [r[0] for r in rows]

    def fuzzy_entities(self, text: str, limit: int = 10) -> list[str]:
        """Full heads whose surface form is contained in `text` or begins with it, best first (the fallback when
        the exact surface is not in the store); at most `limit`.

        Both searches use the surface index only, no table scan: (1) every substring of `text` of two characters
        or more (the first MAX_FUZZY_CHARS characters; the whole text when it is one character) is looked up
        exactly in one `surface IN (...)` query, at most L·(L-1)/2 index probes for L characters (1,128 at
        L = 48); (2) a range scan `text <= surface < text + U+10FFFF` finds the surfaces that begin with `text`,
        reading at most 20·limit index entries. Ranking: character F1 (metric.lcs_f1) of surface and text, then
        the longer surface, then load order. Not found: a surface containing `text` in its middle or differing
        from it by a character; that needs an n-gram table (about five rows per entity, 15M rows for the real
        knowledge base, roughly half the store again), which is not built.
        """
        from .metric import lcs_f1

        if limit < 1:
            raise ConfigError(f"limit: {limit} must be at least 1")
        key = normalize(text)[:MAX_FUZZY_CHARS]
        if not key:
            return []
        shortest = 1 if len(key) == 1 else 2
        subs = sorted({key[i : i + n] for n in range(shortest, len(key) + 1) for i in range(len(key) - n + 1)})
        found: dict[str, tuple] = {}
        for start in range(0, len(subs), 900):  # SQLite allows at least 999 parameters per statement
            part = subs[start : start + 900]
            query = f"SELECT id, name, surface FROM entity WHERE surface IN ({','.join('?' * len(part))})"
            for eid, name, surface in self._conn.execute(query, part):
                found[name] = (eid, surface)
        rows = self._conn.execute(
            "SELECT id, name, surface FROM entity WHERE surface >= ? AND surface < ? LIMIT ?",
            (key, key + "\U0010ffff", 20 * limit),
        )
        for eid, name, surface in rows:
            found[name] = (eid, surface)
        ranked = sorted(found.items(), key=lambda kv: (-lcs_f1(kv[1][1], key), -len(kv[1][1]), kv[1][0]))
        return [name for name, _ in ranked[:limit]]


def kb_from_kgclue(train_path: str | Path, dev_path: str | Path, out_file: str | Path) -> dict:
    """A knowledge file (`head\\trelation\\ttail` lines) of the answers of KgCLUE train and dev: one triple per
    answer, deduplicated, in order of first appearance (train, then dev).

    This is a SUBSET of the real knowledge base (Knowledge.txt: 20.56M triples, 3.12M entities, 245,838
    relations): each entity here has only the relation its question asks about, so the relation choice meets
    far fewer distractor relations (and no homonym entities that lack a question) than against the real one.
    On the shared split (18,000 + 2,000 answers): 20,000 triples, 20,000 entities, 1,747 relations.
    Written atomically (temporary file, then rename). Returns answers, triples, duplicates, entities, relations.
    A row without a well-formed answer raises DataError naming file:line.
    """
    import json

    out = Path(out_file)
    seen: dict[tuple[str, str, str], None] = {}
    answers = 0
    for path in (Path(train_path), Path(dev_path)):
        if not path.is_file():
            raise DataError(f"{path} does not exist; give the KgCLUE train.json and dev.json files")
        with open(path, encoding="utf-8-sig") as fh:
            for lineno, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                where = f"{path}:{lineno}"
                try:
                    answer = json.loads(line).get("answer")
                except (json.JSONDecodeError, AttributeError):
                    raise DataError(f"{where}: not a JSON object line; write one KgCLUE row per line") from None
                parts = answer.split("|||") if isinstance(answer, str) else []
                fields = tuple(" ".join(p.split()) for p in parts)  # no tab or newline may reach the file
                if len(fields) != 3 or not all(fields):
                    raise DataError(f"{where}: answer {answer!r} is not 'entity ||| attribute ||| value'")
                answers += 1
                seen.setdefault(fields, None)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f"{out.name}.tmp-{os.getpid()}")
    with open(tmp, "w", encoding="utf-8", newline="\n") as fh:
        fh.writelines(f"{h}\t{r}\t{t}\n" for h, r, t in seen)
    os.replace(tmp, out)
    return {
        "answers": answers,
        "triples": len(seen),
        "duplicates": answers - len(seen),
        "entities": len({h for h, _, _ in seen}),
        "relations": len({r for _, r, _ in seen}),
        "path": str(out),
    }
