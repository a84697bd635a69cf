"""One training step equals the published trainer's (../shared/parity/train_step): unroll, loss, gradients, optimiser.

Each case folder holding an `inputs.json` is replayed through the project's own training path: the tiny parity
model in train mode (drop-path and dropout 0, float32), the recorded `PromptPlan` (`PromptPlan.from_decisions`) and
correction clicks (`RecordedClicks`) through `unroll`, `clip_loss`, backward, then `build_optimizer` /
`set_progress` / `clip_gradients` / `optimizer.step`. The forward, backward and optimiser step run once per case (a
module-scoped fixture); every comparison is a test parametrised by the case folder, at the tolerances the folder's
README gives (`tolerance` in `expected.json`).
"""

from __future__ import annotations

import json
import math
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import Tensor

from conftest import PARITY, need
from sam2pp.checkpoint import load_strict, read_checkpoint
from sam2pp.config import ModelConfig
from sam2pp.modeling.model import HeadOutput, Points, SAM2PlusModel
from sam2pp.modeling.tracker import FrameMemory, FramePrompt, Tracker
from sam2pp.training.clip import Clip, StepOutput
from sam2pp.training.losses import LossConfig, clip_loss, num_objects_for_loss
from sam2pp.training.optim import OptimConfig, build_optimizer, clip_gradients, set_progress
from sam2pp.training.prompts import DrawnClicks, PromptConfig, PromptPlan, RecordedClicks
from sam2pp.training.unroll import unroll

TRAIN_STEP = PARITY / "train_step"
CASES = sorted(p.name for p in TRAIN_STEP.iterdir() if (p / "inputs.json").is_file()) if TRAIN_STEP.is_dir() else []

# The fixtures' mode names (per task) -> the project's `PromptPlan.modes`.
MODES = {
    "mask": {"mask": "mask", "box": "noised_box", "click": "click"},
    "box": {"clean_box": "box", "noised_box": "noised_box", "click": "click"},
    "point": {"point": "point"},
}


# ---- replaying a case ---------------------------------------------------------------------------------------------


class RecordingTracker(Tracker):
    """The training tracker, keeping every decoder output and every frame it encodes (the unroll returns only what
    the loss reads)."""

    def __init__(self, model: SAM2PlusModel):
        super().__init__(model)
        self.pending: list[HeadOutput] = []
        self.frames: list[tuple[FrameMemory, list[HeadOutput]]] = []  # in processing order

    def decode(self, *args, **kwargs) -> HeadOutput:
        out = super().decode(*args, **kwargs)
        self.pending.append(out)
        return out

    def predict(self, *args, **kwargs):
        frame, out = super().predict(*args, **kwargs)
        if out.candidates is None:  # a prompt output as it is: no decode() of its own
            self.pending.append(out)
        return frame, out

    def encode(self, task, features, frame, high_res_masks=None):
        super().encode(task, features, frame, high_res_masks)
        self.frames.append((frame, self.pending))
        self.pending = []


@dataclass
class Replay:
    """A case replayed through the project, with what the comparisons read."""

    folder: Path
    spec: dict
    expected: dict[str, np.ndarray]
    plan: PromptPlan
    num_objects: int
    frames_seen: list[dict]
    outputs: dict[str, np.ndarray]
    losses: dict[str, float]
    names: list[str]
    grads: dict[str, np.ndarray | None]
    lr: dict[str, float]
    weight_decay: dict[str, float]
    theta: dict[str, np.ndarray]
    delta_stored: dict[str, np.ndarray] = field(default_factory=dict)
    delta_own: dict[str, np.ndarray] = field(default_factory=dict)


def tiny_training_model(config_path: Path, checkpoint: Path) -> SAM2PlusModel:
    """The parity model in training mode with every random layer off (drop-path and dropout 0), float32."""
    cfg = ModelConfig.from_json(config_path)
    cfg.image_encoder.trunk.drop_path_rate = 0.0
    layer = cfg.memory_attention.layer
    layer.dropout = layer.self_attention.dropout = layer.cross_attention.dropout = 0.0
    model = SAM2PlusModel(cfg)
    load_strict(model, read_checkpoint(checkpoint))
    model = model.float().train()
    assert not any(isinstance(m, torch.nn.Dropout) and m.p > 0 for m in model.modules())
    return model


def published_names(model: SAM2PlusModel) -> dict[str, str]:
    """named_parameters() name -> the published key the checkpoint loader maps it to (`state_dict` keys)."""
    key_of = {id(v): k for k, v in model.state_dict(keep_vars=True).items()}
    return {name: key_of[id(p)] for name, p in model.named_parameters()}


def recorded_plan(plan: dict, task: str, arrays: dict[str, Tensor]) -> PromptPlan:
    """The `plan` of inputs.json with each initial frame's prompt from the `f{t}_prompt_*` arrays."""
    prompts = {}
    for t in plan["init_cond_frames"]:
        points = None
        if f"f{t}_prompt_points" in arrays:
            points = Points(arrays[f"f{t}_prompt_points"].float(), arrays[f"f{t}_prompt_labels"].to(torch.int32))
        mask = arrays.get(f"f{t}_prompt_mask")
        prompts[t] = FramePrompt(points=points, prob_map=None if mask is None else mask.float())
    modes = {int(t): MODES[task][m] for t, m in plan["modes"].items()}
    built = PromptPlan.from_decisions(task, plan["num_frames"], plan["use_pt_input"], plan["init_cond_frames"],
                                      plan["frames_to_correct"], plan["cond_frames"], prompts, modes)
    assert built.processing_order == plan["processing_order"]
    return built


def recorded_clicks(plan: dict, arrays: dict[str, Tensor]) -> tuple[RecordedClicks, int]:
    """The recorded correction clicks and their number per corrected frame (one number for the whole clip)."""
    frames = plan["frames_to_correct"]
    counts = {int(n) for n in plan.get("num_correction_clicks", {}).values()}
    assert len(counts) <= 1, f"the unroll gives every corrected frame the same number of clicks, got {counts}"
    clicks = RecordedClicks({t: arrays[f"f{t}_click_points"] for t in frames},
                            {t: arrays[f"f{t}_click_labels"] for t in frames})
    return clicks, counts.pop() if counts else PromptConfig().num_correction_clicks


def high_res_summary(logits: Tensor, grid: dict) -> tuple[np.ndarray, np.ndarray]:
    """(N, M, S, S) logits -> the sampled grid (N, M, g, g) and float64 stats (N, M, 5) of the whole maps."""
    start, stride = grid["start"], grid["stride"]
    x = logits.detach().double()
    stats = torch.stack([x.mean((-2, -1)), x.std((-2, -1), correction=0), x.amin((-2, -1)), x.amax((-2, -1)),
                         (x > 0).double().mean((-2, -1))], -1)
    return x[..., start::stride, start::stride].float().numpy(), stats.numpy()


def step_arrays(prefix: str, head: HeadOutput, step: StepOutput, grid: dict) -> dict[str, np.ndarray]:
    low = head.low_res_masks if head.candidates is None else head.candidates.masks
    highres_grid, highres_stats = high_res_summary(step.masks, grid)
    out = {"lowres_multimasks": low, "highres_grid": highres_grid, "highres_stats": highres_stats,
           "ious": step.ious, "object_score_logits": step.object_score_logits}
    if step.boxes_xyxy_norm is not None:
        out["multiboxes_xyxy_norm"] = step.boxes_xyxy_norm
    return {f"{prefix}_{k}": _numpy(v) for k, v in out.items()}


def frame_arrays(prefix: str, frame: FrameMemory) -> dict[str, np.ndarray]:
    out = {"pred_masks": frame.pred_masks, "obj_ptr": frame.obj_ptr, "maskmem_features": frame.maskmem_features}
    if frame.boxes_xyxy_norm is not None:
        out["pred_boxes_xyxy_norm"] = frame.boxes_xyxy_norm[:, None]
    return {f"{prefix}_{k}": _numpy(v) for k, v in out.items()}


def _numpy(x) -> np.ndarray:
    return x.detach().numpy() if isinstance(x, Tensor) else np.asarray(x)


def case_inputs(folder: Path) -> tuple[dict, dict[str, Tensor], SAM2PlusModel, Clip]:
    """inputs.json, the inputs.npz arrays, the model and the clip of a case."""
    inputs = json.loads(need(folder / "inputs.json").read_text())
    with np.load(need(folder / "inputs.npz")) as npz:
        arrays = {k: torch.from_numpy(npz[k]) for k in npz.files}
    model_spec = inputs["model"]
    assert (model_spec["train_mode"], model_spec["drop_path_rate"], model_spec["dropout"], model_spec["dtype"]) == (
        True, 0.0, 0.0, "float32")
    model = tiny_training_model(need(folder / model_spec["config"]), need(folder / model_spec["weights"]))
    clip = Clip(inputs["task"], arrays["frames"], arrays["masks"].float(), arrays["visible"],
                arrays.get("boxes_xyxy"), arrays.get("points_xy"))
    return inputs, arrays, model, clip


def replay_case(folder: Path) -> Replay:
    inputs, arrays, model, clip = case_inputs(folder)
    spec = json.loads(need(folder / "expected.json").read_text())
    with np.load(need(folder / "expected.npz")) as npz:
        expected = {k: npz[k] for k in npz.files}
    task, plan_spec = inputs["task"], inputs["plan"]
    assert (clip.image_size, clip.num_frames, clip.num_objects) == (
        inputs["image_size"], plan_spec["num_frames"], plan_spec["num_objects"])
    plan = recorded_plan(plan_spec, task, arrays)
    clicks, count = recorded_clicks(plan_spec, arrays)
    tracker = RecordingTracker(model)
    outputs = unroll(tracker, clip, plan, PromptConfig(num_correction_clicks=count), clicks=clicks)
    losses = clip_loss(outputs, clip, num_objects_for_loss(clip.num_objects), LossConfig())

    produced: dict[str, np.ndarray] = {}
    frames_seen = [{} for _ in range(clip.num_frames)]
    assert len(tracker.frames) == clip.num_frames
    for t, (frame, heads) in zip(plan.processing_order, tracker.frames):
        steps = outputs[t]
        assert len(heads) == len(steps), f"frame {t}: {len(heads)} decoder outputs recorded for {len(steps)} steps"
        frames_seen[t] = {"frame": t, "steps": len(steps),
                          "multimask_outputs_per_step": [s.ious.shape[1] for s in steps],
                          "cond_frame": t in plan.cond_frames, "init_cond_frame": t in plan.init_cond_frames,
                          "prompt_is_output": plan.prompt_is_output(t)}
        for s, (head, step) in enumerate(zip(heads, steps)):
            produced.update(step_arrays(f"out/f{t}_s{s}", head, step, spec["highres_grid"]))
        produced.update(frame_arrays(f"out/f{t}", frame))

    losses["core_loss"].backward()
    names = published_names(model)
    params = {names[n]: p for n, p in model.named_parameters()}
    grads = {n: None if p.grad is None else p.grad.detach().clone() for n, p in params.items()}
    theta = {n: p.detach().clone() for n, p in params.items()}
    replay = Replay(folder, spec, expected, plan, clip.num_objects, frames_seen, produced,
                    {k: v.item() for k, v in losses.items()}, list(params),
                    {n: None if g is None else g.numpy() for n, g in grads.items()}, {}, {},
                    {n: v.numpy() for n, v in theta.items()})

    # (a) AdamW on the stored gradients times the published clipping factor, (b) the project's own step.
    coef = torch.tensor(spec["optimizer"]["clip_coef"], dtype=torch.float32)
    stored = {k[len("grad/"):]: torch.from_numpy(v) * coef for k, v in expected.items() if k.startswith("grad/")}
    replay.delta_stored = optimiser_step(model, params, theta, stored, spec["optimizer"]["where"], clip=False)
    replay.delta_own, replay.lr, replay.weight_decay = optimiser_step(
        model, params, theta, grads, spec["optimizer"]["where"], clip=True, settings=True)
    return replay


def optimiser_step(model: SAM2PlusModel, params: dict[str, Tensor], theta: dict[str, Tensor],
                   grads: dict[str, Tensor | None], where: float, clip: bool, settings: bool = False):
    """A fresh optimiser of the project (`build_optimizer`, `set_progress` at `where`, `clip_gradients` if `clip`)
    steps once from the checkpoint values `theta` with `grads` (by published name; absent = no gradient).

    Returns the update (float64, by name) and, with `settings`, every parameter's lr and weight decay.
    """
    config = OptimConfig()
    with torch.no_grad():
        for name, p in params.items():
            p.copy_(theta[name])
            p.grad = None if grads.get(name) is None else grads[name].clone()
    optimizer = build_optimizer(model, config)
    set_progress(optimizer, config, where)
    if clip:
        clip_gradients(model, config)
    optimizer.step()
    delta = {n: p.detach().double().numpy() - theta[n].double().numpy() for n, p in params.items()}
    if not settings:
        return delta
    name_of = {id(p): n for n, p in params.items()}
    groups = [(name_of[id(p)], g) for g in optimizer.param_groups for p in g["params"]]
    return delta, {n: g["lr"] for n, g in groups}, {n: g["weight_decay"] for n, g in groups}


@pytest.fixture(scope="module", params=CASES or ["absent"])
def case(request) -> Replay:
    return replay_case(TRAIN_STEP / request.param)


# ---- comparing ----------------------------------------------------------------------------------------------------


def ulp32(x: np.ndarray) -> np.ndarray:
    """The float32 spacing at |x|."""
    return np.spacing(np.abs(np.asarray(x, dtype=np.float32))).astype(np.float64)


def summary(name: str, x: np.ndarray) -> np.ndarray:
    """The README's seven columns of a tensor: l2 norm, sum, max |x|, and four random projections seeded by `name`."""
    flat = np.asarray(x, dtype=np.float64).ravel()
    r = np.random.default_rng(zlib.crc32(name.encode("utf-8"))).standard_normal((4, flat.size))
    return np.concatenate([[np.linalg.norm(flat), flat.sum(), np.abs(flat).max()], r @ flat])


def report(excess: dict[str, float], what: str) -> None:
    """Fail listing the worst offenders: excess = max |a - b| / tolerance (> 1 fails)."""
    bad = sorted(((v, k) for k, v in excess.items() if not v <= 1), reverse=True)
    assert not bad, f"{len(bad)} {what} beyond tolerance (error / tolerance): " + ", ".join(
        f"{k} {v:.3g}" for v, k in bad[:12])


def test_frames_steps_and_multimask_counts(case):
    assert case.frames_seen == case.spec["frames"]


def test_outputs_of_every_step_and_frame(case):
    tol = case.spec["tolerance"]["outputs"]
    wanted = {k for k in case.expected if k.startswith("out/")}
    assert set(case.outputs) == wanted, (sorted(set(case.outputs) - wanted), sorted(wanted - set(case.outputs)))
    excess = {}
    for key in sorted(wanted):
        a, b = case.outputs[key].astype(np.float64), case.expected[key].astype(np.float64)
        assert a.shape == b.shape, (key, a.shape, b.shape)
        excess[key] = float(np.max(np.abs(a - b) / (tol["abs"] + tol["rel"] * np.abs(b)), initial=0.0))
    report(excess, "outputs")


def test_loss_dict(case):
    tol = case.spec["tolerance"]["loss"]
    expected = case.spec["loss"]
    assert set(case.losses) == set(expected)
    report({k: abs(case.losses[k] - v) / (tol["abs"] + tol["rel"] * abs(v)) for k, v in expected.items()}, "losses")


def test_loss_weights_are_the_fixtures(case):
    weights = LossConfig().weights[case.spec["task"]].by_key()
    for key, value in case.spec["loss_config"]["weight_dict"].items():
        assert weights[key] == value, key
    assert num_objects_for_loss(case.num_objects) == case.spec["num_objects_for_loss"]


def test_parameters_are_the_published_ones(case):
    assert sorted(case.names) == sorted(case.spec["param_names"])
    assert {n: list(case.theta[n].shape) for n in case.names} == case.spec["param_shapes"]


def test_which_parameters_get_gradients(case):
    present = dict(zip(case.spec["param_names"], case.expected["grad_present"].tolist()))
    mine = {n: case.grads[n] is not None for n in present}
    differ = sorted(n for n in present if present[n] != mine[n])
    assert not differ, f"{len(differ)} parameters differ in having a gradient (published: first): " + ", ".join(
        f"{n} {present[n]}" for n in differ[:12])


def test_gradient_summaries(case):
    tol = case.spec["tolerance"]["gradients"]
    excess = {}
    for name, row in zip(case.spec["param_names"], case.expected["grad_summary"]):
        grad = case.grads[name]
        if grad is None or np.isnan(row).all():
            continue
        limit = tol["abs"] * math.sqrt(grad.size) + tol["rel"] * row[0]
        excess[name] = float(np.max(np.abs(summary(name, grad) - row)) / limit)
    assert excess, "no gradient to compare"
    report(excess, "gradient summaries")


def test_full_gradients(case):
    tol = case.spec["tolerance"]["gradients"]
    stored = {k[len("grad/"):]: v for k, v in case.expected.items() if k.startswith("grad/")}
    assert stored, "the case stores no full gradient"
    excess = {}
    for name, expected in stored.items():
        grad = case.grads[name]
        assert grad is not None, f"{name} got no gradient"
        assert grad.shape == expected.shape, name
        limit = tol["abs"] + tol["rel"] * np.abs(expected).max()
        excess[name] = float(np.abs(grad.astype(np.float64) - expected).max() / limit)
    report(excess, "full gradients")


def test_learning_rate_and_weight_decay_of_every_parameter(case):
    rel = case.spec["tolerance"]["learning_rate"]["rel"]
    for what, mine, expected in (("lr", case.lr, case.expected["step_lr"]),
                                 ("weight decay", case.weight_decay, case.expected["step_weight_decay"])):
        wrong = [(n, mine[n], float(e)) for n, e in zip(case.spec["param_names"], expected)
                 if not abs(mine[n] - e) <= rel * abs(e)]
        assert not wrong, f"{len(wrong)} parameters have another {what} (mine, published): {wrong[:8]}"


def test_adamw_update_from_the_stored_gradients(case):
    tol = case.spec["tolerance"]["update_from_stored_gradients"]
    stored = {k[len("delta/"):]: v for k, v in case.expected.items() if k.startswith("delta/")}
    if not case.spec["optimizer"]["full_update_stored"]:
        assert not stored
        return
    assert stored, "full_update_stored but no delta/* array"
    excess = {}
    for name, expected in stored.items():
        limit = tol["ulp"] * ulp32(case.theta[name]) + tol["rel"] * np.abs(expected)
        excess[name] = float(np.max(np.abs(case.delta_stored[name] - expected) / limit))
    report(excess, "updates from the stored gradients")


def test_end_to_end_update(case):
    tol = case.spec["tolerance"]["update"]
    rows = dict(zip(case.spec["param_names"], case.expected["step_delta_summary"]))
    stored = {k[len("delta/"):]: v for k, v in case.expected.items() if k.startswith("delta/")}
    unchanged = sorted(n for n, row in rows.items() if np.isnan(row).all() and np.any(case.delta_own[n] != 0))
    assert not unchanged, f"parameters without a published update changed: {unchanged[:12]}"
    excess = {}
    for name, row in rows.items():
        if np.isnan(row).all():
            continue
        delta = case.delta_own[name]
        floor = tol["lr_factor"] * case.lr[name] + tol["ulp"] * float(ulp32(np.abs(case.theta[name]).max()))
        limit = floor * math.sqrt(delta.size) + tol["rel"] * row[0]
        excess[f"{name} (summary)"] = float(np.max(np.abs(summary(name, delta) - row)) / limit)
        if name in stored:
            expected = stored[name]
            limit = floor + tol["rel"] * np.abs(expected).max()
            excess[f"{name} (full)"] = float(np.abs(delta - expected).max() / limit)
    assert excess, "no update to compare"
    report(excess, "end-to-end updates")


def test_replaying_drawn_clicks_reproduces_the_drawn_unroll():
    """The seam itself: clicks drawn as trained, recorded, then replayed give the same unroll bit for bit."""
    plans = {c: json.loads((TRAIN_STEP / c / "inputs.json").read_text())["plan"] for c in CASES}
    corrected = [c for c, plan in plans.items() if plan["frames_to_correct"]]
    assert corrected, f"no case of {TRAIN_STEP} has correction clicks"
    inputs, arrays, model, clip = case_inputs(TRAIN_STEP / corrected[0])
    plan = recorded_plan(inputs["plan"], clip.task, arrays)
    drawn = DrawnClicks(np.random.default_rng(0), torch.Generator().manual_seed(1), prob_from_gt=0.5)
    coords, labels = {}, {}

    def recording(t: int, k: int, gt: Tensor, pred: Tensor) -> Points:
        click = drawn(t, k, gt, pred)
        coords.setdefault(t, []).append(click.coords[:, 0])
        labels.setdefault(t, []).append(click.labels[:, 0])
        return click

    config = PromptConfig(num_correction_clicks=3)
    with torch.no_grad():
        first = unroll(Tracker(model), clip, plan, config, clicks=recording)
        again = unroll(Tracker(model), clip, plan, config, clicks=RecordedClicks(
            {t: torch.stack(c) for t, c in coords.items()}, {t: torch.stack(c) for t, c in labels.items()}))
    assert sorted(coords) == sorted(plan.frames_to_correct) and all(len(c) == 3 for c in coords.values())
    for a_steps, b_steps in zip(first, again, strict=True):
        for a, b in zip(a_steps, b_steps, strict=True):
            assert torch.equal(a.masks, b.masks) and torch.equal(a.ious, b.ious)

