"""A pretraining run owns its folder, stops when told, never hangs on a dead build, resumes without unpickling."""

import importlib
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

from obert_lib import pretraining
from obert_lib.cli import main
from obert_lib.config import UserError

pytestmark = pytest.mark.bad_input

DIST_ENV = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_PORT", "MASTER_ADDR")
STEPS = [
    "--set",
    "stages.0.steps=12",
    "--set",
    "stages.1.steps=2",
    "--set",
    "stages.0.warmup_steps=1",
    "--set",
    "stages.1.warmup_steps=1",
]


def _env(**extra) -> dict:
    return {**{k: v for k, v in os.environ.items() if k not in DIST_ENV}, **extra}


def _summary(stdout: str) -> dict:
    """The JSON summary `obert pretrain` prints last (DeepSpeed prints its own lines before it)."""
    return json.loads(stdout[stdout.rindex("\n{") + 1 :] if "\n{" in stdout else stdout)


def _hold_open(path: Path, seconds: float) -> subprocess.Popen:
    """A process that keeps `path` open for `seconds` and then exits without removing it (a killed builder)."""
    code = (
        f"import os, time; fd = os.open({str(path)!r}, os.O_RDONLY); print('open', flush=True); time.sleep({seconds})"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "open"
    return proc


def _pretrain_argv(out, sample_corpus, *extra) -> list[str]:
    """`obert pretrain` arguments: the tiny plan on the sample corpus into `out`, then `extra`."""
    return [
        "pretrain",
        "--plan",
        "tiny",
        "--output",
        str(out),
        "--set",
        f"corpus_dir={sample_corpus.output_dir}",
        *extra,
    ]


def test_a_second_run_into_a_live_runs_folder_is_refused_and_a_killed_runs_lock_taken_over(
    sample_corpus, tmp_path, capsys, caplog
):
    out = tmp_path / "run"
    args = _pretrain_argv(out, sample_corpus, "--set", "stages.0.steps=400", "--speed", "checkpoint_every=0")
    first = subprocess.Popen(
        [sys.executable, "-m", "obert_lib.cli", *args], env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 120
        while not (out / "metrics.csv").is_file() or len((out / "metrics.csv").read_text().splitlines()) < 3:
            assert time.monotonic() < deadline and first.poll() is None, "the first run did not start training"
            time.sleep(0.1)
        code = main(args)
        err = capsys.readouterr().err.strip()
        assert code == 2 and len(err.splitlines()) == 1, err
        assert f"output folder {out.resolve()} is in use by a live pretraining run (pid {first.pid}" in err
        plan = pretraining.load_plan("tiny", corpus_dir=str(sample_corpus.output_dir), output_dir=str(out))
        with pytest.raises(pretraining.LiveRunError, match=f"pid {first.pid}"):
            pretraining.run(plan, progress=False)  # a notebook's run() too
        launcher = importlib.import_module("obert_lib.pretraining.launcher")
        assert str(first.pid) in launcher._active_run(out.resolve())  # launch() refuses it as well
        rows = pd.read_csv(out / "metrics.csv")
        assert first.poll() is None and list(rows["global_step"]) == list(range(1, len(rows) + 1))  # untouched
    finally:
        first.kill()  # kill -9: its lock is left behind, stale
        first.wait()
    with caplog.at_level(logging.WARNING), pretraining.RunLock(out):
        assert json.loads((out / "run.lock").read_text())["pid"] == os.getpid()
    assert f"pid {first.pid}" in caplog.text and "taking over" in caplog.text


def test_a_dead_builders_lock_is_removed_and_a_live_builder_waited_for(tmp_path, caplog):
    from obert_lib.pretraining.build_locks import clear_stale_build_locks

    lock = tmp_path / "deepspeed_shm_comm" / "lock"
    lock.parent.mkdir()
    lock.touch()
    builder = _hold_open(lock, 2.0)  # a live build for 2 s, then killed without removing its lock
    started = time.monotonic()
    with caplog.at_level(logging.WARNING):
        assert clear_stale_build_locks(tmp_path, poll_s=0.1, report_s=0.5) == [lock]
    builder.wait()
    assert 1.5 < time.monotonic() - started < 20 and not lock.exists()
    assert f"held by pid {builder.pid}" in caplog.text and str(lock) in caplog.text
    assert "removed the stale build lock" in caplog.text
    lock.touch()  # no process has it open at all: removed at once
    assert clear_stale_build_locks(tmp_path) == [lock] and not lock.exists()


def test_a_stop_during_start_up_ends_the_run_at_once(sample_corpus, tmp_path):
    """SIGTERM while DeepSpeed's op build lock is held (start-up waits): exit 3, run.json interrupted, wait named."""
    ext = tmp_path / "torch_extensions"
    lock = ext / "deepspeed_shm_comm" / "lock"
    lock.parent.mkdir(parents=True)
    lock.touch()
    builder = _hold_open(lock, 300)
    out, log = tmp_path / "run", tmp_path / "stderr.txt"
    args = [sys.executable, "-m", "obert_lib.cli", *_pretrain_argv(out, sample_corpus, *STEPS)]
    try:
        with open(log, "w") as err:
            proc = subprocess.Popen(
                args, env=_env(TORCH_EXTENSIONS_DIR=str(ext)), stdout=subprocess.DEVNULL, stderr=err
            )
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and "waiting" not in log.read_text() and proc.poll() is None:
            time.sleep(0.2)
        assert proc.poll() is None, log.read_text()
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            pytest.fail("the run went on for 30 s after SIGTERM")
    finally:
        builder.kill()
        builder.wait()
    text = log.read_text()
    assert code == pretraining.EXIT_INTERRUPTED == 3, text
    assert f"held by pid {builder.pid}" in text and str(lock) in text  # what it was waiting for
    assert "interrupted before the first resume point" in text and "Traceback" not in text
    status = json.loads((out / "run.json").read_text())
    assert status["status"] == "interrupted" and "signal 15" in status["message"]
    assert not (out / "run.lock").read_text()  # released


def test_a_stop_not_honoured_within_the_grace_time_ends_the_run():
    from obert_lib.pretraining.stop import StopRequest, StopRun

    started = time.monotonic()
    with pytest.raises(StopRun, match="signal 15"):
        with StopRequest(grace_s=0.5) as stop:
            stop.defer(True)  # as during a training step
            os.kill(os.getpid(), signal.SIGTERM)
            while time.monotonic() - started < 20:  # a step that never ends
                time.sleep(0.05)
    assert time.monotonic() - started < 5


def _interrupt_after_first_step(out: Path) -> threading.Thread:
    """SIGINT to this process once metrics.csv has a row (the trainer's handler is installed by then)."""

    def send():
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            if (out / "metrics.csv").is_file() and len((out / "metrics.csv").read_text().splitlines()) >= 2:
                os.kill(os.getpid(), signal.SIGINT)
                return
            time.sleep(0.02)

    thread = threading.Thread(target=send, daemon=True)
    thread.start()
    return thread


def test_an_interrupted_run_exits_3_with_json_rng_states_and_resumes(sample_corpus, tmp_path, capsys):
    out = tmp_path / "run"
    args = _pretrain_argv(out, sample_corpus, *STEPS, "--speed", "checkpoint_every=0")
    thread = _interrupt_after_first_step(out)
    code = main(args)
    thread.join()
    captured = capsys.readouterr()
    assert code == 3, captured.err
    summary = _summary(captured.out)
    assert summary["status"] == "interrupted" and summary["message"].startswith("interrupted, resume with --resume")
    assert "interrupted, resume with --resume" in captured.err
    point = pretraining.resume_point(out)
    step = Path(point["path"])
    assert json.loads((out / "run.json").read_text())["status"] == "interrupted"
    assert list(step.glob("*.pt")) == [] and json.loads((step / "rng-rank0.json").read_text())["format"] == 1

    # a resume point whose RNG file would run code when unpickled: refused before any work, the code never runs
    marker = tmp_path / "pwned"
    saved = (step / "rng-rank0.json").read_bytes()
    (step / "rng-rank0.json").unlink()
    evil = (
        f"import os, torch\nclass Evil:\n    def __reduce__(self):\n"
        f"        return (os.system, ('touch {marker}',))\n"
        f"torch.save({{'torch': Evil()}}, {str(step / 'rng-rank0.pt')!r})"
    )
    subprocess.run([sys.executable, "-c", evil], check=True)
    plan = pretraining.load_plan(
        "tiny",
        corpus_dir=str(sample_corpus.output_dir),
        output_dir=str(out),
        **{s.split("=")[0]: int(s.split("=")[1]) for s in STEPS[1::2]},
    )
    with pytest.raises(UserError, match="rng-rank0.pt holds more than tensors"):
        pretraining.run(plan, {"checkpoint_every": 0}, progress=False, resume=True)
    assert not marker.exists()
    (step / "rng-rank0.pt").unlink()
    (step / "rng-rank0.json").write_bytes(saved)

    assert main([*args, "--resume"]) == 0
    metrics = pd.read_csv(out / "metrics.csv")
    assert list(metrics["global_step"]) == list(range(1, 15))  # every step exactly once
    assert _summary(capsys.readouterr().out)["status"] == "finished"
