"""WeChat's message XML: parsed without DTDs or entities, answers built with safe CDATA."""

from __future__ import annotations

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import ParseError, fromstring


class BadXML(ValueError):
    """Not a WeChat message: malformed, a DOCTYPE or entities, or not a flat <xml> element."""


def parse(body: bytes | str) -> dict[str, str]:
    """The child elements of <xml> as text (one level; WeChat sends nothing deeper we read).

    A DOCTYPE is refused outright, so neither internal entities (billion laughs) nor
    external ones (file or network reads) are ever expanded.
    """
    try:
        root = fromstring(body, forbid_dtd=True, forbid_entities=True,
                          forbid_external=True)
    except (ParseError, DefusedXmlException, ValueError, SyntaxError) as e:
        raise BadXML(type(e).__name__) from None
    if root.tag != "xml":
        raise BadXML(f"root element is {root.tag!r}")
    out: dict[str, str] = {}
    for child in root:
        out[child.tag] = (child.text or "").strip() if len(child) == 0 else ""
    return out


def cdata(text: str) -> str:
    # "]]>" would end the section early; split it across two sections
    return "<![CDATA[" + text.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def text_reply(to_user: str, from_user: str, content: str, create_time: int) -> str:
    """A passive text reply to the message `to_user` just sent to the account `from_user`."""
    return (f"<xml><ToUserName>{cdata(to_user)}</ToUserName>"
            f"<FromUserName>{cdata(from_user)}</FromUserName>"
            f"<CreateTime>{int(create_time)}</CreateTime>"
            f"<MsgType><![CDATA[text]]></MsgType>"
            f"<Content>{cdata(content)}</Content></xml>")
