"""The reproduction page and the README table are generated from result files: run the
generator on a tiny fake result (made here, in a temporary folder, never committed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cnnzoo.cli import main
from cnnzoo.errors import UsageError
from cnnzoo.train.experiments import ArmResult, get_experiment, reproduction_record
from cnnzoo.train.recipes import resolve_config
from cnnzoo.train.reproductions import README_END, README_START, publish, write_reproductions

# final training errors by arm and seed: plain-56 clearly above plain-20, ResNet-56 at ResNet-20
FAKE = {
    "plain-20": [0.05, 0.07],
    "plain-56": [0.30, 0.40],
    "ResNet-20": [0.03, 0.05],
    "ResNet-56": [0.02, 0.04],
}


def fake_record(errors: dict[str, list[float]] = FAKE) -> dict:
    experiment = get_experiment("degradation")
    results = [
        ArmResult(
            label=arm.label,
            model=arm.model,
            seed=seed,
            run_dir=f"runs/x/{arm.label}/{seed}",
            final_train_error=errors[arm.label][seed],
            logged_train_error=0.5,
            test_error=errors[arm.label][seed] + 0.01,
            best_val_error=errors[arm.label][seed] + 0.02,
            seconds=60.0,
            gradient_scale=1.0,
        )  # fmt: skip
        for seed in (0, 1)
        for arm in experiment.arms
    ]
    configs = [
        resolve_config(a.model, recipe="resnet-cifar", batch_size=32, epochs=3, seed=s)
        for s in (0, 1)
        for a in experiment.arms
    ]
    # logged training error per epoch, falling to 0.1 above the final error
    curves = {
        label: [[{"epoch": 1, "train_error": e + 0.3}, {"epoch": 2, "train_error": e + 0.1}]
                for e in seeds]
        for label, seeds in errors.items()
    }  # fmt: skip
    return reproduction_record(
        experiment, results, configs=configs, seeds=[0, 1], wall_seconds=125.0, jobs=2,
        command="cnnzoo experiment degradation --seeds 2 --jobs 2", curves=curves,
    )  # fmt: skip


def write_fake(tmp_path: Path, errors=FAKE, **changes) -> tuple[Path, Path]:
    docs = tmp_path / "docs" / "reproductions"
    docs.mkdir(parents=True)
    record = {**fake_record(errors), "figure": "degradation.png", **changes}
    record["machine"]["load_average"] = {"start": 0.25, "end": 2.5}
    (docs / "degradation.json").write_text(json.dumps(record))
    readme = tmp_path / "README.md"
    readme.write_text(f"# Title\n\nbefore\n\n{README_START}\nold table\n{README_END}\n\nafter\n")
    return docs, readme


def test_page_and_readme_are_generated_from_the_result(tmp_path: Path) -> None:
    docs, readme = write_fake(tmp_path)
    written = write_reproductions(docs, readme=readme)
    page = (tmp_path / "docs" / "reproductions.md").read_text()
    assert written == [tmp_path / "docs" / "reproductions.md", readme]
    assert "## degradation" in page and "Fig. 6" in page
    assert "| plain-56 | 2 | 35.00 ± 7.07% [30.00, 40.00] |" in page  # mean ± std [min, max]
    assert "lr 0.025 = 0.1 x 32/128, linear scaling" in page  # a deviation, with its rule
    assert "batch 32 instead of 128" in page and "3 epochs instead of 182" in page
    assert "- holds: plain-56 ends with higher training error than plain-20" in page
    assert "- holds: plain-56 has higher training error than plain-20 throughout" in page
    assert "plain-56's mean above plain-20's at 2 of 2 epochs; at epoch 2: 45.00% vs 16.00%" in page
    assert "**Verdict: holds** (from the claims checked on the measured errors)" in page
    assert "_not written yet._" in page
    assert "`cnnzoo experiment degradation --seeds 2 --jobs 2`" in page
    assert "wall time 2 min 5 s with 2 parallel run(s)" in page
    assert "cores), load average 0.25 at the start and 2.50 at the end; torch " in page
    assert "commit " in page
    text = readme.read_text()
    assert text.startswith("# Title\n\nbefore\n\n") and text.endswith("\n\nafter\n")
    assert "old table" not in text
    assert "| [degradation](docs/reproductions.md#degradation) |" in text
    assert "| 2 | holds | _not written yet_ |" in text
    assert "![degradation: He et al. 2015, Fig. 6" in text  # the figure, from the README's place
    assert "(docs/reproductions/degradation.png)" in text
    write_reproductions(docs, readme=readme)  # idempotent
    assert readme.read_text() == text


def test_verdict_and_reading_come_from_the_result_file(tmp_path: Path) -> None:
    docs, readme = write_fake(tmp_path, verdict="partly", reading="Only on the digits.")
    write_reproductions(docs, readme=readme)
    page = (tmp_path / "docs" / "reproductions.md").read_text()
    assert "**Verdict: partly** (as set in the result file by whoever ran it)" in page
    assert "(by whoever ran it): Only on the digits." in page
    assert "| 2 | partly | Only on the digits. |" in readme.read_text()


def test_a_result_that_does_not_hold(tmp_path: Path) -> None:
    opposite = {
        "plain-20": [0.30, 0.40], "plain-56": [0.05, 0.07],
        "ResNet-20": [0.02, 0.04], "ResNet-56": [0.20, 0.25],
    }  # fmt: skip
    docs, readme = write_fake(tmp_path, opposite)
    write_reproductions(docs, readme=readme)
    page = (tmp_path / "docs" / "reproductions.md").read_text()
    assert page.count("- does not hold: ") == 4
    assert "**Verdict: does not hold** (from the claims checked" in page


def test_refusals(tmp_path: Path) -> None:
    docs, readme = write_fake(tmp_path, verdict="mostly")
    with pytest.raises(UsageError, match="verdict 'mostly'"):
        write_reproductions(docs, readme=readme)
    (docs / "degradation.json").write_text(json.dumps({**fake_record(), "verdict": None}))
    readme.write_text("# no markers\n")
    with pytest.raises(UsageError, match="needs exactly one"):
        write_reproductions(docs, readme=readme)
    with pytest.raises(UsageError, match="no result files"):
        write_reproductions(tmp_path / "empty", readme=None)


def test_publish_copies_record_and_figure_then_regenerates(tmp_path: Path) -> None:
    run_out = tmp_path / "runs" / "experiment-degradation"
    run_out.mkdir(parents=True)
    (run_out / "degradation.json").write_text(json.dumps({**fake_record(), "figure": "d.png"}))
    (run_out / "d.png").write_bytes(b"png")
    docs, readme = write_fake(tmp_path)
    (docs / "degradation.json").unlink()
    written = publish(run_out, "degradation", docs, readme=readme)
    assert (docs / "d.png").read_bytes() == b"png" and docs / "degradation.json" in written
    assert (
        "![degradation: error per epoch](reproductions/d.png)"
        in (tmp_path / "docs" / "reproductions.md").read_text()
    )


def test_cli_report(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    docs, readme = write_fake(tmp_path)
    assert main(["experiment", "report", "--publish-dir", str(docs), "--readme", str(readme)]) == 0
    assert "reproductions.md" in capsys.readouterr().out


def test_the_page_says_which_runs_were_reused(tmp_path: Path) -> None:
    docs, readme = write_fake(tmp_path, reused_runs=["runs/x/plain-20/0", "runs/x/plain-20/1"])
    write_reproductions(docs, readme=readme)
    page = (tmp_path / "docs" / "reproductions.md").read_text()
    assert (
        "2 of its 8 runs were taken from finished runs with the same config in `runs/x` "
        "(`--reuse`), not trained again" in page
    )
    docs, readme = write_fake(tmp_path / "none")
    write_reproductions(docs, readme=readme)
    assert "--reuse" not in (tmp_path / "none" / "docs" / "reproductions.md").read_text()


def test_a_provenance_note_is_shown_with_the_provenance(tmp_path: Path) -> None:
    docs, readme = write_fake(tmp_path, provenance_note="git_commit corrected by hand: because.")
    write_reproductions(docs, readme=readme)
    page = (tmp_path / "docs" / "reproductions.md").read_text()
    assert "; commit " in page and " git_commit corrected by hand: because." in page
