"""A synthetic knowledge file the size of KgCLUE's (20M triples) for measuring the store, and the measurement.

The real Knowledge.txt (20.56M triples, 3.12M entities, 245,838 relations) is not redistributable here, so the
scale figures come from a generated file shaped like it:
- entities: names of 2 to 8 CJK characters (shorter ones likelier), drawn with Zipf-like character frequencies from
  3,000 characters of the CJK block; 20% carry a `（…）` disambiguation suffix, 1% of them nested
  ('（韩国女演员（2000年出生））'), and 15% reuse the surface of another entity of the same chunk with their own
  suffix (homonyms); an entity's triples are consecutive, as in the real file;
- triples per entity: 1 plus a multinomial share of the rest with log-normal weights (most entities have a few,
  some have dozens); the total is exactly `n_triples`;
- relations: `n_relations` names of 2 to 6 characters, the first few real ones (中文名, 类型, ...), drawn per triple
  with p(rank r) proportional to 1 / r^1.1 (a long tail of rare relations);
- tails: short: CJK text of 1 to 8 characters (70%), a year '1987年' (15%), a number (5%), another entity's
  surface (10%).
Names are random characters, so they look Chinese but mean nothing; heads that collide by chance merge (the store
counts distinct heads).

Command line (both stream; the figures in docs/kbqa_store.md were made this way):
  python -m obert_lib.kbqa.generate make /tmp/kb.txt --triples 20000000
  python -m obert_lib.kbqa.generate measure /tmp/kb.txt /tmp/kb.sqlite --samples 10000
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import time
from pathlib import Path

import numpy as np

from ..config import ConfigError

COMMON_RELATIONS = ["中文名", "外文名", "类型", "国籍", "出生日期", "职业", "代表作品", "所属地区", "出生地", "别名"]
SUFFIX_KINDS = ["演员", "歌曲", "电影", "小说", "公司", "人物", "游戏", "地名", "电视剧", "植物", "书籍", "专辑"]
NAME_LENGTHS, NAME_P = np.arange(2, 9), np.array([0.22, 0.3, 0.2, 0.12, 0.08, 0.05, 0.03])
TAIL_LENGTHS, TAIL_P = np.arange(1, 9), np.array([0.05, 0.3, 0.25, 0.15, 0.1, 0.07, 0.05, 0.03])


class _Chars:
    """Random CJK text: code points drawn with Zipf-like frequencies, decoded in one go (no per-character
    Python work), then sliced into strings of the requested lengths."""

    def __init__(self, rng: np.random.Generator, n: int = 3000):
        self.rng = rng
        self.points = (0x4E00 + rng.permutation(0x9FA5 - 0x4E00)[:n]).astype("<u4")
        weights = 1.0 / np.arange(1, n + 1) ** 0.8
        self.p = weights / weights.sum()

    def strings(self, lengths: np.ndarray) -> list[str]:
        idx = self.rng.choice(len(self.points), size=int(lengths.sum()), p=self.p)
        text = self.points[idx].tobytes().decode("utf-32-le")
        ends = np.cumsum(lengths).tolist()
        return [text[a:b] for a, b in zip([0, *ends[:-1]], ends)]


def _relation_names(rng: np.random.Generator, chars: _Chars, n: int) -> np.ndarray:
    names = list(COMMON_RELATIONS[:n])
    seen = set(names)
    while len(names) < n:
        for name in chars.strings(rng.choice(np.arange(2, 7), size=n - len(names))):
            if name not in seen:
                seen.add(name)
                names.append(name)
    return np.array(names, dtype=object)


def _heads(rng: np.random.Generator, chars: _Chars, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(full heads, surfaces) of `n` entities."""
    surfaces = np.array(chars.strings(rng.choice(NAME_LENGTHS, size=n, p=NAME_P)), dtype=object)
    homonym = rng.random(n) < 0.15
    surfaces[homonym] = surfaces[rng.integers(0, n, size=int(homonym.sum()))]
    suffixed = homonym | (rng.random(n) < 0.2)
    k = int(suffixed.sum())
    words = chars.strings(rng.integers(2, 5, size=k))
    kinds = rng.choice(SUFFIX_KINDS, size=k)
    nested = rng.random(k) < 0.01
    years = rng.integers(1900, 2021, size=k)
    suffixes = [
        f"（{w}{kind}（{y}年出生））" if nest else f"（{w}{kind}）"
        for w, kind, nest, y in zip(words, kinds, nested, years)
    ]
    heads = surfaces.copy()
    heads[suffixed] = [s + x for s, x in zip(surfaces[suffixed], suffixes)]
    return heads, surfaces


def _tails(rng: np.random.Generator, chars: _Chars, n: int, surfaces: np.ndarray) -> list[str]:
    tails = chars.strings(rng.choice(TAIL_LENGTHS, size=n, p=TAIL_P))
    kind = rng.random(n)
    years, numbers = rng.integers(1800, 2023, size=n), rng.integers(0, 100_000, size=n)
    links = surfaces[rng.integers(0, len(surfaces), size=n)]
    for i in np.flatnonzero(kind >= 0.7).tolist():
        k = kind[i]
        tails[i] = f"{years[i]}年" if k < 0.85 else str(numbers[i]) if k < 0.9 else links[i]
    return tails


def generate_knowledge(
    out_file: str | Path,
    n_triples: int = 20_000_000,
    n_entities: int = 3_000_000,
    n_relations: int = 245_000,
    seed: int = 0,
    progress: bool = True,
    chunk_entities: int = 50_000,
) -> dict:
    """Write `n_triples` `head\\trelation\\ttail` lines to `out_file` (streamed, written to a temporary file and
    renamed); the same arguments give the same file. Returns triples, entities (generated; colliding heads
    merge in the store), relations, bytes, seconds, path."""
    from tqdm.auto import tqdm

    if not 1 <= n_entities <= n_triples:
        raise ConfigError(f"n_entities: {n_entities} must be between 1 and n_triples ({n_triples})")
    if n_relations < 1:
        raise ConfigError(f"n_relations: {n_relations} must be at least 1")
    start = time.perf_counter()
    rng = np.random.default_rng(seed)
    chars = _Chars(rng)
    relations = _relation_names(rng, chars, n_relations)
    rel_p = 1.0 / np.arange(1, n_relations + 1) ** 1.1
    rel_p /= rel_p.sum()
    weights = rng.lognormal(0.0, 1.0, size=n_entities)
    counts = 1 + rng.multinomial(n_triples - n_entities, weights / weights.sum())
    out = Path(out_file)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f"{out.name}.tmp-{os.getpid()}")
    try:
        with (
            open(tmp, "w", encoding="utf-8", newline="\n") as fh,
            tqdm(
                total=n_triples, unit="triple", unit_scale=True, desc=f"writing {out.name}", disable=not progress
            ) as bar,
        ):
            for first in range(0, n_entities, chunk_entities):
                k = counts[first : first + chunk_entities]
                heads, surfaces = _heads(rng, chars, len(k))
                n = int(k.sum())
                rels = relations[rng.choice(n_relations, size=n, p=rel_p)]
                tails = _tails(rng, chars, n, surfaces)
                fh.write("".join(map("{}\t{}\t{}\n".format, np.repeat(heads, k), rels, tails)))
                bar.update(n)
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return {
        "triples": int(counts.sum()),
        "entities": n_entities,
        "relations": n_relations,
        "bytes": out.stat().st_size,
        "seconds": round(time.perf_counter() - start, 3),
        "path": str(out),
    }


def _rate(fn, args: list[tuple]) -> tuple[float, int]:
    """(calls per second, calls that found something) of fn over args."""
    hits = 0
    start = time.perf_counter()
    for a in args:
        hits += bool(fn(*a))
    return len(args) / (time.perf_counter() - start), hits


def measure_lookups(db_path: str | Path, samples: int = 10_000, seed: int = 0) -> dict:
    """Lookups per second on a built store for `samples` random entities (ids drawn uniformly; the sample
    queries are drawn before the clock starts): entities(surface), relations(entity), objects(entity, relation)
    with a relation the entity has, entities() of surfaces that are absent, and fuzzy_entities on
    '<surface>是什么' (one in every ten samples). One thread, the store opened read-only."""
    import sqlite3

    from .store import KnowledgeStore

    conn = sqlite3.connect(Path(db_path).resolve().as_uri() + "?mode=ro", uri=True)
    n = conn.execute("SELECT max(id) FROM entity").fetchone()[0]
    rnd = random.Random(seed)
    picks = []
    for eid in rnd.sample(range(1, n + 1), min(samples, n)):
        name, surface = conn.execute("SELECT name, surface FROM entity WHERE id = ?", (eid,)).fetchone()
        rels = [r[0] for r in conn.execute("SELECT DISTINCT relation FROM triple WHERE entity = ?", (eid,))]
        rel = conn.execute("SELECT name FROM relation WHERE id = ?", (rnd.choice(rels),)).fetchone()[0]
        picks.append((name, surface, rel))
    conn.close()
    out = {"samples": len(picks), "entities_in_store": n}
    with KnowledgeStore(db_path) as kb:
        cases = {
            "entities": (kb.entities, [(s,) for _, s, _ in picks]),
            "relations": (kb.relations, [(h,) for h, _, _ in picks]),
            "objects": (kb.objects, [(h, r) for h, _, r in picks]),
            "entities_absent": (kb.entities, [(s + "不存在之名",) for _, s, _ in picks]),
            "fuzzy_entities": (kb.fuzzy_entities, [(s + "是什么",) for _, s, _ in picks[::10]]),
        }
        for name, (fn, args) in cases.items():
            rate, hits = _rate(fn, args)
            out[f"{name}_per_s"], out[f"{name}_hits"], out[f"{name}_calls"] = round(rate), hits, len(args)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m obert_lib.kbqa.generate", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    make = sub.add_parser("make", help="write a synthetic knowledge file")
    make.add_argument("out_file")
    make.add_argument("--triples", type=int, default=20_000_000)
    make.add_argument("--entities", type=int, default=None, help="default: triples × 0.15 (KgCLUE: 3.12M / 20.56M)")
    make.add_argument("--relations", type=int, default=None, help="default: triples × 0.012 (KgCLUE: 245,838)")
    make.add_argument("--seed", type=int, default=0)
    meas = sub.add_parser("measure", help="build the store from a knowledge file and time its lookups")
    meas.add_argument("knowledge_file")
    meas.add_argument("db_path")
    meas.add_argument("--samples", type=int, default=10_000)
    args = parser.parse_args(argv)
    if args.command == "make":
        stats = generate_knowledge(
            args.out_file,
            n_triples=args.triples,
            n_entities=args.entities or max(1, round(args.triples * 0.15)),
            n_relations=args.relations or max(1, round(args.triples * 0.012)),
            seed=args.seed,
        )
    else:
        from .store import build_store

        built = build_store(args.knowledge_file, args.db_path)
        stats = {"build": built, "lookups": measure_lookups(args.db_path, args.samples)}
        stats["machine"] = {"nproc": os.cpu_count(), "loadavg": os.getloadavg(), "python": platform.python_version()}
    print(json.dumps(stats, ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
