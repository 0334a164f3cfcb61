"""Capture of Python programs into graph IR (tracing tensors, guards, graph breaks)."""
