"""Credentials, encrypted exactly as SyncMaster stores them in ``auth_data.value``."""

from __future__ import annotations

import json
from typing import Any

from cryptography.fernet import Fernet, InvalidToken

from syncmaster_ray.errors import CredentialsError


def encrypt_auth_data(auth: dict[str, Any], secret_key: str) -> str:
    """``Fernet(key).encrypt(json.dumps(auth, ensure_ascii=False, sort_keys=True))``, as SyncMaster does."""
    payload = json.dumps(auth, ensure_ascii=False, sort_keys=True).encode()
    return Fernet(secret_key).encrypt(payload).decode()


def decrypt_auth_data(value: str, secret_key: str, *, connection_id: int) -> dict[str, Any]:
    """Decrypt one ``auth_data`` row; a wrong key or a corrupt token is a specific, secret-free error."""
    try:
        return json.loads(Fernet(secret_key).decrypt(value))
    except InvalidToken:
        raise CredentialsError(
            f"credentials of connection {connection_id} cannot be decrypted: the worker's "
            "SYNCMASTER__ENCRYPTION__SECRET_KEY differs from the key the server encrypted them with",
        ) from None
    except (ValueError, TypeError):
        raise CredentialsError(
            f"credentials of connection {connection_id} cannot be read: either the Fernet key is malformed or the "
            "decrypted value is not JSON"
        ) from None
