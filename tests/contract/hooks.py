"""Schemathesis hooks for Gridhub's contract run (tests/contract/run).

Gets a real token the way a real caller does and refreshes it before it expires:
- GRIDHUB_CONTRACT_AS=admin: password login (POST /v1/auth/login) as the demo admin;
- GRIDHUB_CONTRACT_AS=client: client-credentials token (POST /v1/oauth/token) over the demo
  department client's certificate (mutual TLS; the token is bound to that certificate, so
  schemathesis must present the same certificate: --request-cert / --request-cert-key).
"""

import os

import requests
import schemathesis

DATA_DIR = os.environ["GRIDHUB_CONTRACT_DATA_DIR"]
BASE_URL = os.environ["GRIDHUB_CONTRACT_URL"]
AS = os.environ.get("GRIDHUB_CONTRACT_AS", "admin")
CA = os.path.join(DATA_DIR, "pki", "ca.pem")
CLIENT = os.environ.get("GRIDHUB_CONTRACT_CLIENT", "civil-affairs-system")


def _password(username):
    with open(os.path.join(DATA_DIR, "demo-credentials.txt"), encoding="utf-8") as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 2 and parts[0] == username:
                return parts[1]
    raise RuntimeError(f"no demo account {username!r} in {DATA_DIR}")


def client_cert():
    folder = os.path.join(DATA_DIR, "clients", CLIENT)
    return (os.path.join(folder, "cert.pem"), os.path.join(folder, "key.pem"))


@schemathesis.auth()
class GridhubToken:
    # Tokens live 5 minutes (client tokens) or longer (user tokens): refresh well before.
    refresh_interval = 120

    def get(self, case, context):
        if AS == "client":
            answer = requests.post(
                f"{BASE_URL}/v1/oauth/token",
                data={"grant_type": "client_credentials"},
                cert=client_cert(),
                verify=CA,
                timeout=30,
            )
        else:
            answer = requests.post(
                f"{BASE_URL}/v1/auth/login",
                json={"username": AS, "password": _password(AS)},
                verify=CA,
                timeout=30,
            )
        answer.raise_for_status()
        return answer.json()["access_token"]

    def set(self, case, data, context):
        case.headers = case.headers or {}
        case.headers["Authorization"] = f"Bearer {data}"
