"""Errors as GOV.UK Notify reports them.

Every 4xx and 5xx body is::

    {"status_code": 400, "errors": [{"error": "ValidationError", "message": "…"}]}

so an integration written against GOV.UK Notify reads ours unchanged.
"""
from __future__ import annotations


class ApiError(Exception):
    status_code = 400
    error = "BadRequestError"

    def __init__(self, message: str, status_code: int | None = None, error: str | None = None,
                 headers: dict | None = None):
        super().__init__(message)
        self.message = message
        if status_code is not None:
            self.status_code = status_code
        if error is not None:
            self.error = error
        self.headers = headers or {}

    def to_body(self) -> dict:
        return {"status_code": self.status_code,
                "errors": [{"error": self.error, "message": self.message}]}


class ValidationError(ApiError):
    status_code = 400
    error = "ValidationError"


class AuthError(ApiError):
    status_code = 403
    error = "AuthError"


class NotFound(ApiError):
    status_code = 404
    error = "NoResultFound"

    def __init__(self, message: str = "No result found"):
        super().__init__(message)


class RateLimitError(ApiError):
    status_code = 429
    error = "RateLimitError"


class TooManyRequestsError(ApiError):
    status_code = 429
    error = "TooManyRequestsError"


class Conflict(ApiError):
    status_code = 409
    error = "ConflictError"


def errors_body(status_code: int, error: str, messages: list[str]) -> dict:
    return {"status_code": status_code,
            "errors": [{"error": error, "message": m} for m in messages]}


def flatten_messages(messages, prefix: str = "") -> list[str]:
    """marshmallow's nested error dict as Notify-style sentences naming the field."""
    out: list[str] = []
    if isinstance(messages, dict):
        for key, value in messages.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            if isinstance(value, (dict, list)) and not _is_leaf_list(value):
                out.extend(flatten_messages(value, name))
            else:
                for text in (value if isinstance(value, list) else [value]):
                    out.append(_sentence(name, str(text)))
    elif isinstance(messages, list):
        for text in messages:
            out.append(f"{prefix} {_lower_first(str(text))}" if prefix else str(text))
    else:
        out.append(f"{prefix} {messages}" if prefix else str(messages))
    return out


# marshmallow's words -> the jsonschema wording GOV.UK Notify answers with
_NOTIFY_WORDING = {
    "Missing data for required field.": "{name} is a required property",
    "Unknown field.": "Additional properties are not allowed ({name} was unexpected)",
    "Field may not be null.": "{name} None is not of type string",
    "Not a valid UUID.": "{name} is not a valid UUID",
    "Invalid JSON body.": "Invalid JSON supplied in POST data",
}


def _sentence(name: str, text: str) -> str:
    if name in ("_schema", "json", "query", "form") and text in _NOTIFY_WORDING:
        return _NOTIFY_WORDING[text].format(name=name)
    if name == "_schema":
        return text
    if text in _NOTIFY_WORDING:
        return _NOTIFY_WORDING[text].format(name=name)
    return f"{name} {_lower_first(text)}"


def _is_leaf_list(value) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:] if text else text
