"""Backends that turn scheduled kernels into executables (reference, llvm, triton, plugins)."""
