"""`cnnarch report` on the command line: files, a short summary, one-line errors."""

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
            "--degradation",
            str(tmp_path / "none.json"),
        ]
    )
    printed = capsys.readouterr().out
    assert status == 0
    assert (out / "index.html").is_file() and (out / "report.md").is_file()
    lines = printed.splitlines()
    assert lines[0].split()[0] == "model"
    assert [line.split()[0] for line in lines[2:4]] == ["resnet20", "plain20"]
    assert f"Wrote {out / 'index.html'}" in printed


def test_unknown_model_is_one_line_and_status_2(tmp_path, capsys) -> None:
    status = main(["report", "--out", str(tmp_path / "rep"), "--models", "vgg61"])
    err = capsys.readouterr().err
    assert status == 2
    assert err.startswith("cnnarch: error: unknown model 'vgg61'")
    assert len(err.strip().splitlines()) == 1
