"""A ``requests`` transport into a WSGI app: the console's HTTP clients talk to the real
scheduler app in the same process, with no port and no thread (its real routes, real
schemas, real authentication of the console's token)."""
from __future__ import annotations

from urllib.parse import urlsplit

import requests
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict


class WsgiAdapter(BaseAdapter):
    def __init__(self, app):
        super().__init__()
        self.client = app.test_client()

    def send(self, request, stream=False, timeout=None, verify=True, cert=None, proxies=None):
        parts = urlsplit(request.url)
        headers = {k: v for k, v in request.headers.items() if k.lower() != "content-length"}
        body = request.body
        if isinstance(body, str):
            body = body.encode()
        answer = self.client.open(parts.path, method=request.method, headers=headers,
                                  data=body or b"", query_string=parts.query)
        resp = requests.Response()
        resp.status_code = answer.status_code
        resp.headers = CaseInsensitiveDict(dict(answer.headers))
        resp._content = answer.get_data()
        resp.url = request.url
        resp.request = request
        resp.encoding = "utf-8"
        return resp

    def close(self):
        pass


def session_into(base_url: str, app) -> requests.Session:
    session = requests.Session()
    session.mount(base_url.rstrip("/") + "/", WsgiAdapter(app))
    return session
