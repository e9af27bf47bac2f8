"""WeChat: the Official Account (公众号) channel. See oa.py."""
