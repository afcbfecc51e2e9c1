#!/usr/bin/env python3
"""A minimal fake Kubernetes API server for kubelet-truth recordings.

Serves HTTPS on 127.0.0.1:<port> inside the scenario's network namespace. It asks for a
client certificate (optional, verified against the harness CA) and answers:

  POST .../subjectaccessreviews  -> the request echoed back with status {"allowed": true}
  POST .../tokenreviews          -> authenticated: true (user truth-reader, group
                                    system:masters) only for the harness reader token;
                                    authenticated: false for every other token
  GET  list calls                -> an empty <Kind>List at resourceVersion 1
  GET  ...?watch=...             -> 200, then the stream stays open (no events) until the
                                    client goes away or WATCH_SECONDS pass
  anything else                  -> 404 with a v1 Status

Usage: fake_apiserver.py PORT CERT KEY CA READER_TOKEN [READY_FILE]
"""
import json
import socketserver
import ssl
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from urllib.parse import urlsplit, parse_qs

WATCH_SECONDS = 600


def kind_for(path):
    """Guess the List kind from the last resource segment of a collection path."""
    parts = [p for p in path.split("/") if p]
    resource = parts[-1] if parts else "Unknown"
    known = {
        "nodes": "Node", "pods": "Pod", "services": "Service", "endpoints": "Endpoints",
        "configmaps": "ConfigMap", "secrets": "Secret", "leases": "Lease",
        "csidrivers": "CSIDriver", "runtimeclasses": "RuntimeClass", "events": "Event",
        "resourceslices": "ResourceSlice", "resourceclaims": "ResourceClaim",
        "certificatesigningrequests": "CertificateSigningRequest",
        "persistentvolumes": "PersistentVolume",
        "persistentvolumeclaims": "PersistentVolumeClaim",
        "serviceaccounts": "ServiceAccount", "namespaces": "Namespace",
        "volumeattachments": "VolumeAttachment", "csinodes": "CSINode",
    }
    kind = known.get(resource)
    if kind is None:
        kind = resource[:1].upper() + resource[1:]
        if kind.endswith("s"):
            kind = kind[:-1]
    return kind


def api_version_for(path):
    parts = [p for p in path.split("/") if p]
    if len(parts) >= 2 and parts[0] == "api":
        return parts[1]
    if len(parts) >= 3 and parts[0] == "apis":
        return parts[1] + "/" + parts[2]
    return "v1"


def pb_fields(buf):
    """Minimal protobuf decoder: {field number: [values]} (varints as int, the rest as bytes)."""
    out, i = {}, 0
    def varint():
        nonlocal i
        v = shift = 0
        while True:
            b = buf[i]
            i += 1
            v |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                return v
    while i < len(buf):
        key = varint()
        num, wt = key >> 3, key & 7
        if wt == 0:
            val = varint()
        elif wt == 2:
            n = varint()
            val, i = buf[i:i + n], i + n
        elif wt == 1:
            val, i = buf[i:i + 8], i + 8
        elif wt == 5:
            val, i = buf[i:i + 4], i + 4
        else:
            raise ValueError("wire type %d" % wt)
        out.setdefault(num, []).append(val)
    return out


def token_from_protobuf(data):
    """spec.token of a TokenReview in the Kubernetes protobuf envelope ("k8s\\0" + Unknown)."""
    if not data.startswith(b"k8s\x00"):
        return None
    unknown = pb_fields(data[4:])
    raw = unknown.get(2, [b""])[0]           # Unknown.raw = the TokenReview
    spec = pb_fields(raw).get(2, [b""])[0]   # TokenReview.spec
    token = pb_fields(spec).get(1, [b""])[0] # TokenReviewSpec.token
    return token.decode(errors="replace") or None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "kubelet-truth-fake-apiserver"

    def log_message(self, fmt, *args):  # one line per request on stderr, for debugging
        sys.stderr.write("%s %s\n" % (time.strftime("%H:%M:%S"), fmt % args))

    def send_json(self, code, obj):
        body = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def not_found(self):
        self.send_json(404, {
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": "the server could not find the requested resource",
            "reason": "NotFound", "details": {}, "code": 404,
        })

    def read_body(self):
        """(JSON object or None, raw bytes). The kubelet's client sends protobuf by default."""
        n = int(self.headers.get("Content-Length") or 0)
        data = self.rfile.read(n) if n else b""
        try:
            return json.loads(data or b"{}"), data
        except ValueError:
            return None, data

    def do_GET(self):
        url = urlsplit(self.path)
        q = parse_qs(url.query)
        if q.get("watch", ["false"])[0] in ("1", "true"):
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            self.wfile.flush()
            deadline = time.time() + WATCH_SECONDS
            try:
                while time.time() < deadline:
                    time.sleep(5)
                    # no events ever; end the stream when the peer has gone away
                    self.connection.settimeout(0.01)
                    try:
                        if self.connection.recv(1, 0) == b"":
                            return
                    except (ssl.SSLWantReadError, BlockingIOError, TimeoutError, OSError):
                        pass
                    finally:
                        self.connection.settimeout(None)
                self.wfile.write(b"0\r\n\r\n")
            except OSError:
                pass
            self.close_connection = True
            return
        parts = [p for p in url.path.split("/") if p]
        # a collection: /api/v1/<res>, /api/v1/namespaces/<ns>/<res>, /apis/<g>/<v>/<res>, ...
        core = len(parts) >= 3 and parts[0] == "api"
        grouped = len(parts) >= 4 and parts[0] == "apis"
        if core or grouped:
            rest = parts[2:] if core else parts[3:]
            if len(rest) == 1 or (len(rest) == 3 and rest[0] == "namespaces"):
                self.send_json(200, {
                    "kind": kind_for(url.path) + "List", "apiVersion": api_version_for(url.path),
                    "metadata": {"resourceVersion": "1"}, "items": [],
                })
                return
        self.not_found()

    def do_POST(self):
        url = urlsplit(self.path)
        if url.path.endswith("/subjectaccessreviews"):
            obj = self.read_body()[0] or {}
            obj["kind"] = "SubjectAccessReview"
            obj["apiVersion"] = "authorization.k8s.io/v1"
            obj["status"] = {"allowed": True, "reason": "kubelet-truth fake API server allows all"}
            self.send_json(201, obj)
            return
        if url.path.endswith("/tokenreviews"):
            obj, raw = self.read_body()
            if obj is None:
                try:
                    token = token_from_protobuf(raw)
                except (ValueError, IndexError):
                    token = None
                obj = {}
            else:
                token = (obj.get("spec") or {}).get("token")
            obj["kind"] = "TokenReview"
            obj["apiVersion"] = "authentication.k8s.io/v1"
            if token and token == self.server.reader_token:
                obj["status"] = {"authenticated": True, "user": {
                    "username": "truth-reader", "groups": ["system:masters", "system:authenticated"]}}
            else:
                obj["status"] = {"authenticated": False}
            self.send_json(201, obj)
            return
        self.read_body()
        self.not_found()

    def do_PUT(self):
        self.read_body()
        self.not_found()

    do_PATCH = do_PUT
    do_DELETE = do_PUT


class Server(socketserver.ThreadingMixIn, HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64


def main():
    port, cert, key, ca, token = sys.argv[1:6]
    ready = sys.argv[6] if len(sys.argv) > 6 else None
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    ctx.load_verify_locations(ca)
    ctx.verify_mode = ssl.CERT_OPTIONAL
    ctx.set_alpn_protocols(["http/1.1"])
    srv = Server(("127.0.0.1", int(port)), Handler)
    srv.reader_token = token
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True, do_handshake_on_connect=False)

    orig_process = srv.process_request_thread

    def process_request_thread(request, client_address):
        try:
            request.settimeout(10)
            request.do_handshake()
            request.settimeout(None)
        except (ssl.SSLError, OSError):
            srv.shutdown_request(request)
            return
        orig_process(request, client_address)
    srv.process_request_thread = process_request_thread

    if ready:
        with open(ready, "w") as f:
            f.write("ok\n")
    srv.serve_forever()


if __name__ == "__main__":
    main()
