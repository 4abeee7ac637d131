"""Model-agnostic analysis: trace -> per-layer records -> totals -> render.

`meta_model` lives beside the registry (`cnnzoo.meta`) and is re-exported here for callers.
"""

from cnnzoo.analysis.counts import count_macs, count_parameters
from cnnzoo.analysis.formulas import Window
from cnnzoo.analysis.loading import load_model, parse_bytes, parse_input_size
from cnnzoo.analysis.receptive_field import RF
from cnnzoo.analysis.records import INPUT, Analysis, ExactInputs, Failure, LayerRecord, Totals
from cnnzoo.analysis.report import Report, summary
from cnnzoo.meta import meta_model

__all__ = [
    "INPUT",
    "RF",
    "Analysis",
    "ExactInputs",
    "Failure",
    "LayerRecord",
    "Report",
    "Totals",
    "Window",
    "count_macs",
    "count_parameters",
    "load_model",
    "meta_model",
    "parse_bytes",
    "parse_input_size",
    "summary",
]
