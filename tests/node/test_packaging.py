"""Build metadata: the PEP 639 license form and bounded build requirements.

setuptools < 77 cannot read `license = "MIT"`; setuptools >= 77 warns that the older `license = {text = ...}` table
stops being supported in 2027, so the two halves of the check belong together.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _pyproject() -> dict[str, object]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_license_is_an_spdx_expression_with_its_file() -> None:
    project = _pyproject()["project"]
    assert isinstance(project, dict)
    assert project["license"] == "MIT", "PEP 639: a plain SPDX expression, not a table"
    files = project["license-files"]
    assert files, "license-files names the license text"
    for pattern in files:
        assert list(ROOT.glob(pattern)), f"license-files: {pattern} matches no file"
    assert "MIT License" in (ROOT / "LICENSE").read_text()


def test_build_requirements_are_bounded_and_new_enough_for_pep_639() -> None:
    system = _pyproject()["build-system"]
    assert isinstance(system, dict)
    for requirement in system["requires"]:
        assert "<" in requirement, f"{requirement}: unbounded build requirement"
    (setuptools,) = [r for r in system["requires"] if r.startswith("setuptools")]
    low = re.search(r">=\s*(\d+)", setuptools)
    assert low is not None and int(low.group(1)) >= 77, f"{setuptools}: PEP 639 metadata needs setuptools >= 77"
