"""minGRU and minLSTM (Feng et al. 2024): gates that read the input only, run as a parallel scan."""

from __future__ import annotations

import jax

from rnnlab.cells.core import CellDef, linear_cell


def min_gru_def() -> CellDef:
    r"""minGRU (Feng et al. 2024, "Were RNNs All We Needed?"): gates read the input only.

    .. math::
        z_t = \sigma(a_z), \qquad \tilde h_t = a_h, \qquad
        h_t = (1 - z_t) \odot h_{t-1} + z_t \odot \tilde h_t

    with :math:`a = W_x x_t + b` in blocks ``update``, ``candidate``. Linear
    in ``h``, so it runs as a parallel scan (``Backend.PARALLEL``).
    """

    def linear(vecs, px):
        z = jax.nn.sigmoid(px[0])
        return 1.0 - z, z * px[1], {"update": z, "candidate": px[1]}

    return linear_cell("min_gru", ("update", "candidate"), ("update", "candidate"), linear)


def min_lstm_def() -> CellDef:
    r"""minLSTM (Feng et al. 2024): forget and input gates read the input only, normalised to sum 1.

    .. math::
        f_t = \sigma(a_f), \quad i_t = \sigma(a_i), \quad
        f'_t = \frac{f_t}{f_t + i_t}, \quad i'_t = \frac{i_t}{f_t + i_t}, \quad
        h_t = f'_t \odot h_{t-1} + i'_t \odot a_h

    Blocks ``forget``, ``input``, ``candidate``; ``gate_trace`` reports the
    normalised ``f'``, ``i'``.
    """

    def linear(vecs, px):
        f, i = jax.nn.sigmoid(px[0]), jax.nn.sigmoid(px[1])
        total = f + i
        f, i = f / total, i / total
        return f, i * px[2], {"forget": f, "input": i, "candidate": px[2]}

    return linear_cell("min_lstm", ("forget", "input", "candidate"), ("forget", "input", "candidate"),
                       linear)
