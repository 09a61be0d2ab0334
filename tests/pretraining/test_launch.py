"""launch()/attach(): a pretraining subprocess started, followed, refused, stopped and resumed from Python."""

import json
import os
import sys
import time

import pandas as pd
import pytest

from obert_lib import pretraining
from obert_lib.config import ConfigError
from obert_lib.pretraining import launcher, live, processes, run_dir

STEPS = {"stages.0.steps": 4, "stages.1.steps": 3, "stages.0.warmup_steps": 1, "stages.1.warmup_steps": 1}


def _plan(sample_corpus, out, **steps):
    return pretraining.load_plan(
        "tiny", corpus_dir=str(sample_corpus.output_dir), output_dir=str(out), **(steps or STEPS)
    )


@pytest.fixture(scope="module")
def finished_run(sample_corpus, tmp_path_factory):
    """One tiny two-stage run launched as a subprocess and followed to the end (no live plot)."""
    out = tmp_path_factory.mktemp("launched")
    plan = _plan(sample_corpus, out)
    handle = pretraining.launch(plan, wait=True, live=False, poll_s=0.2)
    return plan, handle


def test_launch_runs_the_plan_to_the_end(finished_run):
    plan, handle = finished_run
    state = handle.status()
    assert state.status == "finished", state
    assert state.global_step == state.total_steps == 7
    m = handle.metrics()
    assert list(m["global_step"]) == list(range(1, 8)) and list(m["stage"]) == [1] * 4 + [2] * 3
    assert [p.name for p in handle.checkpoints()] == ["stage-1-seq64", "stage-2-seq128"]
    assert pretraining.latest_checkpoint(plan.output_dir) == handle.checkpoints()[-1]
    assert (handle.checkpoints()[-1] / "model.safetensors").is_file()
    out = handle.output_dir
    info = json.loads((out / "launch.json").read_text())
    assert info["cmd"][1:4] == ["-u", "-m", "obert_lib.cli"] and "--resume" not in info["cmd"]
    assert pretraining.load_plan(str(out / "launch_plan.yaml")) == plan  # the subprocess trains exactly this plan
    assert "launch:" in (out / "train.log").read_text()
    assert handle.process.returncode == 0


def test_attach_to_an_ended_run_shows_its_final_state(finished_run, capsys):
    _, handle = finished_run
    attached = pretraining.attach(handle.output_dir)
    assert attached.status().status == "finished"
    assert len(attached.metrics()) == 7
    assert "finished" in repr(attached)


def test_live_view_draws_the_metrics_into_one_display(finished_run, monkeypatch):
    """In a notebook, follow() shows one image and replaces it in place."""
    import IPython.display

    shown = []

    class FakeHandle:
        def update(self, obj):
            shown.append(("update", obj))

    def fake_display(obj, display_id=False, **_):
        shown.append(("display", obj))
        return FakeHandle()

    monkeypatch.setattr(IPython.display, "display", fake_display)
    monkeypatch.setattr(live, "_in_notebook", lambda: True)
    _, handle = finished_run
    state = pretraining.RunHandle(handle.output_dir, live=True, poll_s=0.1).follow()
    assert state.status == "finished"
    assert [kind for kind, _ in shown] == ["display"]  # no "starting" status line for a run that has ended
    assert shown[0][1].data[:4] == b"\x89PNG"


def test_run_summary_and_stage_summary_read_in_one_line_and_3_decimals(finished_run, monkeypatch):
    _, handle = finished_run
    monkeypatch.chdir(handle.output_dir)
    line = pretraining.run_summary(handle)
    loss = handle.metrics()["loss"].iloc[-1]
    assert (
        line
        == f"finished · step 7/7 · final loss {loss:.3f} · checkpoints stage-1-seq64, stage-2-seq128 in checkpoints"
    )
    assert repr(line) == str(line)  # a notebook shows the line, not a quoted string or a dataclass
    metrics = pd.DataFrame(
        {
            "stage_name": ["seq64", "seq64", "seq128"],
            "loss": [7.81234, 7.5, 7.25],
            "mlm_accuracy": [0.0, 0.01234, 0.02],
            "tokens_per_s": [1000.4567, 1200.0, 900.0],
        }
    )
    table = pretraining.stage_summary(metrics)
    assert table.to_dict("records") == [
        {
            "stage": "seq64",
            "steps": 2,
            "loss first": 7.812,
            "loss last": 7.5,
            "mlm_accuracy first": 0.0,
            "mlm_accuracy last": 0.012,
            "tokens_per_s first": 1000.457,
            "tokens_per_s last": 1200.0,
        },
        {
            "stage": "seq128",
            "steps": 1,
            "loss first": 7.25,
            "loss last": 7.25,
            "mlm_accuracy first": 0.02,
            "mlm_accuracy last": 0.02,
            "tokens_per_s first": 900.0,
            "tokens_per_s last": 900.0,
        },
    ]


def test_log_filter_leaves_out_deepspeed_notes_and_summarises_the_json():
    lines = [
        "[2026-12-05 02:25:29,143] [WARNING] [real_accelerator.py:213:get_accelerator] Setting accelerator to CPU.",
        "DeepSpeed deepspeed.ops.comm.deepspeed_shm_comm_op built successfully",
        "stage 1: seq64 starts",
        "{",
        '  "status": "finished",',
        '  "checkpoints": ["runs/x/checkpoints/stage-1-seq64", "runs/x/checkpoints/stage-2-seq128"],',
    ]
    keep = live.LogFilter()
    assert keep(lines) == ["stage 1: seq64 starts"]  # the JSON object is not complete yet
    assert keep(['  "parameters": 266884,', '  "steps": 6,', '  "final_loss": 7.75099', "}", "[launch] x"]) == [
        "pretraining finished · 6 steps · final loss 7.751 · 266,884 parameters · checkpoints stage-1-seq64, "
        "stage-2-seq128 in runs/x/checkpoints",
        "[launch] x",
    ]
    assert keep(["{", "not json", "}"]) == ["{", "not json", "}"]  # anything else stays as it was


def test_follow_view_says_what_happens_before_the_first_step(capsys):
    view = live.FollowView("pretrain", 300, 0, live=False)
    view.write(["[2026-12-05 02:25:31,111] [WARNING] [lr_schedules.py:759:get_lr] Attempting to get", "loading data"])
    view.update(300, 0, pd.DataFrame(), done=False)
    view.update(300, 0, pd.DataFrame(), done=False)
    assert view.bar is None  # no bar standing at 0/300
    out = capsys.readouterr().out
    assert out.startswith("loading data\nloading data · ") and out.count("\n") == 2  # printed once, not per poll
    assert "DeepSpeed initialises and builds its ops" in out and "WARNING" not in out
    view.update(300, 1, pd.DataFrame({"global_step": [1], "loss": [7.5]}), done=False)
    assert view.bar.desc == "pretrain" and view.bar.n == 1 and view.bar.total == 300  # not "pretrain pretrain"
    view.close()
    other = live.FollowView("run-a", 10, 0, live=False)
    other.update(10, 2, pd.DataFrame(), done=False)
    assert other.bar.desc == "pretrain run-a"
    other.close()


def test_a_failing_run_raises_with_the_log_tail(sample_corpus, tmp_path):
    plan = pretraining.load_plan(
        "tiny", corpus_dir=str(tmp_path / "no-corpus"), output_dir=str(tmp_path / "out"), **STEPS
    )
    with pytest.raises(pretraining.RunFailedError, match="failed") as exc:
        pretraining.launch(plan, wait=True, live=False, poll_s=0.2)
    state = exc.value.handle.status()
    assert state.status == "failed" and "no-corpus" in "\n".join(state.log_tail)
    assert launcher._active_run(tmp_path / "out") is None  # a new launch into it is allowed


def test_refuses_to_start_into_a_running_directory(sample_corpus, tmp_path):
    run = {
        "pid": os.getpid(),
        "status": "running",
        "global_step": 3,
        "total_steps": 7,
        "stage": 1,
        "updated": "2026-01-01T00:00:00",
        "message": "",
    }
    (tmp_path / "run.json").write_text(json.dumps(run))
    with pytest.raises(pretraining.RunningError, match=r"attach\("):
        pretraining.launch(_plan(sample_corpus, tmp_path), wait=False)
    assert not (tmp_path / "launch.json").exists()
    # the same file with a dead pid is a run that died: reported as failed, and a new launch is allowed
    run["pid"] = 2**22 + 12345
    (tmp_path / "run.json").write_text(json.dumps(run))
    assert pretraining.attach(tmp_path, wait=False).status().status == "failed"
    assert launcher._active_run(tmp_path.resolve()) is None


def test_refuses_while_a_process_launched_from_here_runs(sample_corpus, tmp_path, monkeypatch):
    class Running:  # a stand-in Popen that has not exited
        pid = os.getpid()

        def poll(self):
            return None

    monkeypatch.setitem(processes._PROCESSES, str(tmp_path.resolve()), Running())
    with pytest.raises(pretraining.RunningError, match="launched from this Python process"):
        pretraining.launch(_plan(sample_corpus, tmp_path), wait=False)


def test_commands_for_one_process_several_gpus_and_a_hostfile(tmp_path):
    speed = pretraining.SpeedConfig(zero_stage=3)
    one = processes.build_command("plan.yaml", "out", speed, resume=True)
    assert one == [
        sys.executable,
        "-u",
        "-m",
        "obert_lib.cli",
        "pretrain",
        "--plan",
        "plan.yaml",
        "--output",
        "out",
        "--speed",
        "zero_stage=3",
        "--resume",
    ]
    assert processes.world_size(4, None) == 4 and processes.world_size(None, None) == 1
    hostfile = tmp_path / "hostfile"
    hostfile.write_text("# two nodes\nnode-01 slots=8\nnode-02 slots=8\n")
    assert processes.world_size(None, hostfile) == 16 and processes.world_size(2, hostfile) == 4
    multi = processes.build_command(
        "plan.yaml", "out", pretraining.SpeedConfig(data_parallel_size=16), hostfile=hostfile
    )
    assert multi[multi.index("--hostfile") + 1] == str(hostfile)
    assert multi[multi.index("--no_local_rank") :][:3] == ["--no_local_rank", "--module", "obert_lib.cli"]
    assert "data_parallel_size=16" in multi
    from obert_lib.cli import build_parser

    assert build_parser().parse_args(["pretrain", "--resume"]).resume
    assert not build_parser().parse_args(["pretrain"]).resume


def test_data_parallel_size_must_match_the_processes(sample_corpus, tmp_path):
    with pytest.raises(ConfigError, match="data_parallel_size"):
        pretraining.launch(_plan(sample_corpus, tmp_path), {"data_parallel_size": 2}, wait=False)


def test_metrics_reader_skips_partial_lines_and_unknown_columns(tmp_path):
    path = tmp_path / "metrics.csv"
    reader = run_dir.MetricsReader(path)
    assert reader.read().empty
    path.write_text("global_step,stage,stage_name,loss,mfu\n1,1,a,7.5,0.1\n2,1,a,7.4")  # row 2 still being written
    assert list(reader.read()["global_step"]) == [1]
    with open(path, "a") as fh:
        fh.write(",0.2\n3,1,a,7.3,0.3\n")
    m = reader.read()
    assert list(m["global_step"]) == [1, 2, 3] and list(m["mfu"]) == [0.1, 0.2, 0.3]
    path.write_text("global_step,stage,stage_name,loss\n1,1,a,9.0\n")  # rewritten by a new run
    assert list(reader.read()["loss"]) == [9.0]


def test_plot_plan_shows_lengths_batches_and_a_mask_schedule():
    plan = pretraining.load_plan(
        "tiny",
        **{
            "stages.1.mask": {
                "schedule": [
                    {"from_step": 0, "mixture": {"word": 1.0}},
                    {"from_step": 50, "mixture": {"word": 0.5, "phrase": 0.5}},
                ]
            }
        },
    )
    fig = pretraining.plot_plan(plan)
    ax_len, ax_batch, ax_mix = fig.axes[:3]
    x, y = ax_len.lines[0].get_data()
    assert x[0] == 0 and x[-1] == 300 and set(y) == {64, 128}
    assert set(ax_batch.lines[0].get_data()[1]) == {16, 8}
    assert [t.get_text() for t in ax_mix.get_legend().get_texts()] == ["word", "phrase"]
    import matplotlib.pyplot as plt

    plt.close(fig)


def test_stop_keeps_a_resume_point_and_resume_finishes_every_step_once(sample_corpus, tmp_path):
    steps = {"stages.0.steps": 16, "stages.1.steps": 3, "stages.0.warmup_steps": 1, "stages.1.warmup_steps": 1}
    plan = _plan(sample_corpus, tmp_path, **steps)
    handle = pretraining.launch(plan, {"checkpoint_every": 0}, wait=False, live=False, poll_s=0.2)
    deadline = time.time() + 240
    while len(handle.metrics()) < 2:
        assert time.time() < deadline and not handle.status().done, handle.status()
        time.sleep(0.1)
    state = handle.stop(timeout=120)
    assert state.status == "interrupted", state
    assert 2 <= state.global_step < 19
    point = pretraining.resume_point(tmp_path)
    assert point is not None and point["global_step"] == state.global_step
    assert handle.last_checkpoint() is not None and handle.last_checkpoint().parent.name == "resume"
    resumed = pretraining.launch(plan, {"checkpoint_every": 0}, resume=True, wait=True, live=False, poll_s=0.2)
    assert resumed.status().status == "finished"
    assert "--resume" in json.loads((tmp_path / "launch.json").read_text())["cmd"]
    raw = pd.read_csv(tmp_path / "metrics.csv")
    assert list(raw["global_step"]) == list(range(1, 20))  # every step exactly once
    assert [p.name for p in resumed.checkpoints()] == ["stage-1-seq64", "stage-2-seq128"]


def test_checkpoint_table_lists_each_stage_with_a_relative_path_files_and_size(finished_run, monkeypatch):
    _, handle = finished_run
    monkeypatch.chdir(handle.output_dir)
    table = pretraining.checkpoint_table(handle)
    assert list(table.columns) == ["checkpoint", "path", "files", "MiB"]
    assert list(table["checkpoint"]) == ["stage-1-seq64", "stage-2-seq128"]
    assert list(table["path"]) == ["checkpoints/stage-1-seq64", "checkpoints/stage-2-seq128"]
    for path, files in zip(handle.checkpoints(), table["files"]):
        assert files == sum(1 for f in path.rglob("*") if f.is_file()) > 0
    assert (table["MiB"] > 0).all()
