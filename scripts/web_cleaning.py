"""Web cleaning measured on real pages: CJK precision/recall of `--config web` per page, beside issue 19's numbers.

    .venv/bin/python scripts/web_cleaning.py [--pages ../shared/data/web] [--config web] [--html]

Prints, per page, what the config kept before this work (the web preset's line rules alone: page_furniture,
main_text and language identification off) and now, then the leave-one-page-out figures: for each page, the main-text
thresholds chosen on the other pages (obert_lib.corpus.web_eval.choose) and their score on it. Definitions
are in obert_lib/corpus/web_eval.py (character multisets, traditional converted to simplified).

With --html, prints instead the HTML path (each page's source.html read as an HTML file: charset decoded,
main text extracted by trafilatura, then the same cleaning) beside the page.txt path, and the HTML path's
leave-one-page-out figures.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

from obert_lib.corpus import web_eval as W
from obert_lib.corpus.config import load_config
from obert_lib.paths import shared_data_dir


def _fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:.3f}"


def _row(cells) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def loo_table(scored: list[W.Page], cfg, html: bool = False) -> None:
    """The leave-one-page-out table of the main-text settings on `scored` pages (`html`: the HTML path's grid,
    which also holds leaving trafilatura's main text whole)."""
    head = ["held-out page", "min_cjk", "max_gap", "min_share", "precision", "recall"]
    if html:
        head.insert(1, "block rule on trafilatura's text")
    print(_row(head))
    print(_row(["---"] * len(head)))
    loo = W.leave_one_out(scored, W.grid_configs(cfg, html))
    for s, t in loo:
        cells = [t["main_text_min_cjk"], t["main_text_max_gap"], t["main_text_min_share"]]
        if html:
            cells = ["yes", *cells] if t["main_text_on_html"] else ["no (left whole)", "-", "-", "-"]
        print(_row([s.page, *cells, _fmt(s.precision), _fmt(s.recall)]))
    lp, lr = W.summary([s for s, _ in loo])
    print(_row(["**mean**", *[""] * (len(head) - 3), f"{lp:.3f}", f"{lr:.3f}"]))


def html_tables(folder: Path, cfg, name: str) -> int:
    """--html: per page, the HTML path (source.html) beside the page.txt path, both through `cfg`."""
    text_pages = {p.name: p for p in W.load_pages(folder)}
    html_pages = W.load_html_pages(folder, cfg)
    print(f"## HTML path vs page.txt path (config {name!r}; precision / recall of kept CJK characters)\n")
    print(_row(["page", "page.txt P", "page.txt R", "HTML P", "HTML R", "HTML kept CJK", "body CJK"]))
    print(_row(["---"] * 7))
    scored = W.scored(html_pages)
    text_scores, html_scores = [], []
    for p in scored:
        t, h = W.score_page(text_pages[p.name], cfg), W.score_page(p, cfg)
        text_scores.append(t)
        html_scores.append(h)
        print(
            _row([p.name, _fmt(t.precision), _fmt(t.recall), _fmt(h.precision), _fmt(h.recall), h.kept_cjk, h.body_cjk])
        )
    tp, tr = W.summary(text_scores)
    hp, hr = W.summary(html_scores)
    print(_row(["**mean**", f"{tp:.3f}", f"{tr:.3f}", f"{hp:.3f}", f"{hr:.3f}", "", ""]))
    cut = replace(cfg, lines=replace(cfg.lines, main_text_on_html=not cfg.lines.main_text_on_html))
    cp, cr = W.summary([W.score_page(p, cut) for p in scored])
    print(
        f"\nHTML path with lines.main_text_on_html={cut.lines.main_text_on_html}: precision {cp:.3f}, recall {cr:.3f}"
    )
    print(f"goal (issue 19, part 5): precision >= {W.TARGET_HTML_PRECISION} at recall >= {W.TARGET_RECALL}")
    print("\n## Other pages\n")
    print(_row(["page", "why not scored", "page.txt path", "HTML path"]))
    print(_row(["---"] * 4))
    for p in html_pages:
        if p in scored:
            continue
        why = "no body.txt" if p.body is None else "body not Chinese: must be dropped"
        t, h = W.score_page(text_pages[p.name], cfg), W.score_page(p, cfg)
        cells = [f"dropped: {s.dropped}" if s.dropped else f"kept {s.kept_cjk} CJK" for s in (t, h)]
        print(_row([p.name, why, *cells]))
    print("\n## HTML path, leave one page out (thresholds chosen on the other pages, scored on this one)\n")
    loo_table(scored, cfg, html=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pages", default=str(shared_data_dir() / "web"), help="folder of page folders")
    ap.add_argument("--config", default="web", help="corpus config: preset name or YAML path")
    ap.add_argument("--html", action="store_true", help="the HTML path (source.html) beside the page.txt path")
    args = ap.parse_args(argv)
    folder = Path(args.pages)
    if not folder.is_dir():
        print(f"web_cleaning: error: {folder} does not exist; pass --pages (see ../shared/data/web)", file=sys.stderr)
        return 2
    cfg = load_config(args.config)
    if args.html:
        return html_tables(folder, cfg, args.config)
    before = W.before_config(cfg)
    pages = W.load_pages(folder)
    now = {p.name: W.score_page(p, cfg) for p in pages}
    old = {p.name: W.score_page(p, before) for p in pages}
    scored = W.scored(pages)

    print(f"## Per page (config {args.config!r}; precision / recall of kept CJK characters)\n")
    print(_row(["page", "issue 19 precision", "before P", "before R", "now P", "now R", "kept CJK", "body CJK"]))
    print(_row(["---"] * 8))
    for p in scored:
        o, n = old[p.name], now[p.name]
        base = W.ISSUE_BASELINE.get(p.name)
        print(
            _row(
                [
                    p.name,
                    "-" if base is None else f"{base:.2f}",
                    _fmt(o.precision),
                    _fmt(o.recall),
                    _fmt(n.precision),
                    _fmt(n.recall),
                    n.kept_cjk,
                    n.body_cjk,
                ]
            )
        )
    op, orr = W.summary([old[p.name] for p in scored])
    np_, nr = W.summary([now[p.name] for p in scored])
    bp, br = W.ISSUE_BASELINE_MEAN
    print(_row(["**mean**", f"{bp:.2f} (R {br:.2f})", f"{op:.3f}", f"{orr:.3f}", f"{np_:.3f}", f"{nr:.3f}", "", ""]))
    tp, tr = W.TRAFILATURA
    print(f"\ntrafilatura on the pages' HTML (issue 19): precision {tp:.2f} at recall {tr:.2f}")
    print(f"goal: mean precision >= {W.TARGET_PRECISION} at mean recall >= {W.TARGET_RECALL}")

    print("\n## Other pages\n")
    print(_row(["page", "why not scored", "before", "now"]))
    print(_row(["---"] * 4))
    for p in pages:
        if p in scored:
            continue
        why = "no body.txt" if p.body is None else "body not Chinese: must be dropped"
        o, n = old[p.name], now[p.name]
        print(
            _row(
                [
                    p.name,
                    why,
                    f"dropped: {o.dropped}" if o.dropped else f"kept {o.kept_cjk} CJK",
                    f"dropped: {n.dropped}" if n.dropped else f"kept {n.kept_cjk} CJK",
                ]
            )
        )

    configs = W.grid_configs(cfg)
    table = W.grid_table(scored, configs)
    chosen = configs[W.choose(table, [p.name for p in scored])]
    print(f"\n## Thresholds chosen on all {len(scored)} pages: {W.thresholds(chosen)}")
    print(f"(the config's own: {W.thresholds(cfg)})")
    print("\n## Leave one page out (thresholds chosen on the other pages, scored on this one)\n")
    print(_row(["held-out page", "min_cjk", "max_gap", "min_share", "precision", "recall"]))
    print(_row(["---"] * 6))
    loo = W.leave_one_out(scored, configs)
    for s, t in loo:
        print(
            _row(
                [
                    s.page,
                    t["main_text_min_cjk"],
                    t["main_text_max_gap"],
                    t["main_text_min_share"],
                    _fmt(s.precision),
                    _fmt(s.recall),
                ]
            )
        )
    lp, lr = W.summary([s for s, _ in loo])
    print(_row(["**mean**", "", "", "", f"{lp:.3f}", f"{lr:.3f}"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
