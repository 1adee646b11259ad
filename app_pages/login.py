"""Log in with a local account (accounts are made with ``clipkit user add``)."""

from app_pages import _ui

_ui.login_form()
