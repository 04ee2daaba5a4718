"""The numerical core: layers with hand-written backward passes and the kernels behind them.

It depends on NumPy (and Numba for the compiled kernels) only, and imports nothing above
it: the models build on it, the forecasting application and the benchmarks build on those.
"""
