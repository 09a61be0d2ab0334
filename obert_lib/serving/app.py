"""The HTTP server (issue 17): every task's prediction for a text or a batch of texts, over FastAPI.

    POST /predict  {"text": "..."} | {"texts": [...]} | {"pairs": [[a, b], ...]}, optional "tasks": [...]
                   -> {"predictions": {task: [label, ...]}, "model": name}   (tagging: one tag list per text)
    GET  /health   -> {"status": "ok", "tasks": T}
    GET  /info     -> tasks, labels and kind per task, layers, shared layers, top N per task, limits, batching

Concurrent requests are micro-batched (batcher.MicroBatcher): their texts go through one forward of the model
(every task at once), in a worker thread. Bad input is a 4xx with {"error": message}, never a 500:

    400  body that is not JSON
    413  more than max_texts texts; a text longer than max_chars characters or max_length tokens
         ([CLS] and [SEP] counted): the message names the limit (nothing is silently truncated)
    422  wrong shape or types (pydantic's errors, one line), none or two of text/texts/pairs, an empty list,
         an empty or blank text, a pair that is not two strings, an unknown or empty "tasks"
    404/405  an unknown path or method (the message lists the endpoints)

A 500 {"error": "internal error: ..."} means a bug. `model` is a UnifiedModel, a SeparateModels (T full task
models, the baseline) or a mapping task -> fine-tuned checkpoint folder (served as SeparateModels).
"""

from __future__ import annotations

import contextlib
import copy
import json
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any, Iterator, Mapping

import torch
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from torch import nn

from ..config import ConfigError, UserError
from ..finetuning import model as ftmodel
from ..unified import UnifiedModel
from ..unified.model import _max_length
from .batcher import MicroBatcher

ENDPOINTS = "POST /predict, GET /health, GET /info"
FIELDS = ("text", "texts", "pairs", "tasks")
EXAMPLE = '{"text": "..."}, {"texts": ["...", "..."]} or {"pairs": [["...", "..."]]}, optionally "tasks": [...]'


class SeparateModels(nn.Module):
    """T full fine-tuned task models side by side, each run over the whole input: the baseline the shared
    backbone is measured against. Same interface as UnifiedModel (forward -> {task: logits}, predict,
    labels, tokenizer, max_length); its predict *is* UnifiedModel.predict, so encoding and decoding agree."""

    predict = UnifiedModel.predict

    def __init__(self, models: Mapping[str, ftmodel.FinetuneModel], labels=None, tokenizer=None,
                 max_length: int = 128, info=None):  # fmt: skip
        super().__init__()
        if not models:
            raise ConfigError("tasks: no task models given; give at least one fine-tuned checkpoint")
        self.tops = nn.ModuleDict(dict(models))  # FinetuneModel has .kind, as TaskTop does
        self.config = next(iter(models.values())).encoder.config
        self.shared_layers = 0
        self.labels, self.tokenizer, self.max_length, self.info = dict(labels or {}), tokenizer, max_length, info

    @classmethod
    def from_checkpoints(cls, dirs: Mapping[str, str | Path]) -> SeparateModels:
        """Task models saved by finetuning.model.save (`<output_dir>/best`); the first one's tokenizer."""
        from ..model.checkpoint_check import load_tokenizer

        models, labels, info, lengths = {}, {}, {}, []
        for name, folder in dirs.items():
            folder = Path(folder)
            if not (folder / ftmodel.FINETUNE_FILE).is_file():
                raise ConfigError(f"tasks.{name}: {folder} holds no {ftmodel.FINETUNE_FILE}; give a fine-tuned `best/`")
            models[name], info[name] = ftmodel.load(folder)
            labels[name] = list(info[name]["labels"])
            lengths.append(_max_length(folder))
        tokenizer = load_tokenizer(next(iter(dirs.values())), key=f"tasks.{next(iter(dirs))}")
        return cls(models, labels, tokenizer, min(lengths), info).eval()

    def forward(self, input_ids, attention_mask=None, token_type_ids=None) -> dict[str, torch.Tensor]:
        batch = {"input_ids": input_ids, "attention_mask": attention_mask, "token_type_ids": token_type_ids}
        batch = {k: v for k, v in batch.items() if v is not None}
        return {name: model(batch).logits for name, model in self.tops.items()}


def describe(model: nn.Module) -> dict[str, Any]:
    """Tasks, their labels and kinds, layers, the shared bottom and each task's own top layers."""
    layers = model.config.num_hidden_layers
    separate = isinstance(model, SeparateModels)
    return {
        "kind": "separate" if separate else "unified",
        "tasks": list(model.tops),
        "labels": {name: list(model.labels.get(name, [])) for name in model.tops},
        "task_kinds": {name: top.kind for name, top in model.tops.items()},
        "layers": layers,
        "shared_layers": model.shared_layers,
        "top_layers": {name: layers if separate else len(top.layers) for name, top in model.tops.items()},
    }


class PredictRequest(BaseModel):
    """One of text, texts or pairs; tasks optionally restricts the answer (every task runs regardless)."""

    model_config = ConfigDict(extra="forbid", strict=True)
    text: str | None = None
    texts: list[str] | None = None
    pairs: list[list[str]] | None = None
    tasks: list[str] | None = None


class BadInput(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


def create_app(model: nn.Module | Mapping[str, str | Path], max_batch: int = 32, max_wait_ms: float = 5.0,
               max_length: int | None = None, max_texts: int = 64, max_chars: int | None = None,
               name: str | None = None) -> FastAPI:  # fmt: skip
    """The FastAPI app serving `model` (see the module docstring). max_batch: texts per forward (micro-batch);
    max_wait_ms: how long the first request of a batch waits for others; max_length: tokens per text, [CLS]
    and [SEP] counted (default the model's fine-tuned max_length; at most its positions); max_texts: texts per
    request; max_chars: characters per text, checked before tokenising (default 8 x max_length)."""
    if isinstance(model, Mapping):
        model = SeparateModels.from_checkpoints(model)
    if not hasattr(model, "predict") or not hasattr(model, "tops") or getattr(model, "tokenizer", None) is None:
        raise ConfigError("model: give a UnifiedModel or SeparateModels with a tokenizer (from_checkpoints)")
    model.eval()
    positions = getattr(model.config, "max_position_embeddings", None)
    max_length = model.max_length if max_length is None else max_length
    if isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 3:
        raise ConfigError(f"max_length: {max_length!r} must be an integer >= 3 ([CLS], a token and [SEP])")
    if positions is not None and max_length > positions:
        raise ConfigError(f"max_length: {max_length} exceeds the model's positions ({positions}); use <= {positions}")
    for key, value in (("max_texts", max_texts), ("max_chars", max_chars)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ConfigError(f"{key}: {value!r} must be an integer >= 1")
    max_chars = 8 * max_length if max_chars is None else max_chars
    info = describe(model)
    name = name or info["kind"]
    lengths = copy.deepcopy(model.tokenizer)  # its own copy: a fast tokenizer is not safe across threads
    lengths.model_max_length = 1 << 30  # counting only: no "longer than the maximum" warnings

    def predict(items: list) -> dict[str, list]:
        return model.predict(items, batch_size=max_batch, max_length=max_length)

    batcher = MicroBatcher(predict, max_batch=max_batch, max_wait_ms=max_wait_ms)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        batcher.start()
        yield
        await batcher.stop()

    body_limit = 8 * max_texts * max_chars + 65536  # JSON escapes take up to 6 bytes a character, pairs two texts
    app = FastAPI(title="obert serve", lifespan=lifespan)
    app.add_middleware(BodyLimit, limit=body_limit)
    app.state.model, app.state.batcher = model, batcher
    limits = {"max_length": max_length, "max_chars": max_chars, "max_texts": max_texts, "max_batch": max_batch,
              "max_wait_ms": max_wait_ms}  # fmt: skip

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        status, message = _validation_message(exc.errors())
        return JSONResponse({"error": message}, status_code=status)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        message = str(exc.detail)
        if exc.status_code in (404, 405):
            message = f"{message}: {request.method} {request.url.path}; the endpoints are {ENDPOINTS}"
        return JSONResponse({"error": message}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(BadInput)
    async def bad_input(request: Request, exc: BadInput) -> JSONResponse:
        return JSONResponse({"error": exc.message}, status_code=exc.status)

    @app.exception_handler(Exception)
    async def internal(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"error": f"internal error: {type(exc).__name__}: {exc}"}, status_code=500)

    @app.get("/health")
    async def health() -> dict:
        return {"status": "ok", "model": name, "tasks": len(info["tasks"])}

    @app.get("/info")
    async def model_info() -> dict:
        return {"model": name, **info, **limits, "batching": batcher.stats.as_dict()}

    @app.post("/predict")
    async def predict_endpoint(request: PredictRequest) -> dict:
        items, field = _items(request, max_texts, max_chars)
        tasks = _tasks(request.tasks, info["tasks"])
        _check_tokens(lengths, items, field, max_length)
        try:
            out = await batcher.submit(items)
        except UserError as exc:
            raise BadInput(422, " ".join(str(exc).split())) from None
        return {"predictions": {task: out[task] for task in tasks}, "model": name}

    return app


class BodyLimit:
    """ASGI middleware: a request body over `limit` bytes gets 413 {"error": ...} before it is read whole
    (Content-Length over the limit: at once; a streamed body: when the count passes it)."""

    def __init__(self, app, limit: int):
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = Headers(scope=scope).get("content-length", "")
        if length.isdigit() and int(length) > self.limit:
            return await self._refuse(send, f"{length} bytes")
        seen, replaced = 0, False

        async def counted():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise ValueError("request body too large")  # the route answers; `guarded` replaces it
            return message

        async def guarded(message):
            nonlocal replaced
            if seen <= self.limit:
                return await send(message)
            if message["type"] == "http.response.start" and not replaced:
                replaced = True
                await self._refuse(send, f"over {self.limit} bytes (streamed)")

        await self.app(scope, counted, guarded)

    async def _refuse(self, send, size: str) -> None:
        body = json.dumps({"error": f"body: {size}; at most {self.limit} bytes (from max_texts x max_chars)"})
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body.encode()})


def _validation_message(errors: list[dict]) -> tuple[int, str]:
    """pydantic/FastAPI validation errors as one line; 400 when the body is not JSON at all."""
    parts, status = [], 422
    for err in errors:
        loc = [str(x) for x in err.get("loc", ()) if x != "body"]
        where = loc[0] + "".join(f"[{x}]" for x in loc[1:]) if loc else "body"
        kind = err.get("type", "")
        if kind == "json_invalid":
            status = 400
            parts.append(f"body: not valid JSON ({err.get('ctx', {}).get('error', 'decode error')}); give {EXAMPLE}")
        elif kind == "missing" and where == "body":
            parts.append(f"body: empty; give {EXAMPLE}")
        elif kind in ("model_type", "model_attributes_type", "dict_type") or where == "body":
            parts.append(f"body: must be a JSON object such as {EXAMPLE} (sent with Content-Type: application/json)")
        elif kind == "extra_forbidden":
            parts.append(f"{where}: unknown field; the fields are {', '.join(FIELDS)}")
        else:
            parts.append(f"{where}: {err.get('msg', 'invalid')}")
    return status, "; ".join(dict.fromkeys(parts)) or "invalid request"


def _items(request: PredictRequest, max_texts: int, max_chars: int) -> tuple[list, str]:
    given = [f for f in ("text", "texts", "pairs") if getattr(request, f) is not None]
    if len(given) != 1:
        which = "none" if not given else " and ".join(given)
        raise BadInput(422, f"give exactly one of text, texts or pairs (got {which}); e.g. {EXAMPLE}")
    field = given[0]
    items = [request.text] if field == "text" else list(getattr(request, field))
    if not items:
        raise BadInput(422, f"{field}: empty list; give at least one")
    if len(items) > max_texts:
        raise BadInput(413, f"{field}: {len(items)} given; at most {max_texts} per request (max_texts)")
    for i, item in enumerate(items):
        where = field if field == "text" else f"{field}[{i}]"
        if field == "pairs":
            if len(item) != 2:
                raise BadInput(422, f"{where}: {len(item)} strings; a pair is [text, text]")
            item = tuple(item)
            items[i] = item
        for j, text in enumerate(item if field == "pairs" else (item,)):
            at = f"{where}[{j}]" if field == "pairs" else where
            if not text.strip():
                raise BadInput(422, f"{at}: empty text; give a non-empty string")
            if len(text) > max_chars:
                raise BadInput(413, f"{at}: {len(text)} characters; at most {max_chars} per text (max_chars)")
    return items, field


def _tasks(wanted: list[str] | None, known: list[str]) -> list[str]:
    if wanted is None:
        return known
    if not wanted:
        raise BadInput(422, f"tasks: empty list; leave it out for every task, or name some of {known}")
    unknown = [t for t in wanted if t not in known]
    if unknown:
        raise BadInput(422, f"tasks: unknown task {unknown[0]!r}; the tasks are {known}")
    return list(dict.fromkeys(wanted))


def _check_tokens(tokenizer, items: list, field: str, max_length: int) -> None:
    pairs = field == "pairs"
    firsts = [t[0] for t in items] if pairs else items
    ids = tokenizer(firsts, [t[1] for t in items] if pairs else None, add_special_tokens=True)["input_ids"]
    for i, row in enumerate(ids):
        if len(row) > max_length:
            where = field if field == "text" else f"{field}[{i}]"
            raise BadInput(
                413,
                f"{where}: {len(row)} tokens with [CLS] and [SEP]; the model takes at most {max_length} (max_length)",
            )


def listen(host: str, port: int) -> socket.socket:
    """A socket bound to host:port (0: a free port) for uvicorn; a port in use is a ConfigError."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigError(f"--host/--port {host}:{port}: cannot listen there ({exc.strerror}); pick another "
                          f"port (0: any free one) or stop what holds it") from None  # fmt: skip
    return sock


def serve(app: FastAPI, host: str = "127.0.0.1", port: int = 8000, log_level: str = "info") -> None:
    """Serve `app` with uvicorn in this thread until SIGINT/SIGTERM (`obert serve`)."""
    import uvicorn

    sock = listen(host, port)
    url = f"http://{f'[{host}]' if ':' in host else host}:{sock.getsockname()[1]}"
    print(f"obert serve: {url} ({ENDPOINTS}); Ctrl-C stops", file=sys.stderr, flush=True)
    uvicorn.Server(uvicorn.Config(app, log_level=log_level, lifespan="on")).run(sockets=[sock])


@contextlib.contextmanager
def running(app: FastAPI, host: str = "127.0.0.1", port: int = 0, timeout: float = 60.0) -> Iterator[str]:
    """Serve `app` with uvicorn in a background thread; yields its base URL ("http://127.0.0.1:PORT"; port 0:
    a free one) and stops the server on exit. For tests, load tests and notebooks."""
    import uvicorn

    sock = listen(host, port)
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    try:
        end = time.monotonic() + timeout
        while not server.started:
            if not thread.is_alive() or time.monotonic() > end:
                raise RuntimeError(f"uvicorn did not start on {host}:{port} within {timeout:.0f} s")
            time.sleep(0.02)
        yield f"http://{f'[{host}]' if ':' in host else host}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout)
        sock.close()
