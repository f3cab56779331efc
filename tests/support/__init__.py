"""Support code shared by the tests and the benchmarks.

Everything here is free of TensorFlow (tests/gpu and the GPU benchmark run on
machines without it):

* ``workloads``: the standard benchmark shapes and their random inputs;
* ``cases``: box kinds, random boxes, ``Case`` and case builders;
* ``reference``: the independent float64 NumPy reference of the op;
* ``numerics``: dtype names, bfloat16 bits, ``round_to``, ``ulp``;
* ``kernels``: loading the pybind11 ``_kernels`` module without the package;
* ``gpu``: CuPy / PyTorch device-array backends and the CUDA launch adapter.

Tests import it as ``support`` (``tests/`` is on ``sys.path`` under pytest);
benchmarks put ``tests/`` on ``sys.path`` through ``benchmarks/_support.py``.
"""
