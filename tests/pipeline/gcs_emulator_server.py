"""The process behind `tests.pipeline.gcs_emulator`: a GCS emulator and a TLS proxy in front of it.

Run as ``python -m tests.pipeline.gcs_emulator_server EMULATOR_PORT PROXY_PORT CERT KEY``.

- gcp-storage-emulator (PyPI) serves the GCS JSON and download APIs on loopback. One bug
  is patched: a zero-byte upload (TensorFlow's folder markers `dir/`) reaches its upload
  handler as `None` instead of `b""` and crashes it.
- TensorFlow's built-in GCS filesystem sends its requests to www.googleapis.com and
  storage.googleapis.com (compiled in) through libcurl, which honours `HTTPS_PROXY`. The
  proxy answers CONNECT, terminates TLS with a certificate for those names (signed by a
  throwaway CA the client trusts through `CURL_CA_BUNDLE`) and forwards each request to
  the emulator unchanged but for the host.
"""

from __future__ import annotations

import http.client
import socketserver
import ssl
import sys

import gcp_storage_emulator.server as emulator


def _patch_empty_uploads() -> None:
    read_data = emulator._read_data

    def _read_data(handler, query):
        data = read_data(handler, query)
        return b"" if data is None and handler.command in ("POST", "PUT") else data

    emulator._read_data = _read_data


def _read_headers(stream) -> list[tuple[str, str]]:
    headers = []
    while True:
        line = stream.readline()
        if line in (b"\r\n", b"\n", b""):
            return headers
        name, _, value = line.decode("latin-1").partition(":")
        headers.append((name.strip(), value.strip()))


def _read_body(stream, headers: dict[str, str]) -> bytes:
    # Transfer-Encoding wins over Content-Length (TensorFlow sends both on uploads).
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = b""
        while True:
            size = int(stream.readline().split(b";")[0].strip(), 16)
            if size == 0:
                stream.readline()
                return body
            body += stream.read(size)
            stream.readline()
    return stream.read(int(headers.get("content-length", "0")))


def make_proxy(port: int, emulator_port: int, cert: str, key: str) -> socketserver.TCPServer:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    target = f"http://127.0.0.1:{emulator_port}"

    class Tunnel(socketserver.StreamRequestHandler):
        def handle(self):
            first = self.rfile.readline()
            _read_headers(self.rfile)
            if not first.startswith(b"CONNECT "):
                self.wfile.write(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
                return
            self.wfile.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            self.wfile.flush()
            tls = context.wrap_socket(self.connection, server_side=True)
            stream = tls.makefile("rb")
            while True:  # keep-alive: many requests per tunnel
                line = stream.readline()
                if not line.strip():
                    return
                method, path, _ = line.decode("latin-1").split(" ", 2)
                headers = _read_headers(stream)
                lower = {k.lower(): v for k, v in headers}
                if "100-continue" in lower.get("expect", "").lower():
                    tls.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
                body = _read_body(stream, lower)
                skip = {"host", "transfer-encoding", "content-length", "expect", "connection"}
                forward = {k: v for k, v in headers if k.lower() not in skip}
                forward["Content-Length"] = str(len(body))
                connection = http.client.HTTPConnection("127.0.0.1", emulator_port, timeout=120)
                connection.request(method, path, body=body, headers=forward)
                response = connection.getresponse()
                data = response.read()
                connection.close()
                out = [f"HTTP/1.1 {response.status} {response.reason}\r\n"]
                for name, value in response.getheaders():
                    if name.lower() in ("transfer-encoding", "content-length", "connection"):
                        continue
                    if name.lower() == "location":  # resumable-upload sessions: stay on the proxy
                        value = value.replace(target, "https://www.googleapis.com")
                    out.append(f"{name}: {value}\r\n")
                out.append(f"Content-Length: {len(data)}\r\n\r\n")
                tls.sendall("".join(out).encode("latin-1") + data)

    class Server(socketserver.ThreadingMixIn, socketserver.TCPServer):
        daemon_threads = True
        allow_reuse_address = True

    return Server(("127.0.0.1", port), Tunnel)


def main(argv: list[str]) -> None:
    emulator_port, proxy_port, cert, key = int(argv[0]), int(argv[1]), argv[2], argv[3]
    _patch_empty_uploads()
    server = emulator.create_server("127.0.0.1", emulator_port, in_memory=True)
    server.start()
    proxy = make_proxy(proxy_port, emulator_port, cert, key)
    print("ready", flush=True)
    proxy.serve_forever()


if __name__ == "__main__":
    main(sys.argv[1:])
