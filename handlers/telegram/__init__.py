"""Telegram through aiogram 3: routers, the sender, polling and webhook runners."""
