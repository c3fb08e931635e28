"""The local stack: every VoxRelay part on one Linux machine, for development and tests."""
