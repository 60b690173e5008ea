#!/usr/bin/env python3
"""tests/registry/tokenserver.py: a small bearer-token server for Docker's
registry (distribution) token auth, for the image tests.

Usage: tokenserver.py --key KEY.pem --cert CERT.pem --port-file FILE
                      --issuer ISS [--users FILE] [--allow-anonymous]
                      [--log FILE]

Listens on 127.0.0.1 (a free port, written to --port-file once listening).
GET /token?service=S&scope=repository:NAME:ACTIONS[&scope=...]:
  - HTTP basic credentials are checked against --users (lines USER:PASSWORD);
    wrong credentials -> 401; none -> 401 unless --allow-anonymous, in which
    case only `pull` is granted;
  - the answer is {"token": JWT, "access_token": JWT, "expires_in": 300},
    the JWT signed RS256 (openssl dgst) with KEY.pem, carrying CERT.pem in
    its x5c header, so a registry whose auth.token.rootcertbundle is
    CERT.pem accepts it (issuer ISS, audience S).
Each request is logged to --log as one line: `token USER SCOPE...` or
`denied USER`.
"""
import argparse
import base64
import json
import os
import secrets
import subprocess
import sys
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def cert_der_b64(cert_path):
    pem = open(cert_path).read()
    body = "".join(l for l in pem.splitlines() if l and not l.startswith("-----"))
    return body  # already standard base64 of the DER


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--key", required=True)
    ap.add_argument("--cert", required=True)
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--issuer", required=True)
    ap.add_argument("--users")
    ap.add_argument("--allow-anonymous", action="store_true")
    ap.add_argument("--log")
    a = ap.parse_args()
    users = {}
    if a.users:
        for line in open(a.users):
            line = line.strip()
            if line and ":" in line:
                u, p = line.split(":", 1)
                users[u] = p
    x5c = cert_der_b64(a.cert)

    def log(msg):
        if a.log:
            with open(a.log, "a") as f:
                f.write(msg + "\n")

    def sign(signing_input):
        out = subprocess.run(["openssl", "dgst", "-sha256", "-sign", a.key], input=signing_input,
                             capture_output=True, check=True)
        return out.stdout

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def deny(self, who):
            log("denied " + who)
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="hypr-test-token"')
            body = b'{"errors":[{"code":"UNAUTHORIZED","message":"bad or missing credentials"}]}'
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            u = urllib.parse.urlparse(self.path)
            if u.path != "/token":
                self.send_error(404)
                return
            q = urllib.parse.parse_qs(u.query)
            user = None
            hdr = self.headers.get("Authorization", "")
            if hdr.startswith("Basic "):
                try:
                    user, pw = base64.b64decode(hdr[6:]).decode().split(":", 1)
                except Exception:
                    return self.deny("(malformed)")
                if users.get(user) != pw:
                    return self.deny(user)
            elif not a.allow_anonymous:
                return self.deny("(anonymous)")
            access = []
            scopes = q.get("scope", [])
            for s in scopes:
                typ, _, rest = s.partition(":")
                name, _, actions = rest.rpartition(":")
                acts = [x for x in actions.split(",") if x]
                if user is None:
                    acts = [x for x in acts if x == "pull"]
                access.append({"type": typ, "name": name, "actions": acts})
            now = int(time.time())
            claims = {"iss": a.issuer, "sub": user or "", "aud": q.get("service", [""])[0],
                      "exp": now + 300, "nbf": now - 10, "iat": now, "jti": secrets.token_hex(8),
                      "access": access}
            header = {"typ": "JWT", "alg": "RS256", "x5c": [x5c]}
            signing_input = (b64url(json.dumps(header).encode()) + "." +
                             b64url(json.dumps(claims).encode())).encode()
            jwt = signing_input.decode() + "." + b64url(sign(signing_input))
            log("token %s %s" % (user or "(anonymous)", " ".join(scopes)))
            body = json.dumps({"token": jwt, "access_token": jwt, "expires_in": 300,
                               "issued_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

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
