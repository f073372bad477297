"""A port for a server that a test must name before the server starts.

Binding port 0 and closing the socket (the usual ``free_port``) races: until the server
binds it, the kernel may hand the port to any other socket on the machine. Here the port is
left in TIME_WAIT by a real connection, closed by its accepting side first (as Yelp's
``ephemeral-port-reserve`` does): for a minute the kernel hands it to no socket binding
port 0, while a server that binds it with SO_REUSEADDR, as mhw's servers do, takes it.
Prefer ``--port 0`` and the ready file wherever the port need not be known in advance.
"""

from __future__ import annotations

import socket


def reserved_port() -> int:
    with socket.socket() as listening:
        listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listening.bind(("127.0.0.1", 0))
        listening.listen(1)
        port = int(listening.getsockname()[1])
        with socket.create_connection(("127.0.0.1", port)) as client:
            accepted, _ = listening.accept()
            accepted.close()  # first: the port's own side of the connection enters TIME_WAIT
            client.recv(1)  # its FIN, before the client's own close
    return port
