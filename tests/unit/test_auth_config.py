"""Key loading, handshake signing and configuration, without sockets."""

from __future__ import annotations

import base64
import math
import pickle
import random
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from kalshi_ws import (
    DEMO_WS_URL,
    PROD_WS_URL,
    Backoff,
    ConfigurationError,
    ConnectStrategy,
    HealthConfig,
    KalshiConfig,
    ReconnectPolicy,
)
from kalshi_ws.auth import WS_SIGN_PATH, Signer, load_private_key

PSS = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.DIGEST_LENGTH)


def pem(key: rsa.RSAPrivateKey, fmt: serialization.PrivateFormat,
        password: bytes | None = None) -> bytes:
    encryption = (serialization.BestAvailableEncryption(password) if password
                  else serialization.NoEncryption())
    return key.private_bytes(serialization.Encoding.PEM, fmt, encryption)


def body_of(pem_bytes: bytes) -> str:
    """A line from the middle of a PEM block, to search for leaks."""
    return pem_bytes.decode().splitlines()[5]


def test_signature_is_rsa_pss_sha256_over_timestamp_get_path(private_key: rsa.RSAPrivateKey) -> None:
    signer = Signer("key-id", private_key, clock=lambda: 1789421234.5678)
    headers = signer.headers()
    assert headers["KALSHI-ACCESS-KEY"] == "key-id"
    assert headers["KALSHI-ACCESS-TIMESTAMP"] == "1789421234567"
    signature = base64.b64decode(headers["KALSHI-ACCESS-SIGNATURE"], validate=True)
    message = b"1789421234567GET/trade-api/ws/v2"
    private_key.public_key().verify(signature, message, PSS, hashes.SHA256())
    with pytest.raises(InvalidSignature):
        private_key.public_key().verify(signature, b"1789421234567GET/other", PSS,
                                        hashes.SHA256())
    assert WS_SIGN_PATH == "/trade-api/ws/v2"


def test_every_signature_is_fresh(private_key: rsa.RSAPrivateKey) -> None:
    times = iter([1000.0, 1001.0])
    signer = Signer("k", private_key, clock=lambda: next(times))
    first, second = signer.headers(), signer.headers()
    assert first["KALSHI-ACCESS-TIMESTAMP"] != second["KALSHI-ACCESS-TIMESTAMP"]
    assert first["KALSHI-ACCESS-SIGNATURE"] != second["KALSHI-ACCESS-SIGNATURE"]


@pytest.mark.parametrize("fmt", [serialization.PrivateFormat.TraditionalOpenSSL,
                                 serialization.PrivateFormat.PKCS8])
def test_pkcs1_and_pkcs8_pem_load_as_text_or_bytes(private_key: rsa.RSAPrivateKey,
                                                   fmt: serialization.PrivateFormat) -> None:
    data = pem(private_key, fmt)
    for form in (data, data.decode()):
        loaded = load_private_key(form)
        assert loaded.private_numbers() == private_key.private_numbers()


def test_encrypted_pem_needs_its_password(private_key: rsa.RSAPrivateKey) -> None:
    data = pem(private_key, serialization.PrivateFormat.PKCS8, b"s3cret")
    assert KalshiConfig("k", data, private_key_password="s3cret")
    with pytest.raises(ConfigurationError, match="password"):
        KalshiConfig("k", data)
    with pytest.raises(ConfigurationError):
        KalshiConfig("k", data, private_key_password="wrong")


def test_a_key_object_is_accepted(private_key: rsa.RSAPrivateKey) -> None:
    assert KalshiConfig("k", private_key).url == DEMO_WS_URL


def test_non_rsa_keys_are_refused_by_name() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    data = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())
    with pytest.raises(ConfigurationError, match="requires an RSA key"):
        KalshiConfig("k", data)


@pytest.mark.parametrize("value, problem", [
    ("not a key", "not PEM"),
    ("/home/me/kalshi.pem", "from_key_file"),
    (b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", "could not be loaded"),
    (12345, "must be PEM"),
])
def test_bad_keys_fail_at_construction_naming_the_problem(value: object, problem: str) -> None:
    with pytest.raises(ConfigurationError, match=problem):
        KalshiConfig("k", value)  # type: ignore[arg-type]


def test_a_public_key_is_refused(private_key: rsa.RSAPrivateKey) -> None:
    public = private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    with pytest.raises(ConfigurationError, match="PUBLIC"):
        KalshiConfig("k", public)


def test_the_key_never_appears_in_repr_str_or_errors(private_key: rsa.RSAPrivateKey) -> None:
    data = pem(private_key, serialization.PrivateFormat.TraditionalOpenSSL)
    config = KalshiConfig("key-id", data)
    for text in (repr(config), str(config), repr(config.signer())):
        assert body_of(data) not in text
        assert "hidden" in text
    broken = data.replace(body_of(data).encode(), b"A" * 64)
    with pytest.raises(ConfigurationError) as caught:
        KalshiConfig("k", broken)
    assert body_of(data) not in str(caught.value)
    assert caught.value.__cause__ is None  # the parser's message is not chained in
    assert "A" * 64 not in str(caught.value)


def test_config_cannot_be_pickled(private_key: rsa.RSAPrivateKey) -> None:
    with pytest.raises(TypeError, match="private key"):
        pickle.dumps(KalshiConfig("k", private_key))


def test_environment_picks_the_url_and_ws_url_overrides(private_key: rsa.RSAPrivateKey) -> None:
    assert KalshiConfig("k", private_key, environment="prod").url == PROD_WS_URL
    assert KalshiConfig("k", private_key, environment="demo").url == DEMO_WS_URL
    assert KalshiConfig("k", private_key, ws_url="ws://127.0.0.1:9/x").url == "ws://127.0.0.1:9/x"
    with pytest.raises(ConfigurationError, match="environment"):
        KalshiConfig("k", private_key, environment="staging")
    with pytest.raises(ConfigurationError, match="ws:// or wss://"):
        KalshiConfig("k", private_key, ws_url="https://example.com")
    with pytest.raises(ConfigurationError, match="api_key_id"):
        KalshiConfig(" ", private_key)


@pytest.mark.parametrize(("url", "problem"), [
    ("ws://[::1", "Invalid IPv6"), ("ws://127.0.0.1:99999/", "out of range"),
    ("ws://127.0.0.1:abc/", "Port")])
def test_urls_that_cannot_be_connected_to_fail_at_construction(
        private_key: rsa.RSAPrivateKey, url: str, problem: str) -> None:
    with pytest.raises(ConfigurationError, match=problem):
        KalshiConfig("k", private_key, ws_url=url)


def _probable_prime(bits: int, rng: random.Random) -> int:
    """A random prime of ``bits`` bits (Miller-Rabin), for a key cryptography won't make."""
    while True:
        n = rng.getrandbits(bits) | (1 << (bits - 1)) | 1
        d, r = n - 1, 0
        while d % 2 == 0:
            d, r = d // 2, r + 1
        for _ in range(32):
            x = pow(rng.randrange(2, n - 1), d, n)
            if x in (1, n - 1):
                continue
            for _ in range(r - 1):
                x = pow(x, 2, n)
                if x == n - 1:
                    break
            else:
                break
        else:
            return n


def test_a_key_too_small_to_sign_with_is_refused_at_construction() -> None:
    rng = random.Random(7)
    e = 65537
    while True:
        p, q = _probable_prime(256, rng), _probable_prime(256, rng)
        phi = (p - 1) * (q - 1)
        if p != q and math.gcd(e, phi) == 1:
            break
    d = pow(e, -1, phi)
    numbers = rsa.RSAPrivateNumbers(
        p=p, q=q, d=d, dmp1=d % (p - 1), dmq1=d % (q - 1), iqmp=pow(q, -1, p),
        public_numbers=rsa.RSAPublicNumbers(e, p * q))
    small = numbers.private_key()
    assert small.key_size == 512
    with pytest.raises(ConfigurationError, match="512-bit RSA key"):
        KalshiConfig("k", small)
    with pytest.raises(ConfigurationError, match="at least 1024 bits"):
        KalshiConfig("k", pem(small, serialization.PrivateFormat.PKCS8))


def test_from_key_file(tmp_path: Path, private_key: rsa.RSAPrivateKey) -> None:
    path = tmp_path / "key.pem"
    path.write_bytes(pem(private_key, serialization.PrivateFormat.PKCS8))
    assert KalshiConfig.from_key_file("k", path).api_key_id == "k"
    with pytest.raises(ConfigurationError, match="cannot read private key file"):
        KalshiConfig.from_key_file("k", tmp_path / "missing.pem")


def test_from_env_reads_every_variable(tmp_path: Path, private_key: rsa.RSAPrivateKey) -> None:
    path = tmp_path / "key.pem"
    path.write_bytes(pem(private_key, serialization.PrivateFormat.PKCS8))
    config = KalshiConfig.from_env({"KALSHI_API_KEY_ID": "abc",
                                    "KALSHI_PRIVATE_KEY_PATH": str(path),
                                    "KALSHI_ENV": "prod"})
    assert (config.api_key_id, config.url) == ("abc", PROD_WS_URL)
    inline = pem(private_key, serialization.PrivateFormat.PKCS8).decode()
    config = KalshiConfig.from_env({"KALSHI_API_KEY_ID": "abc", "KALSHI_PRIVATE_KEY": inline,
                                    "KALSHI_WS_URL": "ws://127.0.0.1:1/trade-api/ws/v2"})
    assert config.url == "ws://127.0.0.1:1/trade-api/ws/v2"
    escaped = inline.replace("\n", "\\n")  # as a one-line .env file holds it
    assert KalshiConfig.from_env({"KALSHI_API_KEY_ID": "a", "KALSHI_PRIVATE_KEY": escaped})


def test_from_env_names_what_is_missing_or_wrong(tmp_path: Path,
                                                 private_key: rsa.RSAPrivateKey) -> None:
    with pytest.raises(ConfigurationError) as caught:
        KalshiConfig.from_env({})
    assert "KALSHI_API_KEY_ID" in str(caught.value)
    assert "KALSHI_PRIVATE_KEY_PATH" in str(caught.value)
    path = tmp_path / "key.pem"
    path.write_bytes(pem(private_key, serialization.PrivateFormat.PKCS8))
    with pytest.raises(ConfigurationError, match="KALSHI_ENV"):
        KalshiConfig.from_env({"KALSHI_API_KEY_ID": "a", "KALSHI_PRIVATE_KEY_PATH": str(path),
                               "KALSHI_ENV": "mars"})
    with pytest.raises(ConfigurationError, match="KALSHI_PRIVATE_KEY_PATH"):
        KalshiConfig.from_env({"KALSHI_API_KEY_ID": "a",
                               "KALSHI_PRIVATE_KEY_PATH": str(tmp_path / "nope.pem")})


def test_policies_validate_their_numbers() -> None:
    assert HealthConfig().ping_interval == 10.0
    with pytest.raises(ConfigurationError, match="idle_timeout"):
        HealthConfig(idle_timeout=0)
    for not_a_duration in (float("nan"), float("inf"), True, "5"):
        with pytest.raises(ConfigurationError, match="pong_timeout"):
            HealthConfig(pong_timeout=not_a_duration)
    with pytest.raises(ConfigurationError, match="max_attempts"):
        Backoff(max_attempts=0)
    with pytest.raises(ConfigurationError, match="restore_timeout"):
        ReconnectPolicy(restore_timeout=-1)
    assert ConnectStrategy.SIMPLE.retries is False
    assert ConnectStrategy.RETRY.retries is True
    assert ConnectStrategy.retry(base=1, cap=2, max_attempts=3).backoff == Backoff(
        base=1, cap=2, max_attempts=3)


# ---------------------------------------------------------------- Retry-After (issue 10)


def test_retry_after_reads_seconds_and_http_dates() -> None:
    from kalshi_ws import HandshakeError
    from kalshi_ws.reconnect import retry_after, retry_delay

    def refused(value: str) -> HandshakeError:
        return HandshakeError("503", status_code=503, headers={"retry-after": value})

    now = 1_800_000_000.0
    assert retry_after(refused("3"), lambda: now) == 3.0
    date = "Fri, 15 Jan 2027 08:00:10 GMT"
    import email.utils
    stamp = email.utils.parsedate_to_datetime(date).timestamp()
    assert retry_after(refused(date), lambda: stamp - 10) == pytest.approx(10.0)
    assert retry_after(refused(date), lambda: stamp + 10) is None  # already past
    for junk in ("", "soon", "-3", "1.5", "Fri, 99 Foo"):
        assert retry_after(refused(junk), lambda: now) is None
    assert retry_after(HandshakeError("x"), lambda: now) is None
    assert retry_after(ValueError("x")) is None
    backoff = Backoff(base=0.1, cap=2)
    assert retry_delay(0.05, refused("1"), backoff) == 1.0
    assert retry_delay(0.05, refused("3600"), backoff) == 2.0  # capped
    assert retry_delay(0.5, refused("0"), backoff) == 0.5  # never shorter than the draw


def test_the_backoff_goes_on_from_a_level() -> None:
    import random

    from kalshi_ws.reconnect import backoff_ceiling, backoff_delays
    backoff = Backoff(base=1, cap=100, max_attempts=3)
    draws = list(backoff_delays(backoff, random.Random(1), start=4))
    assert len(draws) == 3
    assert all(0 <= d <= backoff_ceiling(backoff, 4 + n) for n, d in enumerate(draws))
    assert ReconnectPolicy().healthy_after == 30.0
    with pytest.raises(ConfigurationError, match="healthy_after"):
        ReconnectPolicy(healthy_after=0)


# ---------------------------------------------------------------- ws:// elsewhere (issue 10)


@pytest.mark.parametrize("url", ["ws://example.com/trade-api/ws/v2", "ws://10.0.0.5:9000",
                                 "ws://[2001:db8::1]:80", "ws://localhost.evil.com"])
def test_ws_to_a_host_that_is_not_loopback_is_refused(
        url: str, private_key: rsa.RSAPrivateKey) -> None:
    with pytest.raises(ConfigurationError, match="no TLS") as caught:
        KalshiConfig("k", private_key, ws_url=url)
    assert "allow_insecure" in str(caught.value)
    for environment in ("demo", "prod"):  # the environment does not change the rule
        with pytest.raises(ConfigurationError, match="no TLS"):
            KalshiConfig("k", private_key, ws_url=url, environment=environment)


@pytest.mark.parametrize("url", ["ws://127.0.0.1:1234", "ws://127.9.9.9", "ws://localhost:80",
                                 "ws://[::1]:8080", "wss://example.com"])
def test_loopback_and_tls_urls_need_no_opt_in(url: str, private_key: rsa.RSAPrivateKey,
                                              caplog: pytest.LogCaptureFixture) -> None:
    assert KalshiConfig("k", private_key, ws_url=url).url == url
    assert "no TLS" not in caplog.text


def test_allow_insecure_opts_in_with_a_warning(private_key: rsa.RSAPrivateKey,
                                               caplog: pytest.LogCaptureFixture) -> None:
    url = "ws://example.com/ws"
    assert KalshiConfig("k", private_key, ws_url=url, allow_insecure=True).url == url
    assert "signed login headers travel in clear" in caplog.text
    text = pem(private_key, serialization.PrivateFormat.PKCS8).decode()
    env = {"KALSHI_API_KEY_ID": "k", "KALSHI_PRIVATE_KEY": text, "KALSHI_WS_URL": url}
    with pytest.raises(ConfigurationError, match="KALSHI_WS_URL"):
        KalshiConfig.from_env(env)
    assert KalshiConfig.from_env({**env, "KALSHI_ALLOW_INSECURE": "1"}).url == url
