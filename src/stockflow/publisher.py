"""The publisher library's public import path, `from stockflow.publisher import Publisher`,
kept for the order services and warehouse systems that use it; the library itself is
`stockflow.adapters.publisher`. Nothing inside stockflow imports this module (the layers
contract: it stands beside the entry points)."""

from stockflow.adapters.publisher import (
    Publisher,
    PublishError,
    envelope,
    prepare,
    prepare_order_request,
)

__all__ = ["PublishError", "Publisher", "envelope", "prepare", "prepare_order_request"]
