"""What the providers post to our webhooks, as marshmallow schemas (one validation library).

Providers add fields over time; unknown fields are ignored here, never refused.
For Twilio, the signature is checked on the whole form as posted, unknown
fields included, before any of this runs.
"""
from __future__ import annotations

import datetime as dt

from marshmallow import EXCLUDE, Schema, fields, validate

_REFERENCE = validate.Length(min=1, max=64)


class Lenient(Schema):
    class Meta:
        unknown = EXCLUDE


class TwilioIncomingSms(Lenient):
    """Twilio's incoming-message webhook (form-encoded)."""

    message_sid = fields.String(required=True, data_key="MessageSid", validate=_REFERENCE)
    account_sid = fields.String(load_default=None, data_key="AccountSid")
    from_number = fields.String(required=True, data_key="From")
    to_number = fields.String(required=True, data_key="To")
    body = fields.String(load_default="", data_key="Body")
    # Set by Twilio's Advanced Opt-Out: STOP, START or HELP, when Twilio has
    # itself acted on the message and answered the citizen.
    opt_out_type = fields.String(load_default=None, data_key="OptOutType")
    num_media = fields.Integer(load_default=0, data_key="NumMedia")


class NotifyReceivedText(Lenient):
    """GOV.UK Notify's received-text callback (JSON)."""

    id = fields.String(required=True, validate=_REFERENCE)
    source_number = fields.String(required=True)
    destination_number = fields.String(required=True)
    message = fields.String(required=True)
    date_received = fields.AwareDateTime(load_default=None, allow_none=True,
                                         default_timezone=dt.UTC)
