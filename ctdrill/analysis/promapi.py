"""The Prometheus HTTP API, the few calls `analyze --prometheus` makes, over stdlib urllib.

Every failure becomes one CtdrillError line: a server that cannot be reached is the
environment (exit 5); a URL that does not answer like Prometheus, or a query the server
refuses (a PromQL error in the user's match, a limit), is bad input (exit 2), with the
server's own message. `decode` is pure, so the answers are testable without a server.
"""

from __future__ import annotations

import http.client
import json
import re
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

from ctdrill.errors import EnvironmentProblem, InvalidInput

USER_AGENT = "ctdrill-analyze"
DURATION = re.compile(r"(\d+)(ms|y|w|d|h|m|s)")
UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0,
          "y": 31536000.0}
NOT_PROMETHEUS_HINT = "pass the base URL of a Prometheus server, e.g. http://prom:9090"


def base_url(url: str) -> str:
    """The server's base URL without a trailing slash; refuses anything but http(s)."""
    parsed = urllib.parse.urlsplit(url.strip())
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise InvalidInput(f"--prometheus {url!r} is not an http(s) URL", NOT_PROMETHEUS_HINT)
    return url.strip().rstrip("/")


def parse_duration(text: str) -> float | None:
    """A Prometheus duration ("15s", "1m30s", "500ms") in seconds; None if it is not one."""
    parts = DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        return None
    return sum(int(n) * UNIT_S[u] for n, u in parts)


def decode(status: int, body: bytes, url: str, what: str) -> Any:
    """The `data` of a Prometheus API answer, or one error line: the server's own
    `error` when it gave one, else what made the answer not Prometheus'."""
    try:
        doc = json.loads(body)
    except ValueError:
        doc = None
    if not isinstance(doc, dict) or doc.get("status") not in ("success", "error"):
        if status >= 500:
            raise EnvironmentProblem(f"Prometheus at {url} answered HTTP {status} to {what}",
                                     "check the server (its logs), then retry")
        first = body[:60].decode(errors="replace").strip().replace("\n", " ")
        raise InvalidInput(f"{url} did not answer {what} like Prometheus (HTTP {status}"
                           + (f": {first!r})" if first else ")"), NOT_PROMETHEUS_HINT)
    if doc["status"] == "error":
        kind, message = doc.get("errorType", "error"), str(doc.get("error", "")).strip()
        cls = EnvironmentProblem if kind in ("unavailable", "internal") else InvalidInput
        raise cls(f"Prometheus at {url} refused {what}: {kind}: {message}",
                  "check --prometheus-match (PromQL label matchers, e.g. "
                  "'instance=~\"gw-.*\"'), or pass a larger --prometheus-step"
                  if kind in ("bad_data", "execution") else "retry when the server is healthy")
    return doc.get("data")


@dataclass(frozen=True)
class Series:
    """One series of a range query: its labels and its points (grid time, value text)."""

    labels: dict[str, str]
    points: list[tuple[float, str]]


class PromClient:
    """One Prometheus server: range queries (POSTed, so long selectors fit) and the
    scrape interval of its active targets."""

    def __init__(self, url: str, timeout_s: float = 30.0) -> None:
        self.url = base_url(url)
        self.timeout_s = timeout_s
        self.requests = 0

    def _call(self, path: str, form: dict[str, str] | None, what: str) -> Any:
        data = urllib.parse.urlencode(form).encode() if form is not None else None
        req = urllib.request.Request(self.url + path, data=data,
                                     headers={"User-Agent": USER_AGENT})
        self.requests += 1
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                return decode(resp.status, resp.read(), self.url, what)
        except urllib.error.HTTPError as exc:
            return decode(exc.code, exc.read(), self.url, what)
        except http.client.HTTPException as exc:  # something answered, but not HTTP
            raise InvalidInput(f"{self.url} did not answer {what} in HTTP "
                               f"({type(exc).__name__})", NOT_PROMETHEUS_HINT) from exc
        except OSError as exc:  # URLError, refused, reset, timeout
            reason = getattr(exc, "reason", exc)
            raise EnvironmentProblem(f"cannot reach Prometheus at {self.url}: {reason}",
                                     "check --prometheus (host, port, scheme) and that the "
                                     "server is up") from exc

    def query_range(self, query: str, start: float, end: float, step: float) -> list[Series]:
        """The matrix of one range query; anything but a matrix is not Prometheus."""
        data = self._call("/api/v1/query_range", {"query": query, "start": f"{start:.3f}",
                                                  "end": f"{end:.3f}", "step": repr(float(step))},
                          f"the query {query}")
        if not isinstance(data, dict) or data.get("resultType") != "matrix" \
                or not isinstance(data.get("result"), list):
            raise InvalidInput(f"{self.url} answered the query {query} without a matrix",
                               NOT_PROMETHEUS_HINT)
        return [Series(dict(r.get("metric", {})), [(float(t), v) for t, v in r["values"]])
                for r in data["result"]]

    def check_query(self, query: str, at: float) -> None:
        """Ask `query` as an instant query, for the server's verdict on it alone (its
        parse error names positions in the user's own text, not in a wrapped query)."""
        self._call("/api/v1/query", {"query": query, "time": f"{at:.3f}"},
                   f"the query {query}")

    def scrape_interval(self) -> float | None:
        """The shortest scrape interval of the active targets (None: none to tell)."""
        data = self._call("/api/v1/targets?state=active", None, "the targets request")
        found = []
        for target in (data or {}).get("activeTargets", []):
            text = target.get("scrapeInterval") or target.get(
                "discoveredLabels", {}).get("__scrape_interval__", "")
            seconds = parse_duration(str(text))
            if seconds:
                found.append(seconds)
        return min(found) if found else None
