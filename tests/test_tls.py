"""`confer serve --tls` and `--cert/--key`: HTTPS for real, the self-signed certificate kept
across restarts, HSTS only over TLS, and nothing older than TLS 1.2 (the contract's floor)."""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
import stat
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.support.api import Api, ok
from tests.support.servers import ConferServer
from tests.test_cli import confer


def served_certificate(srv: ConferServer) -> x509.Certificate:
    pem = ssl.get_server_certificate(("127.0.0.1", srv.port))
    return x509.load_pem_x509_certificate(pem.encode())


def trusting(cert_path: Path) -> ssl.SSLContext:
    """A client that trusts exactly this certificate (and checks the host name against it)."""
    return ssl.create_default_context(cafile=str(cert_path))


def make_certificate(directory: Path, common_name: str) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "given.pem", directory / "given.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def test_tls_generates_a_certificate_and_serves_https(tmp_path: Path) -> None:
    srv = ConferServer({"CONFER_DATA_DIR": str(tmp_path)}, ["--tls"]).start()
    try:
        cert_path, key_path = tmp_path / "tls" / "cert.pem", tmp_path / "tls" / "key.pem"
        assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
        served = served_certificate(srv)
        assert served == x509.load_pem_x509_certificate(cert_path.read_bytes())
        names = served.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert ipaddress.ip_address("127.0.0.1") in names.get_values_for_type(x509.IPAddress)
        assert "localhost" in names.get_values_for_type(x509.DNSName)
        with httpx.Client(base_url=srv.url, verify=trusting(cert_path)) as client:
            r = client.get("/health")
            assert r.status_code == 200
            assert r.headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"
        api = Api(srv.url)
        user = api.register()
        ok(api.get("/api/v1/users/profile", user))
        api.close()
    finally:
        srv.stop()
    # A restart keeps the same certificate, so browsers that accepted it once keep working.
    again = ConferServer({"CONFER_DATA_DIR": str(tmp_path)}, ["--tls"]).start()
    try:
        assert served_certificate(again) == served
    finally:
        again.stop()


def test_cert_and_key_serve_the_given_certificate(
    tmp_path: Path, server_factory: Callable[..., ConferServer]
) -> None:
    cert_path, key_path = make_certificate(tmp_path, "given by the operator")
    # `--tls` only makes the test harness speak https; the given pair takes precedence.
    srv = server_factory(args=["--tls", "--cert", str(cert_path), "--key", str(key_path)])
    served = served_certificate(srv)
    assert served.subject.rfc4514_string() == "CN=given by the operator"
    with httpx.Client(base_url=srv.url, verify=trusting(cert_path)) as client:
        assert client.get("/health").status_code == 200
    assert not (srv.data_dir / "tls" / "cert.pem").exists()


def test_a_certificate_without_its_key_is_refused(tmp_path: Path) -> None:
    cert_path, _ = make_certificate(tmp_path, "lonely")
    r = confer("serve", "--cert", str(cert_path), env={"CONFER_DATA_DIR": str(tmp_path)})
    assert r.returncode == 2
    assert "--cert and --key go together" in r.stderr


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion:DeprecationWarning")
def test_nothing_older_than_tls_1_2_is_accepted(
    server_factory: Callable[..., ConferServer],
) -> None:
    srv = server_factory(args=["--tls"])
    old = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    old.check_hostname, old.verify_mode = False, ssl.CERT_NONE
    old.set_ciphers("DEFAULT:@SECLEVEL=0")  # let this client offer what the server must refuse
    old.minimum_version, old.maximum_version = ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1
    with pytest.raises(httpx.ConnectError) as refused:
        httpx.get(srv.url + "/health", verify=old)
    assert "NO_PROTOCOLS_AVAILABLE" not in str(refused.value)  # offered, and the server said no
    modern = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    modern.check_hostname, modern.verify_mode = False, ssl.CERT_NONE
    modern.minimum_version = modern.maximum_version = ssl.TLSVersion.TLSv1_2
    assert httpx.get(srv.url + "/health", verify=modern).status_code == 200
