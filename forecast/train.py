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

Resumable training: given an *epoch store* (:class:`EpochStore`, passed to :func:`fit` or
made active for a block with :func:`saving_state`), :func:`fit` saves its whole state
after every epoch (weights, best weights, AdamW moments and step count, schedule step,
early-stopping counters, the shuffle generator's state, the history) and, when the store
already holds a state, continues from it. Continued runs end with the same history
(``epoch_seconds`` aside), weights and results as runs never stopped, to the bit.
"""
from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import hashlib
import math
import sys
import time
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
from tqdm import tqdm

from engine.functional import mse_loss
from engine.optim import AdamW, CosineSchedule, EarlyStopping, clip_grad_norm
from forecast.errors import UserInputError

__all__ = ["TrainSettings", "TrainResult", "EpochStore", "saving_state", "predict", "evaluate_loss",
           "fusion_weight", "fit"]


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
    stop_reason : {"completed", "early_stopping", "non_finite", "stopped"}
        ``"stopped"``: the ``on_epoch`` callback of :func:`fit` asked to stop.
    note : str
        A sentence for the user when training stopped early, else "".
    """

    history: list = field(default_factory=list)
    best_epoch: int | None = None
    best_val_loss: float = math.inf
    stop_reason: str = "completed"
    note: str = ""

    def outcome(self) -> dict:
        """The ``training`` entry of a run's ``summary.json``: best epoch and validation
        loss, why training stopped, its note and the epochs run."""
        return {"best_epoch": self.best_epoch, "best_val_loss": self.best_val_loss,
                "stop_reason": self.stop_reason, "note": self.note, "epochs_run": len(self.history)}


class EpochStore(Protocol):
    """Where :func:`fit` keeps its state between epochs (see :mod:`forecast.resume`).

    ``load()`` returns ``(arrays, meta)`` as last saved, or None when nothing is saved;
    ``save(arrays, meta)`` replaces it atomically (a reader sees the old state or the new,
    never a mix). ``arrays`` maps names to numeric ndarrays; ``meta`` is JSON-able with
    NaN and infinity (Python's ``json`` writes and reads them exactly). ``where`` names
    the store in messages.
    """

    where: str

    def load(self) -> tuple[dict, dict] | None: ...

    def save(self, arrays: dict, meta: dict) -> None: ...


_ACTIVE_STORE: contextvars.ContextVar = contextvars.ContextVar("forecast_train_store", default=None)


@contextlib.contextmanager
def saving_state(store: EpochStore):
    """Make every :func:`fit` call in the block save to (and resume from) ``store``.

    The pipeline wraps a whole run in it, so both protocols' training loops become
    resumable without passing the store through their code. One store serves one
    :func:`fit` call: its saved state is checked against the run's settings, data and
    initial weights before it is used.
    """
    token = _ACTIVE_STORE.set(store)
    try:
        yield store
    finally:
        _ACTIVE_STORE.reset(token)


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

    def state(self) -> tuple[dict, dict]:
        """``(arrays, meta)`` of everything a step changes: moments, counters, generator."""
        opt = self.opt.state_dict()
        arrays = {**_prefixed("adam_m/", opt["m"]), **_prefixed("adam_v/", opt["v"])}
        # The bit generator's state is plain ints and strings: JSON keeps it exactly.
        meta = {"step": self.step, "lr": self.lr, "adam_t": opt["t"], "rng": self.rng.bit_generator.state}
        return arrays, meta

    def restore(self, arrays: dict, meta: dict) -> None:
        """Undo :meth:`state`: the next step is the one the saved run would have taken."""
        self.opt.load_state_dict({"t": meta["adam_t"], "m": _unprefixed("adam_m/", arrays),
                                  "v": _unprefixed("adam_v/", arrays)})
        self.step, self.lr = int(meta["step"]), float(meta["lr"])
        self.rng.bit_generator.state = meta["rng"]


def _mean(values) -> float:
    return float(np.mean(values)) if len(values) else float("nan")


def _prefixed(prefix: str, arrays: dict) -> dict:
    return {prefix + name: value for name, value in arrays.items()}


def _unprefixed(prefix: str, arrays: dict) -> dict:
    return {name[len(prefix):]: value for name, value in arrays.items() if name.startswith(prefix)}


def _digest(arrays) -> str:
    """SHA-256 of arrays' shapes, dtypes and bytes: equal digests, equal arrays."""
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(f"{a.shape}{a.dtype.str}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def _fingerprint(settings: "TrainSettings", data, initial: dict) -> dict:
    """What a saved state must agree with before a run continues from it.

    The data and the initial weights enter as digests: a run resumed on a changed CSV,
    or with another seed or architecture, would otherwise continue silently.
    """
    return {"settings": dataclasses.asdict(settings), "data": _digest(data),
            "model": {"parameters": [[k, list(v.shape), v.dtype.str] for k, v in initial.items()],
                      "initial_weights": _digest(initial.values())}}


class _Loop:
    """One :func:`fit` call's moving parts: the trainer, the stopper and the result so far."""

    def __init__(self, model, settings: TrainSettings, n_train: int, fingerprint: dict | None):
        self.model = model
        self.settings = settings
        self.trainer = _Trainer(model, settings, n_train)
        self.stopper = EarlyStopping(settings.patience)
        self.result = TrainResult()
        self.fingerprint = fingerprint
        self.epochs_done = 0

    @property
    def finished(self) -> bool:
        return self.result.stop_reason != "completed" or self.epochs_done >= self.settings.epochs

    def run_epoch(self, epoch: int, train, val) -> dict:
        """Train one epoch, validate, decide whether to stop; returns the epoch's record."""
        t0 = time.perf_counter()
        train_loss, grad_norm, bad = self.trainer.train_epoch(*train)
        val_loss = float("nan")
        if bad is None:
            val_loss = evaluate_loss(self.model, *val, self.settings.eval_batch_size)
            if not math.isfinite(val_loss):
                bad = "validation loss"
        record = {"epoch": epoch, "train_loss": train_loss, "val_loss": val_loss, "lr": self.trainer.lr,
                  "grad_norm": grad_norm, "epoch_seconds": time.perf_counter() - t0}
        alpha = fusion_weight(self.model)
        if alpha is not None:
            record["alpha"] = alpha
        self.result.history.append(record)
        self.epochs_done = epoch
        self._decide(epoch, val_loss, bad)
        return record

    def _decide(self, epoch: int, val_loss: float, bad: str | None) -> None:
        stopper, result = self.stopper, self.result
        if bad is not None:
            kept = (f"weights of epoch {stopper.best_epoch} restored" if stopper.best_epoch
                    else "initial weights restored")
            result.stop_reason = "non_finite"
            result.note = f"non-finite {bad} in epoch {epoch}: training stopped, {kept}"
            return
        stopper.update(val_loss, epoch, lambda: _snapshot(self.model))
        if stopper.should_stop:
            result.stop_reason = "early_stopping"
            result.note = (f"early stopping after epoch {epoch}: no improvement for "
                           f"{self.settings.patience} epochs, weights of epoch {stopper.best_epoch} restored")

    def state(self) -> tuple[dict, dict]:
        """``(arrays, meta)`` to save after an epoch (see :class:`EpochStore`)."""
        arrays, meta = self.trainer.state()
        # The live weights, not state_dict()'s copies: they are written out at once.
        arrays.update(_prefixed("model/", {k: p for k, p, _ in self.model.named_parameters()}))
        stop = self.stopper.state_dict()
        if stop.pop("best_state") is not None:
            arrays.update(_prefixed("best/", self.stopper.best_state))
        meta.update(epoch=self.epochs_done, fingerprint=self.fingerprint, stopper=stop,
                    history=self.result.history, stop_reason=self.result.stop_reason, note=self.result.note)
        return arrays, meta

    def restore(self, saved: tuple[dict, dict], where: str) -> None:
        """Continue from a saved state, after checking it belongs to this run."""
        arrays, meta = saved
        differ = [key for key in ("settings", "data", "model")
                  if meta.get("fingerprint", {}).get(key) != self.fingerprint[key]]
        if differ:
            names = {"settings": "training settings", "data": "data", "model": "model or seed"}
            raise UserInputError(f"the training state in {where} belongs to another run: its "
                                 f"{' and '.join(names[k] for k in differ)} differ from this one's")
        self.trainer.restore(arrays, meta)
        self.model.load_state_dict(_unprefixed("model/", arrays))
        best = _unprefixed("best/", arrays)
        self.stopper.load_state_dict({**meta["stopper"], "best_state": best or None})
        self.result.history = [dict(h) for h in meta["history"]]
        self.result.stop_reason, self.result.note = meta["stop_reason"], meta["note"]
        self.epochs_done = int(meta["epoch"])


def fit(model, train: tuple[np.ndarray, np.ndarray], val: tuple[np.ndarray, np.ndarray],
        settings: TrainSettings, progress: bool = True, desc: str = "train",
        store: EpochStore | None = None, on_epoch=None) -> TrainResult:
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
    store : EpochStore or None
        Save the state there after every epoch, and continue from the state it holds;
        None: the store of the enclosing :func:`saving_state` block, if any.
    on_epoch : callable or None
        ``on_epoch(record)``, called with each epoch's history record once the epoch is
        done (before the state is saved, so a stop is saved with it). A true return ends
        training there, as early stopping does (``stop_reason`` ``"stopped"``); an
        exception it raises (a tuner's "prune this trial") passes through. None: no call.

    Returns
    -------
    TrainResult

    Raises
    ------
    UserInputError
        The store holds the state of another run (other settings, data, model or seed).
    """
    dtype = getattr(model, "dtype", np.float64)
    X, y = np.asarray(train[0], dtype=dtype), np.asarray(train[1], dtype=np.float64)
    Xv, yv = np.asarray(val[0], dtype=dtype), np.asarray(val[1], dtype=np.float64)
    store = store if store is not None else _ACTIVE_STORE.get()
    initial = _snapshot(model)
    fingerprint = _fingerprint(settings, (X, y, Xv, yv), initial) if store is not None else None
    loop = _Loop(model, settings, len(X), fingerprint)
    saved = store.load() if store is not None else None
    if saved is not None:
        loop.restore(saved, store.where)
    bar = tqdm(range(loop.epochs_done + 1, settings.epochs + 1), desc=desc, unit="epoch", file=sys.stderr,
               disable=not progress, dynamic_ncols=True, leave=True, initial=loop.epochs_done,
               total=settings.epochs)
    # A diverging run overflows before its loss turns inf; that case is handled here,
    # so NumPy's overflow warnings would only add noise to stderr.
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        for epoch in bar:
            if loop.finished:   # a restored state that had already stopped
                break
            record = loop.run_epoch(epoch, (X, y), (Xv, yv))
            if on_epoch is not None and on_epoch(record) and loop.result.stop_reason == "completed":
                loop.result.stop_reason = "stopped"
                loop.result.note = (f"stopped by on_epoch after epoch {epoch}, weights of epoch "
                                    f"{loop.stopper.best_epoch} restored")
            if store is not None:
                store.save(*loop.state())
            if loop.result.stop_reason == "completed":
                postfix = {"train": f"{record['train_loss']:.4g}", "val": f"{record['val_loss']:.4g}"}
                if "alpha" in record:
                    postfix["alpha"] = f"{record['alpha']:.3f}"
                bar.set_postfix(postfix, refresh=False)
            else:
                break
    bar.close()
    result, stopper = loop.result, loop.stopper
    if result.note:
        result.history[-1]["note"] = result.note
    model.load_state_dict(stopper.best_state if stopper.best_state is not None else initial)
    result.best_epoch = stopper.best_epoch
    result.best_val_loss = stopper.best_loss
    return result
