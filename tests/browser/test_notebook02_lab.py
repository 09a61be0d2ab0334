"""Notebook 02 as a researcher meets it: JupyterLab in headless system Chromium at 1100 px with the file browser
open, the notebook run, one control of each kind changed (the view must change), the layout checked (no
horizontal scrollbar, no cut labels, no "null" hover text), light and dark screenshots under build/browser/.

Run it with `pytest -m browser tests/browser` (needs Debian's chromium and a CJK font: .ci/run installs them).
"""

from __future__ import annotations

import re

import nbformat
import pytest

from obert_lib.paths import REPO_ROOT

from .lab import Lab, chromium, missing

pytestmark = pytest.mark.browser

WIDTH = 1100  # a laptop screen: the notebook gets ~800 px beside the file browser
SHOTS = REPO_ROOT / "build" / "browser"
RUN_TIMEOUT_MS = 150_000  # kernel start + the notebook on 60 corpus rows on a loaded 2-core machine (~40 s)
STEP_TIMEOUT_MS = 20_000  # one control change to the new view (20-130 ms when idle)
# the parameters cell: the corpus this test builds, and few rows so the statistics cells are quick
PARAMETERS = 'workdir = "work"\nreports_dir = "work/reports"\nmax_rows = 60\nmask_rate = 0.15\nseed = 0\n'


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    reason = missing()
    if reason:
        pytest.skip(reason)
    from obert_lib import corpus

    root = tmp_path_factory.mktemp("lab")
    corpus.run({"output_dir": str(root / "work" / "corpus")}, corpus.CorpusRuntime(progress=False))
    nb = nbformat.read(REPO_ROOT / "notebooks" / "02_mask_strategies.ipynb", as_version=4)
    cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    cell.source = PARAMETERS
    nbformat.write(nb, root / "02_mask_strategies.ipynb")
    server = Lab(root, root.parent / f"{root.name}-settings", root.parent / f"{root.name}-lab.log")
    try:
        server.wait_ready()
        yield server
    finally:
        server.close()


def _stats(page) -> str:
    return page.locator(".obert-mask-widget .obert-view > .obert-stats").inner_text()


def _luminance(rgb: str) -> float:
    r, g, b = (int(x) / 255 for x in re.findall(r"\d+", rgb)[:3])
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


LAYOUT = """() => {
  const box = document.querySelector('.obert-mask-widget');
  const area = box.closest('.jp-OutputArea-output');
  const cut = [...box.querySelectorAll('.widget-label, .widget-label-basic, label')]
    .filter(e => e.offsetWidth > 0 && e.scrollWidth > e.clientWidth + 1).map(e => e.textContent);
  const slider = box.querySelector('.obert-control-mask_rate .noUi-target, .obert-control-mask_rate .slider');
  return {
    overflow: Math.max(box.scrollWidth - box.clientWidth, area.scrollWidth - area.clientWidth),
    cut,
    nullTitles: [...box.querySelectorAll('[title="null"]')].map(e => e.parentElement.className),
    slider: slider ? slider.getBoundingClientRect().width : 0,
    leftOpen: !window.jupyterapp.shell.leftCollapsed,
  };
}"""


def _check_layout(page) -> None:
    layout = page.evaluate(LAYOUT)
    assert layout["leftOpen"], "the file browser should be open"
    assert layout["overflow"] <= 1, f"a horizontal scrollbar: {layout['overflow']} px too wide"
    assert layout["cut"] == [] and layout["nullTitles"] == [], layout
    assert layout["slider"] >= 80, f"the mask-rate slider collapsed to {layout['slider']} px"


def _shot(page, name: str) -> None:
    from playwright.sync_api import expect

    SHOTS.mkdir(parents=True, exist_ok=True)
    page.wait_for_selector("#jupyterlab-splash", state="detached")  # the theme switch's splash has gone
    widget = page.locator(".obert-mask-widget")
    widget.scroll_into_view_if_needed()
    expect(widget).to_be_in_viewport()
    page.screenshot(path=str(SHOTS / f"02_widget_{name}.png"))


def test_notebook_02_widget_in_jupyterlab(lab):
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium())  # the system browser: nothing is downloaded
        try:
            page = browser.new_page(viewport={"width": WIDTH, "height": 900})
            page.goto(lab.url("lab/tree/02_mask_strategies.ipynb"))
            page.wait_for_function(
                "window.jupyterapp && window.jupyterapp.shell.currentWidget"
                " && window.jupyterapp.shell.currentWidget.sessionContext",
                timeout=60_000,
            )
            page.evaluate("window.jupyterapp.shell.activateById('filebrowser')")
            page.evaluate(
                """async () => {
                  const nb = window.jupyterapp.shell.currentWidget;
                  await nb.context.ready; await nb.sessionContext.ready;
                  window.jupyterapp.commands.execute('notebook:run-all-cells');
                }"""
            )
            expect(page.locator(".obert-export button")).to_be_visible(timeout=RUN_TIMEOUT_MS)
            stats = page.locator(".obert-mask-widget .obert-view > .obert-stats")
            expect(stats).to_contain_text("strategy word", timeout=STEP_TIMEOUT_MS)
            assert page.locator(".jp-RenderedText[data-mime-type='application/vnd.jupyter.error']").count() == 0
            _check_layout(page)
            _shot(page, "light")

            # dropdown
            page.select_option(".obert-control-strategy select", "entity")
            expect(stats).to_contain_text("strategy entity", timeout=STEP_TIMEOUT_MS)
            # slider: its readout takes a typed value
            readout = page.locator(".obert-control-mask_rate .widget-readout")
            readout.click()
            page.keyboard.press("Control+A")
            page.keyboard.type("0.4")
            page.keyboard.press("Enter")
            expect(stats).to_contain_text("target 40%", timeout=STEP_TIMEOUT_MS)
            # checkbox
            page.locator(".obert-control-knowledge input[type=checkbox]").click()
            expect(page.locator(".obert-mask-widget .obert-knowledge")).to_be_visible(timeout=STEP_TIMEOUT_MS)
            # text: applied when the box loses focus; the sample picker then shows no sample
            page.locator(".obert-control-text textarea").fill("北京是中国的首都。")
            assert "strategy entity" in _stats(page) and "/9 tokens" not in _stats(page)  # not per keystroke
            page.keyboard.press("Tab")
            expect(stats).to_contain_text("/9 tokens", timeout=STEP_TIMEOUT_MS)
            assert page.locator(".obert-control-sample select").input_value() == ""
            # text field: a half-typed mixture shows its error above the last good view, Enter applies it
            page.select_option(".obert-control-strategy select", "mixture")
            expect(stats).to_contain_text("mixture", timeout=STEP_TIMEOUT_MS)
            mixture = page.locator(".obert-control-mixture input")
            mixture.fill("entity:1, cl")
            mixture.press("Enter")
            expect(page.locator(".obert-mask-widget .obert-error")).to_be_visible(timeout=STEP_TIMEOUT_MS)
            assert page.locator(".obert-mask-widget .obert-stale .obert-view").count() == 1
            mixture.fill("entity:1")
            mixture.press("Enter")
            expect(stats).to_contain_text("drew entity", timeout=STEP_TIMEOUT_MS)
            assert page.locator(".obert-mask-widget .obert-error").count() == 0
            # button
            page.locator(".obert-export button").click()
            expect(page.locator(".obert-export")).to_contain_text("wrote 6 files", timeout=STEP_TIMEOUT_MS)
            _check_layout(page)

            page.evaluate("window.jupyterapp.commands.execute('apputils:change-theme', {theme: 'JupyterLab Dark'})")
            page.wait_for_function("document.body.dataset.jpThemeLight === 'false'", timeout=STEP_TIMEOUT_MS)
            colour = page.evaluate(
                "c => getComputedStyle(document.querySelector(c)).color", ".obert-mask-widget .obert-stats"
            )
            assert _luminance(colour) > 0.6, f"stats line {colour} on a dark background"
            token = page.evaluate(
                "c => getComputedStyle(document.querySelector(c)).color",
                ".obert-mask-widget .obert-tok[data-type=entity]",
            )
            assert _luminance(token) < 0.3, f"token text {token} on a pastel span colour"
            _check_layout(page)
            _shot(page, "dark")
        finally:
            browser.close()
    assert (SHOTS / "02_widget_light.png").stat().st_size > 10_000 and (SHOTS / "02_widget_dark.png").is_file()
