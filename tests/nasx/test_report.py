"""`nasx report`: the score-vs-MACs front of a run, from its run log alone, plotted and tabled."""

from __future__ import annotations

import json
from pathlib import Path

from nasx.cli import main
from nasx.runlog import read_runlog


def test_report_front_is_non_dominated_and_rendered(tmp_path: Path, capsys) -> None:
    run = tmp_path / "run"
    argv = ["search", "--space", "mobilenet", "--budget", "300M-flops", "--evaluations", "48"]
    assert main([*argv, "--out", str(run), "--json"]) == 0
    capsys.readouterr()
    assert main(["report", str(run), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    scored = [e for e in read_runlog(run / "runlog.jsonl") if e.ok]
    front = {f["fingerprint"] for f in report["front"]}
    for e in scored:
        dominated = any(
            o.objectives[0] >= e.objectives[0]
            and o.costs["macs"] <= e.costs["macs"]
            and (o.objectives[0] > e.objectives[0] or o.costs["macs"] < e.costs["macs"])
            for o in scored
        )
        assert (e.arch.fingerprint in front) == (not dominated), e.arch.fingerprint
    assert report["hypervolume"] > 0
    assert (run / "report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = (run / "report.md").read_text()
    assert sum(line.startswith("| ") and "`" in line for line in table.splitlines()) == len(front)


def test_report_of_a_folder_without_a_run_is_a_clear_error(tmp_path: Path, capsys) -> None:
    assert main(["report", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "holds no search run" in err and str(tmp_path) in err


def test_report_marks_an_exported_family(tmp_path: Path, capsys) -> None:
    """--family DIR puts the family's members, at (MACs, accuracy at export), on the plot."""
    run = tmp_path / "run"
    argv = ["search", "--space", "mobilenet", "--budget", "300M-flops", "--evaluations", "8"]
    assert main([*argv, "--out", str(run), "--json"]) == 0
    family = tmp_path / "family"
    members = []
    for i, (macs, accuracy) in enumerate([(2e6, 0.5), (9e6, 0.75)]):
        folder = family / f"{i:02d}"
        folder.mkdir(parents=True)
        (folder / "costs.json").write_text(json.dumps({"macs": macs, "params": 10}))
        (folder / "metrics.json").write_text(json.dumps({"test_accuracy": accuracy}))
        members.append({"folder": folder.name})
    (family / "family.json").write_text(json.dumps({"family": "standalone", "members": members}))
    capsys.readouterr()
    assert main(["report", str(run), "--family", str(family), "--out", str(tmp_path / "r"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["families"] == [
        {"label": "standalone family", "folder": str(family), "points": [[2e6, 0.5], [9e6, 0.75]]}
    ]
    assert (tmp_path / "r" / "report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
