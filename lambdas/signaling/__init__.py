"""Signaling: the API Gateway WebSocket routes and the HTTP API, on Lambda.

``ws_handler.handler`` serves ``$connect``, ``$disconnect`` and ``$default``;
``http_api.handler`` serves the HTTP API (payload format 2.0). Both are thin: the logic lives in
:mod:`lambdas.signaling.service`, behind ports implemented on Redis and ``@connections``.
"""
