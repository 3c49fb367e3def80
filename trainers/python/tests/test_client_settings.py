import pytest

from instruct_pt_trainer.client_settings import SettingsError, kafka_settings, registry_headers


def test_plaintext_by_default():
    assert kafka_settings({}) == {"security.protocol": "plaintext"}


def test_sasl_ssl_scram_with_own_ca(tmp_path):
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    env = {"IPT_KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "IPT_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512", "IPT_KAFKA_SASL_USERNAME": "u", "IPT_KAFKA_SASL_PASSWORD": "p", "IPT_KAFKA_SSL_CA_FILE": str(ca)}
    assert kafka_settings(env) == {"security.protocol": "sasl_ssl", "sasl.mechanism": "SCRAM-SHA-512", "sasl.username": "u", "sasl.password": "p", "ssl.ca.location": str(ca)}


@pytest.mark.parametrize("env,names", [
    ({"IPT_KAFKA_SECURITY_PROTOCOL": "tls"}, "IPT_KAFKA_SECURITY_PROTOCOL"),
    ({"IPT_KAFKA_SECURITY_PROTOCOL": "sasl_ssl"}, "IPT_KAFKA_SASL_MECHANISM"),
    ({"IPT_KAFKA_SECURITY_PROTOCOL": "sasl_plaintext", "IPT_KAFKA_SASL_MECHANISM": "scram-sha-256", "IPT_KAFKA_SASL_USERNAME": "u"}, "IPT_KAFKA_SASL_PASSWORD"),
    ({"IPT_KAFKA_SASL_USERNAME": "u"}, "IPT_KAFKA_SASL_USERNAME"),
    ({"IPT_KAFKA_SECURITY_PROTOCOL": "ssl", "IPT_KAFKA_SSL_CA_FILE": "/nonexistent.pem"}, "IPT_KAFKA_SSL_CA_FILE"),
])
def test_errors_name_the_variable(env, names):
    with pytest.raises(SettingsError, match=names):
        kafka_settings(env)


def test_password_never_in_errors():
    env = {"IPT_KAFKA_SECURITY_PROTOCOL": "sasl_ssl", "IPT_KAFKA_SASL_MECHANISM": "md5", "IPT_KAFKA_SASL_USERNAME": "u", "IPT_KAFKA_SASL_PASSWORD": "s3cret"}
    with pytest.raises(SettingsError) as e:
        kafka_settings(env)
    assert "s3cret" not in str(e.value)


def test_registry_basic_auth():
    assert registry_headers({}) == {}
    assert registry_headers({"IPT_REGISTRY_USERNAME": "a", "IPT_REGISTRY_PASSWORD": "b"}) == {"Authorization": "Basic YTpi"}
    with pytest.raises(SettingsError):
        registry_headers({"IPT_REGISTRY_USERNAME": "a"})
