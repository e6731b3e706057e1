"""A relying party in a container, using only Python's standard library.

It shows the split issuer of docker-compose.testing.yml: the user's browser (on the host)
signs in at the issuer, http://localhost:8080, while this container reaches Lanyard through
the container network at its back-channel URL, http://lanyard:8080 (discovery, token,
userinfo, JWKS). Lanyard's discovery document names each endpoint at the right one.

  GET /login[?login_hint=alice]  redirects the browser to the authorization endpoint (PKCE S256)
  GET /callback?code&state&iss   exchanges the code, checks the id_token, calls userinfo;
                                 answers JSON with what it saw
  GET /healthz                   200 once discovery has been read

Not a template for production: a real relying party verifies the id_token's signature with
an OIDC library (this one only checks that its key is in the JWKS) and keeps sessions.
"""

import base64
import hashlib
import json
import os
import secrets
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

BACKCHANNEL = os.environ.get("LANYARD_BACKCHANNEL_URL", "http://lanyard:8080")
ISSUER = os.environ.get("LANYARD_ISSUER", "http://localhost:8080")
CLIENT_ID = os.environ.get("CLIENT_ID", "web")
CLIENT_SECRET = os.environ.get("CLIENT_SECRET", "web-secret")
REDIRECT_URI = os.environ.get("REDIRECT_URI", "http://localhost:9999/callback")
PORT = int(os.environ.get("PORT", "9999"))

# state -> (code_verifier, nonce), for sign-ins under way.
PENDING = {}
DISCOVERY = {}


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def get_json(url, headers=None):
    request = urllib.request.Request(url, headers=headers or {})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


def discover():
    """Reads discovery through the back channel, retrying while Lanyard starts."""
    url = BACKCHANNEL + "/.well-known/openid-configuration"
    for _ in range(60):
        try:
            doc = get_json(url)
            break
        except (urllib.error.URLError, OSError) as e:
            print(f"rp: waiting for {url}: {e}", flush=True)
            time.sleep(1)
    else:
        sys.exit(f"rp: {url} never answered")
    # OIDC Discovery §4.3: the issuer in the document is the one we were configured with.
    if doc["issuer"] != ISSUER:
        sys.exit(f"rp: discovery says issuer {doc['issuer']!r}, expected {ISSUER!r}")
    DISCOVERY.update(doc)
    print(
        "rp: authorization at {authorization_endpoint}, token at {token_endpoint}, "
        "userinfo at {userinfo_endpoint}".format(**doc),
        flush=True,
    )


def exchange(code, verifier):
    body = urllib.parse.urlencode(
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT_URI,
            "code_verifier": verifier,
        }
    ).encode()
    basic = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
    request = urllib.request.Request(
        DISCOVERY["token_endpoint"],
        data=body,
        headers={"Authorization": "Basic " + basic, "Content-Type": "application/x-www-form-urlencoded"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


class Handler(BaseHTTPRequestHandler):
    def answer(self, status, body, headers=()):
        data = json.dumps(body, indent=2).encode() if not isinstance(body, bytes) else body
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        query = dict(urllib.parse.parse_qsl(url.query))
        if url.path == "/healthz":
            return self.answer(200 if DISCOVERY else 503, {"ready": bool(DISCOVERY)})
        if url.path == "/login":
            return self.login(query)
        if url.path == "/callback":
            return self.callback(query)
        return self.answer(404, {"error": "not found"})

    def login(self, query):
        state, nonce, verifier = secrets.token_urlsafe(16), secrets.token_urlsafe(16), secrets.token_urlsafe(48)
        PENDING[state] = (verifier, nonce)
        params = {
            "response_type": "code",
            "client_id": CLIENT_ID,
            "redirect_uri": REDIRECT_URI,
            "scope": "openid profile email",
            "state": state,
            "nonce": nonce,
            "code_challenge": b64url(hashlib.sha256(verifier.encode()).digest()),
            "code_challenge_method": "S256",
        }
        if "login_hint" in query:
            params["login_hint"] = query["login_hint"]
        # The browser-facing endpoint: on the issuer, which the browser can reach.
        location = DISCOVERY["authorization_endpoint"] + "?" + urllib.parse.urlencode(params)
        return self.answer(302, {"redirect": location}, [("Location", location)])

    def callback(self, query):
        pending = PENDING.pop(query.get("state", ""), None)
        if pending is None:
            return self.answer(400, {"error": "unknown state"})
        if "error" in query:
            return self.answer(400, query)
        # RFC 9207: the authorization response names the issuer it came from.
        if query.get("iss") != ISSUER:
            return self.answer(400, {"error": f"iss {query.get('iss')!r} is not {ISSUER!r}"})
        verifier, nonce = pending
        try:
            tokens = exchange(query["code"], verifier)
        except urllib.error.HTTPError as e:
            return self.answer(502, {"error": "token endpoint refused", "status": e.code, "body": e.read().decode()})
        header_b64, payload_b64, _ = tokens["id_token"].split(".")
        header, claims = json.loads(b64url_decode(header_b64)), json.loads(b64url_decode(payload_b64))
        problems = []
        if claims.get("iss") != ISSUER:
            problems.append(f"id_token iss {claims.get('iss')!r}")
        if claims.get("aud") != CLIENT_ID:
            problems.append(f"id_token aud {claims.get('aud')!r}")
        if claims.get("nonce") != nonce:
            problems.append("id_token nonce does not match")
        jwks = get_json(DISCOVERY["jwks_uri"])
        if header.get("kid") not in [key.get("kid") for key in jwks.get("keys", [])]:
            problems.append(f"id_token kid {header.get('kid')!r} is not in the JWKS")
        if problems:
            return self.answer(400, {"error": "id_token rejected", "problems": problems})
        userinfo = get_json(
            DISCOVERY["userinfo_endpoint"], {"Authorization": "Bearer " + tokens["access_token"]}
        )
        return self.answer(
            200,
            {
                "signed_in": userinfo.get("sub") == claims["sub"],
                "sub": claims["sub"],
                "userinfo": userinfo,
                "token_endpoint": DISCOVERY["token_endpoint"],
                "userinfo_endpoint": DISCOVERY["userinfo_endpoint"],
            },
        )

    def log_message(self, fmt, *args):
        print("rp: " + fmt % args, flush=True)


if __name__ == "__main__":
    discover()
    print(f"rp: listening on :{PORT}; sign in at http://localhost:{PORT}/login", flush=True)
    ThreadingHTTPServer(("0.0.0.0", PORT), Handler).serve_forever()
