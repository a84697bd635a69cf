"""The optimiser recipe, module groups and freezing, LoRA apply/merge, and the trainable-parameter table."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
from torch import nn

import sam2pp
from sam2pp.modeling.hiera import Hiera
from sam2pp.modeling.layer_norm import LayerNorm2d
from sam2pp.modeling.model import SAM2PlusModel
from sam2pp.modeling.task_modules import TASKS, TaskModuleDict
from sam2pp.training import optim
from sam2pp.training.optim import LoraConfig, OptimConfig


def _trunk(model: nn.Module) -> str:
    """The name of the (shared) Hiera trunk, e.g. `image_encoder.all.trunk`."""
    return next(name for name, m in model.named_modules() if isinstance(m, Hiera))


@pytest.fixture()
def tiny() -> SAM2PlusModel:
    torch.manual_seed(0)
    return sam2pp.build_model("sam2pp_tiny")


@pytest.fixture(scope="module")
def b_plus() -> SAM2PlusModel:
    """The published b+ architecture without memory: parameters on the meta device."""
    with torch.device("meta"):
        return SAM2PlusModel(sam2pp.configs.get("sam2pp_hiera_b+"))


@pytest.fixture()
def variant() -> SAM2PlusModel:
    """An ablation layout: one image encoder per task, one memory attention shared by every task."""
    config = dataclasses.replace(sam2pp.configs.get("sam2pp_tiny"), separate_image_encoder=True,
                                 separate_memory_attention=False)
    return SAM2PlusModel(config)


def _group_settings(optimizer: torch.optim.Optimizer, model: nn.Module) -> dict[str, dict]:
    by_param = {id(p): g for g in optimizer.param_groups for p in g["params"]}
    return {n: by_param[id(p)] for n, p in model.named_parameters() if id(p) in by_param}


# ---- config and schedule --------------------------------------------------------------------------------------


def test_defaults_are_the_published_recipe():
    cfg = OptimConfig()
    assert (cfg.lr, cfg.lr_end, cfg.vision_lr, cfg.vision_lr_end) == (5e-5, 5e-6, 5e-6, 5e-7)
    assert (cfg.betas, cfg.eps, cfg.weight_decay, cfg.layer_decay, cfg.grad_clip_norm) == ((0.9, 0.999), 1e-8,
                                                                                          0.1, 0.9, 0.1)
    lora = LoraConfig()
    assert (lora.rank, lora.alpha, lora.dropout) == (128, 32.0, 0.1)
    assert lora.targets == ("image_encoder", "memory_attention")


@pytest.mark.parametrize("field, value", [("lr", -1.0), ("vision_lr_end", float("nan")), ("betas", (0.9, 1.0)),
                                          ("eps", 0.0), ("layer_decay", 0.0), ("layer_decay", 1.5),
                                          ("grad_clip_norm", 0.0), ("weight_decay", -0.1)])
def test_optim_config_rejects_bad_fields(field, value):
    with pytest.raises(ValueError, match=f"OptimConfig.{field}"):
        OptimConfig(**{field: value})


@pytest.mark.parametrize("field, value", [("rank", 0), ("alpha", -1.0), ("dropout", 1.0), ("targets", ("decoder",)),
                                          ("targets", ())])
def test_lora_config_rejects_bad_fields(field, value):
    with pytest.raises(ValueError, match=f"LoraConfig.{field}"):
        LoraConfig(**{field: value})


def test_cosine_runs_from_start_to_end():
    assert optim.cosine(5e-5, 5e-6, 0.0) == pytest.approx(5e-5)
    assert optim.cosine(5e-5, 5e-6, 0.5) == pytest.approx(2.75e-5)
    assert optim.cosine(5e-5, 5e-6, 1.0) == pytest.approx(5e-6)
    assert optim.cosine(5e-5, 5e-6, 0.25) == pytest.approx(5e-6 + 0.5 * 4.5e-5 * (1 + math.cos(math.pi / 4)))


# ---- parameter groups -----------------------------------------------------------------------------------------


def test_weight_decay_spares_bias_and_layer_norm_but_not_layer_norm_2d(tiny):
    settings = _group_settings(optim.build_optimizer(tiny, OptimConfig()), tiny)
    layer_norm = [n for n, m in tiny.named_modules() if type(m) is nn.LayerNorm]
    layer_norm_2d = [n for n, m in tiny.named_modules() if isinstance(m, LayerNorm2d)]
    assert layer_norm and layer_norm_2d
    for name, group in settings.items():
        owner = name.rpartition(".")[0]
        expected = 0.0 if "bias" in name or owner in layer_norm else 0.1
        assert group["weight_decay"] == expected, name
    assert all(settings[f"{n}.weight"]["weight_decay"] == 0.1 for n in layer_norm_2d)
    assert settings["sam_unified_decoder.transformer.layers.0.self_attn.q_proj.weight"]["weight_decay"] == 0.1


def test_image_encoder_gets_the_vision_rate_the_rest_the_base_rate(tiny):
    settings = _group_settings(optim.build_optimizer(tiny, OptimConfig(layer_decay=1.0)), tiny)
    for name, group in settings.items():
        assert group["lr"] == pytest.approx(5e-6 if name.startswith("image_encoder.") else 5e-5), name


def test_layer_decay_follows_hiera_depth(tiny):
    trunk, neck = _trunk(tiny), _trunk(tiny).replace(".trunk", ".neck")
    blocks = len(tiny.get_submodule(trunk).blocks)
    settings = _group_settings(optim.build_optimizer(tiny, OptimConfig()), tiny)
    scale = lambda name: settings[name]["lr"] / 5e-6  # noqa: E731
    assert scale(f"{trunk}.blocks.{blocks - 1}.attn.qkv.weight") == pytest.approx(0.9)
    assert scale(f"{trunk}.blocks.0.attn.qkv.weight") == pytest.approx(0.9**blocks)
    assert scale(f"{trunk}.patch_embed.proj.weight") == pytest.approx(0.9 ** (blocks + 1))
    assert scale(f"{trunk}.pos_embed") == pytest.approx(1.0)
    assert scale(f"{trunk}.pos_embed_window") == pytest.approx(1.0)
    assert scale(f"{neck}.convs.0.conv.weight") == pytest.approx(1.0)


def test_layer_decay_of_the_published_trunk(b_plus):
    settings = optim.param_settings(b_plus, OptimConfig())
    trunk = _trunk(b_plus)
    assert len(b_plus.get_submodule(trunk).blocks) == 24
    assert settings[f"{trunk}.blocks.23.mlp.layers.0.weight"].lr_scale == pytest.approx(0.9)
    assert settings[f"{trunk}.blocks.0.mlp.layers.0.weight"].lr_scale == pytest.approx(0.9**24)
    assert settings[f"{trunk}.patch_embed.proj.bias"].lr_scale == pytest.approx(0.9**25)
    assert settings["memory_attention.box.layers.0.linear1.weight"] == optim.ParamSetting("base", 1.0, True)


def test_layer_decay_applies_to_every_image_encoder_copy(variant):
    settings = optim.param_settings(variant, OptimConfig())
    blocks = len(variant.image_encoder["box"].trunk.blocks)
    for task in TASKS:
        trunk = f"image_encoder.{task}.trunk"
        assert settings[f"{trunk}.patch_embed.proj.weight"].lr_scale == pytest.approx(0.9 ** (blocks + 1))
        assert settings[f"{trunk}.blocks.{blocks - 1}.attn.proj.weight"].lr_scale == pytest.approx(0.9)


def test_set_progress_moves_every_group_along_its_cosine(tiny):
    cfg = OptimConfig()
    optimizer = optim.build_optimizer(tiny, cfg)
    start = [g["lr"] for g in optimizer.param_groups]
    assert len({g["role"] for g in optimizer.param_groups}) == 2
    for w in (0.5, 1.0):
        lrs = optim.set_progress(optimizer, cfg, w)
        assert lrs == pytest.approx({"base": optim.cosine(5e-5, 5e-6, w), "vision": optim.cosine(5e-6, 5e-7, w)})
        for group, lr0 in zip(optimizer.param_groups, start):
            assert group["lr"] == pytest.approx(lr0 * lrs[group["role"]] / cfg.schedule(group["role"])[0])
    assert all(g["lr"] == pytest.approx(lr0 / 10) for g, lr0 in zip(optimizer.param_groups, start))
    optimizer.param_groups[0]["weight_decay"] = 0.5
    optim.set_progress(optimizer, cfg, 0.3)
    assert optimizer.param_groups[0]["weight_decay"] == (0.1 if optimizer.param_groups[0]["decay"] else 0.0)


def test_set_progress_rejects_bad_progress_and_foreign_optimizers(tiny):
    with pytest.raises(ValueError, match="progress"):
        optim.set_progress(optim.build_optimizer(tiny, OptimConfig()), OptimConfig(), 1.5)
    with pytest.raises(ValueError, match="build_optimizer"):
        optim.set_progress(torch.optim.AdamW(tiny.parameters()), OptimConfig(), 0.5)


def test_only_trainable_parameters_are_optimised(tiny):
    optim.freeze(tiny, ["image_encoder"])
    optimizer = optim.build_optimizer(tiny, OptimConfig())
    held = {id(p) for g in optimizer.param_groups for p in g["params"]}
    assert held == {id(p) for p in tiny.parameters() if p.requires_grad}
    assert not any(id(p) in held for p in tiny.image_encoder.parameters())
    assert all(g["role"] == "base" for g in optimizer.param_groups)


def test_clip_gradients_bounds_the_global_norm(tiny):
    for p in tiny.parameters():
        p.grad = torch.ones_like(p)
    norm = optim.clip_gradients(tiny, OptimConfig())
    assert norm == pytest.approx(math.sqrt(sum(p.numel() for p in tiny.parameters())), rel=1e-4)
    after = torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in tiny.parameters()]))
    assert after == pytest.approx(0.1, rel=1e-3)
    assert optim.clip_gradients(tiny, OptimConfig(grad_clip_norm=None)) is None


# ---- module groups --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("preset", ["tiny", "b_plus", "variant"])
def test_every_parameter_is_in_exactly_one_base_group(preset, request):
    model = request.getfixturevalue(preset)
    seen = set()
    for name, _ in model.named_parameters():
        matches = [g for g, pattern in optim.BASE_GROUPS.items() if pattern.match(name)]
        assert matches == [optim.group_of(name)], name
        seen.add(matches[0])
    assert seen == set(optim.BASE_GROUPS)


@pytest.mark.parametrize("preset", ["tiny", "b_plus", "variant"])
def test_task_of_agrees_with_the_task_dicts(preset, request):
    model = request.getfixturevalue(preset)
    expected = {}
    for path, module in model.named_modules():
        if isinstance(module, TaskModuleDict):
            for child, sub in module.items():
                for rest, _ in sub.named_parameters():
                    expected[f"{path}.{child}.{rest}"] = child if child in TASKS else None
    for rest, _ in model.sam_unified_decoder.box_head.named_parameters():
        expected[f"sam_unified_decoder.box_head.{rest}"] = "box"
    for name, _ in model.named_parameters():
        assert optim.task_of(name) == expected.get(name), name
    assert {optim.task_of(n) for n, _ in model.named_parameters()} == {*TASKS, None}


def test_freeze_stops_exactly_the_named_groups(tiny):
    frozen = set(optim.freeze(tiny, ["decoder", "task:box"]))
    for name, param in tiny.named_parameters():
        expect_frozen = optim.group_of(name) == "decoder" or optim.task_of(name) == "box"
        assert param.requires_grad is not expect_frozen, name
        assert (name in frozen) is expect_frozen
    assert not any(p.requires_grad for p in tiny.memory_attention["box"].parameters())
    assert not any(p.requires_grad for p in tiny.sam_unified_decoder.box_head.parameters())
    assert all(p.requires_grad for p in tiny.memory_attention["mask"].parameters())
    assert all(p.requires_grad for p in tiny.sam_prompt_encoder.parameters())


def test_freeze_names_an_unknown_group(tiny):
    known = r"unknown module group\(s\) \['encoder'\]; known groups: image_encoder.*task:point"
    with pytest.raises(ValueError, match=known):
        optim.freeze(tiny, ["decoder", "encoder"])
    assert all(p.requires_grad for p in tiny.parameters())


def test_group_of_names_an_unknown_parameter():
    with pytest.raises(ValueError, match="'extra_head.weight' is in no module group"):
        optim.group_of("extra_head.weight")


# ---- LoRA -----------------------------------------------------------------------------------------------------


@pytest.fixture()
def lora_tiny(tiny) -> SAM2PlusModel:
    return optim.apply_lora(tiny, LoraConfig(rank=4, alpha=8.0))


def _randomise_adapters(model: nn.Module) -> None:
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.1)


def test_lora_trains_only_adapters_inside_the_wrapped_modules(lora_tiny):
    assert optim.has_lora(lora_tiny)
    names = [n for n, _ in lora_tiny.named_parameters()]
    assert any(n.endswith("attn.qkv.lora_A.default.weight") for n in names)
    assert any(".neck.convs.2.conv.lora_B.default.weight" in n for n in names)
    assert not any(".neck.convs.3.conv.lora_" in n for n in names)
    assert any(n.startswith("memory_attention.point.") and n.endswith("linear2.lora_A.default.weight") for n in names)
    for name, param in lora_tiny.named_parameters():
        wrapped = optim.group_of(name) in ("image_encoder", "memory_attention")
        assert param.requires_grad is (not wrapped or "lora_" in name), name


def test_lora_starts_as_the_identity_and_only_adds_keys(tiny):
    image = torch.randn(1, 3, 256, 256, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        before = tiny.encode_image(image).backbone_fpn[-1]
    plain = tiny.state_dict()
    optim.apply_lora(tiny, LoraConfig(rank=4))
    with torch.no_grad():
        after = tiny.encode_image(image).backbone_fpn[-1]
    torch.testing.assert_close(after, before)
    keys = tiny.state_dict()
    assert set(plain) <= set(keys)
    assert all("lora_" in k for k in set(keys) - set(plain))
    assert all(torch.equal(keys[k], plain[k]) for k in plain)


def test_lora_state_round_trips_into_a_fresh_lora_model(lora_tiny):
    _randomise_adapters(lora_tiny)
    state = lora_tiny.state_dict()
    other = optim.apply_lora(sam2pp.build_model("sam2pp_tiny"), LoraConfig(rank=4, alpha=8.0))
    other.load_state_dict(state, strict=True)
    loaded = other.state_dict()
    assert loaded.keys() == state.keys() and all(torch.equal(loaded[k], v) for k, v in state.items())


def test_merge_restores_the_published_keys_and_keeps_outputs(lora_tiny):
    _randomise_adapters(lora_tiny)
    lora_tiny.eval()
    image = torch.randn(1, 3, 256, 256, generator=torch.Generator().manual_seed(0))
    layer = lora_tiny.memory_attention["box"].layers[0].linear1
    tokens = torch.randn(5, 64, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        features, token_out = lora_tiny.encode_image(image).backbone_fpn[-1], layer(tokens)
    assert optim.merge_lora(lora_tiny) is lora_tiny
    assert not optim.has_lora(lora_tiny)
    merged_layer = lora_tiny.memory_attention["box"].layers[0].linear1
    assert type(merged_layer) is nn.Linear
    with torch.no_grad():
        torch.testing.assert_close(merged_layer(tokens), token_out, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(lora_tiny.encode_image(image).backbone_fpn[-1], features, rtol=1e-4, atol=1e-4)
    fresh = sam2pp.build_model("sam2pp_tiny").state_dict()
    merged = lora_tiny.state_dict()
    assert list(merged) == list(fresh)
    assert {k: v.shape for k, v in merged.items()} == {k: v.shape for k, v in fresh.items()}


def test_lora_twice_is_refused(lora_tiny):
    with pytest.raises(ValueError, match="image_encoder already has LoRA adapters"):
        optim.apply_lora(lora_tiny, LoraConfig(rank=4))


def test_layer_decay_is_off_for_adapters_as_published_unless_asked(lora_tiny):
    trunk = _trunk(lora_tiny)
    blocks = len(lora_tiny.get_submodule(trunk).blocks)
    adapter = f"{trunk}.blocks.0.attn.qkv.lora_A.default.weight"
    assert optim.param_settings(lora_tiny, OptimConfig())[adapter].lr_scale == 1.0
    scaled = optim.param_settings(lora_tiny, OptimConfig(layer_decay_with_lora=True))[adapter]
    assert (scaled.role, scaled.decay) == ("vision", True) and scaled.lr_scale == pytest.approx(0.9**blocks)
    groups = optim.build_optimizer(lora_tiny, OptimConfig()).param_groups
    assert sum(len(g["params"]) for g in groups) == sum(p.requires_grad for p in lora_tiny.parameters())


# ---- the table ------------------------------------------------------------------------------------------------


def test_trainable_table_adds_up(lora_tiny):
    optim.freeze(lora_tiny, ["box_head"])
    rows = optim.trainable_table(lora_tiny)
    *groups, total = rows
    assert [r.group for r in groups] == list(optim.BASE_GROUPS) and total.group == "total"
    params = list(lora_tiny.parameters())
    assert sum(r.total for r in groups) == total.total == sum(p.numel() for p in params)
    assert total.trainable == sum(p.numel() for p in params if p.requires_grad)
    by_group = {r.group: r for r in groups}
    assert by_group["box_head"].trainable == 0
    plain_encoder = sam2pp.build_model("sam2pp_tiny").image_encoder
    assert by_group["image_encoder"].frozen == sum(p.numel() for p in plain_encoder.parameters())
    text = optim.format_trainable_table(lora_tiny)
    assert text.splitlines()[-1].split() == ["total", f"{total.trainable:,}", f"{total.frozen:,}", f"{total.total:,}"]
    assert text == optim.format_trainable_table(rows)
