"""The attacker's tools: JSON-RPC / XML-RPC calls as a given user, exactly as Odoo's RPC
dispatch makes them (public methods only, the caller's own context, readonly ignored)."""
from odoo import Command, api
from odoo.api import call_kw
from odoo.service.model import get_public_method
from odoo.tests import new_test_user

KSEF_USER = "l10n_pl_ksef.group_l10n_pl_ksef_user"
KSEF_MANAGER = "l10n_pl_ksef.group_l10n_pl_ksef_manager"


class KsefRpcMixin:

    def rpc(self, user, model, method, *args, context=None, **kwargs):
        """``model.method(*args, **kwargs)`` as ``user`` over RPC: a fresh environment (no
        superuser mode), the context the caller chose, private methods refused."""
        env = api.Environment(self.env.cr, user.id, {})
        records = env[model]
        get_public_method(records, method)
        return call_kw(records, method, list(args), {**kwargs, "context": dict(context or {})})

    @classmethod
    def _ksef_rpc_user(cls, login, groups, company=None):
        company = company or cls.company
        return new_test_user(cls.env(su=True), login=login, groups=groups, company_id=company.id,
                             company_ids=[Command.set(company.ids)])
