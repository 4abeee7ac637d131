"""Speed: an optimized inference copy of a model, and a throughput runner measured against peers."""

from cnnzoo.bench.optimize import (
    InferenceModel,
    bf16_support,
    fold_batch_norms,
    optimize_for_inference,
)

__all__ = ["InferenceModel", "bf16_support", "fold_batch_norms", "optimize_for_inference"]
