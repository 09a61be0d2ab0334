"""Load test on localhost: requests/s and p50/p95 latency of a running server, and the shared backbone
(UnifiedModel) against T full task models (SeparateModels) served the same way (issue 17).

`run_load_test` sends a bounded number of POST /predict requests from `concurrency` concurrent clients
(httpx, asyncio) after an untimed warm-up round of the same load (without it the server's first calls at
each batch shape land in the p95), and times each one. `compare_backbones` serves each model in
turn on a free localhost port (by default `obert serve` in a subprocess, so the clients and the server do
not share one interpreter's GIL; in_process=True: uvicorn in a thread of this process), load-tests it with
the same texts, requests and concurrency, and prints a table with the micro-batching each one did.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Mapping, Sequence

import numpy as np

from ..config import ConfigError
from .process import serve_process

MAX_REQUESTS = 100_000  # a load test is bounded: no open-ended hammering


def _check(requests: int, concurrency: int, texts: Sequence[str], per_request: int) -> None:
    for key, value, top in (("requests", requests, MAX_REQUESTS), ("concurrency", concurrency, 1024),
                            ("texts_per_request", per_request, 1024)):  # fmt: skip
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= top:
            raise ConfigError(f"{key}: {value!r} must be an integer in [1, {top}]")
    if not texts or not all(isinstance(t, str) and t.strip() for t in texts):
        raise ConfigError("texts: give a non-empty list of non-empty strings")


def run_load_test(url: str, texts: Sequence[str], requests: int = 200, concurrency: int = 16,
                  texts_per_request: int = 1, warmup: int | None = None, timeout: float = 60.0) -> dict:  # fmt: skip
    """POST `requests` requests to `url`/predict, `concurrency` at a time, each with `texts_per_request`
    texts taken in turn from `texts`, after `warmup` untimed ones sent the same way (default 4 x concurrency,
    at most `requests`). -> {requests, concurrency, texts_per_request, seconds, requests_per_s, p50_ms, p95_ms,
    errors} (errors: non-200 answers and failed connections; latency percentiles over the 200s)."""
    warmup = min(4 * concurrency, requests) if warmup is None else warmup
    if isinstance(warmup, bool) or not isinstance(warmup, int) or not 0 <= warmup <= MAX_REQUESTS:
        raise ConfigError(f"warmup: {warmup!r} must be an integer in [0, {MAX_REQUESTS}]")
    _check(requests, concurrency, texts, texts_per_request)
    return _run_sync(_load(url.rstrip("/"), list(texts), requests, concurrency, texts_per_request, warmup, timeout))


def _run_sync(coro):
    """asyncio.run, also from inside a running loop (a notebook cell): then in a helper thread."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    box: dict = {}

    def target():
        try:
            box["value"] = asyncio.run(coro)
        except BaseException as exc:  # handed back to the caller's thread
            box["error"] = exc

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box["value"]


async def _load(url, texts, requests, concurrency, per_request, warmup, timeout) -> dict:
    import httpx

    def body(i: int) -> dict:
        return {"texts": [texts[(i * per_request + j) % len(texts)] for j in range(per_request)]}

    async def phase(client, count: int) -> tuple[list[float], int, float]:
        """`count` requests from `concurrency` workers: latencies of the 200s, errors, seconds."""
        latencies: list[float] = []
        errors, next_index = 0, 0

        async def worker():
            nonlocal next_index, errors
            while next_index < count:
                i, next_index = next_index, next_index + 1
                start = time.perf_counter()
                try:
                    ok = (await client.post("/predict", json=body(i))).status_code == 200
                except httpx.HTTPError:
                    ok = False
                if ok:
                    latencies.append(time.perf_counter() - start)
                else:
                    errors += 1

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return latencies, errors, time.perf_counter() - start

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=timeout, limits=limits, trust_env=False) as client:
        if warmup:  # the same load, untimed: connections opened, the model's first calls at these shapes paid
            await phase(client, warmup)
        latencies, errors, seconds = await phase(client, requests)
    ms = np.array(latencies) * 1000.0
    return {
        "requests": requests,
        "concurrency": concurrency,
        "texts_per_request": per_request,
        "warmup": warmup,
        "seconds": round(seconds, 3),
        "requests_per_s": round(requests / seconds, 1),
        "p50_ms": round(float(np.percentile(ms, 50)), 2) if len(ms) else None,
        "p95_ms": round(float(np.percentile(ms, 95)), 2) if len(ms) else None,
        "errors": errors,
    }


@contextmanager
def _served(dirs, separate: bool, in_process: bool, max_batch: int, max_wait_ms: float) -> Iterator[str]:
    if not in_process:
        options = ["--runtime", f"max_batch={max_batch}", "--runtime", f"max_wait_ms={max_wait_ms}"]
        with serve_process(dirs, separate, options=options) as url:
            yield url
        return
    from ..unified import UnifiedModel
    from .app import SeparateModels, create_app, running

    model = (SeparateModels if separate else UnifiedModel).from_checkpoints(dirs)
    with running(create_app(model, max_batch=max_batch, max_wait_ms=max_wait_ms)) as url:
        yield url


def compare_backbones(dirs: Mapping[str, str | Path], texts: Sequence[str], requests: int = 200,
                      concurrency: int = 16, texts_per_request: int = 1, max_batch: int = 32,
                      max_wait_ms: float = 5.0, in_process: bool = False, show: bool = True) -> list[dict]:  # fmt: skip
    """The shared backbone (UnifiedModel over `dirs`) against the T full task models (SeparateModels), each
    served alone on localhost and load-tested the same way; one row per side with the server's /info
    (layers, batching). Prints the table and a last line `ratio: <shared/separate requests per second>`.
    """
    import httpx

    _check(requests, concurrency, texts, texts_per_request)
    rows = []
    for separate in (False, True):
        with _served(dirs, separate, in_process, max_batch, max_wait_ms) as url:
            result = run_load_test(url, texts, requests, concurrency, texts_per_request)
            info = httpx.get(url + "/info", timeout=10.0, trust_env=False).json()
        rows.append({"model": info["kind"], "tasks": len(info["tasks"]), "layers": info["layers"],
                     "shared_layers": info["shared_layers"], **result, "batching": info["batching"]})  # fmt: skip
    if show:
        print(format_table(rows))
    return rows


def format_table(rows: list[dict]) -> str:
    head = f"{'model':<10}{'tasks':>6}{'layers run':>12}{'req/s':>9}{'p50 ms':>9}{'p95 ms':>9}{'errors':>8}"
    head += f"{'forwards':>10}{'mean batch':>12}"
    lines = [head]
    for r in rows:
        run = r["shared_layers"] + r["tasks"] * (r["layers"] - r["shared_layers"])
        lines.append(
            f"{r['model']:<10}{r['tasks']:>6}{run:>12}{r['requests_per_s']:>9.1f}{_ms(r['p50_ms']):>9}"
            f"{_ms(r['p95_ms']):>9}{r['errors']:>8}{r['batching']['forwards']:>10}{r['batching']['mean_batch']:>12.2f}"
        )
    shared, separate = rows[0]["requests_per_s"], rows[-1]["requests_per_s"]
    r = rows[0]
    lines.append(
        f"{r['requests']} timed requests x {r['texts_per_request']} text(s), concurrency {r['concurrency']}, after "
        f"{r['warmup']} untimed warm-up requests (forwards and mean batch: the server's whole run, warm-up included)"
    )
    lines.append(f"ratio: {shared / separate:.2f}" if separate else "ratio: -")
    return "\n".join(lines)


def _ms(value) -> str:
    return "-" if value is None else f"{value:.1f}"


def main(argv: Sequence[str] | None = None) -> None:
    """python -m obert_lib.serving.loadtest NAME=DIR ... [--requests N] [--concurrency C]: the comparison."""
    import argparse

    p = argparse.ArgumentParser(description=compare_backbones.__doc__)
    p.add_argument("tasks", nargs="+", metavar="NAME=DIR")
    p.add_argument("--texts", help="JSON list of texts (default: a few short Chinese sentences)")
    p.add_argument("--requests", type=int, default=200)
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--texts-per-request", type=int, default=1)
    p.add_argument("--in-process", action="store_true")
    args = p.parse_args(argv)
    dirs = dict(t.split("=", 1) for t in args.tasks)
    texts = json.loads(Path(args.texts).read_text(encoding="utf-8")) if args.texts else SAMPLE_TEXTS
    compare_backbones(dirs, texts, args.requests, args.concurrency, args.texts_per_request, in_process=args.in_process)


SAMPLE_TEXTS = [
    "这家店的菜很好吃，服务也不错",
    "太差了，再也不来了",
    "北京很好",
    "今天天气怎么样",
    "物流很快，包装完好",
    "价格有点贵，但是质量不错",
    "我想买一部新手机",
    "电影情节拖沓，演员演技一般",
]


if __name__ == "__main__":
    main()
