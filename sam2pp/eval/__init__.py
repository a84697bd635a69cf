"""`sam2pp eval`: benchmark scores for masks (vos), boxes (sot) and points (pt), as the reference toolkits
compute them (CONTRACT.md section 3, ../shared/metrics/README.md)."""

from __future__ import annotations

from pathlib import Path

from sam2pp.eval.pt import evaluate_pt
from sam2pp.eval.report import EvalResult
from sam2pp.eval.sot import evaluate_sot
from sam2pp.eval.vos import evaluate_vos
from sam2pp.io.paths import check_output_file

EVALUATORS = {"vos": evaluate_vos, "sot": evaluate_sot, "pt": evaluate_pt}


def evaluate(mode: str, gt_dir: str | Path, pred_dir: str | Path, progress: bool = True) -> EvalResult:
    """Score the prediction folder against the GT folder in the layout of CONTRACT.md section 4."""
    if mode not in EVALUATORS:
        raise ValueError(f"unknown eval mode {mode!r}; expected one of {sorted(EVALUATORS)}")
    return EVALUATORS[mode](gt_dir, pred_dir, progress=progress)


def run_eval(mode: str, gt_dir: str | Path, pred_dir: str | Path, json_path: str | Path | None = None,
             progress: bool = True) -> EvalResult:
    """What `sam2pp eval` runs: evaluate, print the table, and write the JSON when `json_path` is given (checked
    before scoring starts, so an unwritable path fails at once)."""
    if json_path is not None:
        check_output_file(json_path)
    result = evaluate(mode, gt_dir, pred_dir, progress=progress)
    print(result.table())
    if json_path is not None:
        result.to_json(json_path)
    return result


__all__ = ["EVALUATORS", "EvalResult", "evaluate", "evaluate_pt", "evaluate_sot", "evaluate_vos", "run_eval"]
