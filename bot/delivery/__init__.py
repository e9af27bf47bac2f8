"""Messages out: the transactional outbox, rate limits, each channel's capabilities and
the renderer that fits a message to them, numbered choices, and the media store."""
