"""The small fully connected stack behind SAM's output heads (hypernetworks, IoU, object score, pointer)."""

from __future__ import annotations

from torch import Tensor, nn


class MLP(nn.Module):
    """`num_layers` linear layers, `activation` between them (not after the last), optional sigmoid.

    Widths: input_dim -> hidden_dim -> ... -> hidden_dim -> output_dim. Works on any leading
    shape: (..., input_dim) -> (..., output_dim).
    """

    def __init__(
        self,
        input_dim: int,
        hidden_dim: int,
        output_dim: int,
        num_layers: int,
        activation: type[nn.Module] = nn.ReLU,
        sigmoid_output: bool = False,
    ) -> None:
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"an MLP needs at least one layer, got num_layers={num_layers}")
        widths = [input_dim] + [hidden_dim] * (num_layers - 1) + [output_dim]
        self.layers = nn.ModuleList(nn.Linear(n_in, n_out) for n_in, n_out in zip(widths[:-1], widths[1:]))
        self.act = activation()
        self.sigmoid_output = sigmoid_output

    def forward(self, x: Tensor) -> Tensor:
        *hidden, last = self.layers
        for layer in hidden:
            x = self.act(layer(x))
        x = last(x)
        return x.sigmoid() if self.sigmoid_output else x
