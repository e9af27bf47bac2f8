"""Signatures and message encryption of the Official Account's server callback.

Plaintext mode signs only (token, timestamp, nonce): the body itself is not covered, so in
compatible and safe modes only the encrypted part (covered by msg_signature) is believed.
Encryption is wechatpy's (AES-256-CBC, PKCS#7, appid appended); comparisons here are
constant-time, which wechatpy's own checks are not.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import string

from wechatpy.crypto import PrpCrypto, WeChatCrypto

from handlers.wechat.xml import cdata


class BadSignature(ValueError):
    pass


def signature(*parts: str) -> str:
    """WeChat's SHA-1 over the sorted, concatenated parts."""
    return hashlib.sha1("".join(sorted(parts)).encode()).hexdigest()


def check(expected_parts: tuple[str, ...], given: str) -> None:
    if not hmac.compare_digest(signature(*expected_parts).encode(), given.lower().encode()):
        raise BadSignature("signature does not match")


class Cipher:
    """The account's EncodingAESKey, for compatible and safe modes."""

    def __init__(self, token: str, aes_key: str, appid: str) -> None:
        self._token, self._appid = token, appid
        self._crypto = WeChatCrypto(token, aes_key, appid)  # checks the key's length

    def decrypt(self, encrypted: str, msg_signature: str, timestamp: str, nonce: str) -> str:
        """The inner XML, once msg_signature matches and the appid inside is ours."""
        check((self._token, timestamp, nonce, encrypted), msg_signature)
        try:
            return str(PrpCrypto(self._crypto.key).decrypt(encrypted, self._appid))
        except Exception as e:  # bad base64, padding or appid: all the same to a caller
            raise BadSignature(f"cannot decrypt ({type(e).__name__})") from None

    def encrypt(self, xml: str, nonce: str, timestamp: str) -> str:
        """A passive reply sealed for safe mode: Encrypt, MsgSignature, TimeStamp, Nonce."""
        encrypted = _SecretPrefix(self._crypto.key).encrypt(xml, self._appid).decode()
        return (f"<xml><Encrypt>{cdata(encrypted)}</Encrypt>"
                f"<MsgSignature>{cdata(signature(self._token, timestamp, nonce, encrypted))}"
                f"</MsgSignature><TimeStamp>{timestamp}</TimeStamp>"
                f"<Nonce>{cdata(nonce)}</Nonce></xml>")


class _SecretPrefix(PrpCrypto):
    """wechatpy's cipher with the 16 random bytes before the text drawn from `secrets`.

    The IV is fixed (the key's first 16 bytes), so that prefix is all that keeps two equal
    replies from encrypting alike; wechatpy draws it with `random`.
    """

    def get_random_string(self) -> str:
        return "".join(secrets.choice(_PREFIX_CHARS) for _ in range(16))


_PREFIX_CHARS = string.ascii_letters + string.digits
