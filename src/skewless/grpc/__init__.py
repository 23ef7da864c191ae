"""The gRPC adapter over the serving core: protobuf at the edge only.

convert.py is the only module that imports the generated stubs (skewless._proto);
servicer.py converts, delegates to backend.py and converts back; errors.py maps domain
errors to status codes in one table; server.py runs grpc.aio with health and reflection.
"""

from skewless.grpc.server import DEFAULT_PORT, OnlineServer, running_server, serve, serve_async

__all__ = ["DEFAULT_PORT", "OnlineServer", "running_server", "serve", "serve_async"]
