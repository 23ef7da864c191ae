"""Network addresses as the servers and their clients write them. Pure, no I/O, no
transport imports: the gRPC and HTTP adapters both use it."""

from __future__ import annotations


def address(host: str, port: int) -> str:
    """`host:port`, with an IPv6 host in brackets (`[::1]:6566`), as a gRPC target and
    the authority of a URL write it. A host already in brackets is kept as it is."""
    if ":" in host and not host.startswith("["):
        return f"[{host}]:{port}"
    return f"{host}:{port}"
