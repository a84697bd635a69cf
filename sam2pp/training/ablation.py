"""Ablations of the task-adaptive memory: train each layout of the switchable modules under one recipe, score each on
the same held-out clips, and gather one table.

A `Variant` is a layout of `ModelConfig`'s `separate_*` switches (one module shared by every task, or a copy per
task); an `AblationGrid` lists variants. `ablate` trains every variant once per seed with the base config's data,
budget and validation, in `out/runs/<variant>/seed<k>/`. A run ends by writing `result.json` (its table row and full
scores): a run with that file is read, never retrained; a run without it continues from its `resume.pt`. All the
randomness of a run derives from its seed (`TrainConfig.seed`: model init, clip sampling, augmentation, prompts) and
`train` uses deterministic algorithms, so the same grid run twice gives the same table except the timing columns,
one run after another or in `workers` spawned processes (each with the config's thread count; on a GPU, kernels
without a deterministic version may still differ).

Across GPUs: `plan` writes each run's `config.json`; train each with
`torchrun --nproc_per_node N -m sam2pp train <run>/config.json --out <run> --resume` (`sam2pp ablate --torchrun N`
prints these), then `ablate` on the same folder scores the finished runs and builds the table without training.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import io
import itertools
import json
import multiprocessing
import os
import statistics
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from tqdm.auto import tqdm

from ..checkpoint import resolve_config
from ..config import ModelConfig
from ..modeling.task_modules import TASKS
from .config import TrainConfig
from .loop import TrainResult, read_history, train
from .validation import held_out_root, validate

MODULES = ("memory_attention", "memory_encoder", "image_encoder")
DEFAULT_AXES = ("memory_attention", "memory_encoder")
RELEASED = {"memory_attention": True, "memory_encoder": True, "image_encoder": False}
SHORT = {"memory_attention": "attn", "memory_encoder": "menc", "image_encoder": "img"}

# The metrics of a task that go into the table (all of them are kept in each run's result.json).
HEADLINE = {"mask": ("J&F-Mean", "J-Mean", "F-Mean"), "box": ("AUC", "AO"), "point": ("AJ", "delta_avg", "OA")}
TIMING_COLUMNS = ("train_s",)
LOSS_WINDOW = 10  # the table's loss of a task: mean core loss of its last LOSS_WINDOW steps
RESULT_FILE = "result.json"


@dataclass(frozen=True)
class Variant:
    """One layout: per switchable module, a copy per task (True) or one module shared by every task (False)."""

    memory_attention: bool = True
    memory_encoder: bool = True
    image_encoder: bool = False

    @property
    def layout(self) -> dict[str, bool]:
        return {m: getattr(self, m) for m in MODULES}

    @property
    def name(self) -> str:
        """Folder-safe, e.g. `attn-task_menc-shared_img-shared`."""
        return "_".join(f"{SHORT[m]}-{'task' if sep else 'shared'}" for m, sep in self.layout.items())

    @property
    def is_released(self) -> bool:
        """The published SAM 2++ layout ("MAME": memory attention and memory encoder per task)."""
        return self.layout == RELEASED

    def model_config(self, base: ModelConfig) -> ModelConfig:
        return dataclasses.replace(base, **{f"separate_{m}": sep for m, sep in self.layout.items()})


@dataclass(frozen=True)
class AblationGrid:
    """The variants to train, in table order."""

    variants: tuple[Variant, ...]

    def __post_init__(self):
        names = [v.name for v in self.variants]
        if not names:
            raise ValueError("an ablation grid needs at least one variant")
        if len(set(names)) != len(names):
            raise ValueError(f"an ablation grid lists a variant twice: {names}")

    @classmethod
    def over(cls, axes: Iterable[str] = DEFAULT_AXES) -> AblationGrid:
        """Every shared / per-task combination of `axes` (shared first); other modules keep the released layout."""
        axes = tuple(axes)
        unknown = sorted(set(axes) - set(MODULES))
        if unknown or not axes or len(set(axes)) != len(axes):
            raise ValueError(f"ablation axes must be distinct names among {list(MODULES)}, got {list(axes)}")
        combos = itertools.product((False, True), repeat=len(axes))
        return cls(tuple(Variant(**{**RELEASED, **dict(zip(axes, flags))}) for flags in combos))


@dataclass(frozen=True)
class PlannedRun:
    """One (variant, seed) run: its folder and its full training config."""

    variant: Variant
    seed: int
    folder: Path
    config: TrainConfig

    @property
    def name(self) -> str:
        return f"{self.variant.name}/seed{self.seed}"

    @property
    def finished(self) -> bool:
        return (self.folder / RESULT_FILE).is_file()


@dataclass
class AblationResult:
    """The table (one row per run, grid order then seed order) and where the grid's files are. `trained` names the
    runs this call trained or resumed (empty when every run was already finished)."""

    rows: list[dict]
    out: Path
    trained: tuple[str, ...] = ()

    @property
    def table_csv(self) -> Path:
        return self.out / "table.csv"

    @property
    def table_json(self) -> Path:
        return self.out / "table.json"

    @property
    def curves_png(self) -> Path:
        return self.out / "loss_curves.png"

    @property
    def metrics_png(self) -> Path:
        return self.out / "metrics.png"

    @classmethod
    def load(cls, out: str | Path) -> AblationResult:
        """The table an earlier `ablate` wrote to `out` (no training)."""
        path = Path(out) / "table.json"
        try:
            rows = json.loads(path.read_text())["rows"]
        except (OSError, ValueError, KeyError) as exc:
            raise ValueError(f"cannot read ablation table {path}: {exc}") from exc
        return cls(rows, Path(out))

    @property
    def columns(self) -> list[str]:
        return list(dict.fromkeys(k for row in self.rows for k in row))

    @property
    def metric_columns(self) -> list[str]:
        """The per-task validation metrics in the table (`<task>.<metric>`)."""
        return [c for c in self.columns if c.split(".")[0] in TASKS]

    def history(self, variant: str, seed: int) -> list[dict]:
        """The per-step records of one run (its metrics.jsonl)."""
        return read_history(self.out / "runs" / variant / f"seed{seed}")

    def summary(self) -> list[dict]:
        """One row per variant: the number of seeds, and the mean and sample standard deviation over seeds of every
        number (`<column>` and `<column>.std`)."""
        rows = []
        for variant in dict.fromkeys(r["variant"] for r in self.rows):
            runs = [r for r in self.rows if r["variant"] == variant]
            row = {"variant": variant, "seeds": len(runs)}
            for column in self.columns:
                values = [r.get(column) for r in runs]
                if column != "seed" and all(_is_number(v) for v in values):
                    row[column] = statistics.fmean(values)
                    row[f"{column}.std"] = statistics.stdev(values) if len(values) > 1 else 0.0
            rows.append(row)
        return rows

    def markdown(self, summary: bool = False) -> str:
        """The table as markdown; `summary` gives one row per variant with `mean ± std` over seeds."""
        if not summary:
            return _markdown(self.columns, [[_cell(r.get(c)) for c in self.columns] for r in self.rows])
        rows = self.summary()
        columns = ["variant", "seeds", *[c for c in self.columns if c.startswith(("loss.", *TASKS)) or c in
                                         ("params_total", "params_trainable", *TIMING_COLUMNS)]]
        cells = [[_cell(r["variant"]), str(r["seeds"]), *[_mean_std(r, c) for c in columns[2:]]] for r in rows]
        return _markdown(columns, cells)


def comparable(rows: list[dict]) -> list[dict]:
    """The rows without their timing columns: what two runs of one grid must agree on exactly."""
    return [{k: v for k, v in row.items() if k not in TIMING_COLUMNS} for row in rows]


def plan(
    grid: AblationGrid, base_config: TrainConfig, out: str | Path, seeds: Iterable[int] = (0, 1)
) -> list[PlannedRun]:
    """Each run's folder with its `config.json` (and each variant's `model.json`), the shared held-out clips written.

    A run folder holding a config other than the planned one (say, another step count) is an error, so a grid folder
    never mixes budgets.
    """
    out = Path(out).resolve()
    seeds = tuple(seeds)
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"ablation seeds must be distinct and at least one, got {list(seeds)}")
    base_model = resolve_config(base_config.model)
    validation_root = _held_out(base_config, out)
    runs = []
    for variant in grid.variants:
        model_json = out / "runs" / variant.name / "model.json"
        model_json.parent.mkdir(parents=True, exist_ok=True)
        variant.model_config(base_model).to_json(model_json)
        for seed in seeds:
            config = TrainConfig.from_dict(base_config.to_dict())
            config.model, config.seed = str(model_json), seed
            config.validation.root = validation_root
            run = PlannedRun(variant, seed, model_json.parent / f"seed{seed}", config)
            _write_config(run)
            runs.append(run)
    return runs


def ablate(
    grid: AblationGrid | None,
    base_config: TrainConfig,
    out: str | Path,
    seeds: Iterable[int] = (0, 1),
    workers: int = 1,
    progress: bool = True,
) -> AblationResult:
    """Train and score every variant of `grid` (default: memory attention x memory encoder) once per seed with
    `base_config`'s data, budget and validation; write `table.csv`, `table.json`, `loss_curves.png` and
    `metrics.png` to `out`. Finished runs are read, unfinished ones resumed; `workers` > 1 trains runs in that many
    spawned processes. Each run's training log goes to its `train.log`."""
    if workers < 1:
        raise ValueError(f"workers must be a positive integer, got {workers}")
    runs = plan(grid or AblationGrid.over(), base_config, out, seeds)
    todo = [run for run in runs if not run.finished]
    bar = tqdm(total=len(runs), initial=len(runs) - len(todo), desc="ablation", unit="run", disable=not progress)
    with bar:
        for name in _execute(todo, workers, progress):
            bar.set_postfix_str(name)
            bar.update(1)
    rows = [_read_result(run)["row"] for run in runs]
    result = AblationResult(rows, Path(out).resolve(), tuple(run.name for run in todo))
    _write_table(result)
    return result


def run_one(run: PlannedRun, progress: bool = False) -> dict:
    """Train (or resume) one run, score it on the held-out clips, write its `result.json`; returns its table row."""
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # deterministic cuBLAS, as torch asks
    config = TrainConfig.from_dict(run.config.to_dict())
    with open(run.folder / "train.log", "a") as log, contextlib.redirect_stdout(log), _quiet(log, not progress):
        result = train(config, run.folder, resume=True, progress=progress)
        scores = _final_scores(result, config)
    row = _row(run, result, scores)
    _atomic_json(run.folder / RESULT_FILE, {"row": row, "scores": scores, "config": config.to_dict()})
    return row


# ---- running ----------------------------------------------------------------------------------------------------


def _execute(runs: list[PlannedRun], workers: int, progress: bool):
    """Train `runs`, yielding each one's name when it is done (in-process, or in a pool of spawned processes)."""
    if workers == 1 or len(runs) <= 1:
        for run in runs:
            run_one(run, progress)
            yield run.name
        return
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=min(workers, len(runs)), mp_context=context) as pool:
        futures = {pool.submit(run_one, run): run for run in runs}
        for future in as_completed(futures):
            run = futures[future]
            try:
                future.result()
            except Exception as exc:
                raise RuntimeError(f"ablation run {run.name} failed (see {run.folder / 'train.log'}): {exc}") from exc
            yield run.name


def _quiet(log, quiet: bool):
    """Send stderr (progress bars, warnings) to the run's log too, when the run shows no progress."""
    return contextlib.redirect_stderr(log) if quiet else contextlib.nullcontext()


def _held_out(config: TrainConfig, out: Path) -> str | None:
    """The validation folder every run scores on: the config's, or synthetic clips written once under `out`."""
    if config.validation.root is not None or not config.validation.tasks:
        return config.validation.root
    return str(held_out_root(config.validation, out, config.data.synthetic))


def _write_config(run: PlannedRun) -> None:
    path = run.folder / "config.json"
    planned = run.config.to_dict()
    if path.is_file():
        try:
            want, have = _flat(planned), _flat(json.loads(path.read_text()))
        except ValueError as exc:
            raise ValueError(f"cannot read {path}: {exc}; delete that run to redo it") from exc
        changed = sorted(k for k in want.keys() | have.keys() if want.get(k) != have.get(k))
        if changed:
            raise ValueError(f"{run.folder} was trained with another config (differs in {', '.join(changed)}); "
                             "use another output folder or delete that run")
    run.folder.mkdir(parents=True, exist_ok=True)
    _atomic_json(path, planned)


def _final_scores(result: TrainResult, config: TrainConfig) -> dict:
    """The validation at the last step; computed here when the run was finished elsewhere (say, under torchrun)."""
    val = config.validation
    if not val.tasks:
        return {}
    if result.validations and result.validations[-1]["step"] == config.steps:
        return result.validations[-1]["scores"]
    pred = result.out / "validation" / f"step{config.steps:06d}"
    return validate(result.model, Path(val.root), pred, val.tasks, val.max_videos, progress=False)


def _row(run: PlannedRun, result: TrainResult, scores: dict) -> dict:
    params = list(result.model.parameters())
    row = {
        "variant": run.variant.name,
        **{m: "task" if sep else "shared" for m, sep in run.variant.layout.items()},
        "seed": run.seed,
        "steps": run.config.steps,
        "params_total": sum(p.numel() for p in params),
        "params_trainable": sum(p.numel() for p in params if p.requires_grad),
        "train_s": round(sum(r["seconds"] for r in result.history), 3),
    }
    for task in TASKS:
        losses = [r["losses"]["core_loss"] for r in result.history if r["task"] == task][-LOSS_WINDOW:]
        row[f"loss.{task}"] = statistics.fmean(losses) if losses else None
    for task, metrics in scores.items():
        row.update({f"{task}.{m}": scores[task][m] for m in HEADLINE.get(task, metrics)})
    return row


def _read_result(run: PlannedRun) -> dict:
    path = run.folder / RESULT_FILE
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ValueError(f"cannot read the result of run {run.name} ({path}): {exc}; delete it to redo the run") \
            from exc


# ---- files ------------------------------------------------------------------------------------------------------


def _write_table(result: AblationResult) -> None:
    from .ablation_plots import loss_curves_figure, metric_bars

    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=result.columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(result.rows)
    result.table_csv.write_text(text.getvalue())
    _atomic_json(result.table_json, {"columns": result.columns, "rows": result.rows, "summary": result.summary()})
    loss_curves_figure(result).savefig(result.curves_png, dpi=100)
    if result.metric_columns:
        metric_bars(result).savefig(result.metrics_png, dpi=100)


def _atomic_json(path: Path, data) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, path)


def _flat(data: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in data.items():
        if isinstance(value, dict):
            flat.update(_flat(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _cell(value) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _mean_std(row: dict, column: str) -> str:
    if column not in row:
        return "–"
    mean, std = row[column], row[f"{column}.std"]
    if column.startswith("params"):
        return f"{mean / 1e6:.3f} M"
    return f"{mean:.4g} ± {std:.2g}" if row["seeds"] > 1 else f"{mean:.4g}"


def _markdown(columns: list[str], cells: list[list[str]]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in cells]
    return "\n".join(lines)
