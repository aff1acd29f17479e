"""Adding a search space from outside the package: a family value plus one registry entry.

The family below (a plain stack of 3x3 convolutions) is defined here, in the test, and is found by
the registry, the CLI and the library's search job exactly as the built-in families are. Its costs
are checked against a hand count, and the search's best architecture against brute force over the
whole space (its 3 x 3 x 3 = 27 architectures).
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from pathlib import Path

import pytest

import search_spaces
from nasx.costs import Costs, conv2d, dense
from nasx.jobs.search import SearchRequest, run_search
from nasx.space import AbstractSearchSpace, Arch, Choice, Preset
from nasx.space_family import SpaceFamily

WIDTHS = (8, 16, 32)


@dataclass(frozen=True)
class ConvStackSpace(AbstractSearchSpace):
    """Three 3x3 conv layers of searchable widths on 8 px grey images, then a 10-way classifier."""

    name: str = "convstack"
    variant: str = "8px"
    resolution: int = 8
    num_classes: int = 10

    @property
    def choices(self) -> tuple[Choice, ...]:
        return tuple(Choice(f"l{i}.width", WIDTHS, doc="output channels") for i in range(3))

    def costs(self, arch: Arch, resolution: int | None = None) -> Costs:
        side = resolution or self.resolution
        total, c_in = Costs(), 1
        for i in range(3):
            total += conv2d(c_in, arch[f"l{i}.width"], 3, side)
            c_in = arch[f"l{i}.width"]
        return total + dense(c_in, self.num_classes)

    def size(self) -> int:
        return len(WIDTHS) ** 3


def _space(variant: str = "8px", *, bits: tuple[int, ...] = (32,)) -> ConvStackSpace:
    del bits  # float only
    return ConvStackSpace(variant=variant)


def _no_supernet() -> type:
    raise NotImplementedError("convstack has no supernet; score it with an analytic evaluator")


SPACE = _space()
CONVSTACK = SpaceFamily(
    name="convstack",
    space=_space,
    variants=("8px",),
    presets={
        "convstack-wide": Preset(
            "convstack-wide", SPACE, SPACE.validate({f"l{i}.width": 32 for i in range(3)})
        )
    },
    supernet=_no_supernet,
    training_variant="8px",
    default_evaluator="params",
    doc="a stack of three 3x3 convolutions (test family)",
)


@pytest.fixture
def registered(monkeypatch: pytest.MonkeyPatch) -> SpaceFamily:
    """The registry with the test family added: the one line a new family's package adds."""
    monkeypatch.setitem(search_spaces.FAMILIES, CONVSTACK.name, CONVSTACK)
    return CONVSTACK


def test_costs_are_the_hand_count() -> None:
    arch = SPACE.validate({"l0.width": 8, "l1.width": 16, "l2.width": 32})
    # weights: 9*1*8 + 9*8*16 + 9*16*32 conv, BN 2*(8+16+32), classifier 32*10 + 10
    assert SPACE.costs(arch).params == 72 + 1152 + 4608 + 112 + 330
    # MACs: each conv at 8x8 output positions, then the classifier
    assert SPACE.costs(arch).macs == 64 * (72 + 1152 + 4608) + 320


def test_the_registry_resolves_the_new_family(registered: SpaceFamily) -> None:
    assert search_spaces.family("convstack") is registered
    assert search_spaces.make_space("convstack").size() == 27
    space, arch = search_spaces.load_arch(None, "convstack-wide")
    assert space.name == "convstack" and arch["l2.width"] == 32


def test_library_search_finds_the_best_architecture_under_a_budget(
    registered: SpaceFamily, tmp_path: Path
) -> None:
    budget = "0.3M-flops"
    done = run_search(
        SearchRequest("convstack", budget, strategy="random", evaluations=27, batch_size=9, out=tmp_path)
    )
    # the default evaluator of the family (params) is maximized under the budget: brute force agrees
    feasible = [
        SPACE.validate(dict(zip(("l0.width", "l1.width", "l2.width"), ws, strict=True)))
        for ws in itertools.product(WIDTHS, repeat=3)
    ]
    feasible = [a for a in feasible if SPACE.costs(a).macs <= 300_000]
    best = max(feasible, key=lambda a: SPACE.costs(a).params)
    assert done.summary["best"] == best.to_dict()
    assert done.summary["space"] == "convstack" and done.summary["evaluator"] == "params"
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["space"] == "convstack"
    lines = (tmp_path / "runlog.jsonl").read_text().splitlines()
    assert len(lines) >= len(feasible)  # every feasible architecture was scored, once


def test_the_cli_lists_and_searches_the_new_family(registered: SpaceFamily, cli, tmp_path: Path) -> None:
    code, out, _ = cli("spaces", "--json")
    assert code == 0 and "convstack" in [row["space"] for row in json.loads(out)]
    code, out, err = cli(
        "search",
        "--space",
        "convstack",
        "--budget",
        "0.3M-flops",
        "--evaluations",
        "8",
        "--out",
        str(tmp_path / "run"),
        "--json",
    )
    assert code == 0, err
    assert json.loads(out)["space"] == "convstack"
