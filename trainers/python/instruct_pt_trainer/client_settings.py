"""Kafka and schema-registry client settings from the same IPT_* variables the TypeScript clients read.

librdkafka names: security.protocol, sasl.mechanism(s), sasl.username/password, ssl.ca.location,
ssl.certificate.location, ssl.key.location. Errors name the variable; they never contain a secret.
"""
from __future__ import annotations

import base64
import os
from typing import Mapping

PROTOCOLS = ("plaintext", "ssl", "sasl_plaintext", "sasl_ssl")
MECHANISMS = ("plain", "scram-sha-256", "scram-sha-512")


class SettingsError(ValueError):
    pass


def _get(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name)
    return value if value else None


def kafka_settings(env: Mapping[str, str] | None = None) -> dict[str, str]:
    env = os.environ if env is None else env
    raw = _get(env, "IPT_KAFKA_SECURITY_PROTOCOL") or "plaintext"
    protocol = raw.lower()
    if protocol not in PROTOCOLS:
        raise SettingsError(f"IPT_KAFKA_SECURITY_PROTOCOL={raw}: expected one of {', '.join(PROTOCOLS)}")
    tls = protocol in ("ssl", "sasl_ssl")
    sasl = protocol.startswith("sasl_")
    ssl_vars = [n for n in ("IPT_KAFKA_SSL_CA_FILE", "IPT_KAFKA_SSL_CERT_FILE", "IPT_KAFKA_SSL_KEY_FILE") if _get(env, n)]
    if ssl_vars and not tls:
        raise SettingsError(f"{', '.join(ssl_vars)} set but IPT_KAFKA_SECURITY_PROTOCOL={protocol}: TLS settings need ssl or sasl_ssl")
    sasl_vars = [n for n in ("IPT_KAFKA_SASL_MECHANISM", "IPT_KAFKA_SASL_USERNAME", "IPT_KAFKA_SASL_PASSWORD") if _get(env, n)]
    if sasl_vars and not sasl:
        raise SettingsError(f"{', '.join(sasl_vars)} set but IPT_KAFKA_SECURITY_PROTOCOL={protocol}: SASL settings need sasl_plaintext or sasl_ssl")
    out = {"security.protocol": protocol}
    if tls:
        for var, key in (("IPT_KAFKA_SSL_CA_FILE", "ssl.ca.location"), ("IPT_KAFKA_SSL_CERT_FILE", "ssl.certificate.location"), ("IPT_KAFKA_SSL_KEY_FILE", "ssl.key.location")):
            path = _get(env, var)
            if path is None:
                continue
            if not os.path.isfile(path):
                raise SettingsError(f"{var}={path}: no such file")
            out[key] = path
        if ("ssl.certificate.location" in out) != ("ssl.key.location" in out):
            raise SettingsError("IPT_KAFKA_SSL_CERT_FILE and IPT_KAFKA_SSL_KEY_FILE go together (mutual TLS): set both or neither")
    if sasl:
        mech_raw = _get(env, "IPT_KAFKA_SASL_MECHANISM")
        if mech_raw is None:
            raise SettingsError(f"IPT_KAFKA_SECURITY_PROTOCOL={protocol} needs IPT_KAFKA_SASL_MECHANISM ({', '.join(MECHANISMS)})")
        mech = mech_raw.lower()
        if mech not in MECHANISMS:
            raise SettingsError(f"IPT_KAFKA_SASL_MECHANISM={mech_raw}: expected one of {', '.join(MECHANISMS)}")
        missing = [n for n in ("IPT_KAFKA_SASL_USERNAME", "IPT_KAFKA_SASL_PASSWORD") if _get(env, n) is None]
        if missing:
            raise SettingsError(f"IPT_KAFKA_SASL_MECHANISM={mech} needs {' and '.join(missing)}")
        out["sasl.mechanism"] = mech.upper()
        out["sasl.username"] = env["IPT_KAFKA_SASL_USERNAME"]
        out["sasl.password"] = env["IPT_KAFKA_SASL_PASSWORD"]
    return out


def registry_headers(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """Basic auth for the schema registry (IPT_REGISTRY_USERNAME / IPT_REGISTRY_PASSWORD), as Confluent's registry uses."""
    env = os.environ if env is None else env
    user, password = _get(env, "IPT_REGISTRY_USERNAME"), _get(env, "IPT_REGISTRY_PASSWORD")
    if (user is None) != (password is None):
        raise SettingsError("IPT_REGISTRY_USERNAME and IPT_REGISTRY_PASSWORD go together: set both or neither")
    if user is None:
        return {}
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}
