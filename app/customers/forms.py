from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import DateField, DecimalField, HiddenField, StringField
from wtforms.validators import AnyOf, InputRequired, Length, NumberRange, Optional

from app.settings.bounds import MAX_AMOUNT

AMOUNT = NumberRange(min=0, max=MAX_AMOUNT)  # money typed on a customer's page


class HoldForm(FlaskForm):
    action = HiddenField(validators=[AnyOf(("hold", "release"))])
    reason = StringField(_l("Reason"), validators=[Optional(), Length(max=500)])


class CreditLimitForm(FlaskForm):
    limit = DecimalField(_l("Credit limit"), places=2, validators=[Optional(), AMOUNT])


class RetainerForm(FlaskForm):
    threshold = DecimalField(_l("Top-up below"), places=2,
                             validators=[InputRequired(), AMOUNT])
    top_up_to = DecimalField(_l("Top up to"), places=2,
                             validators=[InputRequired(), AMOUNT])
    started_on = DateField(_l("Invoices from"), validators=[Optional()])


class TopUpForm(FlaskForm):
    amount = DecimalField(_l("Amount received"), places=2,
                          validators=[InputRequired(), NumberRange(min=0.01, max=MAX_AMOUNT)])
    received_on = DateField(_l("Received on"), validators=[Optional()])
