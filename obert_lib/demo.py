"""Execute the numbered notebooks in order with papermill, writing executed copies, artefacts and figures."""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path
from typing import Any

from .paths import REPO_ROOT

NOTEBOOK_DIR = REPO_ROOT / "notebooks"

# Parameter sets injected into every notebook. 'demo' is the README's main job on the sample data;
# 'tiny' is what the test suite runs (same code paths, fewer steps).
PROFILES: dict[str, dict[str, dict[str, Any]]] = {
    "demo": {},
    "tiny": {
        "02_mask_strategies": {"max_rows": 200},
        "03_staged_pretraining": {
            "plan_overrides": {
                "stages.0.steps": 4,
                "stages.1.steps": 3,
                "stages.0.warmup_steps": 1,
                "stages.1.warmup_steps": 1,
            }
        },
        # 1 task x 4 variants x 1 seed x 1 epoch; the NER run trains on KgCLUE's 2,000-row dev split (a smoke test:
        # dev is also its eval split) instead of the 18,000-row train split
        "05_finetuning_ablations": {
            "tasks": ["eprstmt"],
            "seeds": [0],
            "epochs": 1,
            "ner_train_split": "dev",
            "ner_epochs": 1,
        },
        # 2 tasks x (full, top1) x 1 seed x 1 epoch; a short load test
        "06_unified_serving": {
            "seeds": [0],
            "epochs": 1,
            "compute_tasks": [1, 3, 10],
            "requests": 20,
            "concurrency": 4,
        },  # fmt: skip
        "07_kgclue_kbqa": {"max_train_rows": 200, "max_eval_rows": 50},
        # the tiny experiment file as it is (two variants of 8 steps), one zero-shot task instead of two
        "08_experiment": {"overrides": {"zeroshot.tasks": ["eprstmt"]}},
        # 2 tasks x (a 1-epoch teacher, a 1-epoch 1-layer student), and 6 pretraining-stage distillation steps
        "09_distillation": {"teacher_epochs": 1, "epochs": 1, "max_length": 64, "pretrain_steps": 6},
    },
}


# torch.distributed settings of *this* process (set by a launcher or by a training run here): a kernel
# that inherited MASTER_PORT would try to listen on a port this process already holds.
_DIST_ENV = ("MASTER_ADDR", "MASTER_PORT", "RANK", "LOCAL_RANK", "WORLD_SIZE")


@contextlib.contextmanager
def _without_distributed_env():
    """Hide this process's torch.distributed variables from kernels started inside the block."""
    saved = {k: os.environ.pop(k) for k in _DIST_ENV if k in os.environ}
    try:
        yield
    finally:
        os.environ.update(saved)


def notebooks() -> list[Path]:
    """The numbered notebooks, in order."""
    return sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"))


def run(
    output: str | Path = "build/demo", profile: str = "demo", only: list[str] | None = None, progress: bool = True
) -> list[Path]:
    """Run every notebook (or those whose name starts with an entry of `only`); returns executed notebook paths.

    Layout: <output>/notebooks/*.ipynb (executed), <output>/reports/*.png|svg, <output>/artefacts/...
    """
    import papermill as pm

    from .config import ConfigError
    from .paths import check_output_dir

    if profile not in PROFILES:
        raise ConfigError(f"profile: {profile!r} is unknown; use one of {sorted(PROFILES)}")
    chosen = [nb for nb in notebooks() if not only or any(nb.stem.startswith(o) for o in only)]
    if not chosen:
        raise ConfigError(
            f"only: no notebook name starts with {only}; the notebooks are {[nb.stem for nb in notebooks()]}"
        )
    out = check_output_dir(output, "output").resolve()
    (out / "notebooks").mkdir(parents=True, exist_ok=True)
    executed = []
    for nb in chosen:
        params = {
            "workdir": str(out / "artefacts"),
            "reports_dir": str(out / "reports"),
            **PROFILES[profile].get(nb.stem, {}),
        }
        target = out / "notebooks" / nb.name
        t0 = time.perf_counter()
        if progress:
            print(f"[demo] {nb.name} ...", flush=True)
        with _without_distributed_env():
            pm.execute_notebook(
                str(nb),
                str(target),
                parameters=params,
                cwd=str(NOTEBOOK_DIR),
                kernel_name="python3",
                progress_bar=False,
                log_output=False,
            )
        if progress:
            print(f"[demo] {nb.name} done in {time.perf_counter() - t0:.0f}s -> {target}", flush=True)
        executed.append(target)
    return executed
