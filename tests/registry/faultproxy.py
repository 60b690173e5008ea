#!/usr/bin/env python3
"""tests/registry/faultproxy.py: an HTTP proxy in front of a local registry
that injects faults, for the image tests' bad-input cases.

Usage: faultproxy.py --upstream 127.0.0.1:PORT --port-file FILE
                     [--cut-blobs N] [--cut-min BYTES] [--manifest-type TYPE]
                     [--log FILE]

Listens on 127.0.0.1 (a free port, written to --port-file once listening)
and forwards GET/HEAD requests (all headers, Range included) to the
upstream registry, except:
  --cut-blobs N        the first N blob bodies (GET /v2/.../blobs/...)
                       answered 200/206 are cut in the middle: the full
                       Content-Length is sent, then half the body, then the
                       connection is closed (an interrupted download);
                       N = -1 cuts every one; --cut-min spares bodies
                       smaller than BYTES (e.g. configs)
  --manifest-type T    manifest answers get Content-Type T and their
                       top-level "mediaType" set to T; Docker-Content-Digest
                       is dropped (the body changed)
Each request is logged to --log as `METHOD PATH range=R status=S [cut]`.
"""
import argparse
import http.client
import json
import os
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--upstream", required=True)
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--cut-blobs", type=int, default=0)
    ap.add_argument("--cut-min", type=int, default=2)
    ap.add_argument("--manifest-type")
    ap.add_argument("--log")
    a = ap.parse_args()
    host, port = a.upstream.rsplit(":", 1)
    lock = threading.Lock()
    state = {"cuts_left": a.cut_blobs}

    def log(msg):
        if a.log:
            with lock, open(a.log, "a") as f:
                f.write(msg + "\n")

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def forward(self, head):
            conn = http.client.HTTPConnection(host, int(port), timeout=60)
            hdrs = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
            conn.request(self.command, self.path, headers=hdrs)
            resp = conn.getresponse()
            body = resp.read()
            conn.close()
            is_blob = "/blobs/" in self.path
            is_manifest = "/manifests/" in self.path
            cut = False
            out_headers = [(k, v) for k, v in resp.getheaders()
                           if k.lower() not in ("connection", "transfer-encoding", "content-length")]
            if is_manifest and a.manifest_type and resp.status == 200:
                out_headers = [(k, v) for k, v in out_headers
                               if k.lower() not in ("content-type", "docker-content-digest")]
                out_headers.append(("Content-Type", a.manifest_type))
                if not head:
                    doc = json.loads(body)
                    doc["mediaType"] = a.manifest_type
                    body = json.dumps(doc).encode()
            if is_blob and not head and resp.status in (200, 206) and len(body) >= max(a.cut_min, 2):
                with lock:
                    if state["cuts_left"] != 0:
                        cut = True
                        if state["cuts_left"] > 0:
                            state["cuts_left"] -= 1
            log("%s %s range=%s status=%d%s" % (self.command, self.path, self.headers.get("Range", "-"),
                                                 resp.status, " cut" if cut else ""))
            self.send_response(resp.status)
            for k, v in out_headers:
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            if cut:
                self.send_header("Connection", "close")
            self.end_headers()
            if head:
                return
            if cut:
                self.wfile.write(body[: len(body) // 2])
                self.wfile.flush()
                self.close_connection = True
                return
            self.wfile.write(body)

        def do_GET(self):
            self.forward(False)

        def do_HEAD(self):
            self.forward(True)

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    tmp = a.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(srv.server_address[1]))
    os.rename(tmp, a.port_file)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
