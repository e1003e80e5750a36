"""The package as a user installs it: one version, read from the package's metadata; the
license and type information shipped; matplotlib needed by the report alone, with a one-line
message without it; an sdist that holds the tests, docs and examples; and the wheel, installed
into a new virtual environment outside the repository, running the commands from there."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tarfile
import textwrap
from importlib import metadata
from pathlib import Path

import pytest

import cnnarch

ROOT = Path(__file__).resolve().parents[1]
# The one place the version is written.
VERSION = re.search(r'^version = "(.+)"$', (ROOT / "pyproject.toml").read_text(), re.M).group(1)
# The CPU build of PyTorch that the Makefile installs (pip finds it on this machine's disk).
TORCH = "torch==2.13.0"


def test_the_version_is_written_once_and_read_from_the_metadata() -> None:
    assert cnnarch.__version__ == metadata.version("cnnarch") == VERSION, (
        "the installed metadata is older than pyproject.toml: reinstall (make)"
    )
    # Nowhere else: no version literal in the code (`cnnarch --version`: tests/cli/test_parser.py).
    literal = re.compile(r"""__version__\s*=\s*["']|version\s*=\s*["']\d""")
    sources = (ROOT / "src" / "cnnarch").rglob("*.py")
    assert [p.name for p in sources if literal.search(p.read_text(encoding="utf-8"))] == []


def test_the_license_and_type_information_ship() -> None:
    meta = metadata.metadata("cnnarch")
    assert meta["License-Expression"] == "MIT"
    assert (ROOT / "LICENSE").read_text().startswith("MIT License")
    assert (Path(cnnarch.__file__).parent / "py.typed").is_file()
    # matplotlib is the report's extra, not a dependency of everything.
    required = metadata.requires("cnnarch") or []
    assert [r for r in required if r.startswith("matplotlib") and "extra ==" not in r] == []
    assert any(r.startswith("matplotlib") and 'extra == "report"' in r for r in required)


def run_python(code: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=600,
    )


@pytest.mark.slow
def test_analyzing_planning_and_drawing_do_not_import_matplotlib(tmp_path: Path) -> None:
    done = run_python(
        f"""
        import contextlib, io, sys
        import cnnarch
        from cnnarch.cli import main

        cnnarch.analyze("resnet18", batch_size=2, train=True)
        cnnarch.plan("resnet18", "8GB")
        cnnarch.diagram("resnet18", "layer1.0")
        str(cnnarch.summary(cnnarch.create_model("resnet18"), (1, 3, 224, 224), verbose=0))
        with contextlib.redirect_stdout(io.StringIO()):
            for argv in (
                ["summary", "resnet18", "--format", "json"],
                ["summary", "vgg16", "--style", "cs231n"],
                ["plan", "resnet18", "--memory", "8GB", "--train"],
                ["diagram", "resnet18", "--out", r"{tmp_path / "r.svg"}"],
                ["models"],
                ["rules"],
            ):
                assert main(argv) == 0, argv
        loaded = sorted(name for name in sys.modules if name.split(".")[0] == "matplotlib")
        print(loaded)
        """
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


@pytest.mark.slow
def test_the_report_without_matplotlib_says_how_to_install_it(tmp_path: Path) -> None:
    # matplotlib made unimportable, as in an environment without the `report` extra.
    done = run_python(
        f"""
        import sys
        sys.modules["matplotlib"] = None
        from cnnarch.cli import main
        sys.exit(main(["report", "--models", "alexnet", "--out", r"{tmp_path / "report"}"]))
        """
    )
    assert done.returncode == 2
    assert done.stderr == (
        "cnnarch: error: cnnarch report needs matplotlib, which is not installed: "
        "pip install 'cnnarch[report]'\n"
    )
    assert not (tmp_path / "report" / "index.html").exists()


# -- the built package ---------------------------------------------------------------------------

# What the sdist must hold beyond the package: everything needed to test and document it.
SDIST_FOLDERS = ("tests", "docs", "examples", "benchmarks")
SDIST_FILES = ("LICENSE", "README.md", "CHANGELOG.md", "Makefile", "mkdocs.yml", "pyproject.toml")


def tracked_files(folder: str) -> set[str]:
    """The files git tracks under `folder` (the repository's own list of what it holds)."""
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout: no list of the repository's files")
    listed = subprocess.run(
        ["git", "ls-files", folder], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    return set(listed)


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sdist and the wheel, built as a release is: `python -m build` (the wheel is built
    from the sdist, so a file the sdist lacks breaks the wheel)."""
    out = tmp_path_factory.mktemp("dist")
    done = subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(out), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return out


@pytest.mark.slow
def test_the_sdist_holds_the_tests_docs_and_examples(dist: Path) -> None:
    (sdist,) = dist.glob(f"cnnarch-{VERSION}.tar.gz")
    with tarfile.open(sdist) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    for folder in SDIST_FOLDERS:
        missing = tracked_files(folder) - names
        assert tracked_files(folder) and not missing, (folder, sorted(missing)[:10])
    assert set(SDIST_FILES) <= names
    assert tracked_files("src") <= names
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]


def venv_run(venv: Path, *argv: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """A program of `venv`, run in `cwd`, with an environment that cannot reach the repository
    (no PYTHONPATH, no other virtual environment)."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    return subprocess.run(
        [str(venv / "bin" / argv[0]), *argv[1:]],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=600,
    )


@pytest.mark.slow
def test_the_wheel_installed_outside_the_repository_runs_every_command(
    dist: Path, tmp_path: Path
) -> None:
    assert not tmp_path.resolve().is_relative_to(ROOT)
    (wheel,) = dist.glob(f"cnnarch-{VERSION}-py3-none-any.whl")
    venv, work = tmp_path / "venv", tmp_path / "work"
    work.mkdir()
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)

    def pip(*args: str) -> None:
        done = venv_run(venv, "python", "-m", "pip", "install", "-q", *args, cwd=work)
        assert done.returncode == 0, done.stderr[-3000:]

    pip(TORCH)  # first, so that the wheel's torch requirement is met by the CPU build
    pip(str(wheel))  # not editable, without extras

    def cnnarch_(*argv: str, status: int = 0) -> str:
        done = venv_run(venv, "cnnarch", *argv, cwd=work)
        assert done.returncode == status, (argv, done.stderr[-3000:])
        return done.stdout if status == 0 else done.stderr

    found = venv_run(venv, "python", "-c", "import cnnarch; print(cnnarch.__file__)", cwd=work)
    assert Path(found.stdout.strip()).is_relative_to(venv), found.stdout  # not the repository's
    assert cnnarch_("--version") == f"cnnarch {VERSION}\n"
    summary = json.loads(cnnarch_("summary", "resnet18", "--format", "json"))
    assert summary["total_params"] == 11_689_512  # torchvision's ResNet-18
    plan = json.loads(
        cnnarch_("plan", "resnet18", "--memory", "8GB", "--train", "--format", "json")
    )
    assert plan["fits"] and plan["total_bytes"] <= plan["memory_bytes"]
    assert "wrote" in cnnarch_("diagram", "googlenet", "--block", "inception3a", "--out", "b.svg")
    assert (work / "b.svg").read_text().startswith("<svg")
    # The report needs the `report` extra: first the message, then the report.
    message = cnnarch_("report", "--models", "alexnet", status=2)
    assert message.strip().endswith("pip install 'cnnarch[report]'")
    assert message.count("\n") == 1
    pip(f"{wheel}[report]")
    cnnarch_("report", "--models", "alexnet", "--out", "report")
    page = (work / "report" / "index.html").read_text(encoding="utf-8")
    assert "alexnet" in page.lower() and (work / "report" / "report.md").is_file()
