"""NAS-Bench-201: arch strings, exact costs against the benchmark's own table."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from nasx.errors import InvalidArchError, UnknownSpaceError
from search_spaces import nb201

DOC_EXAMPLE = (
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"
)


def test_arch_string_round_trip() -> None:
    arch = nb201.from_string(DOC_EXAMPLE)
    assert arch["edge.0->1"] == "nor_conv_3x3"
    assert arch["edge.1->2"] == "avg_pool_3x3"
    assert arch["edge.2->3"] == "skip_connect"
    assert nb201.to_string(arch) == DOC_EXAMPLE


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("|nor_conv_3x3~0|+|none~0|none~1|", "expected 3 groups"),
        ("|conv~0|+|none~0|none~1|+|none~0|none~1|none~2|", 'unknown op "conv"'),
        ("|none~1|+|none~0|none~1|+|none~0|none~1|none~2|", '"none~1" must be op~i with i < 1'),
        ("|none~0|+|none~0|+|none~0|none~1|none~2|", "group 2 must have 2 ops"),
    ],
)
def test_bad_arch_strings(text: str, message: str) -> None:
    with pytest.raises(InvalidArchError, match=message):
        nb201.from_string(text)


def test_space_is_exactly_nb201() -> None:
    space = nb201.space()
    assert space.size() == 15_625
    assert [c.name for c in space.choices] == [f"edge.{i}->{j}" for i, j in nb201.EDGES]
    assert nb201.space(bits=(4, 8, 16, 32)).size() == 15_625 * 4**5
    with pytest.raises(UnknownSpaceError, match='unknown variant "cifar1000"'):
        nb201.space("cifar1000")


def test_hand_counted_costs() -> None:
    """All-3x3 cell: the maximum of the table (1.531546 M params) and a 51-layer longest path."""
    c = nb201.space().costs(nb201.PRESETS["nb201-all-conv3x3"].arch)
    assert c.params == 1_531_546
    stage_macs = 9 * 16 * 16 * 32 * 32  # the same for every stage: C doubles as H, W halve
    cells_macs = 3 * 5 * 6 * stage_macs
    rest = 3 * 16 * 9 * 32 * 32 + 2 * (16 * 32 * 9 * 256 + 32 * 32 * 9 * 256 + 16 * 32 * 256) + 64 * 10
    assert c.macs == cells_macs + rest
    assert c.layers == 1 + 15 * 3 + 2 * 2 + 1
    none = nb201.space().costs(nb201.PRESETS["nb201-none"].arch)
    assert none.params == 73_306 and none.layers == 1 + 2 * 2 + 1


def test_quantized_bytes_shrink() -> None:
    space = nb201.space(bits=(4, 8, 16, 32))
    arch = nb201.from_string(DOC_EXAMPLE, space)
    full = space.costs(arch)
    four = space.costs(arch.replace({k: 4 for k in arch if k.startswith("bits.")}))
    assert four.params == full.params and four.macs == full.macs
    assert 0.12 < four.weight_bytes / full.weight_bytes < 0.2  # 4/32 plus scales and BN in float


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open() as f:
        return list(csv.DictReader(f))


def test_costs_equal_the_benchmark_for_all_15625_cells(nb201_csv: Path) -> None:
    """Params exactly; FLOPs in NB201's own convention to the last FLOP, for every dataset."""
    spaces = {v: nb201.space(v) for v in nb201.SKELETONS}
    columns = {"cifar10": "c10", "cifar100": "c100", "imagenet16-120": "in16"}
    rows = _rows(nb201_csv)
    assert len(rows) == 15_625
    for row in rows:
        arch = nb201.from_string(row["arch_str"])
        assert nb201.to_string(arch) == row["arch_str"]
        for variant, space in spaces.items():
            col = columns[variant]
            assert space.costs(arch).params == round(float(row[f"params_M_{col}"]) * 1e6), row["arch_str"]
            flops = nb201.benchmark_flops(arch, space.resolution, space.num_classes)
            assert flops == pytest.approx(float(row[f"flops_M_{col}"]) * 1e6, abs=0.5), row["arch_str"]
