"""The signed JSON bridge for group-chat connectors (see docs/bridge.md)."""
