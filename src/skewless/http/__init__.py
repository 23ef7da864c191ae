"""The HTTP/JSON adapter over the serving core, with Feast's request and response shapes.

convert.py is the only module that knows the JSON shapes; app.py's endpoints convert,
delegate to serving/service.py and convert back; errors.py maps domain errors to HTTP
statuses in one table; server.py runs uvicorn on the gRPC server's event loop
(`skewless serve --http-port`, grpc/server.py).
"""

from skewless.http.app import LOOKUP_METHOD, OnlineHttp
from skewless.http.server import HttpServer, TlsFiles

__all__ = ["LOOKUP_METHOD", "HttpServer", "OnlineHttp", "TlsFiles"]
