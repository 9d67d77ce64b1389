"""PyTorch LSTM forecasters, "lstm" and "lstm-attention", on the mlp's data contract.

Inputs come from hpt_cli.architectures.features (standardised lagged target values and
covariates, statistics from the training rows); a sample is the sequence of the last `window`
days' feature rows, ending on the day to predict, and its target is that day's value (so the
newest target value an input holds is yesterday's, through lag 1). Validation sequences reach
back into the training rows, as the mlp's lags do.

Parameters, both: lr (1e-3), decay (the learning rate is multiplied by it each epoch, 1.0 = none),
epochs (50; ctx.epochs overrides), patience (early stopping on validation MSE, 10; 0 = off),
batch_size (32), l2 (Adam weight decay, 0.0), window (14 days), lags (1; see features),
hidden_size (64), num_layers (1), dropout (0.0: between LSTM layers and before the output layer).

lstm-attention adds structured self-attention over the LSTM's outputs (Lin et al., 2017, "A
structured self-attentive sentence embedding"): A = softmax_t(W2 tanh(W1 H^T)), with
`attention_hidden_layer_size` rows in W1 (32) and `num_of_attentions` rows in W2 (1): each row
of A is one attention head's weights over the window's days. The heads' weighted sums of H and the
last hidden state feed the output layer. `attention_regularization` (0.01) is the weight of the
penalty ||A A^T - I||_F^2 (mean over the batch) added to the training loss: it pushes each head
to concentrate on a few days and different heads onto different days (with one head, it only
sharpens its weights). It is reported as `attention_penalty` (the unweighted mean of the last
epoch).

Seeded by ctx.seed (torch.manual_seed; the shuffling has its own generator). Runs on ctx.device
("cuda:0" in a GPU slot). The weights of the best epoch (lowest validation MSE) are kept, scored
and saved: model.pt (the state_dict) and model.json (settings and the feature transform).
torch is imported on the first trial, not with this module: the registry checks that it is
installed without importing it.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from hpt_cli.architectures import Architecture
from hpt_cli.architectures.features import make_features, parse_lags
from hpt_cli.architectures.params import TRAINING, integer, number, training
from hpt_cli.context import TrialContext

METRICS = ("val_mse", "val_mae", "train_loss", "epochs_run", "best_epoch", "train_time_s")


@dataclass(frozen=True)
class Settings:
    lr: float = 1e-3
    decay: float = 1.0
    epochs: int = 50
    patience: int = 10
    batch_size: int = 32
    l2: float = 0.0
    window: int = 14
    hidden_size: int = 64
    num_layers: int = 1
    dropout: float = 0.0
    num_of_attentions: int = 0  # 0: plain lstm
    attention_hidden_layer_size: int = 32
    attention_regularization: float = 0.01


def settings(params: dict[str, Any], epochs: int | None = None, attention: bool = False) -> Settings:
    """Read and check the parameters; raise ValueError saying what must hold."""
    s = Settings()
    out: dict[str, Any] = {
        **training(params, s, epochs),
        "window": integer(params, "window", s.window, 1),
        "hidden_size": integer(params, "hidden_size", s.hidden_size, 1),
        "num_layers": integer(params, "num_layers", s.num_layers, 1),
        "dropout": number(params, "dropout", s.dropout, lambda v: 0 <= v < 1, "0 <= dropout < 1"),
    }
    if attention:
        out.update({
            "num_of_attentions": integer(params, "num_of_attentions", 1, 1),
            "attention_hidden_layer_size": integer(params, "attention_hidden_layer_size",
                                                    s.attention_hidden_layer_size, 1),
            "attention_regularization": number(params, "attention_regularization", s.attention_regularization,
                                                lambda v: v >= 0, "attention_regularization >= 0"),
        })
    return Settings(**out)


def read_params(params: dict[str, Any], attention: bool = False) -> None:
    """Every parameter lstm (lstm-attention with `attention`) reads, checked as its trials read
    them (ValueError saying what must hold): what `hpt validate` checks each value of a spec with."""
    settings(params, attention=attention)
    parse_lags(params.get("lags", 1))


def read_attention_params(params: dict[str, Any]) -> None:
    read_params(params, attention=True)


def sequences(x: np.ndarray, window: int, rows: range) -> np.ndarray:
    """(len(rows), window, features): for each row i, the rows i-window+1 .. i of x."""
    if not len(rows):
        return np.empty((0, window, x.shape[1]), dtype=x.dtype)
    view = np.lib.stride_tricks.sliding_window_view(x, window, axis=0)  # (n-window+1, F, window)
    return np.ascontiguousarray(view[rows.start - window + 1:rows.stop - window + 1].transpose(0, 2, 1))


def train_lstm(params: dict, ctx: TrialContext) -> dict[str, float]:
    """The "lstm" architecture."""
    return _train(params, ctx, attention=False)


def train_lstm_attention(params: dict, ctx: TrialContext) -> dict[str, float]:
    """The "lstm-attention" architecture."""
    return _train(params, ctx, attention=True)


def _train(params: dict, ctx: TrialContext, attention: bool) -> dict[str, float]:
    name = "lstm-attention" if attention else "lstm"
    if ctx.data is None:
        raise ValueError(f"{name} needs data: give \"data\" in the spec (or leave it out for the bundled set)")
    started = time.perf_counter()
    s = settings(params, ctx.epochs, attention)
    d = ctx.data
    f = make_features(d.train, d.validation, d.target, d.date_column, params.get("lags", 1))
    n_train, n_val = len(f.y_train), len(f.y_val)
    x_all = np.concatenate([f.x_train, f.x_val]).astype(np.float32)
    y_all = np.concatenate([f.y_train, f.y_val])
    train_rows = range(s.window - 1, n_train)
    val_rows = range(max(n_train, s.window - 1), n_train + n_val)
    if not len(train_rows):
        raise ValueError(f"no training sequences: {ctx.date_range} leaves {n_train} rows once lags are taken, "
                         f"fewer than window={s.window}; use a longer range or a shorter window")
    y_mean, y_std = f.y_mean, f.y_std

    import torch

    from hpt_cli.devices.worker import configure_torch

    configure_torch()  # the slot's thread count, now that torch is here
    device = torch.device(ctx.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"the trial's device is {ctx.device} but torch {torch.__version__} sees no GPU")
    torch.manual_seed(ctx.seed)
    shuffle = torch.Generator().manual_seed(ctx.seed)

    def tensor(a: np.ndarray):
        return torch.as_tensor(np.asarray(a, dtype=np.float32), device=device)

    x_tr = tensor(sequences(x_all, s.window, train_rows))
    y_tr = tensor((y_all[train_rows.start:train_rows.stop] - y_mean) / y_std)
    x_va = tensor(sequences(x_all, s.window, val_rows))
    y_va_orig = y_all[val_rows.start:val_rows.stop]
    y_tr_orig = y_all[train_rows.start:train_rows.stop]
    has_val = len(val_rows) > 0

    model = _model(torch, x_all.shape[1], s).to(device)
    optimiser = torch.optim.Adam(model.parameters(), lr=s.lr, weight_decay=s.l2)
    n = len(train_rows)
    best: tuple[float, dict | None, int] = (math.inf, None, 0)
    bad = epochs_run = 0
    penalty_mean = 0.0
    for epoch in range(1, s.epochs + 1):
        lr = s.lr * s.decay ** (epoch - 1)
        for group in optimiser.param_groups:
            group["lr"] = lr
        model.train()
        order = torch.randperm(n, generator=shuffle).to(device)
        total = torch.zeros((), device=device)
        penalty_total = torch.zeros((), device=device)
        for start in range(0, n, s.batch_size):
            idx = order[start:start + s.batch_size]
            pred, weights = model(x_tr[idx])
            mse = torch.mean((pred - y_tr[idx]) ** 2)
            loss = mse
            if weights is not None:
                penalty = _penalty(torch, weights)
                loss = mse + s.attention_regularization * penalty
                penalty_total += penalty.detach() * len(idx)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            total += mse.detach() * len(idx)
        epochs_run = epoch
        train_loss = total.item() / n * y_std ** 2
        penalty_mean = penalty_total.item() / n
        val_mse = _mse(_predict(torch, model, x_va) * y_std + y_mean, y_va_orig) if has_val else math.nan
        extra = {"attention_penalty": penalty_mean} if attention else {}
        ctx.report(epoch=epoch, train_loss=train_loss, val_mse=val_mse, lr=lr, **extra)
        if not math.isfinite(train_loss):
            break  # diverged: keep the best epoch so far
        score = val_mse if has_val else train_loss
        if score < best[0]:
            best = (score, {k: v.detach().clone() for k, v in model.state_dict().items()}, epoch)
            bad = 0
        else:
            bad += 1
            if s.patience and bad >= s.patience:
                break

    if best[1] is not None:
        model.load_state_dict(best[1])
    pred_train = _predict(torch, model, x_tr) * y_std + y_mean
    pred_val = _predict(torch, model, x_va) * y_std + y_mean
    out = {
        "val_mse": _mse(pred_val, y_va_orig),
        "val_mae": float(np.mean(np.abs(pred_val - y_va_orig))) if has_val else math.nan,
        "train_loss": _mse(pred_train, y_tr_orig),
        "epochs_run": float(epochs_run),
        "best_epoch": float(best[2]),
    }
    if attention:
        out["attention_penalty"] = penalty_mean
    torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, ctx.artifact_dir / "model.pt")
    transform = {k: v.tolist() for k, v in f.arrays().items()}
    meta = {"architecture": name, "settings": asdict(s), "n_features": int(x_all.shape[1]), **transform}
    (ctx.artifact_dir / "model.json").write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
    out["train_time_s"] = time.perf_counter() - started
    return out


def _model(torch, n_features: int, s: Settings):
    """The network for settings `s`: forward(x (B, T, F)) -> (prediction (B,), attention (B, r, T) or None)."""
    nn = torch.nn

    class Forecaster(nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = nn.LSTM(n_features, s.hidden_size, s.num_layers, batch_first=True,
                                dropout=s.dropout if s.num_layers > 1 else 0.0)
            self.drop = nn.Dropout(s.dropout)
            heads = s.num_of_attentions
            if heads:
                self.w1 = nn.Linear(s.hidden_size, s.attention_hidden_layer_size, bias=False)
                self.w2 = nn.Linear(s.attention_hidden_layer_size, heads, bias=False)
            self.head = nn.Linear(s.hidden_size * (1 + heads), 1)

        def forward(self, x):
            h, _ = self.lstm(x)  # (B, T, H)
            z = h[:, -1]
            a = None
            if s.num_of_attentions:
                a = torch.softmax(self.w2(torch.tanh(self.w1(h))), dim=1).transpose(1, 2)  # (B, r, T)
                z = torch.cat([z, (a @ h).flatten(1)], dim=1)
            return self.head(self.drop(z)).squeeze(-1), a

    return Forecaster()


def _penalty(torch, a):
    """||A A^T - I||_F^2 per sample, averaged over the batch."""
    eye = torch.eye(a.shape[1], device=a.device, dtype=a.dtype)
    return ((a @ a.transpose(1, 2) - eye) ** 2).sum(dim=(1, 2)).mean()


def _predict(torch, model, x) -> np.ndarray:
    if not len(x):
        return np.empty(0)
    model.eval()
    with torch.no_grad():
        return model(x)[0].double().cpu().numpy()


def _mse(pred: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean((pred - y) ** 2)) if len(y) else math.nan


PARAMETERS = TRAINING | {"window", "hidden_size", "num_layers", "dropout", "lags"}
ATTENTION_PARAMETERS = frozenset({"num_of_attentions", "attention_hidden_layer_size", "attention_regularization"})

_SPACE = {
    "lr": {"distribution": "loguniform", "low": 1e-4, "high": 1e-2},
    "decay": {"distribution": "uniform", "low": 0.9, "high": 1.0},
    "patience": {"distribution": "int", "low": 3, "high": 20},
    "batch_size": [16, 32, 64],
    "window": [7, 14, 28],
    "hidden_size": [32, 64, 128],
    "num_layers": [1, 2],
    "dropout": {"distribution": "uniform", "low": 0.0, "high": 0.3},
}

LSTM = Architecture(
    name="lstm",
    train=train_lstm,
    default_space=dict(_SPACE),
    lr_params=("lr", "decay", "patience"),
    metrics=METRICS,
    parameters=PARAMETERS,
    description="PyTorch LSTM on the last `window` days of standardised features (Adam, early stopping)",
)

LSTM_ATTENTION = Architecture(
    name="lstm-attention",
    train=train_lstm_attention,
    default_space=dict(_SPACE) | {
        "num_of_attentions": [1, 2, 3],
        "attention_hidden_layer_size": [32, 128, 256],
        "attention_regularization": {"distribution": "loguniform", "low": 1e-3, "high": 1e-1},
    },
    lr_params=("lr", "decay", "patience"),
    metrics=METRICS + ("attention_penalty",),
    parameters=PARAMETERS | ATTENTION_PARAMETERS,
    description="PyTorch LSTM with structured self-attention heads over the window (penalty ||AA^T-I||^2)",
)
