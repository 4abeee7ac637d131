"""Pictures of a network and of the zoo: dataflow diagrams (Graphviz), HTML reports, and charts
on bare matplotlib Figures (roofline, comparison)."""

from cnnzoo.viz.compare_charts import Chart, comparison_charts
from cnnzoo.viz.diagram import PALETTE, Diagram, Node, draw, layer_kind
from cnnzoo.viz.figures import save_figure
from cnnzoo.viz.report import index_html, report_html, write_report, write_reports
from cnnzoo.viz.roofline import roofline_figure

__all__ = [
    "PALETTE",
    "Chart",
    "Diagram",
    "Node",
    "comparison_charts",
    "draw",
    "index_html",
    "layer_kind",
    "report_html",
    "roofline_figure",
    "save_figure",
    "write_report",
    "write_reports",
]
