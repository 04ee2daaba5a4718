"""Price data: sources, the canonical frame, windows, split and scalers.

Typical use::

    from forecast.data import load_source, build_dataset
    frame, info = load_source("sample:AAPL")
    ds = build_dataset(frame, features=("close",), target="close", seq_len=60, info=info,
                       window_norm="last")
    X_train, y_train = ds.part("train")
"""
from forecast.data.dataset import FEATURES, TARGETS, WINDOW_NORMS, Dataset, build_dataset
from forecast.data.frame import MAX_FILL_GAP, describe_frame, normalise_frame, prepare_prices
from forecast.data.sample import SAMPLE_TICKERS
from forecast.data.scaling import SCALERS, scaler_from_dict, scaler_to_dict
from forecast.data.sources import SourceSpec, load_source, parse_source

__all__ = [
    "FEATURES", "TARGETS", "WINDOW_NORMS", "SCALERS", "SAMPLE_TICKERS", "MAX_FILL_GAP",
    "Dataset", "SourceSpec",
    "build_dataset", "describe_frame", "load_source", "normalise_frame", "parse_source",
    "prepare_prices", "scaler_from_dict", "scaler_to_dict",
]
