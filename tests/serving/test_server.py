"""The HTTP server over real sockets on localhost (uvicorn in a thread; `obert serve` in a subprocess): health,
info, predictions equal to UnifiedModel.predict, concurrent requests micro-batched, every bad input a 4xx with
a message (never a 500), the separate-models baseline and the load test."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from obert_lib import finetuning
from obert_lib.cli import main
from obert_lib.serving import MicroBatcher, SeparateModels, create_app, running
from obert_lib.serving.loadtest import compare_backbones, run_load_test
from obert_lib.serving.process import ServerProcess, serve_process
from obert_lib.unified import UnifiedModel, top_n_config

TEXTS = ["这家店的菜很好吃，服务也不错", "太差了", "北京很好", "物流很快"]
PAIRS = [["今天天气怎么样", "今天天气如何"], ["我想买手机", "北京很好吃"]]
MAX_LENGTH = 32  # the tasks' fine-tuned max_length: the server's token limit


def _tune(checkpoint, out, task: str):
    cfg = {"model": {"checkpoint": str(checkpoint), "max_length": MAX_LENGTH}, "data": {"task": task},
           "output_dir": str(out), "train": {"epochs": 1, "seed": 0}}  # fmt: skip
    return finetuning.run(top_n_config(cfg, 1, num_layers=2), progress=False).output_dir / "best"  # freeze_layers 1


@pytest.fixture(scope="module")
def dirs(tiny_checkpoint, tmp_path_factory):
    """Two tasks top-1 fine-tuned (model.freeze_layers = 1) from the tiny checkpoint: one single-text, one pair."""
    ckpt, root = tiny_checkpoint.checkpoints[-1], tmp_path_factory.mktemp("serving")
    return {"eprstmt": _tune(ckpt, root / "eprstmt", "eprstmt"), "bustm": _tune(ckpt, root / "bustm", "bustm")}


@pytest.fixture(scope="module")
def unified(dirs):
    return UnifiedModel.from_checkpoints(dirs)


@pytest.fixture(scope="module")
def server(unified):
    app = create_app(unified, max_batch=8, max_wait_ms=20, max_texts=16)
    with running(app) as url:
        with httpx.Client(base_url=url, trust_env=False, timeout=30) as client:
            yield client, app


def test_health_and_info_describe_the_tasks_and_limits(server, unified):
    client, _ = server
    health = client.get("/health")
    assert health.status_code == 200 and health.json() == {"status": "ok", "model": "unified", "tasks": 2}
    info = client.get("/info").json()
    assert info["tasks"] == ["eprstmt", "bustm"] and info["labels"] == unified.labels
    assert info["task_kinds"] == {"eprstmt": "classification", "bustm": "pair"}
    assert (info["layers"], info["shared_layers"], info["top_layers"]) == (2, 1, {"eprstmt": 1, "bustm": 1})
    assert (info["max_length"], info["max_batch"], info["max_texts"], info["max_chars"]) == (MAX_LENGTH, 8, 16, 256)
    assert {"requests", "forwards", "mean_batch"} <= set(info["batching"])


def test_predictions_equal_unified_predict_for_a_text_a_batch_and_pairs(server, unified):
    client, _ = server
    want = unified.predict(TEXTS)
    one = client.post("/predict", json={"text": TEXTS[0]})
    assert one.status_code == 200
    assert one.json() == {"predictions": {task: labels[:1] for task, labels in want.items()}, "model": "unified"}
    assert client.post("/predict", json={"texts": TEXTS}).json()["predictions"] == want
    pairs = client.post("/predict", json={"pairs": PAIRS}).json()["predictions"]
    assert pairs == unified.predict([tuple(p) for p in PAIRS])
    only = client.post("/predict", json={"texts": TEXTS, "tasks": ["bustm"]}).json()["predictions"]
    assert only == {"bustm": want["bustm"]}


def test_concurrent_requests_are_answered_correctly_in_fewer_forwards(server, unified):
    client, app = server
    want = unified.predict(TEXTS)
    before = app.state.batcher.stats.forwards

    async def fire():
        async with httpx.AsyncClient(base_url=str(client.base_url), trust_env=False, timeout=30) as aclient:
            texts = [TEXTS[i % len(TEXTS)] for i in range(20)]
            answers = await asyncio.gather(*(aclient.post("/predict", json={"text": t}) for t in texts))
            return texts, answers

    texts, answers = asyncio.run(fire())
    assert [a.status_code for a in answers] == [200] * 20
    for text, answer in zip(texts, answers):
        i = TEXTS.index(text)
        assert answer.json()["predictions"] == {task: [labels[i]] for task, labels in want.items()}
    forwards = app.state.batcher.stats.forwards - before
    assert 1 <= forwards < 20 and app.state.batcher.stats.largest > 1  # micro-batched


TOO_MANY = {"texts": ["好"] * 17}
BAD = [
    # (json body or raw bytes, content type, status, words the message holds)
    ({"text": ""}, None, 422, "text: empty text"),
    ({"texts": ["好", "   "]}, None, 422, "texts[1]: empty text"),
    ({"texts": []}, None, 422, "texts: empty list"),
    ({"pairs": [["好", ""]]}, None, 422, "pairs[0][1]: empty text"),
    ({"pairs": [["好", "不", "行"]]}, None, 422, "pairs[0]: 3 strings; a pair is [text, text]"),
    (TOO_MANY, None, 413, "texts: 17 given; at most 16 per request (max_texts)"),
    ({"text": "好" * 40}, None, 413, "text: 42 tokens with [CLS] and [SEP]; the model takes at most 32 (max_length)"),
    ({"pairs": [["好" * 20, "好" * 20]]}, None, 413, "pairs[0]: 43 tokens"),
    ({"text": "好" * 300}, None, 413, "text: 300 characters; at most 256 per text (max_chars)"),
    ({"text": "a" * 200_000}, None, 413, "body: 200011 bytes; at most 98304 bytes"),  # before any parsing
    ('{"text": "好"'.encode(), "application/json", 400, "body: not valid JSON"),
    (b"", "application/json", 422, "body: empty"),
    (b"text=hello", "text/plain", 422, "must be a JSON object"),
    ([1, 2], None, 422, "must be a JSON object"),
    ({"text": 5}, None, 422, "text: Input should be a valid string"),
    ({"texts": "太差了"}, None, 422, "texts: Input should be a valid list"),
    ({"texts": ["好", 7]}, None, 422, "texts[1]: Input should be a valid string"),
    ({"txt": "好"}, None, 422, "txt: unknown field; the fields are text, texts, pairs, tasks"),
    ({}, None, 422, "give exactly one of text, texts or pairs (got none)"),
    ({"text": "好", "texts": ["好"]}, None, 422, "(got text and texts)"),
    (
        {"text": "好", "tasks": ["iflytek"]},
        None,
        422,
        "tasks: unknown task 'iflytek'; the tasks are ['eprstmt', 'bustm']",
    ),
    ({"text": "好", "tasks": []}, None, 422, "tasks: empty list"),
    ({"text": "好", "tasks": "bustm"}, None, 422, "tasks: Input should be a valid list"),
]


@pytest.mark.bad_input
@pytest.mark.parametrize("body,content_type,status,needle", BAD, ids=[str(i) for i in range(len(BAD))])
def test_each_bad_input_gets_its_4xx_and_a_message(server, body, content_type, status, needle):
    client, _ = server
    if isinstance(body, bytes):
        answer = client.post("/predict", content=body, headers={"content-type": content_type})
    else:
        answer = client.post("/predict", json=body)
    assert answer.status_code == status, answer.text
    assert needle in answer.json()["error"]


@pytest.mark.bad_input
def test_a_streamed_body_over_the_limit_is_a_413_too(server):
    client, _ = server

    def chunks():  # no Content-Length: chunked transfer, counted as it arrives
        yield b'{"text": "'
        for _ in range(20):
            yield b"a" * 10_000
        yield b'"}'

    answer = client.post("/predict", content=chunks(), headers={"content-type": "application/json"})
    assert answer.status_code == 413 and "body: over 98304 bytes (streamed)" in answer.json()["error"]


@pytest.mark.bad_input
def test_unknown_paths_and_methods_list_the_endpoints_and_the_server_keeps_serving(server):
    client, _ = server
    for method, path, status in (("GET", "/nope", 404), ("GET", "/predict", 405), ("POST", "/health", 405)):
        answer = client.request(method, path)
        assert answer.status_code == status
        assert f"{method} {path}; the endpoints are POST /predict, GET /health, GET /info" in answer.json()["error"]
    assert client.post("/predict", json={"text": "好"}).status_code == 200


def test_only_a_genuine_fault_is_a_500(unified, monkeypatch):
    app = create_app(unified)

    def broken(items):
        raise RuntimeError("model fault")

    monkeypatch.setattr(app.state.batcher, "predict", broken)
    with running(app) as url:
        answer = httpx.post(url + "/predict", json={"text": "好"}, trust_env=False, timeout=30)
    assert answer.status_code == 500 and answer.json() == {"error": "internal error: RuntimeError: model fault"}


def test_batcher_never_splits_a_request_and_runs_one_larger_than_max_batch_alone():
    calls = []

    def predict(items):
        calls.append(list(items))
        return {"t": [x * 10 for x in items]}

    async def go():
        batcher = MicroBatcher(predict, max_batch=4, max_wait_ms=50)
        out = await asyncio.gather(batcher.submit([1, 2, 3]), batcher.submit([4, 5]), batcher.submit(list(range(6))))
        await batcher.stop()
        return out

    out = asyncio.run(go())
    assert out == [{"t": [10, 20, 30]}, {"t": [40, 50]}, {"t": [0, 10, 20, 30, 40, 50]}]
    assert sorted(map(len, calls)) == [2, 3, 6]


def test_separate_models_answer_as_the_unified_model_and_the_load_test_compares_them(dirs, unified, capsys):
    separate = SeparateModels.from_checkpoints(dirs)
    assert separate.predict(TEXTS) == unified.predict(TEXTS)
    with running(create_app(separate)) as url:
        info = httpx.get(url + "/info", trust_env=False).json()
        assert (info["kind"], info["shared_layers"], info["top_layers"]) == ("separate", 0, {"eprstmt": 2, "bustm": 2})
        result = run_load_test(url, TEXTS, requests=12, concurrency=4, warmup=1)
    assert result["errors"] == 0 and result["requests"] == 12 and 0 < result["p50_ms"] <= result["p95_ms"]
    rows = compare_backbones(dirs, TEXTS, requests=16, concurrency=4, in_process=True)
    assert [r["model"] for r in rows] == ["unified", "separate"] and all(r["errors"] == 0 for r in rows)
    table = capsys.readouterr().out
    assert "req/s" in table and "p95 ms" in table and table.strip().splitlines()[-1].startswith("ratio: ")


def test_obert_serve_starts_from_the_command_line_answers_and_stops(dirs, unified):
    server = ServerProcess(dirs, options=["--runtime", "max_batch=4"]).start()
    try:
        assert server.running
        info = server.get("/info")
        answer = server.predict(TEXTS)
        with pytest.raises(RuntimeError, match="POST /predict answered 4"):
            server.predict([""])
    finally:
        stopped = server.stop()
    assert stopped["graceful"] and not server.running and stopped["url"] == server.url
    assert info["max_batch"] == 4 and info["tasks"] == ["eprstmt", "bustm"]
    assert answer["predictions"] == unified.predict(TEXTS)
    with serve_process(dirs) as url:
        assert httpx.get(url + "/health", trust_env=False).json()["status"] == "ok"


@pytest.mark.bad_input
def test_a_server_that_cannot_start_says_why(tmp_path):
    with pytest.raises(RuntimeError, match="obert serve exited with 2: .*holds no finetune.json"):
        ServerProcess({"x": tmp_path}).start()


@pytest.mark.bad_input
@pytest.mark.parametrize(
    "argv,needle",
    [
        ([], "no tasks: give --task NAME=DIR"),
        (["--task", "eprstmt"], "--task expects NAME=DIR"),
        (["--task", "x=/nonexistent/best"], "tasks.x: /nonexistent/best holds no finetune.json"),
        (["--set", "host=0.0.0.0"], "--set host: not a setting of `obert serve` here"),
        (["--runtime", "max_batch=0"], "max_batch: 0 must be an integer in [1, 65536]"),
    ],
)
def test_obert_serve_mistakes_are_one_line(capsys, argv, needle):
    assert main(["serve", *argv]) == 2
    assert needle in capsys.readouterr().err


def test_obert_serve_help(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["serve", "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert "--task NAME=DIR" in out and "--config" in out and "--runtime" in out and "POST /predict" in out
