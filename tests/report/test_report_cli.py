"""`cnnarch report` on the command line: files, a short summary, one-line errors."""

import json

import pytest

from cnnarch.cli import main


@pytest.mark.slow
def test_report_command_writes_and_summarizes(tmp_path, capsys) -> None:
    out = tmp_path / "rep"
    status = main(
        [
            "report",
            "--out",
            str(out),
            "--models",
            "resnet20",
            "plain20",
            "--batch",
            "4",
        ]
    )
    printed = capsys.readouterr().out
    assert status == 0
    assert (out / "index.html").is_file() and (out / "report.md").is_file()
    lines = printed.splitlines()
    assert lines[0].split()[0] == "model"
    assert [line.split()[0] for line in lines[2:4]] == ["resnet20", "plain20"]
    assert f"Wrote {out / 'index.html'}" in printed
    assert "claims checked: " in printed


@pytest.mark.slow
def test_report_json_summary_says_what_was_written_and_measured(tmp_path, capsys) -> None:
    out = tmp_path / "rep"
    argv = ["report", "--out", str(out), "--models", "resnet20", "--batch-size", "2"]
    assert main([*argv, "--format", "json"]) == 0
    summary = json.loads(capsys.readouterr().out)  # the whole of stdout is one JSON document
    assert summary["html"] == {
        "path": str(out / "index.html"),
        "bytes": (out / "index.html").stat().st_size,
    }
    assert summary["markdown"]["bytes"] == (out / "report.md").stat().st_size
    assert summary["tables"]["count"] == len(list((out / "tables").glob("*.csv")))
    assert summary["figures"]["charts"] == len(list((out / "figures").glob("*.png")))
    assert summary["bytes"] == sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    assert summary["seconds"] > 0
    claims = json.loads((out / "tables" / "claims.json").read_text())["rows"]
    assert summary["claims"]["checked"] == len(claims)
    assert summary["claims"]["holds"] == sum(r["verdict"] == "holds" for r in claims)


def test_a_missing_degradation_file_named_by_the_user_is_an_error(tmp_path, capsys) -> None:
    out = tmp_path / "rep"
    argv = ["report", "--out", str(out), "--models", "resnet20"]
    status = main([*argv, "--degradation", "/typo/results.json"])
    err = capsys.readouterr().err
    assert status == 2
    assert err.startswith("cnnarch: error: no degradation results at /typo/results.json")
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not out.exists()


def test_unknown_model_is_one_line_and_status_2(tmp_path, capsys) -> None:
    status = main(["report", "--out", str(tmp_path / "rep"), "--models", "vgg61"])
    err = capsys.readouterr().err
    assert status == 2
    assert err.startswith("cnnarch: error: unknown model 'vgg61'")
    assert len(err.strip().splitlines()) == 1


def test_the_default_report_compares_the_charts_networks_too(tmp_path, monkeypatch) -> None:
    # Without --models the build gets no model list: the lecture's models get their cards and
    # the comparison computes the chart's other networks beside them (given a list, only it).
    import cnnarch.lecture.build as build
    from cnnarch.errors import CnnarchError

    asked = []

    def record(out, models, *args, **kwargs):
        asked.append(models)
        raise CnnarchError("stopped here")

    monkeypatch.setattr(build, "build_report", record)
    assert main(["report", "--out", str(tmp_path / "a")]) == 2
    assert main(["report", "--out", str(tmp_path / "b"), "--models", "vgg16"]) == 2
    assert asked == [None, ["vgg16"]]
