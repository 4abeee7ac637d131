"""cnnzoo.bench.profile: the bookkeeping (bytes, bounds, reconciliation), not the speeds."""

from __future__ import annotations

import pytest
from matplotlib.figure import Figure
from torch import nn

import cnnzoo
from cnnzoo.bench.machine import Load
from cnnzoo.bench.peak import Ceilings
from cnnzoo.bench.profile import LayerProfile, Profile, bytes_moved, classify, profile
from cnnzoo.cli import main
from cnnzoo.errors import UsageError

# Made-up roofs: 100 GFLOP/s and 10 GB/s put the ridge at 10 FLOP/byte.
CEILINGS = Ceilings({"fp32": 100e9}, 10e9, "made up for the test")


class Tiny(nn.Module):
    """conv -> relu -> the same relu again (a repeated call) -> flatten (a view) -> linear."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.act = nn.ReLU()
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(4 * 6 * 6, 5)

    def forward(self, x):
        return self.fc(self.flatten(self.act(self.act(self.conv(x)))))


def test_classify_against_the_ridge():
    assert classify(9.9, 100e9, 10e9) == "memory"
    assert classify(10.0, 100e9, 10e9) == "compute"
    assert classify(None, 100e9, 10e9) == "none"


def test_bytes_moved_from_the_analyzers_shapes():
    report = cnnzoo.summary(Tiny(), (3, 8, 8), batch_size=2)
    rows = {r.name: r for r in report.all_layers}
    conv = rows["conv"]
    # input 2x3x8x8, output 2x4x6x6, weights 4x3x3x3 + 4 biases, 4 bytes each
    assert bytes_moved(conv, 4) == (2 * 3 * 8 * 8 + 2 * 4 * 6 * 6 + 4 * 27 + 4) * 4
    assert bytes_moved(conv, 2) == bytes_moved(conv, 4) // 2
    assert bytes_moved(rows["flatten"], 4) == 0  # a view moves nothing


def _layer(name: str, seconds: tuple[float, ...] | None, flops: int, nbytes: int) -> LayerProfile:
    return LayerProfile(name, "T", "conv", seconds, flops, nbytes)


def _profile(layers, whole) -> Profile:
    return Profile(
        "toy", (3, 8, 8), 1, "fp32", "cpu", tuple(layers), whole, CEILINGS, Load(0.1, 0.2, 1), 3, 1
    )


def test_reconciliation_is_the_sum_of_layer_medians_over_the_whole_median():
    layers = [
        _layer("a", (1.0, 2.0, 9.0), 4_000, 100),  # median 2.0, intensity 40: compute-bound
        _layer("b", (0.5, 1.0, 1.5), 5 * 10**9, 5 * 10**9),  # median 1.0, 1 FLOP/B: memory
        _layer("add()", None, 10, 30),  # a functional call: FLOPs, no time of its own
    ]
    p = _profile(layers, (3.0, 4.0, 100.0))
    assert p.layers_median_s == pytest.approx(3.0)
    assert p.whole_median_s == pytest.approx(4.0)
    assert p.reconciliation == pytest.approx(0.75)
    assert p.unattributed_s == pytest.approx(1.0)
    assert [p.bound(t) for t in layers] == ["compute", "memory", "memory"]
    assert p.attainable(layers[0]) == 100e9  # under the flat GEMM roof
    assert p.attainable(layers[1]) == pytest.approx(10e9)  # 1 FLOP/B x 10 GB/s
    rows = p.rows()
    assert rows[1]["fraction_of_roof"] == pytest.approx(0.5)  # 5 GFLOP/s of a 10 GFLOP/s roof
    assert rows[1]["gflops_per_s"] == pytest.approx(5.0)
    assert rows[2]["median_ms"] is None and rows[2]["gflops_per_s"] is None
    text = "\n".join(p.summary_lines())
    assert "= 0.75" in text and "2 of 3, 25% of the time" in text


def test_profile_times_every_layer_the_analyzer_lists(tmp_path):
    from cnnzoo.viz.figures import save_figure
    from cnnzoo.viz.roofline import roofline_figure

    p = profile(
        Tiny(),
        batch_size=2,
        input_size=(3, 8, 8),
        repeat=2,
        warmup=1,
        device="cpu",
        ceilings=CEILINGS,
    )
    names = [t.name for t in p.layers]
    assert names == [r.name for r in cnnzoo.summary(Tiny(), (3, 8, 8), batch_size=2).all_layers]
    assert "act@2" in names
    assert all(t.seconds is not None and len(t.seconds) == 2 for t in p.layers)
    assert [t.kind for t in p.layers][:2] == ["conv", "activation"]
    assert p.flops == cnnzoo.summary(Tiny(), (3, 8, 8), batch_size=2).totals.flops
    assert len(p.whole_seconds) == 2 and p.reconciliation > 0
    fig = roofline_figure(p)
    assert isinstance(fig, Figure)
    written = save_figure(fig, tmp_path / "roof")
    assert [w.suffix for w in written] == [".png", ".svg"] and all(
        w.stat().st_size for w in written
    )
    assert "Not shown: 1 layers" in written[1].read_text()  # the flatten


def test_profile_refuses_what_it_cannot_do(monkeypatch):
    import cnnzoo.bench.optimize as optimize

    monkeypatch.setattr(optimize, "native_bf16_isa", lambda: None)
    with pytest.raises(UsageError, match="bf16 is not natively supported"):
        profile(Tiny(), precision="bf16", input_size=(3, 8, 8), device="cpu")
    with pytest.raises(UsageError, match="input_size"):
        profile(Tiny(), device="cpu")


def test_cli_profile_writes_table_csv_and_roofline(tmp_path, capsys, monkeypatch):
    import cnnzoo.bench.profile as module

    monkeypatch.setattr(module, "measure_ceilings", lambda *a, **k: CEILINGS)
    code = main(
        [
            "profile",
            "lenet5",
            "--batch",
            "2",
            "--repeat",
            "1",
            "--warmup",
            "1",
            "--device",
            "cpu",
            "--out",
            str(tmp_path),
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert "reconciliation: sum of per-layer medians" in out and "Conv2d" in out
    assert (tmp_path / "lenet5_profile.csv").read_text().startswith("layer,type,kind,median_ms")
    assert (tmp_path / "lenet5_roofline.png").exists()
    assert (tmp_path / "lenet5_roofline.svg").exists()
