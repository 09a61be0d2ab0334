"""Report figures: a CJK font shipped by the install (mplfonts' Noto Sans CJK SC) and PNG+SVG export."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
from matplotlib import font_manager

CJK_FONT_FILE = "NotoSansCJKsc-Regular.otf"  # shipped inside the mplfonts wheel (a pinned dependency)


def cjk_font_path() -> Path:
    """Path of the CJK font file that the project's install provides."""
    import mplfonts

    path = Path(mplfonts.__file__).parent / "fonts" / CJK_FONT_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: reinstall the pinned 'mplfonts' package")
    return path


def setup_cjk_font() -> str:
    """Register the CJK font with matplotlib and make it the default sans-serif; returns its name."""
    path = cjk_font_path()
    font_manager.fontManager.addfont(str(path))
    name = font_manager.FontProperties(fname=str(path)).get_name()
    matplotlib.rcParams["font.sans-serif"] = [name, "DejaVu Sans"]
    matplotlib.rcParams["font.family"] = "sans-serif"
    matplotlib.rcParams["axes.unicode_minus"] = False  # the CJK font lacks U+2212
    return name


def save_figure(
    fig: "plt.Figure", name: str, reports_dir: str | Path, formats: tuple[str, ...] = ("png", "svg")
) -> list[Path]:
    """Write `fig` as reports_dir/name.<fmt> for each format (PNG at 150 dpi); returns the paths."""
    out_dir = Path(reports_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for fmt in formats:
        path = out_dir / f"{name}.{fmt}"
        fig.savefig(path, dpi=150, bbox_inches="tight")
        paths.append(path)
    return paths
