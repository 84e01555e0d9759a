"""What a console page's address may hold: a name (a SKU, a SKU prefix, a warehouse), empty
when a form's field was left blank; a key is checked as the HTTP API checks it."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import Query

from stockflow.entrypoints.api.reads import KEY_PATTERN

__all__ = ["KEY", "FormName"]

FormName = Annotated[str | None, Query(pattern=r"^[A-Za-z0-9._-]{0,64}$")]
KEY = re.compile(KEY_PATTERN)  # SKU@WAREHOUSE
