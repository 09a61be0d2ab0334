"""Label sets and label words of the nine FewCLUE tasks, as the ZeroCLUE PET baseline uses them.

Words follow FewCLUE's `baselines/models_keras/pet/pet_<task>.py` (CLUEbenchmark/FewCLUE), with two fixes:
cluewsc maps true->正确 and false->错误 (the script inverts them), and iflytek/csldcp take their two-character
tags from the de-duplicated `label_des2tag` maps shipped in the datasets folder (the scripts' own maps give one
word to several classes, so the second class of each pair can never be predicted). Those `.py` files are read
as data with `ast.literal_eval` of one assignment; they are never imported or run.
"""

from __future__ import annotations

import ast
from pathlib import Path

from ..config import ConfigError, DataError

# TNEWS label id -> (label_desc, word); ids and descriptions as in tnews/label_index2en2zh.json
TNEWS = {
    "100": ("news_story", "故事"),
    "101": ("news_culture", "文化"),
    "102": ("news_entertainment", "娱乐"),
    "103": ("news_sports", "体育"),
    "104": ("news_finance", "财经"),
    "106": ("news_house", "房产"),
    "107": ("news_car", "汽车"),
    "108": ("news_edu", "教育"),
    "109": ("news_tech", "科技"),
    "110": ("news_military", "军事"),
    "112": ("news_travel", "旅游"),
    "113": ("news_world", "国际"),
    "114": ("news_stock", "股票"),
    "115": ("news_agriculture", "农业"),
    "116": ("news_game", "电竞"),
}

# Tasks whose words are fixed by the protocol (label as the data writes it -> word).
FIXED_WORDS = {
    "eprstmt": {"Negative": "不", "Positive": "很"},
    "tnews": {label: word for label, (_, word) in TNEWS.items()},
    "ocnli": {"entailment": "是的", "neutral": "并且", "contradiction": "不是"},
    "bustm": {"0": "不", "1": "相"},
    "csl": {"0": "不能", "1": "可以"},
    "cluewsc": {"true": "正确", "false": "错误"},
}

# Tasks whose classes and words come from a label file in the task folder: file, assignments read.
LABEL_FILES = {
    "iflytek": ("label_id2des_desc2short.py", ("iflytek_labels", "label_des2tag")),
    "csldcp": ("labelDesc2label.py", ("label_des2tag",)),
}


def read_assigned_dict(path: Path, name: str) -> dict:
    """The dict literal assigned to `name` at top level of a Python file, read without running the file."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8-sig"), filename=str(path))
    except SyntaxError as exc:
        raise DataError(f"{path}:{exc.lineno}: not readable as Python ({exc.msg})") from None
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == name for t in node.targets):
            try:
                value = ast.literal_eval(node.value)
            except ValueError:
                raise DataError(f"{path}:{node.lineno}: {name} is not a literal dict") from None
            if not isinstance(value, dict) or not value:
                raise DataError(f"{path}:{node.lineno}: {name} must be a non-empty dict")
            return value
    raise DataError(f"{path}: no top-level assignment `{name} = {{...}}`; is this the FewCLUE label file?")


def _label_file(task: str, task_dir: Path) -> tuple[Path, list[dict]]:
    filename, names = LABEL_FILES[task]
    path = task_dir / filename
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist; {task}'s classes and label words are read from it")
    return path, [read_assigned_dict(path, n) for n in names]


def label_words(task: str, task_dir: str | Path) -> dict[str, str]:
    """Label (as the data's label field writes it, as a string) -> label word, in a fixed order.

    chid has no fixed words (each row's candidates are its words) and raises ConfigError.
    """
    if task in FIXED_WORDS:
        return dict(FIXED_WORDS[task])
    if task == "iflytek":
        path, (ids, tags) = _label_file(task, Path(task_dir))
        missing = sorted(set(ids) - set(tags))
        if missing:
            raise DataError(f"{path}: label_des2tag has no tag for {missing[:5]}; every class needs a word")
        words = {str(ids[des]): tags[des] for des in ids}
    elif task == "csldcp":
        path, (tags,) = _label_file(task, Path(task_dir))
        words = {str(name): tag for name, tag in tags.items()}
    else:
        raise ConfigError(f"task: {task} has no fixed label words (chid scores each row's candidates)")
    seen: dict[str, str] = {}
    for label, word in words.items():
        if word in seen:
            raise DataError(
                f"{path}: classes {seen[word]!r} and {label!r} share the word {word!r}, so one of them could "
                "never be predicted; give each class its own word"
            )
        seen[word] = label
    return words


def task_labels(task: str, task_dir: str | Path) -> tuple[str, ...]:
    """The task's label strings (chid: candidate indices '0'..'6')."""
    if task == "chid":
        return tuple(str(i) for i in range(7))
    return tuple(label_words(task, task_dir))
