"""Encryption of personal data fields inside event payloads (AES-256-GCM).

An encrypted field is stored as ``{"$enc": "A256GCM", "subject": ID, "iv": B64,
"ct": B64}``. The subject id stays in clear so an erasure knows which key to destroy;
the field name and subject are bound as associated data, so a ciphertext cannot be
moved to another field or subject unnoticed.
"""

from __future__ import annotations

import base64
import os
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from engine.integrity.keystore import KeyStore

ERASED = "[erased]"
MARK = "$enc"


def is_encrypted(value: Any) -> bool:
    return isinstance(value, dict) and value.get(MARK) == "A256GCM"


def encrypt_value(keys: KeyStore, subject_id: str, field: str, value: str) -> dict[str, str]:
    return _encrypt(AESGCM(keys.get_or_create(subject_id)), subject_id, field, value)


def _encrypt(cipher: AESGCM, subject_id: str, field: str, value: str) -> dict[str, str]:
    iv = os.urandom(12)
    aad = f"{subject_id}\n{field}".encode()
    ct = cipher.encrypt(iv, value.encode("utf-8"), aad)
    return {
        MARK: "A256GCM",
        "subject": subject_id,
        "iv": base64.b64encode(iv).decode(),
        "ct": base64.b64encode(ct).decode(),
    }


def decrypt_value(keys: KeyStore | None, field: str, value: dict[str, Any]) -> str:
    """The plaintext, or ERASED when the subject's key is gone (or was never here)."""
    subject = str(value.get("subject"))
    key = keys.key_for(subject) if keys is not None else None
    return _decrypt(key, subject, field, value)


def _decrypt(key: bytes | None, subject: str, field: str, value: dict[str, Any]) -> str:
    if key is None:
        return ERASED
    try:
        iv = base64.b64decode(value["iv"])
        ct = base64.b64decode(value["ct"])
        plain = AESGCM(key).decrypt(iv, ct, f"{subject}\n{field}".encode())
    except (InvalidTag, KeyError, ValueError, TypeError) as e:
        raise ValueError(f"personal field {field} cannot be decrypted: {e!r}") from None
    return plain.decode("utf-8")


def seal(
    keys: KeyStore | None, data: dict[str, Any], fields: tuple[str, ...], subject: str | None
) -> dict[str, Any]:
    if keys is None or subject is None or not fields:
        return data
    sealed = dict(data)
    cipher: AESGCM | None = None  # one key look-up per event, not per field
    for field in fields:
        value = sealed.get(field)
        if isinstance(value, str):
            if cipher is None:
                cipher = AESGCM(keys.get_or_create(subject))
            sealed[field] = _encrypt(cipher, subject, field, value)
    return sealed


def unseal(keys: KeyStore | None, data: dict[str, Any]) -> dict[str, Any]:
    if not any(is_encrypted(v) for v in data.values()):
        return data
    # One key look-up per subject and event, not per field.
    found: dict[str, bytes | None] = {}

    def key(subject: str) -> bytes | None:
        if subject not in found:
            found[subject] = keys.key_for(subject) if keys is not None else None
        return found[subject]

    out: dict[str, Any] = {}
    for k, v in data.items():
        if is_encrypted(v):
            subject = str(v.get("subject"))
            out[k] = _decrypt(key(subject), subject, k, v)
        else:
            out[k] = v
    return out
