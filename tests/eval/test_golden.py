"""`sam2pp eval` reproduces the reference toolkits' numbers on the public cases of ../shared/metrics."""

from __future__ import annotations

import json

import pytest
from conftest import SHARED, need

from sam2pp.eval import EvalResult, evaluate, run_eval

METRICS = SHARED / "metrics"
PER_ROW_FIELD = {"vos": "per_object", "sot": "per_sequence", "pt": "per_video"}


def _cases(mode: str) -> list[tuple[str, dict]]:
    golden = need(METRICS / mode / "golden.json")
    return list(json.loads(golden.read_text())["cases"].items())


@pytest.mark.parametrize("mode", ["vos", "sot", "pt"])
def test_summary_matches_golden(mode, tmp_path, capsys):
    for name, case in _cases(mode):
        out = tmp_path / f"{name}.json"
        run_eval(mode, METRICS / mode / case["gt"], METRICS / mode / case["pred"], json_path=out, progress=False)
        written = json.loads(out.read_text())
        for key, expected in case["metrics"].items():
            assert written[key] == pytest.approx(expected, abs=1e-3), f"{mode}/{name}: {key}"
        assert "overall" in capsys.readouterr().out


@pytest.mark.parametrize("mode", ["vos", "sot", "pt"])
def test_per_sequence_matches_golden(mode):
    for name, case in _cases(mode):
        result = evaluate(mode, METRICS / mode / case["gt"], METRICS / mode / case["pred"], progress=False)
        expected_rows = case[PER_ROW_FIELD[mode]]
        assert set(result.per_sequence) == set(expected_rows), f"{mode}/{name}"
        for row, values in expected_rows.items():
            for key, expected in values.items():
                assert result.per_sequence[row][key] == pytest.approx(expected, abs=1e-3), f"{mode}/{name}/{row}/{key}"


def test_not_checked_conventions_differ():
    """The golden files also list what a different convention gives; we must not match those."""
    for name, case in _cases("sot"):
        result = evaluate("sot", METRICS / "sot" / case["gt"], METRICS / "sot" / case["pred"], progress=False)
        other = case["not_checked"]["AO_SR50_mean_of_sequence_means"]
        assert abs(result.summary["AO"] - other["AO"]) > 1e-3, name


def test_json_has_contract_keys_at_top_level(tmp_path):
    result = EvalResult("sot", {"AUC": 0.5, "AO": float("nan")}, {"a": {"AUC": 0.25}})
    result.to_json(tmp_path / "deep" / "r.json")
    data = json.loads((tmp_path / "deep" / "r.json").read_text())
    assert data["AUC"] == 0.5 and data["mode"] == "sot" and data["per_sequence"]["a"]["AUC"] == 0.25
    table = result.table().splitlines()
    assert table[0].split() == ["AUC", "AO"]
    assert table[2].split() == ["a", "0.2500"]
    assert table[-1].split() == ["sot", "overall", "0.5000", "nan"]


def test_unknown_mode():
    with pytest.raises(ValueError, match="unknown eval mode 'seg'"):
        evaluate("seg", ".", ".")
