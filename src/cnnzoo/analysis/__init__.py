"""Model-agnostic analysis: trace -> per-layer records -> totals -> render."""

from cnnzoo.analysis.counts import count_macs, count_parameters, meta_model
from cnnzoo.analysis.formulas import Window
from cnnzoo.analysis.loading import load_model, parse_bytes, parse_input_size
from cnnzoo.analysis.receptive_field import RF
from cnnzoo.analysis.records import Failure, LayerRecord, Totals
from cnnzoo.analysis.report import Report, summary

__all__ = [
    "RF",
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
