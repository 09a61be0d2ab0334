"""`make install`'s git filter: notebooks/*.ipynb reach git without outputs, so a JupyterLab session leaves
`git status` clean while the notebook on disk keeps its outputs."""

import json
import shutil
import subprocess
import sys

import pytest

from obert_lib.paths import REPO_ROOT

# a notebook as JupyterLab autosaves it: outputs, execution counts, widget state, cell ids
RUN = {
    "cells": [
        {
            "cell_type": "code",
            "execution_count": 3,
            "id": "53cedeac",
            "metadata": {"tags": ["parameters"], "scrolled": True},
            "outputs": [{"name": "stdout", "output_type": "stream", "text": ["wrote 6 files\n"]}],
            "source": ["seed = 0"],
        },
        {"cell_type": "markdown", "id": "468e227b", "metadata": {}, "source": ["# 02"]},
    ],
    "metadata": {
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "widgets": {"application/vnd.jupyter.widget-state+json": {"state": {}, "version_major": 2}},
    },
    "nbformat": 4,
    "nbformat_minor": 5,
}
STRIPPED_CELLS = [
    {
        "cell_type": "code",
        "execution_count": None,
        "id": "53cedeac",
        "metadata": {"tags": ["parameters"]},
        "outputs": [],
        "source": ["seed = 0"],
    },
    {"cell_type": "markdown", "id": "468e227b", "metadata": {}, "source": ["# 02"]},
]


def _git(cwd, *args) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


@pytest.mark.skipif(not (shutil.which("git") and shutil.which("make")), reason="needs git and make")
def test_make_install_filter_strips_notebook_outputs(tmp_path):
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "config", "user.email", "t@example.invalid")
    _git(tmp_path, "config", "user.name", "t")
    subprocess.run(  # the Makefile's own target, pointed at this Python's environment
        ["make", "-s", "-f", str(REPO_ROOT / "Makefile"), "git-filters", f"VENV={sys.prefix}"],
        cwd=tmp_path,
        check=True,
        capture_output=True,
    )
    shutil.copy(REPO_ROOT / ".gitattributes", tmp_path / ".gitattributes")
    (tmp_path / "notebooks").mkdir()
    path = tmp_path / "notebooks" / "02_mask_strategies.ipynb"
    path.write_text(json.dumps(RUN, indent=1), encoding="utf-8")
    _git(tmp_path, "add", ".")
    _git(tmp_path, "commit", "-q", "-m", "notebook")

    stored = json.loads(_git(tmp_path, "show", "HEAD:notebooks/02_mask_strategies.ipynb"))
    assert stored["cells"] == STRIPPED_CELLS and "widgets" not in stored["metadata"]
    assert stored["metadata"]["kernelspec"]["name"] == "python3"
    assert json.loads(path.read_text(encoding="utf-8")) == RUN  # the file on disk keeps its outputs
    assert _git(tmp_path, "status", "--porcelain") == ""  # and git sees nothing to commit

    rerun = json.loads(json.dumps(RUN))
    rerun["cells"][0]["outputs"][0]["text"] = ["wrote 7 files\n"]  # a new run: new outputs, still no change
    path.write_text(json.dumps(rerun, indent=1), encoding="utf-8")
    assert _git(tmp_path, "status", "--porcelain") == ""


def test_committed_notebooks_pass_the_filter_unchanged():
    """The filter leaves the committed (output-free) notebooks byte for byte: installing it dirties nothing."""
    for path in sorted((REPO_ROOT / "notebooks").glob("*.ipynb")):
        text = path.read_text(encoding="utf-8")
        if any(c.get("outputs") for c in json.loads(text)["cells"]):
            continue  # a notebook with outputs on this machine (e.g. after a Lab session): its stripped form differs
        out = subprocess.run(
            [sys.executable, "-m", "nbstripout", "--keep-id", "-t"], input=text, capture_output=True, text=True
        )
        assert out.returncode == 0 and out.stdout == text, path.name
