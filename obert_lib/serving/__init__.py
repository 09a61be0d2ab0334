"""Serving (issue 17): fine-tuned tasks over HTTP, one shared backbone, micro-batched; `obert serve`; load test.

    app.create_app(model, max_batch, max_wait_ms, max_length, max_texts, max_chars)  the FastAPI app
    app.SeparateModels      T full task models behind UnifiedModel's interface (the baseline)
    app.running(app)        uvicorn in a background thread on a free localhost port (tests, notebooks)
    batcher.MicroBatcher    concurrent requests' texts gathered into one forward in a worker thread
    loadtest.run_load_test / compare_backbones   requests/s and p50/p95 latency on localhost
    process.ServerProcess   `obert serve` in a subprocess: start(), predict(texts), get("/info"), stop()

This module imports no web framework (the CLI registers `obert serve` through it); the names above load on
first use: `from obert_lib.serving import create_app`.
"""

from __future__ import annotations

import argparse
from typing import Any

from ..cli_options import _idiom, _option_settings

_LAZY = {
    "create_app": "app", "SeparateModels": "app", "running": "app", "describe": "app", "serve": "app",
    "MicroBatcher": "batcher", "run_load_test": "loadtest", "compare_backbones": "loadtest",
    "ServerProcess": "process",
}  # fmt: skip
__all__ = [*_LAZY, "add_serve_parser"]

# `obert serve` settings: --set/--config (change answers) and --runtime (change only speed or where it listens)
SERVE_SET = ("tasks", "separate", "max_length", "max_texts", "max_chars", "name")
SERVE_RUNTIME = ("host", "port", "max_batch", "max_wait_ms", "threads", "log_level")
DEFAULTS = {"tasks": None, "separate": False, "max_length": None, "max_texts": 64, "max_chars": None, "name": None,
            "host": "127.0.0.1", "port": 8000, "max_batch": 32, "max_wait_ms": 5.0, "threads": None,
            "log_level": "info"}  # fmt: skip
FLAGS = ("host", "port", "separate")  # explicit flags: read last, so they win over --config/--set/--runtime


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _task_dirs(configured, flags: list[str] | None) -> dict:
    """tasks from --config/--set (a mapping name: DIR, or a list of DIRs named by their finetune.json task)
    with each --task NAME=DIR added (replacing a configured task of that name)."""
    from ..config import ConfigError

    if configured is None:
        tasks: dict = {}
    elif isinstance(configured, dict):
        tasks = {str(k): str(v) for k, v in configured.items()}
    elif isinstance(configured, list) and all(isinstance(x, str) for x in configured):
        from ..unified.model import _named

        tasks = {k: str(v) for k, v in _named(configured).items()}
    else:
        raise ConfigError(f"tasks: {configured!r} must map task names to checkpoint folders (name: DIR) or list them")
    for pair in flags or []:
        name, sep, folder = pair.partition("=")
        if not sep or not name.strip() or not folder.strip():
            raise ConfigError(f"--task expects NAME=DIR (a fine-tuned `<output_dir>/best`), got {pair!r}")
        tasks[name.strip()] = folder.strip()
    if not tasks:
        raise ConfigError("no tasks: give --task NAME=DIR (repeatable) or a --config YAML with `tasks: {name: DIR}`")
    return tasks


def _typed(args) -> None:
    from ..config import ConfigError

    ints = {"port": (0, 65535), "max_batch": (1, 1 << 16), "max_texts": (1, 1 << 16), "threads": (1, 1024)}
    for key, (low, high) in ints.items():
        value = getattr(args, key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high):
            raise ConfigError(f"{key}: {value!r} must be an integer in [{low}, {high}]")
    if isinstance(args.max_wait_ms, bool) or not isinstance(args.max_wait_ms, (int, float)) or args.max_wait_ms < 0:
        raise ConfigError(f"max_wait_ms: {args.max_wait_ms!r} must be a number >= 0 (milliseconds)")
    if not isinstance(args.separate, bool):
        raise ConfigError(f"separate: {args.separate!r} must be true or false")
    if not isinstance(args.host, str) or not args.host:
        raise ConfigError(f"host: {args.host!r} must be a host name or address, e.g. 127.0.0.1")


def cmd_serve(args) -> None:
    given = {k: getattr(args, k) for k in FLAGS if getattr(args, k) is not None}
    for key, value in DEFAULTS.items():
        setattr(args, key, value)
    _option_settings(args, "--set", SERVE_SET)
    _option_settings(args, "--runtime", SERVE_RUNTIME)
    for key, value in given.items():
        setattr(args, key, value)
    _typed(args)
    tasks = _task_dirs(args.tasks, args.task)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    from ..unified import UnifiedModel
    from .app import SeparateModels, create_app, serve

    model = (SeparateModels if args.separate else UnifiedModel).from_checkpoints(tasks)
    app = create_app(model, max_batch=args.max_batch, max_wait_ms=args.max_wait_ms, max_length=args.max_length,
                     max_texts=args.max_texts, max_chars=args.max_chars, name=args.name)  # fmt: skip
    serve(app, args.host, args.port, str(args.log_level))


def add_serve_parser(add) -> argparse.ArgumentParser:
    """Register `obert serve` through the main parser's `add(name, func, help)`."""
    p = add(
        "serve",
        cmd_serve,
        "Serve fine-tuned tasks over HTTP (FastAPI + uvicorn) with one shared backbone: POST /predict "
        '{"text": ...} | {"texts": [...]} | {"pairs": [[a, b], ...]} answers every task; GET /health, GET /info.',
    )
    _idiom(
        p,
        "YAML mapping of --set keys, e.g. `tasks: {eprstmt: runs/ft/eprstmt/best, bustm: ...}`",
        f"setting that changes answers, one of {list(SERVE_SET)} (separate=true: T full models, the baseline)",
        f"speed-only setting, one of {list(SERVE_RUNTIME)} (max_batch 32 texts per forward, max_wait_ms 5)",
    )
    p.add_argument(
        "--task",
        action="append",
        metavar="NAME=DIR",
        help="a task and its fine-tuned checkpoint (`<output_dir>/best` of `obert finetune`; repeatable; all "
        "fine-tuned from one pretrained checkpoint with model.freeze_layers set)",
    )
    p.add_argument("--host", default=None, help="= --runtime host=...: address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=None, help="= --runtime port=...: 0 picks a free one (default 8000)")
    p.add_argument(
        "--separate",
        action="store_true",
        default=None,
        help="= --set separate=true: serve T full task models instead of the shared backbone (the baseline)",
    )
    return p
