"""Notebooks: stripped, paired with their jupytext twins, thin, and executed end to end."""

import ast
import json

import jupytext
import pytest

from obert_lib import demo

NOTEBOOKS = demo.notebooks()


def test_the_numbered_notebooks():
    assert [p.stem for p in NOTEBOOKS] == [
        "01_corpus_preprocessing",
        "02_mask_strategies",
        "03_staged_pretraining",
        "04_zeroclue_zero_shot",
        "05_finetuning_ablations",
        "06_unified_serving",
        "07_kgclue_kbqa",
        "08_experiment",
        "09_distillation",
    ]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_without_outputs_and_paired(path):
    nb = json.loads(path.read_text(encoding="utf-8"))
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            assert not cell.get("outputs") and not cell.get("execution_count"), f"{path.name}: strip outputs"
    twin = path.with_suffix(".py")
    assert twin.is_file(), f"{twin} missing: run `make notebooks-sync`"
    a = [(c.cell_type, c.source.strip()) for c in jupytext.read(path).cells]
    b = [(c.cell_type, c.source.strip()) for c in jupytext.read(twin).cells]
    assert a == b, f"{path.name} and {twin.name} differ: run `make notebooks-sync`"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebooks_are_thin(path):
    """One parameters cell; other code cells only import, call obert_lib/display, and assign results."""
    nb = jupytext.read(path)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert sum("parameters" in c.metadata.get("tags", []) for c in code) == 1
    for cell in code:
        for node in ast.parse(cell.source).body:
            assert isinstance(node, (ast.Import, ast.ImportFrom, ast.Assign, ast.Expr)), (
                f"{path.name}: logic ({type(node).__name__}) belongs in obert_lib:\n{cell.source}"
            )
            if isinstance(node, ast.ImportFrom):
                assert node.module.split(".")[0] in ("obert_lib", "IPython"), node.module
            for sub in ast.walk(node):
                assert not isinstance(sub, (ast.Lambda, ast.FunctionDef, ast.For, ast.While, ast.If)), path.name


@pytest.mark.notebooks
def test_all_notebooks_execute_in_order(tmp_path):
    executed = demo.run(tmp_path, profile="tiny", progress=False)
    assert [p.name for p in executed] == [p.name for p in NOTEBOOKS]
    reports = sorted(p.name for p in (tmp_path / "reports").iterdir())
    for stem in (
        "01_document_lengths",
        "01_span_statistics",
        "02_strategy_statistics",
        "02_span_lengths",
        "02_masked_pos",
        "03_plan",
        "03_pretraining_loss",
        "03_multitask_weights",
        "04_zeroclue_accuracy",
        "04_zeroclue_comparison",
        "04_zeroclue_confusion_tnews",
        "05_ablation_bars",
        "05_ablation_delta",
        "06_compute",
        "06_accuracy_vs_top",
        "07_kbqa_stages",
        "08_loss_curves",
        "08_zeroshot_diff",
        "08_finetune_bars",
        "09_retention",
    ):
        assert f"{stem}.png" in reports and f"{stem}.svg" in reports
    nb = json.loads((tmp_path / "notebooks" / "03_staged_pretraining.ipynb").read_text())
    assert not any(o.get("output_type") == "error" for c in nb["cells"] for o in c.get("outputs", []))
    assert (tmp_path / "artefacts" / "pretrain" / "checkpoints" / "stage-2-seq128" / "model.safetensors").is_file()
