"""Execution: eager numpy kernels (`eager_kernels`), counter-based random numbers (`philox`) and
special functions (`special`)."""
