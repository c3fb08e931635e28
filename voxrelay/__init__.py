"""VoxRelay core shared by every deployable: wire protocol, errors, Redis key scheme."""

__version__ = "0.1.0"
