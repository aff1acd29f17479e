"""The command line as a user meets it: outputs, JSON keys, and one-line errors with status 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from nasx.budget import parse_budget
from search_spaces import PRESETS, SPACES


def test_spaces_lists_every_family(cli, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli("spaces", "--json")
    rows = {r["space"]: r for r in json.loads(out)}
    assert code == 0 and set(rows) == set(SPACES)
    assert rows["nb201"]["size"] == 15_625
    assert "nasnet-a-mobile" in rows["nasnet"]["presets"]
    code, out, _ = cli("spaces")
    assert code == 0 and "nasnet" in out and "10^" in out


def test_spaces_lists_choices_of_one_space(cli, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli("spaces", "--space", "nb201", "--json")
    data = json.loads(out)
    assert code == 0 and next(c["name"] for c in data["choices"]) == "edge.0->1"
    assert data["choices"][0]["options"][0] == "none"


def test_cost_of_a_preset(cli, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli("cost", "--space", "nb201", "--arch", "nb201-all-conv3x3", "--json")
    data = json.loads(out)
    assert code == 0
    assert {"macs", "params", "weight_bytes", "activation_bytes"} <= set(data)
    assert data["params"] == 1_531_546 and data["resolution"] == 32
    code, out, _ = cli("cost", "--arch", "nasnet-a-mobile")  # space inferred from the preset
    assert code == 0 and "MACs" in out and "params" in out


def test_cost_of_a_file_an_inline_json_and_an_nb201_string(
    cli, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    arch = PRESETS["nb201-resnet"].arch
    path = tmp_path / "arch.json"
    path.write_text(json.dumps({"space": "nb201", "arch": arch.to_dict()}))
    results = []
    for given in (
        str(path),
        arch.to_json(),
        "|nor_conv_3x3~0|+|none~0|nor_conv_3x3~1|+|skip_connect~0|none~1|none~2|",
    ):
        code, out, _ = cli("cost", "--space", "nb201", "--arch", given, "--json")
        assert code == 0
        results.append(json.loads(out))
    assert results[0] == results[1] == results[2]


def test_cost_resolution_override(cli, capsys: pytest.CaptureFixture[str]) -> None:
    _, out224, _ = cli("cost", "--arch", "resnet-50", "--json")
    _, out112, _ = cli("cost", "--arch", "resnet-50", "--resolution", "112", "--json")
    a, b = json.loads(out224), json.loads(out112)
    assert b["resolution"] == 112 and b["params"] == a["params"]
    assert 0.2 < b["macs"] / a["macs"] < 0.3


@pytest.mark.parametrize("space", sorted(SPACES))
def test_sample_within_budget(cli, capsys: pytest.CaptureFixture[str], space: str) -> None:
    budget = {
        "nasnet": "600M-flops",
        "mobilenet": "300M-flops",
        "resnet": "2G-flops,15M-params",
        "nb201": "50M-flops",
    }[space]
    code, out, _ = cli("sample", "--space", space, "--budget", budget, "-n", "3", "--seed", "1", "--json")
    data = json.loads(out)
    assert code == 0 and len(data["archs"]) == 3
    b = parse_budget(budget)
    for item in data["archs"]:
        assert item["costs"]["macs"] <= b.macs
        assert b.params is None or item["costs"]["params"] <= b.params
    code, lines, _ = cli("sample", "--space", space, "--budget", budget, "-n", "3", "--seed", "1")
    assert [json.loads(line) for line in lines.splitlines()] == [item["arch"] for item in data["archs"]]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["cost", "--space", "nosuch", "--arch", "{}"], 'unknown space "nosuch"; expected one of nasnet'),
        (["cost", "--space", "nasnet", "--arch", "nasnet-z"], '"nasnet-z" is neither a preset of "nasnet"'),
        (
            ["cost", "--space", "mobilenet", "--arch", "nasnet-a-mobile"],
            'preset "nasnet-a-mobile" belongs to space "nasnet"',
        ),
        (["cost", "--space", "nb201", "--arch", '{"edge.0->1": '], "architecture is not valid JSON"),
        (["cost", "--space", "nb201", "--arch", "[1, 2]"], "must be an object"),
        (["cost", "--space", "nb201", "--arch", '{"edge.0->1": "none"}'], 'missing choice "edge.0->2"'),
        (
            ["sample", "--space", "nb201", "--budget", "600Q-flops"],
            'unknown unit "Q" for flops; use K, M, G or T',
        ),
        (
            ["sample", "--space", "nb201", "--budget", "1M-flops"],
            'no architecture of space "nb201" found within budget "1M-flops"',
        ),
        (["sample", "--space", "nb201", "--budget", "5ms-latency"], "latency table"),
        (["sample", "--space", "nb201", "--bits", "3"], 'bits "3": each must be one of 4, 8, 16, 32'),
    ],
)
def test_bad_input_is_one_line_and_status_2(
    cli, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    code, out, err = cli(*argv)
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("nasx: error: ")
    assert message in err


def test_console_script_errors_without_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "arch.json"
    bad.write_text('{"edge.0->1": "none", "edge.9->9": 1}')
    proc = subprocess.run(
        [sys.executable, "-m", "nasx.cli", "cost", "--space", "nb201", "--arch", str(bad)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.startswith('nasx: error: nb201: unknown choice "edge.9->9"')
    assert proc.stderr.count("\n") == 1
