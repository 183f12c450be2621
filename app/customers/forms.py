from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import DecimalField, HiddenField, StringField
from wtforms.validators import AnyOf, Length, NumberRange, Optional


class HoldForm(FlaskForm):
    action = HiddenField(validators=[AnyOf(("hold", "release"))])
    reason = StringField("Reason", validators=[Optional(), Length(max=500)])


class CreditLimitForm(FlaskForm):
    limit = DecimalField("Credit limit", places=2, validators=[Optional(), NumberRange(min=0)])
