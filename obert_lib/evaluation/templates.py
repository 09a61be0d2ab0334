"""Templates and label words per task: the published one first, then alternatives read from a YAML file.

File format (see presets/alternative_templates.yaml):

    eprstmt:
      - name: satisfied
        template: "这次购物很[M][M]。{sentence}"
        label_words: {Negative: 失望, Positive: 满意}

`[M]` is one [MASK] slot; `{name}` a field of the task (FIELDS). label_words may be left out to keep the
published words (chid never has words: each row's candidates are scored).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..config import ConfigError, read_yaml
from .cloze import PUBLISHED, template_field_names, template_slots
from .label_maps import label_words

# The fields a template of each task may name (cloze.task_fields builds them; labels never among them).
FIELDS = {
    "eprstmt": ("sentence",),
    "tnews": ("sentence",),
    "iflytek": ("sentence",),
    "csldcp": ("content",),
    "ocnli": ("sentence1", "sentence2"),
    "bustm": ("sentence1", "sentence2"),
    "chid": ("left", "right"),
    "csl": ("abst", "keywords"),
    "cluewsc": ("text",),
}

PRESETS = {"alternatives": Path(__file__).parent / "presets" / "alternative_templates.yaml"}


@dataclass(frozen=True)
class Template:
    """One way to ask a task: the template text and, for tasks with fixed classes, label -> word."""

    name: str
    text: str
    words: dict[str, str] = field(default_factory=dict)  # {} for chid


def published(task: str, task_dir: str | Path) -> Template:
    """The ZeroCLUE PET template and words of `task` (label words of iflytek/csldcp read from `task_dir`)."""
    return Template("published", PUBLISHED[task], {} if task == "chid" else label_words(task, task_dir))


def check_template(task: str, template: Template, where: str) -> None:
    """ConfigError naming `where` when a template names an unknown field, has no slot, or words miss labels."""
    unknown = [f for f in template_field_names(template.text) if f not in FIELDS[task]]
    if unknown:
        raise ConfigError(f"{where}: template names {unknown}; {task} templates can use {list(FIELDS[task])}")
    if template_slots(template.text) == 0:
        raise ConfigError(f"{where}: template {template.text!r} has no [M] slot for the label word")
    if task == "chid" and template_slots(template.text) != 4:
        raise ConfigError(f"{where}: chid templates need exactly 4 [M] slots, one per idiom character")


def load_templates(source: str | Path, tasks: list[str], task_dirs: dict[str, Path]) -> dict[str, list[Template]]:
    """Alternatives per task from a YAML file (or the preset name 'alternatives'), checked before any scoring.

    Tasks absent from the file get none; a task in the file but not in `tasks` is ignored.
    """
    path = PRESETS.get(str(source), Path(source))
    data = read_yaml(path, what="templates") or {}
    if not isinstance(data, dict):
        raise ConfigError(f"templates: {path} must map task names to lists of templates")
    unknown = sorted(set(data) - set(FIELDS))
    if unknown:
        raise ConfigError(f"templates: {path} names unknown task(s) {unknown}; tasks are {sorted(FIELDS)}")
    out: dict[str, list[Template]] = {}
    for task in tasks:
        entries = data.get(task) or []
        if not isinstance(entries, list):
            raise ConfigError(f"templates: {path}: {task} must hold a list of templates")
        base = published(task, task_dirs[task])
        names = {base.name}
        out[task] = []
        for i, entry in enumerate(entries):
            where = f"templates: {path}: {task}[{i}]"
            if not isinstance(entry, dict) or not isinstance(entry.get("template"), str):
                raise ConfigError(f"{where}: each entry needs `template: <text with [M] and {{fields}}>`")
            extra = sorted(set(entry) - {"name", "template", "label_words"})
            if extra:
                raise ConfigError(f"{where}: unknown key(s) {extra}; use name, template, label_words")
            name = str(entry.get("name", f"alt{i + 1}"))
            if name in names:
                raise ConfigError(f"{where}: name {name!r} is used twice for {task}; give each template its own")
            names.add(name)
            words = {str(k): str(v) for k, v in (entry.get("label_words") or {}).items()}
            if words and task == "chid":
                raise ConfigError(f"{where}: chid takes no label_words (each row's candidate idioms are scored)")
            if words and set(words) != set(base.words):
                missing, extra_labels = sorted(set(base.words) - set(words)), sorted(set(words) - set(base.words))
                raise ConfigError(
                    f"{where}: label_words must name every label of {task} exactly; missing {missing[:5]}, "
                    f"unknown {extra_labels[:5]}"
                )
            words = {label: words[label] for label in base.words} if words else dict(base.words)
            template = Template(name, entry["template"], words)
            check_template(task, template, where)
            out[task].append(template)
    return out
