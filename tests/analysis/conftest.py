"""Golden snapshots of the analyzer's text output.

Regenerate them, after checking that a change of output is intended, with

    .venv/bin/pytest tests/analysis --update-golden

(the option itself is registered in tests/conftest.py so that it works from any path).
"""

from __future__ import annotations

from pathlib import Path

import pytest

GOLDEN = Path(__file__).parent / "golden"


@pytest.fixture(autouse=True)
def _fixed_terminal_width(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI fits its tables to `COLUMNS` or the terminal; tests must not depend on the width
    of whatever terminal runs them."""
    monkeypatch.setenv("COLUMNS", "100")


@pytest.fixture
def golden(request: pytest.FixtureRequest):
    """`golden(name, text)`: compare `text` with golden/<name>, or rewrite it with the flag."""
    update = request.config.getoption("--update-golden", default=False)

    def check(name: str, text: str) -> None:
        path = GOLDEN / name
        if update:
            path.parent.mkdir(exist_ok=True)
            path.write_text(text + "\n")
            return
        assert path.exists(), f"no golden file {path}; create it with --update-golden"
        expected = path.read_text().removesuffix("\n")
        assert text == expected, f"{name} differs from its golden snapshot (see --update-golden)"

    return check
