"""pyproject.toml and environment.yml declare the same pinned packages."""

import re
import tomllib

import yaml

from obert_lib.paths import REPO_ROOT


def _pins(lines) -> dict[str, str]:
    out = {}
    for line in lines:
        m = re.fullmatch(r"([A-Za-z0-9_.\-]+)==([^\s;]+)", line.strip())
        assert m, f"not an exact pin: {line!r}"
        out[m.group(1).lower()] = m.group(2)
    return out


def test_pyproject_and_environment_yml_pins_agree():
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    py = _pins(project["dependencies"] + project["optional-dependencies"]["dev"])
    env = yaml.safe_load((REPO_ROOT / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert _pins(pip_section) == py
    assert py["torch"] == "2.13.0"
    for required in (
        "deepspeed",
        "transformers",
        "datasets",
        "jieba",
        "jupyterlab",
        "ipywidgets",
        "matplotlib",
        "pandas",
        "papermill",
        "jupytext",
        "pytest",
    ):
        assert required in py, required
