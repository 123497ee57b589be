"""The package as users install it: a wheel in a fresh virtual environment, outside the
repository, finds its recipes by name."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv holding the bertforge wheel (not editable); its dependencies come from
    this interpreter's site-packages through a path file, whose own path files (the editable
    install of the repository among them) Python does not read."""
    root = tmp_path_factory.mktemp("wheel")
    # From a copy of the sources: a build/ folder left in the checkout by an earlier build
    # would put modules that no longer exist into the wheel.
    skip = shutil.ignore_patterns(".git", ".venv", "build", "*.egg-info", "runs", "__pycache__")
    shutil.copytree(REPO, root / "src", ignore=skip)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", root / "dist",
         root / "src"],
        check=True,
        timeout=300,
    )  # fmt: skip
    (wheel,) = (root / "dist").glob("bertforge-*.whl")
    venv.create(root / "venv", with_pip=False)
    python = root / "venv" / "bin" / "python"
    purelib = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    (Path(purelib) / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--target",
            purelib,
            wheel,
        ],
        check=True,
        timeout=300,
    )
    return python


def run_outside(python: Path, code: str, tmp_path: Path) -> str:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run(
        [python, "-c", code], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_wheel_finds_every_recipe_by_name(installed: Path, tmp_path: Path) -> None:
    code = """
import bertforge
from bertforge import FAMILIES
from bertforge.pretraining.recipe import load_recipe, packaged_recipes
assert "site-packages" in bertforge.__file__ and "/venv/" in bertforge.__file__, bertforge.__file__
names = packaged_recipes()
assert "bert-mini" in names and len(names) >= 12, names
for name in names:
    load_recipe(name)
for fam in FAMILIES.values():
    if fam.recipe is not None:
        assert load_recipe(fam.recipe).family == fam.name
print(len(names))
"""
    assert int(run_outside(installed, code, tmp_path)) >= 12


def test_cli_from_the_wheel_takes_a_recipe_name(installed: Path, tmp_path: Path) -> None:
    """`pretrain --config bert-mini` reads the packaged recipe; the run then stops at the
    (missing) data, which it names."""
    args = ["pretrain", "--config", "bert-mini", "--data", "nodata", "-o", "run"]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run(
        [installed, "-m", "bertforge", *args],
        capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert "nodata" in result.stderr and "recipe" not in result.stderr, result.stderr
