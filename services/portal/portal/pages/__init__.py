"""One router per area of the portal."""
