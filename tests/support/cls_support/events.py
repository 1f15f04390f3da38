"""The events EventBridge delivers to the registrator."""

from __future__ import annotations

import io
import time
import uuid
import zipfile
from typing import Any

from .constants import ACCOUNT, REGION


def schedule_event() -> dict[str, Any]:
    """What EventBridge's schedule rule delivers: a full sync."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": ACCOUNT,
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "region": REGION,
        "resources": [f"arn:aws:events:{REGION}:{ACCOUNT}:rule/consul-lambda-sync-cron"],
        "detail": {},
    }


def function_zip(source: str = "def handler(event, context):\n    return 1\n") -> bytes:
    """A deployment package with one ``index.py``: enough for CreateFunction."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("index.py", source)
    return buf.getvalue()
