"""Stock per variant and location: on hand, reserved, available."""
