"""Pictures of a network: its dataflow diagram (Graphviz) and a self-contained HTML report.

The matplotlib charts (`cnnzoo.viz.roofline`, `cnnzoo.viz.compare_charts`, written by
`cnnzoo.viz.figures.save_figure`) are imported from their modules, so that `import cnnzoo` does
not import matplotlib.
"""

from cnnzoo.viz.diagram import PALETTE, Diagram, Node, draw, layer_kind
from cnnzoo.viz.report import index_html, report_html, write_report, write_reports

__all__ = [
    "PALETTE",
    "Diagram",
    "Node",
    "draw",
    "index_html",
    "layer_kind",
    "report_html",
    "write_report",
    "write_reports",
]
