"""Who is who: staff of a grid or community and how to reach them (directory), invites
and group bindings (onboarding)."""
