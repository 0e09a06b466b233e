"""Process settings (defined in ``helpdesk.config``, the bottom layer, and re-exported here)."""

from helpdesk.config import Settings, get_settings

__all__ = ["Settings", "get_settings"]
