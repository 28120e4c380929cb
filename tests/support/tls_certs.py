"""A throw-away CA and a server certificate for 127.0.0.1/localhost, made with openssl."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

KEYSTORE_PASSWORD = "test-keystore-pass"


@dataclass(frozen=True)
class Certs:
    ca: Path  # PEM: what clients trust
    cert: Path  # PEM server certificate, signed by `ca`
    key: Path  # PEM server key, unencrypted
    keystore: Path  # PKCS12 of cert and key (for Java), password KEYSTORE_PASSWORD


def _openssl(*args: str | Path) -> None:
    subprocess.run(["openssl", *map(str, args)], check=True, capture_output=True)


def make_certs(directory: Path, name: str = "test") -> Certs:
    directory.mkdir(parents=True, exist_ok=True)
    ca_key, ca = directory / f"{name}-ca.key", directory / f"{name}-ca.pem"
    key, csr, cert = directory / f"{name}.key", directory / f"{name}.csr", directory / f"{name}.pem"
    days = "2"
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", ca_key, "-out", ca, "-days", days,
             "-subj", f"/CN={name} test CA")  # fmt: skip
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr, "-subj", "/CN=localhost")
    extensions = directory / f"{name}.ext"
    extensions.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n")
    _openssl("x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial", "-out", cert,
             "-days", days, "-extfile", extensions)  # fmt: skip
    keystore = directory / f"{name}.p12"
    _openssl("pkcs12", "-export", "-in", cert, "-inkey", key, "-out", keystore, "-passout",
             f"pass:{KEYSTORE_PASSWORD}", "-name", "server")  # fmt: skip
    return Certs(ca=ca, cert=cert, key=key, keystore=keystore)
