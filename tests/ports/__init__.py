"""Port tests: published-style PyTorch programs run with only their imports changed."""
