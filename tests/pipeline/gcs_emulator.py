"""A `gs://` object store on loopback for tests, reached through the production filesystem layers.

`gcs_emulator(workdir)` starts gcp-storage-emulator and a TLS proxy in one subprocess
(`tests.pipeline.gcs_emulator_server`) on random free loopback ports, points this process
at them, and stops everything on exit:

- Beam's GCS IO (google-cloud-storage) follows `STORAGE_EMULATOR_HOST`.
- TensorFlow's built-in GCS filesystem has no endpoint setting (its URLs are compiled in;
  the modular plugin that reads `CLOUD_STORAGE_EMULATOR_ENDPOINT` crashes with SIGSEGV in
  TF 2.16), so it is sent through `HTTPS_PROXY` to the proxy, trusting a throwaway CA via
  `CURL_CA_BUNDLE`; `GOOGLE_AUTH_TOKEN_FOR_TESTING` stands in for OAuth.

TensorFlow reads these variables when it first touches `gs://`, so use the emulator before
anything in the process does.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

GCS_HOSTS = ("www.googleapis.com", "storage.googleapis.com")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _write_certificates(folder: Path) -> tuple[Path, Path, Path]:
    """A throwaway CA and a certificate for the GCS host names signed by it."""
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "devise-keras test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, GCS_HOSTS[0])]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName(h) for h in GCS_HOSTS]), critical=False
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    folder.mkdir(parents=True, exist_ok=True)
    pem = serialization.Encoding.PEM
    (folder / "ca.pem").write_bytes(ca.public_bytes(pem))
    (folder / "cert.pem").write_bytes(cert.public_bytes(pem))
    (folder / "key.pem").write_bytes(
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return folder / "ca.pem", folder / "cert.pem", folder / "key.pem"


def create_bucket(name: str) -> None:
    from google.cloud import storage

    storage.Client.create_anonymous_client().create_bucket(name)


@contextlib.contextmanager
def gcs_emulator(workdir: Path, buckets: tuple[str, ...] = ()) -> Iterator[dict[str, str]]:
    """Runs the emulated store; yields the environment it set (restored on exit)."""
    ca, cert, key = _write_certificates(workdir / "certs")
    emulator_port, proxy_port = _free_port(), _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.pipeline.gcs_emulator_server"]
        + [str(emulator_port), str(proxy_port), str(cert), str(key)],
        stdout=subprocess.PIPE,
        stderr=open(workdir / "gcs_emulator.log", "wb"),  # noqa: SIM115 (closed with the process)
        cwd=Path(__file__).resolve().parents[2],
    )
    env = {
        "STORAGE_EMULATOR_HOST": f"http://127.0.0.1:{emulator_port}",
        "HTTPS_PROXY": f"http://127.0.0.1:{proxy_port}",
        "https_proxy": f"http://127.0.0.1:{proxy_port}",
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
        "CURL_CA_BUNDLE": str(ca),
        "GOOGLE_AUTH_TOKEN_FOR_TESTING": "emulator",
        "NO_GCE_CHECK": "true",
        "GOOGLE_CLOUD_PROJECT": "devise-test",
    }
    saved = {k: os.environ.get(k) for k in env}
    try:
        if process.stdout.readline().strip() != b"ready":
            raise RuntimeError(f"the GCS emulator did not start; see {workdir}/gcs_emulator.log")
        os.environ.update(env)
        for bucket in buckets:
            create_bucket(bucket)
        yield env
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        process.terminate()
        process.wait(timeout=30)
