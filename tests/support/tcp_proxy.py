"""A TCP proxy on a loopback port that can be cut and restored, to take a shared server
(PostgreSQL) away from the processes under test without touching the server itself.

`cut()` closes the listening socket (new connections are refused) and resets every open
connection (SO_LINGER 0, then close: the client sees "connection reset", as when a server
or the network dies); `restore()` listens again on the same port. Each connection is
served by one thread that owns both of its sockets, so closing never races a read.
"""

from __future__ import annotations

import select
import socket
import struct
import threading

from tests.support.server import free_port

_LINGER_NOW = struct.pack("ii", 1, 0)  # on close, send RST and drop unsent data
_POLL_S = 0.1  # how often blocked threads look at their stop flag


class _Connection:
    """One client and its upstream socket, copied both ways until either closes or the
    proxy resets it."""

    def __init__(self, client: socket.socket, upstream: socket.socket) -> None:
        self.client = client
        self.upstream = upstream
        self.reset = threading.Event()
        self.thread = threading.Thread(target=self._pump, name="tcp-proxy-pump", daemon=True)

    def _pump(self) -> None:
        peers = {self.client: self.upstream, self.upstream: self.client}
        try:
            while not self.reset.is_set():
                readable, _, _ = select.select(list(peers), [], [], _POLL_S)
                for source in readable:
                    data = source.recv(65536)
                    if not data:
                        return
                    peers[source].sendall(data)
        except OSError:
            pass
        finally:
            for sock in peers:
                if self.reset.is_set():
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_NOW)
                sock.close()


class TcpProxy:
    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.port = free_port()
        self.accepted = 0
        self.resets = 0
        self._connections: list[_Connection] = []
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self._stop = threading.Event()
        self._acceptor: threading.Thread | None = None

    @property
    def listening(self) -> bool:
        return self._listener is not None

    def start(self) -> None:
        """Listen on `port` (again, after a cut)."""
        if self._listener is not None:
            return
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(128)
        listener.settimeout(_POLL_S)
        self._listener = listener
        self._stop.clear()
        self._acceptor = threading.Thread(
            target=self._accept, args=(listener,), name="tcp-proxy-accept", daemon=True
        )
        self._acceptor.start()

    def restore(self) -> None:
        self.start()

    def cut(self) -> int:
        """Refuse new connections and reset the open ones; returns how many were reset."""
        self._stop.set()
        if self._acceptor is not None:
            self._acceptor.join(timeout=10)
            self._acceptor = None
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        with self._lock:
            connections, self._connections = self._connections, []
        live = [c for c in connections if c.thread.is_alive()]
        for connection in live:
            connection.reset.set()
        for connection in live:
            connection.thread.join(timeout=10)
        self.resets += len(live)
        return len(live)

    def _accept(self, listener: socket.socket) -> None:
        while not self._stop.is_set():
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.settimeout(None)
            try:
                upstream = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_NOW)
                client.close()
                continue
            upstream.settimeout(None)
            connection = _Connection(client, upstream)
            with self._lock:
                self._connections = [c for c in self._connections if c.thread.is_alive()]
                self._connections.append(connection)
                self.accepted += 1
            connection.thread.start()
