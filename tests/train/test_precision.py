"""`--precision auto`: the choice between fp32 and bf16 autocast + channels-last is measured on
copies of the model, recorded in config.json, and leaves the model and random state alone."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from cnnzoo.bench.optimize import bf16_support
from cnnzoo.registry import create_model
from cnnzoo.train import distributed, fit, precision
from cnnzoo.train.recipes import resolve_config

CTX = distributed.DistContext(rank=0, world_size=1, local_rank=0, device=torch.device("cpu"))


def _resolve(config, model=None):
    model = model or create_model("lenet5_modern")
    return precision.resolve_auto_precision(
        config, model, lambda m: torch.optim.SGD(m.parameters(), lr=0.1), (1, 32, 32), 10, CTX
    )


@pytest.mark.parametrize(
    ("fp32_s", "bf16_s", "chosen", "channels_last", "says"),
    [
        (1.0, 0.5, "bf16", True, "auto: bf16 autocast + channels-last; a bf16 autocast + "
         "channels-last step 2.00x a fp32 step, median of 3 steps each at batch 16"),
        (1.0, 0.95, "fp32", False, "1.05x a fp32 step, median of 3 steps each at batch 16 "),
    ],
)  # fmt: skip
def test_the_faster_path_is_chosen_and_recorded(
    monkeypatch, fp32_s, bf16_s, chosen, channels_last, says
) -> None:
    monkeypatch.setattr(precision, "bf16_support", lambda device: "CPU AMX")
    times = iter([fp32_s, bf16_s])
    monkeypatch.setattr(precision, "_step_time", lambda *a, **k: next(times))
    config = resolve_config("lenet5_modern", data="synthetic:32", batch_size=16, precision="auto")
    resolved = _resolve(config)
    assert (resolved.precision, resolved.channels_last) == (chosen, channels_last)
    assert says in resolved.precision_rule
    if chosen == "fp32":
        assert resolved.precision_rule.endswith("under the 1.1x needed")


def test_without_native_bf16_it_is_fp32_and_says_why(monkeypatch) -> None:
    monkeypatch.setattr(precision, "bf16_support", lambda device: None)
    config = resolve_config("lenet5_modern", data="synthetic:32", precision="auto")
    resolved = _resolve(config)
    assert resolved.precision == "fp32" and "no native bf16 on cpu" in resolved.precision_rule


def test_a_given_precision_is_left_alone() -> None:
    config = resolve_config("lenet5_modern", data="synthetic:32", precision="fp32")
    assert _resolve(config) is config


def test_measuring_leaves_the_model_and_the_random_state_alone(one_thread) -> None:
    model = create_model("lenet5_modern")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    state = torch.random.get_rng_state()
    config = resolve_config("lenet5_modern", data="synthetic:32", batch_size=8, precision="auto")
    resolved = _resolve(config, model)
    assert resolved.precision in ("fp32", "bf16") and resolved.precision_rule.startswith("auto: ")
    if bf16_support("cpu") is not None:  # this machine measured both paths
        assert "median of 3 steps each at batch 8" in resolved.precision_rule
    assert torch.equal(torch.random.get_rng_state(), state)
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key
    first_conv = next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d))
    assert first_conv.weight.is_contiguous()  # no channels-last left on the caller's model


def test_a_run_records_the_choice_and_resumes_with_it(tmp_path: Path, one_thread) -> None:
    config = resolve_config(
        "lenet5_modern", data="synthetic:32", batch_size=16, epochs=1, precision="auto",
        out=str(tmp_path / "run"),
    )  # fmt: skip
    fit(config)
    saved = json.loads((tmp_path / "run" / "config.json").read_text())["config"]
    assert saved["precision"] in ("fp32", "bf16") and saved["precision_rule"].startswith("auto: ")
    assert fit(resume=tmp_path / "run").epochs_completed == 1  # finished: the choice is kept


def test_auto_cannot_be_given_as_a_rule() -> None:
    with pytest.raises(TypeError, match="precision_rule"):
        resolve_config("lenet5_modern", data="synthetic:32", precision_rule="mine")
