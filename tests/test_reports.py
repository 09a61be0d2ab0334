import matplotlib.pyplot as plt

from obert_lib import reports


def test_cjk_font_ships_with_install_and_figures_export(tmp_path):
    assert reports.cjk_font_path().is_file()
    name = reports.setup_cjk_font()
    assert "CJK" in name
    fig, ax = plt.subplots()
    ax.set_title("掩码策略")
    paths = reports.save_figure(fig, "t", tmp_path)
    assert [p.suffix for p in paths] == [".png", ".svg"] and all(p.stat().st_size > 1000 for p in paths)
    plt.close(fig)
