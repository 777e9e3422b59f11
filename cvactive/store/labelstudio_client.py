"""Label Studio's server and token for cvactive: where they come from (arguments or the environment),
URLs without passwords for messages, and the few HTTP calls collect needs (:class:`LabelStudio`).

The token is never stored, printed or logged.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from cvactive.errors import ConfigError, StoreError

ENV_URL = ("LABEL_STUDIO_URL", "FIFTYONE_LABELSTUDIO_URL")
ENV_KEY = ("LABEL_STUDIO_API_KEY", "FIFTYONE_LABELSTUDIO_API_KEY")


def credentials(url: str | None = None, api_key: str | None = None) -> tuple[str, str]:
    """The backend's URL and token: the arguments, else ``LABEL_STUDIO_URL``/``LABEL_STUDIO_API_KEY``,
    else FiftyOne's ``FIFTYONE_LABELSTUDIO_URL``/``FIFTYONE_LABELSTUDIO_API_KEY``.

    Raises:
        ConfigError: either is missing.
    """
    url = url or next((os.environ[k] for k in ENV_URL if os.environ.get(k)), None)
    api_key = api_key or next((os.environ[k] for k in ENV_KEY if os.environ.get(k)), None)
    if not url or not api_key:
        missing = " and ".join(n for n, v in ((ENV_URL[0], url), (ENV_KEY[0], api_key)) if not v)
        raise ConfigError(
            f"no Label Studio server: set {missing} (./dev.sh labelstudio starts one on this machine; "
            "docs/annotate.md says how to point at an existing one)"
        )
    return url.rstrip("/"), api_key


def redact_url(url: str) -> str:
    """The URL without a password, for messages."""
    parts = urllib.parse.urlsplit(url)
    if parts.password:
        return url.replace(f":{parts.password}@", ":***@")
    return url


class LabelStudio:
    """The few Label Studio HTTP calls collect needs (tasks with annotations, users), with the legacy token.

    Errors name the URL and the status, never the token.
    """

    def __init__(self, url: str, api_key: str, timeout_s: float = 60.0) -> None:
        self.url, self._key, self.timeout_s = url.rstrip("/"), api_key, timeout_s

    def request(self, method: str, path: str, params: dict[str, Any] | None = None, body: Any = None) -> Any:
        """The JSON answer of ``method path``.

        Raises:
            StoreError: the server cannot be reached or answers with an error.
        """
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(f"{self.url}{path}{query}", data=data, method=method)
        req.add_header("Authorization", f"Token {self._key}")
        req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as err:
            detail = err.read()[:300].decode("utf-8", "replace")
            hint = ""
            if err.code == 401:
                hint = (
                    "; the token was refused: check LABEL_STUDIO_API_KEY, and that the organisation allows "
                    "legacy API tokens (Organization > API Tokens Settings, or label-studio start "
                    "--enable-legacy-api-token)"
                )
            raise StoreError(
                f"Label Studio at {redact_url(self.url)}: {method} {path} -> {err.code} {detail}{hint}"
            ) from None
        except (urllib.error.URLError, OSError) as err:
            reason = getattr(err, "reason", err)
            raise StoreError(
                f"cannot reach Label Studio at {redact_url(self.url)} ({reason}); is it running?"
            ) from None
        return json.loads(raw) if raw else None

    def version(self) -> str:
        return str(self.request("GET", "/api/version").get("release", "?"))

    def tasks(self, project: int, page_size: int = 100) -> dict[int, dict[str, Any]]:
        """Every task of ``project`` with its annotations and predictions, by task id."""
        out: dict[int, dict[str, Any]] = {}
        page = 1
        while True:
            answer = self.request(
                "GET", "/api/tasks", {"project": project, "fields": "all", "page": page, "page_size": page_size}
            )
            tasks = answer["tasks"] if isinstance(answer, dict) else answer
            for task in tasks:
                out[int(task["id"])] = task
            total = answer.get("total", len(out)) if isinstance(answer, dict) else len(out)
            if not tasks or len(out) >= total:
                return out
            page += 1

    def users(self) -> dict[int, str]:
        """User id -> e-mail (or name)."""
        return {
            int(u["id"]): u.get("email") or u.get("username") or str(u["id"]) for u in self.request("GET", "/api/users")
        }
