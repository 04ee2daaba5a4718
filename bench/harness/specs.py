"""Specs of the implementations a worker hosts, and the stand-alone command of each.

:func:`layer_spec`, :func:`train_spec` and :func:`floor_spec` build the plain-data specs
of :mod:`bench.harness.subjects`. :func:`command_for` turns a spec into the command a
user runs to time the same thing in a fresh process of their own
(``python -m bench.harness.worker ...``), and :func:`spec_from_args` turns that
command's options back into the spec, so a published figure and its reproduction
cannot drift apart (``tests/test_bench_harness.py`` holds the two together).

Imports: the standard library and :mod:`bench.harness.sizes` and :mod:`bench.harness.ltsf_data` only.
"""
from __future__ import annotations

import numpy as np

from bench.harness.ltsf_data import LtsfShape
from bench.harness.sizes import CLI_TRAIN_SIZE, TRAIN_SIZE, Size

__all__ = ["OURS_LAYERS", "PEER_IMPLS", "NAMED_SIZES", "PEER_MODES", "layer_spec", "train_spec", "floor_spec",
           "model_spec", "ltsf_spec", "command_for", "spec_from_args", "describe"]

#: Our layers and, in the same order, their peers (see :data:`bench.harness.peers.PAIRS`).
OURS_LAYERS = ("MambaBlock", "GRULayer", "MinGRULayer")
PEER_IMPLS = {"mambapy": "MambaBlock", "torch.nn.GRU": "GRULayer", "minGRU-pytorch": "MinGRULayer"}
#: How a whole model runs in PyTorch (``--peer`` of the stand-alone command).
PEER_MODES = ("eager", "compile")
#: Sizes the stand-alone command knows by name.
NAMED_SIZES = {"default": TRAIN_SIZE, "cli": CLI_TRAIN_SIZE}


def layer_spec(layer: str, side: str, dtype, size: Size, backend: str | None = None,
               threads: int | None = None, seed: int = 0) -> dict:
    """Spec of our ``layer`` (``side="ours"``, with a backend) or of its peer (``"peer"``, with threads)."""
    spec = {"kind": "layer", "layer": layer, "side": side, "dtype": np.dtype(dtype).name,
            "size": size.to_dict(), "seed": int(seed)}
    if side == "ours":
        spec["backend"] = backend
    else:
        spec["threads"] = int(threads)
    return spec


def train_spec(model: str, backend: str, dtype, size: Size, seed: int = 0) -> dict:
    """Spec of a forecaster's train step."""
    return {"kind": "train", "model": model, "backend": backend, "dtype": np.dtype(dtype).name,
            "size": size.to_dict(), "seed": int(seed)}


def floor_spec(model: str, part: str, dtype, size: Size, seed: int = 0) -> dict:
    """Spec of one part of a train step's machine floor: ``"gemm"``, ``"exp"`` (NumPy's exp)
    or ``"exp-engine"`` (the engine's; see :data:`bench.harness.floor.FLOOR_PARTS`)."""
    return {"kind": "floor", "model": model, "part": part, "dtype": np.dtype(dtype).name,
            "size": size.to_dict(), "seed": int(seed)}


def model_spec(model: str, side: str, dtype, size: Size, backend: str | None = None,
               threads: int | None = None, compile: bool = False, seed: int = 0) -> dict:
    """Spec of a whole forecaster's train step: ours (``side="ours"``, with a backend) or the
    same model assembled in PyTorch (``"peer"``, with threads, eager or ``compile``)."""
    spec = {"kind": "model", "model": model, "side": side, "dtype": np.dtype(dtype).name,
            "size": size.to_dict(), "seed": int(seed)}
    if side == "ours":
        spec["backend"] = backend
    else:
        spec.update(threads=int(threads), compile=bool(compile))
    return spec


def ltsf_spec(model: str, side: str, dtype, shape: LtsfShape, workload: str = "step", backend: str | None = None,
              threads: int | None = None, compile: bool = False, seed: int = 0) -> dict:
    """Spec of the long-horizon forecaster's train step or epoch (``workload``): ours
    (``side="ours"``, with a backend) or assembled in PyTorch (``"peer"``, threads, eager or ``compile``)."""
    spec = {"kind": "ltsf", "model": model, "side": side, "dtype": np.dtype(dtype).name,
            "shape": shape.to_dict(), "workload": workload, "seed": int(seed)}
    if side == "ours":
        spec["backend"] = backend
    else:
        spec.update(threads=int(threads), compile=bool(compile))
    return spec


#: Stand-alone options of an :class:`LtsfShape` field (given when it differs from the protocol's).
_LTSF_OPTIONS = {"n_channels": "--n-channels", "batch": "--batch", "hidden": "--d-model", "d_state": "--d-state",
                 "seg_len": "--seg-len", "rows": "--rows"}


def _ltsf_command(spec: dict) -> list[str]:
    shape = spec["shape"]
    protocol = LtsfShape("protocol", shape["lookback"], shape["horizon"], shape["layout"]).to_dict()
    argv = [spec["model"]]
    argv += (["--backend", spec["backend"]] if spec["side"] == "ours" else
             ["--peer", "compile" if spec["compile"] else "eager", "--threads", str(spec["threads"])])
    argv += ["--lookback", str(shape["lookback"]), "--horizon", str(shape["horizon"]), "--channels", shape["layout"]]
    for field, opt in _LTSF_OPTIONS.items():
        if shape[field] != protocol[field]:
            argv += [opt, str(shape[field])]
    if spec["workload"] != "step":
        argv += ["--workload", spec["workload"]]
    return argv


def _ltsf_from_args(args) -> dict:
    base = LtsfShape("protocol", args.lookback, args.horizon, args.channels)
    given = {field: getattr(args, opt[2:].replace("-", "_")) for field, opt in _LTSF_OPTIONS.items()}
    given = {k: v for k, v in given.items() if v is not None and v != getattr(base, k)}
    shape = LtsfShape("custom" if given else "protocol", args.lookback, args.horizon, args.channels, **given)
    workload = args.workload
    if getattr(args, "peer", None):
        return ltsf_spec(args.name, "peer", args.dtype, shape, workload, threads=args.threads,
                         compile=args.peer == "compile", seed=args.seed)
    return ltsf_spec(args.name, "ours", args.dtype, shape, workload, backend=args.backend, seed=args.seed)


def _size_args(size: dict) -> list[str]:
    for name, known in NAMED_SIZES.items():
        if known.to_dict() == size:
            return ["--size", name]
    return ["--batch", str(size["batch"]), "--seq-len", str(size["seq_len"]),
            "--d-model", str(size["d_model"]), "--d-state", str(size["d_state"])]


def command_for(spec: dict) -> list[str]:
    """The stand-alone command that times ``spec`` in a fresh process (argv after ``python``)."""
    argv = ["-m", "bench.harness.worker", spec["kind"]]
    if spec["kind"] == "ltsf":
        argv += _ltsf_command(spec) + ["--dtype", spec["dtype"]]
        return argv + (["--seed", str(spec["seed"])] if spec.get("seed", 0) else [])
    if spec["kind"] == "layer":
        if spec["side"] == "ours":
            argv += [spec["layer"], "--backend", spec["backend"]]
        else:
            peer = next(p for p, layer in PEER_IMPLS.items() if layer == spec["layer"])
            argv += [peer, "--threads", str(spec["threads"])]
    elif spec["kind"] == "train":
        argv += [spec["model"], "--backend", spec["backend"]]
    elif spec["kind"] == "model":
        argv += [spec["model"]]
        argv += (["--backend", spec["backend"]] if spec["side"] == "ours" else
                 ["--peer", "compile" if spec["compile"] else "eager", "--threads", str(spec["threads"])])
    else:
        argv += [spec["model"], "--part", spec["part"]]
    argv += ["--dtype", spec["dtype"]] + _size_args(spec["size"])
    if spec.get("seed", 0):
        argv += ["--seed", str(spec["seed"])]
    return argv


def spec_from_args(args) -> dict:
    """The spec of the stand-alone command's parsed options (see :mod:`bench.harness.worker`)."""
    if args.kind == "ltsf":
        return _ltsf_from_args(args)
    base = NAMED_SIZES[args.size]
    dims = (args.batch or base.batch, args.seq_len or base.seq_len, args.d_model or base.d_model,
            args.d_state or base.d_state)
    size = base if dims == (base.batch, base.seq_len, base.d_model, base.d_state) else Size("custom", *dims)
    if args.kind == "layer":
        if args.name in PEER_IMPLS:
            return layer_spec(PEER_IMPLS[args.name], "peer", args.dtype, size, threads=args.threads,
                              seed=args.seed)
        if args.name not in OURS_LAYERS:
            raise ValueError(f"unknown layer {args.name!r}; choose one of "
                             f"{', '.join(OURS_LAYERS + tuple(PEER_IMPLS))}")
        return layer_spec(args.name, "ours", args.dtype, size, backend=args.backend, seed=args.seed)
    if args.kind == "train":
        return train_spec(args.name, args.backend, args.dtype, size, args.seed)
    if args.kind == "model":
        if getattr(args, "peer", None):
            return model_spec(args.name, "peer", args.dtype, size, threads=args.threads,
                              compile=args.peer == "compile", seed=args.seed)
        return model_spec(args.name, "ours", args.dtype, size, backend=args.backend, seed=args.seed)
    return floor_spec(args.name, args.part, args.dtype, size, args.seed)


def describe(spec: dict) -> str:
    """One line naming the implementation and its shape."""
    if spec["kind"] == "ltsf":
        who = (f"{spec['model']} long-horizon model ({spec['backend']})" if spec["side"] == "ours" else
               f"{spec['model']} long-horizon model in PyTorch ({'torch.compile' if spec['compile'] else 'eager'}, "
               f"{spec['threads']} threads)")
        return f"{who}, one {spec['workload']}, {spec['dtype']} ({LtsfShape(**spec['shape']).label()})"
    s = spec["size"]
    shape = f"b={s['batch']}, L={s['seq_len']}, d_model={s['d_model']}, d_state={s['d_state']}"
    if spec["kind"] == "layer":
        who = (f"{spec['layer']} ({spec['backend']})" if spec["side"] == "ours"
               else f"{next(p for p, l in PEER_IMPLS.items() if l == spec['layer'])} ({spec['threads']} threads)")
    elif spec["kind"] == "train":
        who = f"{spec['model']} train step ({spec['backend']})"
    elif spec["kind"] == "model":
        who = (f"{spec['model']} model train step ({spec['backend']})" if spec["side"] == "ours" else
               f"{spec['model']} model in PyTorch ({'torch.compile' if spec['compile'] else 'eager'}, "
               f"{spec['threads']} threads)")
    else:
        who = f"{spec['model']} floor {spec['part']}"
    return f"{who} {spec['dtype']} ({shape})"
