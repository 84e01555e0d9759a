"""The settings' public import path, `from stockflow.settings import Settings`, kept for
the users of the publisher library (`stockflow.publisher`), who build a Publisher from
them; the settings themselves are `stockflow.adapters.settings`. Nothing inside stockflow
imports this module (the layers contract: it stands beside the entry points)."""

from stockflow.adapters.settings import Settings

__all__ = ["Settings"]
