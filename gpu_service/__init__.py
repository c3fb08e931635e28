"""The VoxRelay ASR worker: RTP (Opus, optional SRTP) in, finals out.

One process per GPU (or CPU box here). It registers its UDP ports in the Redis registry, takes
``StartStream``/``StopStream`` commands from its Redis command stream, runs one pipeline per
stream (jitter buffer, Opus decode, streaming VAD, segmenting) and transcribes speech segments
with one shared Whisper model behind a single scheduler. Finals go to the session's transcript
stream and to every WebSocket connection of the session through ``@connections``.

Start it with ``python -m gpu_service``; configuration is :class:`gpu_service.settings.AsrSettings`.
"""
