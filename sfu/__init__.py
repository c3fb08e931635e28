"""VoxRelay SFU tier: the agent that drives one Janus VideoRoom node from Redis commands."""
