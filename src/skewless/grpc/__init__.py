"""The gRPC adapter over the serving core: protobuf at the edge only.

convert.py is the only module that builds and reads the generated messages
(skewless._proto; online/entries.py takes only the contract's field tags from it);
servicer.py converts, delegates to serving/service.py and converts back; errors.py maps domain
errors to status codes in one table; server.py runs grpc.aio with health and reflection.
"""

from skewless.grpc.server import DEFAULT_PORT, OnlineServer, running_server, serve, serve_async

__all__ = ["DEFAULT_PORT", "OnlineServer", "running_server", "serve", "serve_async"]
