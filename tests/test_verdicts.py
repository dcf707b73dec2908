"""The suite's own rules: no verdict depends on wall time, and CI draws the same examples each run."""

from __future__ import annotations

import os
import re
from pathlib import Path

from hypothesis import settings

TESTS = Path(__file__).resolve().parent
# An assertion on elapsed time: `assert time.perf_counter() - started < 2`, `assert 0.25 < waited < 2` after
# `waited = time.monotonic() - started`, and the like.
ELAPSED = re.compile(r"(perf_counter|monotonic|time\.time)\(\)\s*-\s*\w+")


def test_verdicts_hypothesis_has_no_deadline_and_is_derandomized_in_ci() -> None:
    """A deadline fails a correct test on a loaded machine; CI must not depend on a random seed (tests/conftest.py)."""
    assert settings.default.deadline is None
    if os.environ.get("CI"):
        assert settings.default.derandomize


def test_verdicts_no_test_asserts_on_elapsed_wall_time() -> None:
    offenders = []
    for path in sorted(set(TESTS.rglob("*.py")) - {Path(__file__).resolve()}):
        text = path.read_text(encoding="utf-8")
        if re.search(r"deadline=(?!None)", text):
            offenders.append(f"{path.name}: a hypothesis deadline")
        elapsed_names = {m.group(1) for m in re.finditer(r"(\w+)\s*=\s*time\.\w+\(\)\s*-\s*\w+", text)}
        for number, line in enumerate(text.splitlines(), 1):
            asserted = line.strip().startswith("assert")
            if asserted and (ELAPSED.search(line) or any(re.search(rf"\b{n}\b", line) for n in elapsed_names)):
                offenders.append(f"{path.name}:{number}: {line.strip()}")
    assert offenders == []
