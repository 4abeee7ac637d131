"""The effective receptive field (Luo et al. 2016): its support, its mass radii, its shape on a
linear stack, and the `cnnzoo rf` command (random init and a trained run folder)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from torch import nn

import cnnzoo.analysis.erf as erf_module
from cnnzoo.analysis.erf import effective_rf, mass_radius
from cnnzoo.cli import main
from cnnzoo.errors import UsageError


def test_a_single_3x3_conv_sees_exactly_its_3x3_support() -> None:
    model = nn.Sequential(nn.Conv2d(2, 4, 3, padding=1))
    erf = effective_rf(model, (2, 15, 15), samples=4)
    assert erf.unit == (7, 7) and erf.centre == (7.0, 7.0)
    assert erf.theoretical is not None and erf.theoretical.size == (3, 3)
    support = erf.heatmap.nonzero()
    assert support[:, 0].unique().tolist() == [6, 7, 8]
    assert support[:, 1].unique().tolist() == [6, 7, 8]
    assert len(support) == 9
    assert erf.theoretical_box() == (6.0, 6.0, 8.0, 8.0)
    assert math.isclose(float(erf.heatmap.sum()), 1.0)


def test_mass_radii_grow_with_the_share_and_reach_the_far_corner() -> None:
    heatmap = torch.rand(21, 17, generator=torch.Generator().manual_seed(0))
    radii = [mass_radius(heatmap, (10.0, 8.0), share) for share in (0.1, 0.5, 0.9, 1.0)]
    assert radii == sorted(radii) and radii[0] < radii[-1]
    assert math.isclose(radii[-1], math.hypot(10, 8))
    point = torch.zeros(9, 9)
    point[4, 4] = 1.0
    assert mass_radius(point, (4.0, 4.0), 0.9) == 0.0


def test_a_linear_stack_has_a_gaussian_effective_field_narrower_than_its_theoretical_one() -> None:
    # Eight 3x3 averaging convolutions: the theoretical field is 17x17, but the gradient is the
    # eight-fold convolution of a box, a near-Gaussian of sigma sqrt(8 * 2/3) = 2.31 pixels.
    layers = [nn.Conv2d(1, 1, 3, padding=1, bias=False) for _ in range(8)]
    for conv in layers:
        nn.init.constant_(conv.weight, 1 / 9)
    erf = effective_rf(nn.Sequential(*layers), (1, 33, 33), samples=2)
    assert erf.theoretical is not None and erf.theoretical.size == (17, 17)
    sigma = math.sqrt(8 * 2 / 3)
    marginal = erf.heatmap.sum(0)
    x = torch.arange(33, dtype=torch.float64) - 16
    gaussian = torch.exp(-(x**2) / (2 * sigma**2))
    gaussian /= gaussian.sum()
    box = ((x.abs() <= 8).double() / 17).to(marginal.dtype)  # the theoretical field, flat
    assert float((marginal - gaussian).abs().sum()) / 2 < 0.02  # total variation distance
    assert float((marginal - box).abs().sum()) / 2 > 0.3
    variance = float((marginal * x**2).sum())
    assert math.isclose(variance, sigma**2, rel_tol=1e-6)
    # A 2-D Gaussian holds 90% of its mass within sigma * sqrt(2 ln 10) = 4.97 pixels.
    assert abs(erf.radius90 - sigma * math.sqrt(2 * math.log(10))) < 1.0
    assert erf.radius50 < erf.radius90 < (17 - 1) / 2


def test_a_bad_layer_name_is_refused_with_suggestions() -> None:
    model = nn.Sequential()
    model.add_module("features", nn.Sequential(nn.Conv2d(1, 2, 3), nn.Conv2d(2, 2, 3)))
    with pytest.raises(UsageError, match=r"no layer 'featurs.1'.*Did you mean: features.1"):
        effective_rf(model, (1, 12, 12), layer="featurs.1")
    erf = effective_rf(model, (1, 12, 12), layer="features", samples=1)  # a block: its output
    assert erf.theoretical is not None and erf.theoretical.size == (5, 5)


def test_model_mode_and_weights_are_left_alone() -> None:
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Dropout(0.5)).train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    effective_rf(model, (1, 9, 9), samples=3)
    assert model.training and all(m.training for m in model.modules())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_cli_writes_the_png_atomically(tmp_path: Path, capsys, monkeypatch) -> None:
    written: list[Path] = []
    atomic = erf_module.atomic_write

    def recording(path: Path, data: bytes) -> None:
        written.append(Path(path))
        atomic(path, data)

    monkeypatch.setattr(erf_module, "atomic_write", recording)
    out = tmp_path / "erf.png"
    assert main(["rf", "lenet5", "--samples", "2", "--out", str(out)]) == 0
    assert written == [out] and out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["erf.png"]  # no temporary left
    text = capsys.readouterr().out
    assert "theoretical field: 16x16 pixels" in text and "90% within" in text


def test_cli_refuses_a_bad_layer_with_did_you_mean(tmp_path: Path, capsys) -> None:
    assert main(["rf", "lenet5", "--layer", "c3.conv", "--out", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err
    assert "no layer 'c3.conv'" in err and "Did you mean: c3.conv0" in err
    assert not (tmp_path / "x.png").exists()


def test_cli_reads_a_trained_run_folder(tmp_path: Path, capsys) -> None:
    run = tmp_path / "run"
    assert main(["train", "lenet5", "--data", "digits", "--epochs", "1", "--out", str(run)]) == 0
    capsys.readouterr()
    trained = tmp_path / "trained.png"
    assert main(["rf", str(run), "--samples", "2", "--out", str(trained)]) == 0
    assert "lenet5, layer act4" in capsys.readouterr().out and trained.stat().st_size > 5_000


def test_cli_takes_a_factory_file_and_names_the_input_flag(tmp_path: Path, capsys) -> None:
    factory = tmp_path / "net.py"
    factory.write_text(
        "from torch import nn\n\n\ndef make():\n"
        "    return nn.Sequential(nn.Conv2d(1, 2, 5), nn.ReLU(), nn.Conv2d(2, 2, 3))\n"
    )
    out = tmp_path / "net.png"
    assert main(["rf", f"{factory}:make", "--out", str(out)]) == 2
    assert "--input" in capsys.readouterr().err and not out.exists()
    assert main(["rf", f"{factory}:make", "--input", "1x21x21", "--samples", "2",
                 "--out", str(out)]) == 0  # fmt: skip
    assert "theoretical field: 7x7 pixels" in capsys.readouterr().out and out.exists()
