"""`nasx benchmark nb201`: the search part, resumable proxy scores, a missing table."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


def test_benchmark_nb201_search_part(
    cli, capsys: pytest.CaptureFixture[str], nb201_csv: Path, tmp_path: Path
) -> None:
    code, out, _ = cli(
        "benchmark",
        "nb201",
        "--table",
        str(nb201_csv.parent),
        "--no-proxies",
        "--seeds",
        "2",
        "--queries",
        "10,20",
        "--out",
        str(tmp_path),
        "--json",
    )
    assert code == 0
    results = {r["strategy"]: r for r in json.loads(out)["search"]["results"]}
    assert set(results) == {"random", "aging evolution"}
    assert json.loads((tmp_path / "report.json").read_text())["search"] == json.loads(out)["search"]


def test_benchmark_nb201_proxy_scores_are_kept_and_resumed(
    cli, capsys: pytest.CaptureFixture[str], nb201_csv: Path, tmp_path: Path
) -> None:
    args = ("benchmark", "nb201", "--table", str(nb201_csv), "--proxies", "synflow", "--no-search", "--json")

    def scores(folder: Path) -> list[dict]:
        return [json.loads(line) for line in (folder / "proxy_scores.jsonl").read_text().splitlines()]

    assert cli(*args, "-n", "3", "--batch-size", "2", "--out", str(tmp_path / "a"))[0] == 0
    before = scores(tmp_path / "a")
    assert len(before) == 3 and {r["proxy"] for r in before} == {"synflow"}
    # a run killed mid-write leaves a torn line: the next run cuts it off and scores only the rest
    with (tmp_path / "a" / "proxy_scores.jsonl").open("a") as f:
        f.write('{"cell": "|none~0|+|none~0|none~1|+|no')
    code, out, _ = cli(*args, "-n", "5", "--batch-size", "2", "--out", str(tmp_path / "a"))
    assert code == 0 and json.loads(out)["proxies"]["n"] == 5
    resumed = scores(tmp_path / "a")
    assert len(resumed) == 5 and resumed[:3] == before
    assert cli(*args, "-n", "5", "--out", str(tmp_path / "a"))[0] == 0  # all kept: none scored
    assert scores(tmp_path / "a") == resumed
    # the same scores as a run that scores the 5 cells in one call
    assert cli(*args, "-n", "5", "--batch-size", "5", "--out", str(tmp_path / "b"))[0] == 0
    fresh = {r["cell"]: r["score"] for r in scores(tmp_path / "b")}
    assert {r["cell"]: r["score"] for r in resumed} == pytest.approx(fresh, rel=1e-5)


def test_benchmark_nb201_missing_table(cli, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = cli("benchmark", "nb201", "--table", str(tmp_path / "nope"))
    assert code == 2 and str(tmp_path / "nope") in err
