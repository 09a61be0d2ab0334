"""Step 4-5 of scripts/top_n_accuracy.sh: the top-N ablation, its table (runs/top_n/accuracy.md) and figure."""

from obert_lib import reports
from obert_lib.finetuning.ablation import run_ablation
from obert_lib.unified import top_n

if __name__ == "__main__":  # the ablation's worker processes import this file again
    result = run_ablation("configs/top_n/ablation.yaml")
    table = top_n.accuracy_table(result.output_dir, layers=12)
    text = top_n.markdown(top_n.format_accuracy(table))
    print(text)
    (result.output_dir.parent / "accuracy.md").write_text(text + "\n", encoding="utf-8")
    reports.setup_cjk_font()
    print(reports.save_figure(top_n.plot_accuracy_vs_top(table, 12), "06_accuracy_vs_top", "runs/top_n/reports"))
