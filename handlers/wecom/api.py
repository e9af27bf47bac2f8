"""WeCom's (企业微信) server API: the Official Account's client with WeCom's token call.

Everything else is the same protocol: JSON over HTTPS, `access_token` in the query, errcode in
the answer (40014 / 42001 / 40001 for a bad or expired token), media/get and media/upload at
the same paths. One token per (corp, app secret): the app, the 居民上报 sync and the directory
sync share it through the access_tokens table.
"""

from __future__ import annotations

import hashlib

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handlers.wechat.api import OAClient, Unreachable


class WeComClient(OAClient):
    def __init__(self, base: str, corp_id: str, secret: str,
                 sm: async_sessionmaker[AsyncSession], timeout: float) -> None:
        self.corp_id = corp_id
        super().__init__(base, corp_id, secret, sm, timeout)

    def token_key(self) -> str:
        # a corp has one token per secret (per app); the secret's hash tells them apart
        # without storing the secret
        return f"wecom:{self._appid}:{hashlib.sha256(self._secret.encode()).hexdigest()[:12]}"

    async def _fetch_token(self) -> tuple[str, int]:
        data = await self._json("GET", "/cgi-bin/gettoken", params={
            "corpid": self._appid, "corpsecret": self._secret})
        token = data.get("access_token")
        if not isinstance(token, str) or not token:
            raise Unreachable("token answer without access_token")
        return token, int(data.get("expires_in") or 7200)
