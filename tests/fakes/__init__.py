"""HTTP- and SMTP-level fakes of third-party services, served on 127.0.0.1.

Used only at the platform's third-party edges (Twilio, GOV.UK Notify, an SMTP
relay, a tenant's delivery-status URL); our own ports are faked with plain classes in the tests themselves.
"""
