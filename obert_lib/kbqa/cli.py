"""`obert kbqa build-kb | train | eval | ask`: KgCLUE knowledge-base QA from one KbqaConfig (kbqa.train).

Every action takes the CLI idiom: --config (a YAML of KbqaConfig keys), --set KEY=VALUE (dotted: tagger.epochs=1),
--runtime KEY=VALUE (speed only: progress, device), then its explicit flags.
"""

from __future__ import annotations

import argparse

from ..cli_options import IDIOM, _idiom, _option_settings, _print, _source

KBQA_RUNTIME = ("progress", "device")
FLAGS = {  # flag dest -> KbqaConfig key
    "checkpoint": "checkpoint",
    "kgclue_dir": "kgclue_dir",
    "knowledge": "knowledge_file",
    "store": "store",
    "output": "output_dir",
    "max_rows": "max_eval_rows",
}


def _config(args):
    from ..config import require
    from .train import load_config

    args.progress, args.device = True, None
    _option_settings(args, "--runtime", KBQA_RUNTIME)
    require(isinstance(args.progress, bool), "--runtime progress", f"expected true/false, got {args.progress!r}")
    require(args.device is None or isinstance(args.device, str), "--runtime device", "give cpu, cuda or cuda:N")
    source = _source(args)
    source.update({key: getattr(args, dest) for dest, key in FLAGS.items() if getattr(args, dest, None) is not None})
    return load_config(source)


def cmd_kbqa(args) -> None:
    from . import train

    cfg = _config(args)
    if args.action == "build-kb":
        stats = train.build_kb(cfg, progress=args.progress)
        _print({k: stats[k] for k in ("db_path", "source", "triples", "entities", "relations", "skipped", "seconds")}
               | {"assembled": stats["assembled"]})  # fmt: skip
    elif args.action == "train":
        result = train.train_kbqa(cfg, progress=args.progress)
        _print({**{k: result[k] for k in ("tagger", "relation", "store", "train_rows", "heldout_rows")},
                "tagger_span_f1": result["tagger_metrics"]["eval_metric"],
                "relation_accuracy": result["relation_metrics"]["eval_metric"],
                "relation_pairs": result["relation_data"]["train"]["examples"]})  # fmt: skip
    elif args.action == "eval":
        pipe = train.load_pipeline(cfg, device=args.device)
        try:
            m = pipe.evaluate(train.eval_rows(cfg), cfg.out / "eval", progress=args.progress)
        finally:
            pipe.close()
        keys = ("EMF1", "EM_O", "F1_O", "EM_S", "EM_P", "EM_All", "F1_All")
        _print({**{k: round(100 * m[k], 2) for k in keys}, "n": m["n"], "stages": m["stages"],
                "predictions": m["predictions"]})  # fmt: skip
    else:  # ask
        from .pipeline import _check_question

        questions = [_check_question(q) for q in args.question]  # before the models load
        with train.load_pipeline(cfg, device=args.device) as pipe:
            for result in pipe.ask_many(questions):
                keys = ("question", "answer", "stage", "mentions", "via", "entity", "relation", "score")
                _print({k: result[k] for k in keys})


def add_kbqa_parser(add) -> argparse.ArgumentParser:
    """Register `obert kbqa` through the main parser's `add(name, func, help)`."""
    p = add("kbqa", cmd_kbqa, "KgCLUE knowledge-base QA: build the knowledge store, train, evaluate, ask.")
    actions = p.add_subparsers(dest="action", required=True, metavar="{build-kb,train,eval,ask}")
    helps = {
        "build-kb": "Load a head<TAB>relation<TAB>tail knowledge file into the SQLite store (default: the file "
        "assembled from the answers of KgCLUE train + dev, a subset with fewer distractor relations than the real "
        "Knowledge.txt).",
        "train": "Fine-tune the mention tagger and the question x relation classifier from --checkpoint.",
        "eval": "Run the pipeline on the eval split: official KgCLUE metrics (x100) and questions per stage; writes "
        "<output>/eval/predictions.jsonl and metrics.json.",
        "ask": "Answer questions with the trained pipeline: 'S ||| P ||| O' and the stage it reached.",
    }
    for name, text in helps.items():
        a = actions.add_parser(name, help=text, description=text, epilog=IDIOM)
        _idiom(a, "YAML file of KbqaConfig keys", "override a KbqaConfig key (dotted: tagger.epochs=1)",
               f"speed-only setting, one of {list(KBQA_RUNTIME)}")  # fmt: skip
        a.add_argument("--output", help="= --set output_dir=DIR (default runs/kbqa)")
        a.add_argument("--kgclue-dir", help="= --set kgclue_dir=DIR: folder of train.json/dev.json (shared:kgclue)")
        a.add_argument("--store", help="= --set store=PATH: the SQLite store (default <output>/knowledge.sqlite)")
        if name == "build-kb":
            a.add_argument("--knowledge", help="= --set knowledge_file=FILE (default: assembled from train + dev)")
        if name == "train":
            a.add_argument("--checkpoint", help="= --set checkpoint=DIR: the pretrained encoder")
        if name == "eval":
            a.add_argument("--max-rows", type=int, help="= --set max_eval_rows=N: the first N questions")
        if name == "ask":
            a.add_argument("question", nargs="+", help="one or more questions")
    return p
