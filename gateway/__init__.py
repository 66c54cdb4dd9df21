"""The composition root: settings, the ASGI app, auth, telemetry and the CLI."""
