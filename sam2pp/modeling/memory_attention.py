"""Memory attention: conditions the current frame's features on memories of past frames.

Each layer is pre-norm self-attention over the frame's tokens, cross-attention from them to the
memory tokens (spatial memories, then object-pointer tokens), and an MLP.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import torch.nn.functional as F
from torch import Tensor, nn

from sam2pp.modeling.attention import Attention
from sam2pp.modeling.rope import RoPEAttention
from sam2pp.modeling.sections import section as config_section

_ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {"relu": F.relu, "gelu": F.gelu, "glu": F.glu}


def activation_fn(name: str) -> Callable[[Tensor], Tensor]:
    """The functional activation called `name` ("relu", "gelu" or "glu")."""
    if name not in _ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; expected one of {sorted(_ACTIVATIONS)}")
    return _ACTIVATIONS[name]


def _with_pos(x: Tensor, pos: Tensor | None, enabled: bool) -> Tensor:
    return x + pos if enabled and pos is not None else x


class MemoryAttentionLayer(nn.Module):
    """One pre-norm block on batch-first tokens: curr (B, N, C), memory (B, M, C_mem) -> (B, N, C).

    The `pos_enc_at_*` flags choose where position encodings are added (the published models add
    them only to the cross-attention keys; RoPE carries the positions elsewhere).
    """

    def __init__(
        self,
        activation: str,
        cross_attention: nn.Module,
        d_model: int,
        dim_feedforward: int,
        dropout: float,
        pos_enc_at_attn: bool,
        pos_enc_at_cross_attn_keys: bool,
        pos_enc_at_cross_attn_queries: bool,
        self_attention: nn.Module,
    ) -> None:
        super().__init__()
        self.d_model = d_model
        self.self_attn = self_attention
        self.cross_attn_image = cross_attention
        self.linear1 = nn.Linear(d_model, dim_feedforward)
        self.linear2 = nn.Linear(dim_feedforward, d_model)
        self.norm1 = nn.LayerNorm(d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.norm3 = nn.LayerNorm(d_model)
        self.dropout = nn.Dropout(dropout)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)
        self.dropout3 = nn.Dropout(dropout)
        self.activation_name = activation
        self.activation = activation_fn(activation)
        self.pos_enc_at_attn = pos_enc_at_attn
        self.pos_enc_at_cross_attn_keys = pos_enc_at_cross_attn_keys
        self.pos_enc_at_cross_attn_queries = pos_enc_at_cross_attn_queries

    def _self_attend(self, tgt: Tensor, tgt_pos: Tensor | None) -> Tensor:
        normed = self.norm1(tgt)
        qk = _with_pos(normed, tgt_pos, self.pos_enc_at_attn)
        return tgt + self.dropout1(self.self_attn(qk, qk, normed))

    def _cross_attend(
        self, tgt: Tensor, memory: Tensor, tgt_pos: Tensor | None, memory_pos: Tensor | None, num_k_exclude_rope: int
    ) -> Tensor:
        normed = self.norm2(tgt)
        q = _with_pos(normed, tgt_pos, self.pos_enc_at_cross_attn_queries)
        k = _with_pos(memory, memory_pos, self.pos_enc_at_cross_attn_keys)
        # Only RoPE distinguishes pointer tokens (no grid position); plain attention treats all keys alike.
        extra = {"num_k_exclude_rope": num_k_exclude_rope} if isinstance(self.cross_attn_image, RoPEAttention) else {}
        return tgt + self.dropout2(self.cross_attn_image(q, k, memory, **extra))

    def forward(
        self,
        tgt: Tensor,
        memory: Tensor,
        tgt_pos: Tensor | None = None,
        memory_pos: Tensor | None = None,
        num_k_exclude_rope: int = 0,
    ) -> Tensor:
        tgt = self._self_attend(tgt, tgt_pos)
        tgt = self._cross_attend(tgt, memory, tgt_pos, memory_pos, num_k_exclude_rope)
        hidden = self.dropout(self.activation(self.linear1(self.norm3(tgt))))
        return tgt + self.dropout3(self.linear2(hidden))


class MemoryAttention(nn.Module):
    """`num_layers` independent copies of `layer`, then a final LayerNorm.

    Takes and returns SEQUENCE-FIRST tokens, as the tracker keeps them: curr/curr_pos (N, B, C),
    memory/memory_pos (M, B, C_mem), output (N, B, C). The last `num_obj_ptr_tokens` memory
    tokens are object pointers and get no rotary encoding.
    """

    def __init__(
        self, d_model: int, pos_enc_at_input: bool, layer: nn.Module, num_layers: int, batch_first: bool = True
    ) -> None:
        super().__init__()
        if not batch_first:
            # The attention modules work on (B, N, C); the published configs always say True.
            raise ValueError("MemoryAttention supports only batch_first=True (layers run batch-first)")
        self.d_model = d_model
        self.pos_enc_at_input = pos_enc_at_input
        self.num_layers = num_layers
        self.layers = nn.ModuleList(copy.deepcopy(layer) for _ in range(num_layers))
        self.norm = nn.LayerNorm(d_model)

    def forward(
        self,
        curr: Tensor,
        memory: Tensor,
        curr_pos: Tensor | None = None,
        memory_pos: Tensor | None = None,
        num_obj_ptr_tokens: int = 0,
    ) -> Tensor:
        if curr.dim() != 3 or memory.dim() != 3:
            raise ValueError(
                f"curr and memory must be sequence-first (tokens, B, C); got {tuple(curr.shape)}, {tuple(memory.shape)}"
            )
        if curr.shape[1] != memory.shape[1]:
            raise ValueError(f"batch sizes differ: curr has {curr.shape[1]}, memory has {memory.shape[1]}")
        output = curr
        if self.pos_enc_at_input and curr_pos is not None:
            output = output + 0.1 * curr_pos
        output = output.transpose(0, 1)
        tgt_pos = None if curr_pos is None else curr_pos.transpose(0, 1)
        memory = memory.transpose(0, 1)
        memory_pos = None if memory_pos is None else memory_pos.transpose(0, 1)
        for layer in self.layers:
            output = layer(output, memory, tgt_pos, memory_pos, num_k_exclude_rope=int(num_obj_ptr_tokens))
        return self.norm(output).transpose(0, 1)


_ATTENTION_TYPES: dict[str, type[Attention]] = {"RoPEAttention": RoPEAttention, "Attention": Attention}


def _build_attention(section: dict[str, Any], where: str) -> Attention:
    kind = section.get("type", "RoPEAttention")
    if kind not in _ATTENTION_TYPES:
        raise ValueError(f"{where}: unknown attention type {kind!r}; expected one of {sorted(_ATTENTION_TYPES)}")
    kwargs = config_section(section, kind, where)
    if "feat_sizes" in kwargs:
        kwargs["feat_sizes"] = tuple(kwargs["feat_sizes"])
    return _ATTENTION_TYPES[kind](**kwargs)


def build_memory_attention(section: dict[str, Any]) -> MemoryAttention:
    """Build from the `memory_attention` section of a model config JSON (`type` keys checked and dropped)."""
    kwargs = config_section(section, "MemoryAttention", "memory_attention")
    layer_cfg = config_section(kwargs.pop("layer"), "MemoryAttentionLayer", "memory_attention.layer")
    layer = MemoryAttentionLayer(
        self_attention=_build_attention(layer_cfg.pop("self_attention"), "memory_attention.layer.self_attention"),
        cross_attention=_build_attention(layer_cfg.pop("cross_attention"), "memory_attention.layer.cross_attention"),
        **layer_cfg,
    )
    return MemoryAttention(layer=layer, **kwargs)
