"""Model-agnostic analysis: trace -> per-layer records -> totals -> render."""

from cnnzoo.analysis.counts import count_macs, count_parameters, meta_model

__all__ = ["count_macs", "count_parameters", "meta_model"]
