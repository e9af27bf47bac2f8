"""The core: platform-neutral intake, routing, lifecycle, deadlines and delivery."""
