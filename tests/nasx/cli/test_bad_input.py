"""Bad numbers and lists, command by command: each row is a command line that must end with exit
status 2 and one line ``nasx: error: ...`` naming the culprit, before any training or compile.

`TABLES` holds one table per command (`BASE`: a command line that is valid but for the row);
`test_bad_input` runs each row, `test_guard_every_table_no_traceback` runs them all at once and
lists every row that ends in a traceback, a wrong exit status or several lines, so a regression
anywhere reads as one failure naming the rows.
"""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

import pytest

from nasx.cli import build_parser

BASE = {
    "spaces": "spaces",
    "cost": "cost --arch nb201-resnet",
    "sample": "sample --space nb201",
    "train-supernet": "train-supernet --space nb201 --out {tmp}/ts --steps 2",
    "train": "train --arch nb201-resnet --out {tmp}/t --steps 2",
    "search": "search --space nb201 --budget 100M-flops --evaluator params --evaluations 4 --out {tmp}/s",
    "solve": "solve --space resnet --budget 1G-flops --time-limit 5",
    "sweep": "sweep --space nb201 --budgets 100M-flops --out {tmp}/sw",
    "report": "report {tmp}/run",
    "export": "export {tmp}/run",
    "predict": "predict {tmp}/model --input {tmp}/x.npy",
    "profile": "profile --space nb201 --out {tmp}/lut.json",
    "benchmark nb201": "benchmark nb201 --table {tmp}/nb201 --out {tmp}/b",
}
"""Per command, a command line that would run (or fail later, on a missing file) but for the row."""

# (what the row adds to BASE, substrings the error line must hold: the flag and the value)
TABLES: dict[str, list[tuple[str, tuple[str, ...]]]] = {
    "spaces": [
        ("--space nope", ('"nope"',)),
        ("--space nb201:nope", ("nope",)),
    ],
    "cost": [
        ("--resolution 0", ("--resolution", "0")),
        ("--resolution 1", ("--resolution", "1", "from 8 to 4096")),
        ("--resolution=-224", ("--resolution", "-224")),
        ("--resolution 1.5", ("--resolution", "1.5")),
        ("--resolution abc", ("--resolution", "abc")),
        ("--resolution nan", ("--resolution", "nan")),
        ("--arch no-such-preset", ("no-such-preset",)),
    ],
    "sample": [
        ("-n 0", ("-n", "0")),
        ("-n=-3", ("-n", "-3")),
        ("-n x", ("-n", "x")),
        ("-n 100000000000", ("-n", "100000000000", "1,000,000")),
        ("--seed=-1", ("--seed", "-1")),
        ("--seed abc", ("--seed", "abc")),
        ("--seed 18446744073709551616", ("--seed", "18446744073709551616")),
        ("--resolution 0", ("--resolution", "0")),
        ("--bits 3", ("--bits", "3")),
        ("--bits 8,,32", ("--bits", "8,,32")),
        ("--bits ,", ("--bits", ",")),
        ("--budget=-5M-flops", ("--budget", "-5M")),
        ("--budget 0M-flops", ("--budget", "0M")),
        ("--budget nanM-flops", ("--budget", "nanM")),
        ("--budget 1e400M-flops", ("--budget", "1e400M")),
        ("--budget 100M-flops,", ("--budget", "100M-flops,")),
    ],
    "train-supernet": [
        ("--batch-size 0", ("--batch-size", "0")),
        ("--batch-size=-8", ("--batch-size", "-8")),
        ("--archs-per-step 0", ("--archs-per-step", "0")),
        ("--width-mult 0", ("--width-mult", "0")),
        ("--width-mult nan", ("--width-mult", "nan")),
        ("--width-mult=-1", ("--width-mult", "-1")),
        ("--lr nan", ("--lr", "nan")),
        ("--lr inf", ("--lr", "inf")),
        ("--lr 0", ("--lr", "0")),
        ("--lr=-0.1", ("--lr", "-0.1")),
        ("--image-size 0", ("--image-size", "0")),
        ("--image-size=-28", ("--image-size", "-28")),
        ("--steps 0", ("--steps", "0")),
        ("--steps 2.5", ("--steps", "2.5")),
        ("--epochs 0", ("--epochs", "0")),
        ("--epochs nan", ("--epochs", "nan")),
        ("--devices 0", ("--devices", "0")),
        ("--checkpoint-every 0", ("--checkpoint-every", "0")),
        ("--label-smoothing 1", ("--label-smoothing", "1")),
        ("--label-smoothing=-0.1", ("--label-smoothing", "-0.1")),
        ("--label-smoothing nan", ("--label-smoothing", "nan")),
        ("--val-fraction 0", ("--val-fraction", "0")),
        ("--val-fraction 1", ("--val-fraction", "1")),
        ("--seed=-1", ("--seed", "-1")),
        ("--seed 9223372036854775808", ("--seed", "9223372036854775808")),
        ("--bits 3", ("--bits", "3")),
        ("--bits 8,abc", ("--bits", "8,abc")),
        ("--sampling nope", ("--sampling", "nope")),
    ],
    "train": [
        ("--batch-size 0", ("--batch-size", "0")),
        ("--lr nan", ("--lr", "nan")),
        ("--lr 0", ("--lr", "0")),
        ("--weight-decay=-1", ("--weight-decay", "-1")),
        ("--weight-decay nan", ("--weight-decay", "nan")),
        ("--weight-decay inf", ("--weight-decay", "inf")),
        ("--label-smoothing 1.5", ("--label-smoothing", "1.5")),
        ("--image-size 0", ("--image-size", "0")),
        ("--steps=-1", ("--steps", "-1")),
        ("--epochs inf", ("--epochs", "inf")),
        ("--epochs 0", ("--epochs", "0")),
        ("--val-fraction nan", ("--val-fraction", "nan")),
        ("--seed=-1", ("--seed", "-1")),
        ("--checkpoint-every 0", ("--checkpoint-every", "0")),
    ],
    "search": [
        ("--evaluations 0", ("--evaluations", "0")),
        ("--evaluations=-5", ("--evaluations", "-5")),
        ("--evaluations 1e3", ("--evaluations", "1e3")),
        ("--population 0", ("--population", "0")),
        ("--population 1", ("--population", "1")),
        ("--batch-size 0", ("--batch-size", "0")),
        ("--seed=-1", ("--seed", "-1")),
        ("--seed 18446744073709551616", ("--seed", "18446744073709551616")),
        ("--resolution 0", ("--resolution", "0")),
        ("--proxy-batch 0", ("--proxy-batch", "0")),
        ("--width-mult 0", ("--width-mult", "0")),
        ("--width-mult nan", ("--width-mult", "nan")),
        ("--rho=-1", ("--rho", "-1")),
        ("--rho nan", ("--rho", "nan")),
        ("--rho inf", ("--rho", "inf")),
        ("--time-limit=-5", ("--time-limit", "-5")),
        ("--time-limit nan", ("--time-limit", "nan")),
        ("--time-limit 0", ("--time-limit", "0")),
        ("--rho 0", ("--rho", "0")),
        ("--ray-chunk 0", ("--ray-chunk", "0")),
        ("--ray-rounds 0", ("--ray-rounds", "0")),
        ("--top 0", ("--top", "0")),
        ("--top=-2", ("--top", "-2")),
        ("--bits 7", ("--bits", "7")),
        ("--budget abc", ("--budget", "abc")),
        ("--budget=-1M-flops", ("--budget", "-1M")),
        ("--objectives ,", ("--objectives", '","')),
        ("--objectives ''", ("--objectives", '""')),
        ("--objectives params,,macs", ("--objectives", "params,,macs")),
        ("--objectives speed", ('"speed"',)),
        ("--evaluator train:0", ("train:0",)),
        ("--evaluator train:abc", ("train:abc",)),
        ("--evaluator params,,macs", ("params,,macs", "empty name")),
        ("--evaluator supernet:", ('"supernet:"', "names no checkpoint")),
        ("--strategy annealing", ("--strategy", "annealing")),
    ],
    "solve": [
        ("--rho=-1", ("--rho", "-1")),
        ("--rho nan", ("--rho", "nan")),
        ("--rho 0", ("--rho", "0")),
        ("--rho inf", ("--rho", "inf")),
        ("--time-limit=-5", ("--time-limit", "-5")),
        ("--time-limit 0", ("--time-limit", "0")),
        ("--time-limit inf", ("--time-limit", "inf")),
        ("--resolution=-224", ("--resolution", "-224")),
        ("--resolution 0", ("--resolution", "0")),
        ("--bits 3", ("--bits", "3")),
        ("--budget 1G-flopz", ("--budget", "flopz")),
    ],
    "sweep": [
        ("--seeds abc", ("--seeds", "abc")),
        ("--seeds=-1", ("--seeds", "-1")),
        ("--seeds 1.5", ("--seeds", "1.5")),
        ("--seeds 0,,1", ("--seeds", "0,,1")),
        ("--seeds ,", ("--seeds", '","')),
        ("--seeds 0,0", ("--seeds", "0,0")),
        ("--seeds 0,4294967296", ("--seeds", "4294967296")),
        ("--budgets abc", ("--budgets", "abc")),
        ("--budgets 100M-flops,xyz", ("--budgets", "xyz")),
        ("--budgets 100M-flops,,200M-flops", ("--budgets", "100M-flops,,200M-flops")),
        ("--budgets ,", ("--budgets", '","')),
        ("--budgets=-5M-flops", ("--budgets", "-5M")),
        ("--budgets 100M-flops,100M-flops", ("--budgets", "100M-flops")),
        ("--evaluations 0", ("--evaluations", "0")),
        ("--population 1", ("--population", "1")),
        ("--batch-size 0", ("--batch-size", "0")),
        ("--bits 5", ("--bits", "5")),
        ("--max-failures=-1", ("--max-failures", "-1")),
        ("--strategy annealing", ("--strategy", "annealing")),
    ],
    "report": [
        ("", ("runlog.jsonl",)),
    ],
    "export": [
        ("--top 0", ("--top", "0")),
        ("--top=-2", ("--top", "-2")),
        ("--finetune=-1", ("--finetune", "-1")),
        ("--anchors 0", ("--anchors", "0")),
        ("--anchors 1", ("--anchors", "1")),
        ("--anchors 5", ("--anchors", "5")),
        ("--anchors x", ("--anchors", "x")),
        ("--stitch-steps 0", ("--stitch-steps", "0")),
        ("--family nope", ("--family", "nope")),
        ("", ("runlog.jsonl",)),
    ],
    "predict": [
        ("--member=-1", ("--member", "-1")),
        ("--member x", ("--member", "x")),
        ("", ("model.stablehlo",)),
    ],
    "profile": [
        ("--repeats 0", ("--repeats", "0")),
        ("--repeats=-1", ("--repeats", "-1")),
        ("--batch x", ("--batch", "x")),
        ("--batch 0", ("--batch", "0")),
        ("--resolution 0", ("--resolution", "0")),
        ("--width-mult 0", ("--width-mult", "0")),
        ("--width-mult inf", ("--width-mult", "inf")),
        ("--warmup=-1", ("--warmup", "-1")),
        ("--calibrate=-1", ("--calibrate", "-1")),
        ("-n 0", ("-n", "0")),
        ("--rounds 0", ("--rounds", "0")),
        ("--seed=-1", ("--seed", "-1")),
        ("--bits 2", ("--bits", "2")),
        ("--clock sundial", ("--clock", "sundial")),
    ],
    "benchmark nb201": [
        ("-n 0", ("-n", "0")),
        ("-n=-1", ("-n", "-1")),
        ("--seed=-1", ("--seed", "-1")),
        ("--proxy-batch 0", ("--proxy-batch", "0")),
        ("--batch-size 0", ("--batch-size", "0")),
        ("--queries 0", ("--queries", "0")),
        ("--queries=-50", ("--queries", "-50")),
        ("--queries abc", ("--queries", "abc")),
        ("--queries 50,,100", ("--queries", "50,,100")),
        ("--queries ,", ("--queries", '","')),
        ("--seeds 0", ("--seeds", "0")),
        ("--batch 0", ("--batch", "0")),
        ("--proxies ,", ("--proxies", '","')),
        ("--proxies synflow,,snip", ("--proxies", "synflow,,snip")),
        ("--no-proxies --no-search", ("--no-proxies", "--no-search")),
        ("--dataset nope", ("--dataset", "nope")),
    ],
}

ROWS = [(command, extra, needles) for command, rows in TABLES.items() for extra, needles in rows]


def _argv(command: str, extra: str, tmp: Path) -> list[str]:
    return shlex.split(BASE[command].format(tmp=tmp)) + shlex.split(extra)


def _problem(cli, command: str, extra: str, needles: tuple[str, ...], tmp: Path) -> str | None:
    """None if the row ends as it must, else what went wrong."""
    try:
        code, out, err = cli(*_argv(command, extra, tmp))
    except Exception as e:  # in this process, what a user would see as a traceback
        return f"traceback: {type(e).__name__}: {e}"
    if "Traceback" in err:
        return f"traceback: {err.strip().splitlines()[-1]}"
    if code != 2:
        return f"exit status {code}, stderr {err.strip()[-200:]!r}"
    lines = err.strip().splitlines()
    # one error line, last; a progress line before it ("preparing the evaluator ...") is fine
    if out or not lines or not lines[-1].startswith("nasx: error: ") or err.count("nasx: error:") != 1:
        return f"not one error line: {err!r}"
    missing = [n for n in needles if n not in lines[-1]]
    return f"{missing} not in {lines[-1]!r}" if missing else None


@pytest.fixture
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A scratch folder, also the working directory: nothing a row writes lands in the repo."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_every_command_has_a_table() -> None:
    commands = {command for command, _ in _commands(build_parser())}
    assert set(TABLES) == set(BASE) == commands


@pytest.mark.parametrize(("command", "extra", "needles"), ROWS, ids=[f"{c} {e}".strip() for c, e, _ in ROWS])
def test_bad_input(cli, here: Path, command: str, extra: str, needles: tuple[str, ...]) -> None:
    assert _problem(cli, command, extra, needles, here) is None


def test_guard_every_table_no_traceback(cli, here: Path) -> None:
    """Every row of every table at once (each in a folder of its own): no traceback, exit 2."""
    problems = {}
    for i, (command, extra, needles) in enumerate(ROWS):
        (here / str(i)).mkdir()
        if (problem := _problem(cli, command, extra, needles, here / str(i))) is not None:
            problems[f"nasx {command} {extra}"] = problem
    assert problems == {}


def _commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()):
    """(command words, its parser) for every leaf command, e.g. ("benchmark nb201", parser)."""
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        yield " ".join(path), parser
    for sub in subs:
        for name, child in sub.choices.items():
            yield from _commands(child, (*path, name))


def test_every_typed_flag_has_a_row() -> None:
    """A flag with a domain (a number, a list, a budget, a choice) is tried with a bad value."""
    tried = {c: {shlex.split(e)[0].partition("=")[0] for e, _ in rows if e} for c, rows in TABLES.items()}
    untried = [
        f"{command} {action.option_strings[0]}"
        for command, parser in _commands(build_parser())
        for action in parser._actions
        if action.option_strings
        and (action.type is not None or action.choices is not None)
        and not set(action.option_strings) & tried[command]
    ]
    assert untried == []


def test_lists_and_bounds_accept_what_they_should() -> None:
    from nasx.cli._args import ANCHORS, SEED_MAX, anchor_count, budget_list, name_list, seed_int, seed_list
    from nasx.export.stitched import MAX_ANCHORS

    assert ANCHORS == (2, MAX_ANCHORS)  # the CLI's copy, kept free of JAX, agrees with the stitcher
    assert [anchor_count(str(n)) for n in range(2, MAX_ANCHORS + 1)] == list(range(2, MAX_ANCHORS + 1))
    assert seed_int(str(SEED_MAX)) == SEED_MAX
    assert seed_list("0, 1,7") == (0, 1, 7) and seed_list("3") == (3,)
    assert budget_list("200M-flops, 400M-flops") == ("200M-flops", "400M-flops")
    assert name_list(" acc ,macs") == ("acc", "macs")
    with pytest.raises(argparse.ArgumentTypeError, match=str(SEED_MAX)):
        seed_list(f"0,{SEED_MAX + 1}")
