"""A loopback HTTPS proxy that puts the sandboxes behind the providers' own host names.

Third-party clients call https://api.xero.com, https://identity.xero.com,
https://quickbooks.api.intuit.com and https://oauth.platform.intuit.com by name, hard-coded.
Run unmodified with HTTPS_PROXY pointing here and REQUESTS_CA_BUNDLE at this relay's test CA,
each CONNECT to a known host is answered by a certificate for that host (signed by a CA made
in memory for the run), the TLS is ended here and the plain bytes are relayed to the sandbox
on 127.0.0.1 that stands for the host. A host it does not know is refused: nothing leaves the
machine, not even a DNS lookup (the client asks the proxy by name).
"""

from __future__ import annotations

import secrets
import socket
import socketserver
import ssl
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _pem_key(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


class TestAuthority:
    """A test CA, kept in `folder` (made there on first use) so a client's trust store can be
    told of it once, and certificates for the hosts it stands in for."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.bundle = folder / "ca.pem"
        key_file = folder / "ca-key.pem"
        if self.bundle.exists() and key_file.exists():
            loaded = serialization.load_pem_private_key(key_file.read_bytes(), password=None)
            assert isinstance(loaded, rsa.RSAPrivateKey)
            self.key = loaded
            self.cert = x509.load_pem_x509_certificate(self.bundle.read_bytes())
            return
        self.key = _key()
        now = datetime.now(UTC)
        self.cert = (x509.CertificateBuilder().subject_name(_name("Dunwell test CA"))
                     .issuer_name(_name("Dunwell test CA")).public_key(self.key.public_key())
                     .serial_number(x509.random_serial_number())
                     .not_valid_before(now - timedelta(days=1))
                     .not_valid_after(now + timedelta(days=3650))
                     .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                     .add_extension(x509.KeyUsage(
                         digital_signature=True, key_cert_sign=True, crl_sign=True,
                         content_commitment=False, key_encipherment=False,
                         data_encipherment=False, key_agreement=False, encipher_only=False,
                         decipher_only=False), critical=True)
                     .add_extension(x509.SubjectKeyIdentifier.from_public_key(
                         self.key.public_key()), critical=False)
                     .sign(self.key, hashes.SHA256()))
        key_file.write_bytes(_pem_key(self.key))
        key_file.chmod(0o600)
        self.bundle.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))

    def context_for(self, host: str) -> ssl.SSLContext:
        key = _key()
        now = datetime.now(UTC)
        cert = (x509.CertificateBuilder().subject_name(_name(host)).issuer_name(
                    self.cert.subject).public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - timedelta(days=1))
                .not_valid_after(now + timedelta(days=2))
                .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]),
                               critical=False)
                .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                    self.key.public_key()), critical=False)
                .sign(self.key, hashes.SHA256()))
        chain = self.folder / f"{host}-{secrets.token_hex(4)}.pem"
        chain.write_bytes(_pem_key(key) + cert.public_bytes(serialization.Encoding.PEM))
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(chain)
        return context


def _pipe(source: socket.socket, target: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            target.sendall(data)
    except OSError:
        pass
    finally:
        try:
            target.shutdown(socket.SHUT_WR)
        except OSError:
            pass


class TlsRelay:
    """`routes`: host name -> the sandbox URL's port on 127.0.0.1 that answers for it."""

    def __init__(self, authority: TestAuthority) -> None:
        self.authority = authority
        self.routes: dict[str, int] = {}
        self.contexts: dict[str, ssl.SSLContext] = {}
        self.seen: list[str] = []  # every host asked for, known or not
        relay = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                line = self.rfile.readline(8192).decode("latin-1").split()
                while self.rfile.readline(8192) not in (b"\r\n", b"\n", b""):
                    pass
                if len(line) < 2 or line[0] != "CONNECT":
                    self.wfile.write(b"HTTP/1.1 405 Method Not Allowed\r\n\r\n")
                    return
                host = line[1].rsplit(":", 1)[0].lower()
                relay.seen.append(host)
                port = relay.routes.get(host)
                if port is None:
                    self.wfile.write(b"HTTP/1.1 403 Forbidden\r\n\r\n")
                    return
                self.wfile.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
                self.wfile.flush()
                context = relay.contexts.setdefault(host, relay.authority.context_for(host))
                try:
                    client = context.wrap_socket(self.connection, server_side=True)
                except (ssl.SSLError, OSError):
                    return
                backend = socket.create_connection(("127.0.0.1", port))
                back = threading.Thread(target=_pipe, args=(backend, client), daemon=True)
                back.start()
                _pipe(client, backend)
                back.join(timeout=30)
                backend.close()

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True

        self.server = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True).start()

    def route(self, host: str, sandbox_url: str) -> None:
        self.routes[host] = int(sandbox_url.rsplit(":", 1)[1].split("/")[0])

    def environment(self) -> dict[str, str]:
        """What a client process needs to reach the sandboxes through this relay."""
        return {"HTTPS_PROXY": self.url, "https_proxy": self.url, "NO_PROXY": "",
                "no_proxy": "", "REQUESTS_CA_BUNDLE": str(self.authority.bundle),
                "SSL_CERT_FILE": str(self.authority.bundle)}

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
