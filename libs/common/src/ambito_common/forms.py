"""One marshmallow schema per form: the HTML form, validation, the API and the PDF.

A form is declared once, as a :class:`FormSchema` whose fields carry Italian
metadata (``label``, ``help``, ``widget``, ``choices`` as ``[(value, label)]``,
``autocomplete``; on a top-level nested field ``section`` and ``description``
give a fieldset). From it:

- :func:`build_form` produces the sections and fields the ``_forms.html``
  macros render, with the submitted values and the errors placed on them;
- :func:`parse_form` turns a browser's form post (dotted names) into the same
  nested dict a JSON client sends, so page and API go through the same
  ``schema.load`` and the same rules;
- :func:`document_sections` and :func:`accepted_declarations` turn the loaded
  data into the sections and the declarations of the PDF.

:class:`FormSchema` also speaks Italian: every standard marshmallow message
(required, type, length, choice, pattern, e-mail ...) is translated when a
field is bound, so a new form only writes the messages that are its own.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from marshmallow import Schema, ValidationError, fields, pre_load, validate
from werkzeug.datastructures import MultiDict

from .errors import InvalidInput, flatten_errors

WIDGETS = ("text", "email", "tel", "date", "number", "password", "textarea", "select", "radio",
           "checkbox", "checkboxes")
REQUIRED_MESSAGE = "Campo obbligatorio."
YES, NO = "Sì", "No"

# marshmallow's own messages, in the words an Italian office would use.
_FIELD_MESSAGES: dict[str, str] = {
    "required": REQUIRED_MESSAGE,
    "null": REQUIRED_MESSAGE,
    "validator_failed": "Valore non valido.",
    "invalid": "Valore non valido.",
}
_INVALID_BY_TYPE: tuple[tuple[type[fields.Field], str], ...] = (
    (fields.Email, "Indirizzo e-mail non valido."),
    (fields.Boolean, "Indicare sì o no."),
    (fields.Integer, "Inserire un numero intero."),
    (fields.Number, "Inserire un numero."),
    (fields.Date, "Data non valida."),
    (fields.List, "Inserire un elenco di valori."),
    (fields.String, "Inserire un testo."),
)


class Confirmation(fields.Boolean):
    """A declaration the applicant must make: only a literal ``true`` is accepted.

    A missing or false value fails with the field's own message ("È necessario
    accettare ..."), because "required" alone does not tell a person what to
    do. Confirmations become the declarations of the PDF, not a "Sì" in a table.
    """

    def __init__(self, *, message: str, **kwargs: Any) -> None:
        kwargs.setdefault("required", True)
        kwargs.setdefault("metadata", {})
        kwargs["metadata"].setdefault("widget", "checkbox")
        super().__init__(**kwargs)
        self.error_messages.update(required=message, null=message, refused=message)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> bool:
        if value is True:
            return True
        if value is False:
            raise self.make_error("refused")
        raise self.make_error("invalid")


class FormSchema(Schema):
    """Base of every form schema: trims text, treats blanks as missing, speaks Italian."""

    error_messages: ClassVar[dict[str, str]] = {"unknown": "Campo non previsto.",
                                                "type": "Dati non validi."}

    @pre_load
    def _drop_blanks(self, data: Any, **_: Any) -> Any:
        """A blank input is a missing one, so "required" reads the same from page and API."""
        if not isinstance(data, Mapping):
            return data
        cleaned = {}
        for key, value in data.items():
            if isinstance(value, str):
                value = value.strip()
                if not value:
                    continue
            cleaned[key] = value
        return cleaned

    def on_bind_field(self, field_name: str, field_obj: fields.Field) -> None:
        _italianise(field_obj)


def _italianise(field_obj: fields.Field) -> None:
    """Replace marshmallow's English defaults (never a message a schema chose itself)."""
    defaults: dict[str, str] = {}
    for cls in reversed(type(field_obj).__mro__):
        defaults.update(getattr(cls, "default_error_messages", {}))
    italian = dict(_FIELD_MESSAGES)
    italian["invalid"] = next((msg for kind, msg in _INVALID_BY_TYPE if isinstance(field_obj, kind)),
                              italian["invalid"])
    for key, message in italian.items():
        if key in field_obj.error_messages and field_obj.error_messages[key] == defaults.get(key):
            field_obj.error_messages[key] = message
    for validator in field_obj.validators:
        _italianise_validator(validator)
    if isinstance(field_obj, fields.List):
        _italianise(field_obj.inner)


def _italianise_validator(validator: Any) -> None:
    if isinstance(validator, validate.Length) and validator.error is None:
        validator.message_min = "Inserire almeno {min} caratteri."
        validator.message_max = "Inserire al massimo {max} caratteri."
        validator.message_all = "Inserire da {min} a {max} caratteri."
        validator.message_equal = "Inserire esattamente {equal} caratteri."
    elif isinstance(validator, validate.Range) and validator.error is None:
        validator.message_min = "Il valore deve essere almeno {min}."
        validator.message_max = "Il valore deve essere al massimo {max}."
        validator.message_all = "Il valore deve essere compreso tra {min} e {max}."
    elif isinstance(validator, validate.Email) and validator.error == validate.Email.default_message:
        validator.error = "Indirizzo e-mail non valido."
    elif isinstance(validator, validate.OneOf) and validator.error == validate.OneOf.default_message:
        validator.error = "Valore non previsto."
    elif isinstance(validator, validate.Regexp) and validator.error == validate.Regexp.default_message:
        validator.error = "Formato non valido."


@dataclass
class FormField:
    """One input as the ``_forms.html`` macros expect it."""

    name: str
    label: str
    widget: str
    required: bool = False
    help: str = ""
    choices: list[tuple[str, str]] = field(default_factory=list)
    value: str | list[str] | bool = ""
    errors: list[str] = field(default_factory=list)
    autocomplete: str = ""

    @property
    def id(self) -> str:
        return field_id(self.name)

    @property
    def hint_id(self) -> str:
        return f"{self.id}-hint" if self.help else ""


@dataclass
class FormSection:
    title: str
    description: str = ""
    fields: list[FormField] = field(default_factory=list)


@dataclass
class Form:
    """Sections to render and the error summary ``[(field_id, label, message)]`` for the top."""

    sections: list[FormSection]
    errors: list[tuple[str, str, str]]

    def field(self, name: str) -> FormField:
        for section in self.sections:
            for form_field in section.fields:
                if form_field.name == name:
                    return form_field
        raise KeyError(name)


def field_id(name: str) -> str:
    """The HTML id of the input named ``name`` (the error summary links to it)."""
    return "f-" + name.replace(".", "-")


def _key(name: str, field_obj: fields.Field) -> str:
    return field_obj.data_key or name


def _leaves(schema: Schema, prefix: str = "") -> Iterator[tuple[str, fields.Field]]:
    """Every input of ``schema`` as (dotted name, field); nested schemas are flattened."""
    for name, field_obj in schema.fields.items():
        if field_obj.dump_only:
            continue
        path = prefix + _key(name, field_obj)
        if isinstance(field_obj, fields.Nested):
            yield from _leaves(field_obj.schema, path + ".")
        else:
            yield path, field_obj


def _grouped(schema: Schema) -> Iterator[tuple[str, str, list[tuple[str, fields.Field]]]]:
    """Top-level fields grouped into (title, description, leaves) by their ``section``.

    A nested field with a ``section`` is a fieldset of its own; consecutive
    scalar fields sharing a ``section`` title share a fieldset.
    """
    groups: list[tuple[str, str, list[tuple[str, fields.Field]]]] = []
    for name, field_obj in schema.fields.items():
        if field_obj.dump_only:
            continue
        title = field_obj.metadata.get("section", "")
        description = field_obj.metadata.get("description", "")
        if isinstance(field_obj, fields.Nested):
            leaves = list(_leaves(field_obj.schema, _key(name, field_obj) + "."))
        else:
            leaves = [(_key(name, field_obj), field_obj)]
        if groups and groups[-1][0] == title and not isinstance(field_obj, fields.Nested):
            groups[-1][2].extend(leaves)
        else:
            groups.append((title, description, leaves))
    yield from groups


def widget_of(field_obj: fields.Field) -> str:
    """The widget named in metadata, or the natural one for the field's type."""
    widget = field_obj.metadata.get("widget")
    if widget is None:
        if isinstance(field_obj, fields.Boolean):
            widget = "checkbox"
        elif isinstance(field_obj, fields.List):
            widget = "checkboxes"
        elif isinstance(field_obj, fields.Email):
            widget = "email"
        elif isinstance(field_obj, fields.Date):
            widget = "date"
        elif isinstance(field_obj, fields.Number):
            widget = "number"
        elif field_obj.metadata.get("choices"):
            widget = "select"
        else:
            widget = "text"
    if widget not in WIDGETS:
        raise ValueError(f"unknown widget {widget!r}")
    return widget


def _get(data: Mapping[str, Any] | None, path: str) -> Any:
    value: Any = data or {}
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def _set(data: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split(".")
    for part in parents:
        data = data.setdefault(part, {})
    data[last] = value


def _display_value(widget: str, value: Any) -> str | list[str] | bool:
    if widget == "password":
        return ""  # never written back into a page
    if widget == "checkbox":
        return value is True or value in ("on", "true", "1")
    if widget == "checkboxes":
        return [str(v) for v in value] if isinstance(value, list | tuple) else []
    if value is None:
        return ""
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def build_form(schema: Schema, values: Mapping[str, Any] | None = None,
               errors: Mapping[str, Sequence[str]] | None = None) -> Form:
    """The form of ``schema`` filled with ``values`` (the nested dict) and ``errors``.

    ``errors`` are dotted paths as the API reports them; a path below a field
    (``areas.1``) lands on that field. Paths matching no field (which a page
    never produces) appear in the summary with an empty field id.
    """
    sections = [FormSection(title=title, description=description,
                            fields=[_form_field(name, f, values) for name, f in leaves])
                for title, description, leaves in _grouped(schema)]
    by_name = {f.name: f for s in sections for f in s.fields}
    summary: list[tuple[str, str, str]] = []
    for path, messages in (errors or {}).items():
        target = _field_for_path(by_name, path)
        for message in messages:
            if target is None:
                summary.append(("", "", message))
            else:
                if message not in target.errors:
                    target.errors.append(message)
    # The summary follows the order of the form, not the order of the errors.
    summary[:0] = [(f.id, f.label, m) for f in by_name.values() for m in f.errors]
    return Form(sections=sections, errors=summary)


def _form_field(name: str, field_obj: fields.Field, values: Mapping[str, Any] | None) -> FormField:
    metadata = field_obj.metadata
    widget = widget_of(field_obj)
    return FormField(name=name, label=metadata.get("label", name), widget=widget,
                     required=field_obj.required, help=metadata.get("help", ""),
                     choices=[(str(v), str(label)) for v, label in metadata.get("choices", ())],
                     value=_display_value(widget, _get(values, name)),
                     autocomplete=metadata.get("autocomplete", ""))


def _field_for_path(by_name: Mapping[str, FormField], path: str) -> FormField | None:
    while path:
        if path in by_name:
            return by_name[path]
        path = path.rpartition(".")[0]
    return None


def parse_form(schema: Schema, formdata: MultiDict[str, str]) -> dict[str, Any]:
    """A browser's form post as the nested dict ``schema.load`` takes.

    Inputs are named with dotted paths. An unticked checkbox is not sent, so a
    checkbox becomes ``True`` only when present (``"on"``) and ``False``
    otherwise; a group of checkboxes becomes a list. Names the schema does not
    know (the CSRF token, a submit button) are ignored.
    """
    data: dict[str, Any] = {}
    for name, field_obj in _leaves(schema):
        widget = widget_of(field_obj)
        if widget == "checkbox":
            _set(data, name, formdata.get(name) in ("on", "true", "1"))
        elif widget == "checkboxes":
            _set(data, name, [v for v in formdata.getlist(name) if v.strip()])
        elif name in formdata:
            _set(data, name, formdata.get(name))
    return data


def _label_of(field_obj: fields.Field, value: Any) -> str:
    choices = {str(v): str(lab) for v, lab in field_obj.metadata.get("choices", ())}
    if isinstance(value, bool):
        return YES if value else NO
    if isinstance(value, dt.date):
        return value.strftime("%d/%m/%Y")
    return choices.get(str(value), str(value))


def document_sections(schema: Schema, data: Mapping[str, Any]) -> list[dict[str, Any]]:
    """``[{"title", "fields": [{"label", "value"}]}]`` for the PDF, from the loaded data.

    Choices are shown by their label, booleans as Sì/No, lists joined by
    commas; empty optional fields are left out, and confirmations go to
    :func:`accepted_declarations` instead.
    """
    sections = []
    for title, _description, leaves in _grouped(schema):
        rows = []
        for name, field_obj in leaves:
            value = _get(data, name)
            if isinstance(field_obj, Confirmation) or value is None or value in ("", []):
                continue
            if isinstance(value, list | tuple):
                shown = ", ".join(_label_of(field_obj, v) for v in value)
            else:
                shown = _label_of(field_obj, value)
            rows.append({"label": field_obj.metadata.get("label", name), "value": shown})
        if rows:
            sections.append({"title": title, "fields": rows})
    return sections


def accepted_declarations(schema: Schema, data: Mapping[str, Any]) -> list[str]:
    """The text of every confirmation the applicant made, in the order of the form."""
    return [f.metadata.get("label", name) for name, f in _leaves(schema)
            if isinstance(f, Confirmation) and _get(data, name) is True]


def load(schema: Schema, data: Any) -> dict[str, Any]:
    """``schema.load`` whose errors come back as ``{dotted.path: [messages]}``.

    Raises :class:`ambito_common.errors.InvalidInput` (422) so a service layer
    can validate and let the one error mapping answer page and API alike.
    """
    if not isinstance(data, Mapping):
        raise InvalidInput("I dati devono essere un oggetto JSON.",
                           errors={"_schema": ["I dati devono essere un oggetto JSON."]})
    try:
        return schema.load(data)
    except ValidationError as exc:
        raise InvalidInput("Alcuni dati non sono validi.",
                           errors=flatten_errors(exc.messages)) from exc


def document_in_openapi(spec: APISpec) -> APISpec:
    """Show the form metadata in OpenAPI: label → title, help → description, choices → enum."""
    plugin = next(p for p in spec.plugins if isinstance(p, MarshmallowPlugin))

    def _form_metadata(_converter: Any, field_obj: fields.Field, **_: Any) -> dict[str, Any]:
        metadata = field_obj.metadata
        properties: dict[str, Any] = {}
        if "label" in metadata:
            properties["title"] = metadata["label"]
        if "help" in metadata:
            properties["description"] = metadata["help"]
        if metadata.get("choices") and not isinstance(field_obj, fields.List):
            properties["enum"] = [v for v, _label in metadata["choices"]]
        return properties

    plugin.converter.add_attribute_function(_form_metadata)
    return spec
