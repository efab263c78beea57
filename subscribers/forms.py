"""Forms for the reader's pages. They validate; the services in services.py act."""

from __future__ import annotations

import re
from typing import Any

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db.models import QuerySet
from django.utils.translation import get_language_info
from django.utils.translation import gettext_lazy as _

from digests.models import Category

from .channels.services import URL_MAX_LENGTH, ChannelRefused, webhook_kind
from .keywords import KeywordError, rules_parse
from .models import Subscriber
from .services import ReaderChoice, email_normalise

EMAIL_MAX_LENGTH = 254
# More boxes than there are categories is not a person ticking them.
CATEGORY_CHOICES_MAX = 100
# Control characters (CR, LF, NUL, ...) would let an address smuggle in mail headers.
CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]")
CATEGORY_ID = re.compile(r"^[0-9]{1,9}$")


class EmailAddressField(forms.CharField):
    """One line, at most 254 characters, a valid address; returned normalised."""

    default_error_messages = {
        "required": _("Enter your email address."),
        "control": _("An email address must be on a single line, without line breaks."),
        "too_long": _("An email address can have at most 254 characters."),
        "invalid": _("Enter a valid email address, such as name@example.com."),
    }

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # Our own messages replace Django's generic length and NUL validators.
        self.validators = []

    def clean(self, value: Any) -> str:
        text = str(self.to_python(value))
        if not text:
            raise ValidationError(self.error_messages["required"], code="required")
        if CONTROL_CHARACTERS.search(text):
            raise ValidationError(self.error_messages["control"], code="control")
        if len(text) > EMAIL_MAX_LENGTH:
            raise ValidationError(self.error_messages["too_long"], code="too_long")
        try:
            validate_email(text)
        except ValidationError:
            raise ValidationError(self.error_messages["invalid"], code="invalid") from None
        return email_normalise(text)


class CategoryChoiceField(forms.ModelMultipleChoiceField):
    default_error_messages = {
        "required": _("Choose at least one category."),
        "invalid_choice": _("One of the chosen categories does not exist. Choose from the list."),
        "invalid_pk_value": _("One of the chosen categories does not exist. Choose from the list."),
        "invalid_list": _("Choose categories from the list."),
    }

    def clean(self, value: Any) -> Any:
        values = value if isinstance(value, (list, tuple)) else [value]
        if len(values) > CATEGORY_CHOICES_MAX or any(
            v not in (None, "") and not CATEGORY_ID.match(str(v)) for v in values
        ):
            raise ValidationError(self.error_messages["invalid_choice"], code="invalid_choice")
        return super().clean(value)


def active_categories() -> QuerySet[Category]:
    return Category.objects.filter(active=True).order_by("position", "name")


def categories_offer(field: forms.Field, categories: list[Category]) -> None:
    """Validates against the active categories and renders from a list, so the template
    runs no query of its own."""
    assert isinstance(field, CategoryChoiceField)
    field.queryset = active_categories()
    field.choices = [(category.pk, category.name) for category in categories]


class KeywordsField(forms.CharField):
    """One keyword or "quoted phrase" per line (subscribers/keywords.py); the text is kept as
    typed, each bad line named in the error."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("required", False)
        kwargs.setdefault("widget", forms.Textarea({"rows": 4, "cols": 40}))
        super().__init__(**kwargs)

    def clean(self, value: Any) -> str:
        text = str(super().clean(value) or "")
        try:
            rules_parse(text)
        except KeywordError as error:
            raise ValidationError(error.messages, code="keywords") from None
        return text


def language_name(code: str) -> str:
    """A language's name in that language (日本語, English), as a reader looks for it."""
    try:
        return str(get_language_info(code)["name_local"])
    except KeyError:
        return code


def language_choices() -> list[tuple[str, str]]:
    """The languages the newsletter offers (DIGEST_LANGUAGES), the default first."""
    return [(code, language_name(code)) for code in dict.fromkeys(settings.DIGEST_LANGUAGES)]


class ReaderChoiceFields(forms.Form):
    """The fields both pages share: keyword rules, cadence and language (the model's field
    names). The language is offered only when there is more than one to choose from."""

    keywords_include = KeywordsField(label=_("Keywords to look for"))
    keywords_exclude = KeywordsField(label=_("Keywords to leave out"))
    keywords_all_categories = forms.BooleanField(
        required=False, label=_("Also show matching papers from categories I did not choose")
    )
    cadence = forms.ChoiceField(
        choices=[
            (Subscriber.Cadence.DAILY, _("Daily: every arXiv announcement day")),
            (Subscriber.Cadence.WEEKLY, _("Weekly: the week's most important papers")),
        ],
        initial=Subscriber.Cadence.DAILY,
        # A post without it (an older page still open) means the default, daily.
        required=False,
        widget=forms.RadioSelect,
        label=_("How often"),
        error_messages={"invalid_choice": _("Choose daily or weekly.")},
    )
    language = forms.ChoiceField(
        # A post without it (an older page still open) keeps the reader's language.
        required=False,
        label=_("Email language"),
        error_messages={"invalid_choice": _("Choose a language from the list.")},
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        choices = language_choices()
        if len(choices) > 1:
            field = self.fields["language"]
            assert isinstance(field, forms.ChoiceField)
            field.choices = choices
        else:
            del self.fields["language"]  # one language: nothing to choose, nothing checked

    @property
    def offers_language(self) -> bool:
        return "language" in self.fields

    def reader_choice(self) -> ReaderChoice:
        data = self.cleaned_data
        return ReaderChoice(
            keywords_include=data.get("keywords_include") or "",
            keywords_exclude=data.get("keywords_exclude") or "",
            keywords_all_categories=bool(data.get("keywords_all_categories")),
            cadence=data.get("cadence") or Subscriber.Cadence.DAILY,
        )


class SignupForm(ReaderChoiceFields):
    email = EmailAddressField(label=_("Email address"))
    categories = CategoryChoiceField(
        queryset=Category.objects.none(),
        widget=forms.CheckboxSelectMultiple,
        label=_("Categories"),
    )
    # The honeypot: hidden by CSS, so only robots fill it in.
    homepage = forms.CharField(required=False, label=_("Leave this field empty"))

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        categories = list(active_categories())
        categories_offer(self.fields["categories"], categories)
        self.initial.setdefault("categories", [c.pk for c in categories])
        self.initial.setdefault("cadence", Subscriber.Cadence.DAILY)

    def is_robot(self) -> bool:
        return bool(str(self.data.get("homepage", "")).strip())


class PreferencesForm(ReaderChoiceFields):
    categories = CategoryChoiceField(
        queryset=Category.objects.none(),
        widget=forms.CheckboxSelectMultiple,
        label=_("Categories"),
        error_messages={
            "required": _("Choose at least one category, or unsubscribe below."),
        },
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        categories_offer(self.fields["categories"], list(active_categories()))


# --- Team chats (the preferences page's section) ----------------------------------------------

CHANNEL_ID_MAX = 2**62


class ChannelAddForm(forms.Form):
    """A Slack or Discord webhook address; only those services' hosts are accepted."""

    url = forms.CharField(
        label=_("Webhook address"),
        max_length=URL_MAX_LENGTH,
        error_messages={
            "required": _("Paste the webhook address from Slack or Discord."),
            "max_length": _("A webhook address has at most 500 characters."),
        },
    )

    def clean_url(self) -> str:
        url = str(self.cleaned_data["url"]).strip()
        try:
            webhook_kind(url)
        except ChannelRefused as refused:
            raise ValidationError(str(refused.message), code=refused.code) from None
        return url


class ChannelChoiceForm(forms.Form):
    """One of the reader's channels, by id (the service checks it is theirs)."""

    channel = forms.IntegerField(min_value=1, max_value=CHANNEL_ID_MAX)


class ChannelConfirmForm(ChannelChoiceForm):
    code = forms.CharField(
        label=_("Code from the test message"),
        max_length=16,
        error_messages={"required": _("Type the code from the test message.")},
    )
