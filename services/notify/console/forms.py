"""WTForms widgets for the console: govuk-frontend-wtf's, speaking the chosen language.

govuk-frontend-wtf maps a field's label, hint and first error onto the GOV.UK macros;
these subclasses add what a Welsh page also needs in Welsh: the hidden "Error:"
prefix a screen reader announces, and the password field's show/hide button.  Use
them (not govuk-frontend-wtf's directly) in every console form::

    email = StringField(_l("Email address"), widget=TextInput(),
                        validators=[InputRequired(_l("Enter an email address"))])

and ``{{ form.email() }}`` in the template; ``{{ error_summary(form) }}`` (macros.html)
at the top of the page.
"""
from __future__ import annotations

from flask_babel import gettext
from govuk_frontend_wtf import wtforms_widgets as gov


class _Welsh:
    def map_gov_params(self, field, **kwargs):
        params = super().map_gov_params(field, **kwargs)
        if params.get("errorMessage"):
            params["errorMessage"]["visuallyHiddenText"] = gettext("Error")
        for key in ("label", "hint"):
            if params.get(key) and params[key].get("text") is not None:
                params[key]["text"] = str(params[key]["text"])
        return params


class TextInput(_Welsh, gov.GovTextInput):
    pass


class PasswordInput(_Welsh, gov.GovPasswordInput):
    def map_gov_params(self, field, **kwargs):
        params = super().map_gov_params(field, **kwargs)
        params.update(showPasswordText=gettext("Show"), hidePasswordText=gettext("Hide"),
                      showPasswordAriaLabelText=gettext("Show password"),
                      hidePasswordAriaLabelText=gettext("Hide password"),
                      passwordShownAnnouncementText=gettext("Your password is visible"),
                      passwordHiddenAnnouncementText=gettext("Your password is hidden"))
        return params


class TextArea(_Welsh, gov.GovTextArea):
    pass


class RadioInput(_Welsh, gov.GovRadioInput):
    def map_gov_params(self, field, **kwargs):
        params = super().map_gov_params(field, **kwargs)
        for item in params.get("items", []):
            item["text"] = str(item.get("text", ""))
        legend = (params.get("fieldset") or {}).get("legend")
        if legend and legend.get("text") is not None:
            legend["text"] = str(legend["text"])
        return params


class Select(_Welsh, gov.GovSelect):
    pass


class SubmitInput(_Welsh, gov.GovSubmitInput):
    def map_gov_params(self, field, **kwargs):
        params = super().map_gov_params(field, **kwargs)
        params["text"] = str(params.get("text", ""))
        return params
