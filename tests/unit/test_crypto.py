"""``syncmaster_ray.db.crypto``: credentials encrypted byte-for-byte as SyncMaster stores them."""

from __future__ import annotations

import json

import pytest
from cryptography.fernet import Fernet

from syncmaster_ray.db.crypto import decrypt_auth_data, encrypt_auth_data
from syncmaster_ray.errors import CredentialsError

AUTH = {"type": "postgres", "user": "étl_пользователь", "password": "pä$$wörd 密码 '\"\\", "z": [1, 2], "a": None}


@pytest.fixture
def key() -> str:
    return Fernet.generate_key().decode()


def test_round_trip(key):
    token = encrypt_auth_data(AUTH, key)
    assert isinstance(token, str)
    assert decrypt_auth_data(token, key, connection_id=1) == AUTH


def test_token_is_syncmaster_format(key):
    token = encrypt_auth_data(AUTH, key)
    plain = Fernet(key.encode()).decrypt(token.encode())
    assert plain == json.dumps(AUTH, ensure_ascii=False, sort_keys=True).encode("utf-8")
    text = plain.decode("utf-8")
    assert "密码" in text  # non-ASCII kept as is, not \\u escapes
    assert "\\u" not in text
    assert text.index('"a"') < text.index('"password"') < text.index('"type"') < text.index('"user"')


def test_decrypts_a_token_made_like_syncmaster(key):
    token = Fernet(key).encrypt(json.dumps(AUTH, ensure_ascii=False, sort_keys=True).encode()).decode()
    assert decrypt_auth_data(token, key, connection_id=3) == AUTH


def test_tokens_are_not_deterministic_nor_plaintext(key):
    first, second = encrypt_auth_data(AUTH, key), encrypt_auth_data(AUTH, key)
    assert first != second
    assert "pä$$wörd" not in first


def test_wrong_key_is_credentials_error_without_key_material(key):
    token = encrypt_auth_data(AUTH, key)
    other = Fernet.generate_key().decode()
    with pytest.raises(CredentialsError) as info:
        decrypt_auth_data(token, other, connection_id=17)
    error = info.value
    assert error.code == "credentials"
    assert "connection 17" in error.reason
    assert "SYNCMASTER__ENCRYPTION__SECRET_KEY" in error.reason
    for material in (key, other, token, AUTH["password"]):
        assert material not in error.reason
        assert material not in str(error)
    assert error.__suppress_context__


def test_corrupt_token_is_credentials_error(key):
    token = encrypt_auth_data(AUTH, key)
    with pytest.raises(CredentialsError, match="connection 5 cannot be decrypted"):
        decrypt_auth_data(token[:-4] + "AAAA", key, connection_id=5)
    with pytest.raises(CredentialsError, match="connection 5 cannot be decrypted"):
        decrypt_auth_data("not a token", key, connection_id=5)


def test_non_json_payload_is_credentials_error(key):
    token = Fernet(key).encrypt(b"{not json").decode()
    with pytest.raises(CredentialsError, match="connection 9 cannot be read"):
        decrypt_auth_data(token, key, connection_id=9)
