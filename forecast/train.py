"""The training loop: shuffled mini-batches, AdamW, cosine schedule, clipping, early stopping.

Loss is the mean squared error on *scaled* targets. Each epoch appends one record to
the history: ``epoch``, ``train_loss`` (mean over the epoch's mini-batches, weighted
by batch size), ``val_loss``, ``lr`` (of the epoch's last step), ``grad_norm`` (mean
global gradient norm before clipping), ``epoch_seconds`` and, for a model with a
``fusion_weight`` (the hybrid), ``alpha`` = that weight (its mean if it is a vector).

When training ends, however it ends, the weights of the epoch with the best
validation loss are put back. Early stopping ends it after ``patience`` epochs without
improvement. A non-finite loss or gradient ends it at once, before the bad update is
applied; that epoch's record carries a ``note`` saying so. Same data, settings and seed
give the same history (up to ``epoch_seconds``): the only randomness is the shuffle,
drawn from ``numpy.random.default_rng(seed)``.
"""
from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass, field

import numpy as np
from tqdm import tqdm

from engine.functional import mse_loss
from engine.optim import AdamW, CosineSchedule, EarlyStopping, clip_grad_norm

__all__ = ["TrainSettings", "TrainResult", "predict", "evaluate_loss", "fusion_weight", "fit"]


@dataclass
class TrainSettings:
    """Hyper-parameters of :func:`fit` (validated by ``RunConfig.validate``).

    Attributes
    ----------
    epochs, batch_size : int
    lr : float
        Peak learning rate.
    weight_decay : float
        Decoupled (AdamW) decay; see :func:`engine.optim.decays` for what it spares.
    clip : float
        Max global gradient norm; ``0`` disables clipping.
    patience : int
        Early-stopping patience in epochs; ``0`` disables early stopping.
    warmup : int
        Epochs of linear learning-rate warm-up before the cosine decay.
    seed : int
        Seed of the mini-batch shuffle.
    eval_batch_size : int
        Batch size for validation and prediction (bounds memory, not results).
    """

    epochs: int = 30
    batch_size: int = 64
    lr: float = 3e-3
    weight_decay: float = 0.01
    clip: float = 1.0
    patience: int = 5
    warmup: int = 1
    seed: int = 0
    eval_batch_size: int = 128


@dataclass
class TrainResult:
    """What :func:`fit` returns.

    Attributes
    ----------
    history : list of dict
        One record per epoch run (see the module docstring).
    best_epoch : int or None
        Epoch whose weights the model holds now (None: no epoch finished cleanly, so the
        initial weights were restored).
    best_val_loss : float
    stop_reason : {"completed", "early_stopping", "non_finite"}
    note : str
        A sentence for the user when training stopped early, else "".
    """

    history: list = field(default_factory=list)
    best_epoch: int | None = None
    best_val_loss: float = math.inf
    stop_reason: str = "completed"
    note: str = ""


def predict(model, X: np.ndarray, batch_size: int = 128) -> np.ndarray:
    """Model outputs for ``X`` in batches, as float64, shape (N, horizon)."""
    outs = [np.asarray(model.forward(X[s:s + batch_size]), dtype=np.float64)
            for s in range(0, len(X), batch_size)]
    return np.concatenate(outs, axis=0) if outs else np.zeros((0, 0))


def evaluate_loss(model, X: np.ndarray, y: np.ndarray, batch_size: int = 128) -> float:
    """MSE of the model on ``(X, y)`` without touching gradients."""
    pred = predict(model, X, batch_size)
    return float(np.mean((pred - y) ** 2))


def fusion_weight(model) -> float | None:
    """The hybrid's ``sigmoid(alpha)`` (mean if per channel), or None for other models.

    Only the hybrid has a ``fusion_weight``; its gate fusion has none before the first
    forward pass.
    """
    weight = getattr(model, "fusion_weight", None)
    if weight is None:
        return None
    value = np.asarray(weight, dtype=np.float64)
    return float(value.mean()) if value.size else None


def _snapshot(model) -> dict:
    return {k: v.copy() for k, v in model.state_dict().items()}


class _Trainer:
    """State of one :func:`fit` call: optimiser, schedule, shuffle stream, step count."""

    def __init__(self, model, settings: TrainSettings, n_train: int):
        self.model = model
        self.settings = settings
        params = list(model.named_parameters())
        self.grads = [g for _, _, g in params]
        self.opt = AdamW(params, lr=settings.lr, weight_decay=settings.weight_decay)
        steps_per_epoch = math.ceil(n_train / settings.batch_size)
        self.schedule = CosineSchedule(settings.lr, settings.epochs * steps_per_epoch,
                                       settings.warmup * steps_per_epoch)
        self.rng = np.random.default_rng(settings.seed)
        self.step = 0
        self.lr = self.schedule(0)

    def train_epoch(self, X, y):
        """One pass over shuffled mini-batches.

        Returns ``(mean loss, mean grad norm, problem)`` where ``problem`` names what
        turned non-finite (the update that would have used it is skipped), else None.
        """
        bs = self.settings.batch_size
        order = self.rng.permutation(len(X))
        loss_sum, seen, norms = 0.0, 0, []
        for start in range(0, len(X), bs):
            idx = order[start:start + bs]
            self.model.zero_grad()
            loss, dpred = mse_loss(self.model.forward(X[idx]), y[idx])
            if not math.isfinite(loss):
                return float("nan"), _mean(norms), "loss"
            self.model.backward(dpred)
            norm = clip_grad_norm(self.grads, self.settings.clip)
            if not math.isfinite(norm):
                return float("nan"), _mean(norms), "gradient norm"
            self.lr = self.schedule(self.step)
            self.opt.step(self.lr)
            self.step += 1
            loss_sum += loss * len(idx)
            seen += len(idx)
            norms.append(norm)
        return loss_sum / seen, _mean(norms), None


def _mean(values) -> float:
    return float(np.mean(values)) if len(values) else float("nan")


def fit(model, train: tuple[np.ndarray, np.ndarray], val: tuple[np.ndarray, np.ndarray],
        settings: TrainSettings, progress: bool = True, desc: str = "train") -> TrainResult:
    """Train ``model`` in place and leave it holding its best-validation weights.

    Parameters
    ----------
    model
        Anything with the layer contract (forward, backward, named_parameters,
        zero_grad, state_dict, load_state_dict); ``dtype`` when it has one, else float64.
    train, val : (X, y)
        Scaled inputs ``(N, seq_len, features)`` and targets ``(N, horizon)``.
    settings : TrainSettings
    progress : bool
        Show a tqdm bar on stderr (epoch, losses and, for the hybrid, alpha).
    desc : str
        Label of the bar.

    Returns
    -------
    TrainResult
    """
    dtype = getattr(model, "dtype", np.float64)
    X, y = np.asarray(train[0], dtype=dtype), np.asarray(train[1], dtype=np.float64)
    Xv, yv = np.asarray(val[0], dtype=dtype), np.asarray(val[1], dtype=np.float64)
    trainer = _Trainer(model, settings, len(X))
    stopper = EarlyStopping(settings.patience)
    initial = _snapshot(model)
    result = TrainResult()
    bar = tqdm(range(1, settings.epochs + 1), desc=desc, unit="epoch", file=sys.stderr,
               disable=not progress, dynamic_ncols=True, leave=True)
    # A diverging run overflows before its loss turns inf; that case is handled here,
    # so NumPy's overflow warnings would only add noise to stderr.
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        for epoch in bar:
            t0 = time.perf_counter()
            train_loss, grad_norm, bad = trainer.train_epoch(X, y)
            val_loss = float("nan")
            if bad is None:
                val_loss = evaluate_loss(model, Xv, yv, settings.eval_batch_size)
                if not math.isfinite(val_loss):
                    bad = "validation loss"
            record = {"epoch": epoch, "train_loss": train_loss, "val_loss": val_loss, "lr": trainer.lr,
                      "grad_norm": grad_norm, "epoch_seconds": time.perf_counter() - t0}
            alpha = fusion_weight(model)
            if alpha is not None:
                record["alpha"] = alpha
            result.history.append(record)
            if bad is not None:
                kept = (f"weights of epoch {stopper.best_epoch} restored" if stopper.best_epoch
                        else "initial weights restored")
                result.stop_reason = "non_finite"
                result.note = f"non-finite {bad} in epoch {epoch}: training stopped, {kept}"
                break
            stopper.update(val_loss, epoch, lambda: _snapshot(model))
            postfix = {"train": f"{train_loss:.4g}", "val": f"{val_loss:.4g}"}
            if alpha is not None:
                postfix["alpha"] = f"{alpha:.3f}"
            bar.set_postfix(postfix, refresh=False)
            if stopper.should_stop:
                result.stop_reason = "early_stopping"
                result.note = (f"early stopping after epoch {epoch}: no improvement for "
                               f"{settings.patience} epochs, weights of epoch {stopper.best_epoch} restored")
                break
    bar.close()
    if result.note:
        result.history[-1]["note"] = result.note
    model.load_state_dict(stopper.best_state if stopper.best_state is not None else initial)
    result.best_epoch = stopper.best_epoch
    result.best_val_loss = stopper.best_loss
    return result
