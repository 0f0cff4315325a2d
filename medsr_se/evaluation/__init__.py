"""Evaluation: the seed's results table (``table``), comparison sheets (``sheets``) and training curves (``plots``).

    from medsr_se.evaluation import evaluate, markdown_table
    summary = evaluate(Path("datasets/STARE"), {4: "net_g_x4.pth"}, Path("results/eval"))
"""

from medsr_se.evaluation.table import METRICS, PAPER, evaluate, image_metrics, markdown_table

__all__ = ["METRICS", "PAPER", "evaluate", "image_metrics", "markdown_table"]
