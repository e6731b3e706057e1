"""A relying party's view of Lanyard: discovery, the code flow with PKCE, userinfo, refresh."""

import base64
import hashlib
import json
import secrets
import urllib.parse

import requests

CLIENT_ID, CLIENT_SECRET = "web", "web-secret"  # from examples/lanyard-seed.toml
REDIRECT_URI = "http://127.0.0.1:9999/cb"


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def claims_of(jwt):
    payload = jwt.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def sign_in(discovery, username, scope="openid profile email offline_access"):
    """The code flow as a browser and a relying party would run it, with dev-login."""
    verifier = secrets.token_urlsafe(48)
    params = {
        "response_type": "code", "client_id": CLIENT_ID, "redirect_uri": REDIRECT_URI, "scope": scope,
        "state": "s-1", "nonce": "n-1", "login_hint": username, "code_challenge_method": "S256",
        "code_challenge": b64url(hashlib.sha256(verifier.encode()).digest()),
    }
    answer = requests.get(discovery["authorization_endpoint"], params=params, allow_redirects=False, timeout=5)
    assert answer.status_code in (302, 303), answer.text
    callback = urllib.parse.parse_qs(urllib.parse.urlsplit(answer.headers["Location"]).query)
    assert callback["state"] == ["s-1"]
    assert callback["iss"] == [discovery["issuer"]]  # RFC 9207
    tokens = requests.post(
        discovery["token_endpoint"], auth=(CLIENT_ID, CLIENT_SECRET), timeout=5,
        data={"grant_type": "authorization_code", "code": callback["code"][0],
              "redirect_uri": REDIRECT_URI, "code_verifier": verifier},
    )
    assert tokens.status_code == 200, tokens.text
    return tokens.json()


def test_discovery_names_the_issuer(lanyard):
    discovery = requests.get(lanyard + "/.well-known/openid-configuration", timeout=5).json()
    assert discovery["issuer"] == lanyard
    assert discovery["code_challenge_methods_supported"] == ["S256"]


def test_alice_signs_in_and_userinfo_knows_her(lanyard):
    discovery = requests.get(lanyard + "/.well-known/openid-configuration", timeout=5).json()
    tokens = sign_in(discovery, "alice")
    id_token = claims_of(tokens["id_token"])
    assert id_token["iss"] == lanyard and id_token["aud"] == CLIENT_ID and id_token["nonce"] == "n-1"
    userinfo = requests.get(
        discovery["userinfo_endpoint"], headers={"Authorization": "Bearer " + tokens["access_token"]}, timeout=5
    ).json()
    assert userinfo["sub"] == id_token["sub"]
    assert userinfo["email"] == "alice@example.test"


def test_a_refresh_token_is_rotated_and_cannot_be_used_twice(lanyard):
    discovery = requests.get(lanyard + "/.well-known/openid-configuration", timeout=5).json()
    refresh_token = sign_in(discovery, "alice")["refresh_token"]
    refresh = {"grant_type": "refresh_token", "refresh_token": refresh_token}
    first = requests.post(discovery["token_endpoint"], auth=(CLIENT_ID, CLIENT_SECRET), data=refresh, timeout=5)
    assert first.status_code == 200 and first.json()["refresh_token"] != refresh_token
    again = requests.post(discovery["token_endpoint"], auth=(CLIENT_ID, CLIENT_SECRET), data=refresh, timeout=5)
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
